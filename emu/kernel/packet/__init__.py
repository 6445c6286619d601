"""Linux: net/packet (see af_packet.py)."""
