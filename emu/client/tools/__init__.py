"""User-space tools run against a node (`emu exec NODE -- TOOL ...`)."""
