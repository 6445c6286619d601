"""User space: the socket-compatible API, tools and the lab API."""
