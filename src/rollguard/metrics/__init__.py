"""Metrics providers: scrape (embedded default), prometheus, replay."""
