"""Node process runtime: threads, clocks and endpoints around one kernel."""
