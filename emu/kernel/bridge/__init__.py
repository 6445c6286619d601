"""Linux: net/bridge (see the modules)."""
