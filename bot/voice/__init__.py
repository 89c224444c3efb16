"""Discord adapters for voice: receive (with DAVE), playback."""
