"""Linux: net/sched (see the modules)."""
