"""rollguard.controller."""
