"""Linux: net/core (see the modules)."""
