"""Linux: net/ethernet (see the modules)."""
