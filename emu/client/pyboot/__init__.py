"""Startup hook for `emu exec NODE -- python` (see sitecustomize.py); not imported as a package."""
