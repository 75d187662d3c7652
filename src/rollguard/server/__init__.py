"""rollguard.server."""
