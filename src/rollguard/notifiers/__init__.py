"""Notifiers: log, apprise-backed channels, signed JSON webhooks."""
