"""Linux: net/drivers (see the modules)."""
