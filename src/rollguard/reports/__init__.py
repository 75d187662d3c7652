"""rollguard.reports."""
