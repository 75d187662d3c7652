"""rollguard.engine."""
