"""Linux: net/netfilter (see the modules)."""
