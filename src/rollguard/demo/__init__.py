"""rollguard.demo."""
