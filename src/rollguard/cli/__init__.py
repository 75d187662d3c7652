"""rollguard.cli."""
