"""Linux: net/ipv4 (see the modules)."""
