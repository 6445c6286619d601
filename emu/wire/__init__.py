"""The ZeroMQ cable between node processes."""
