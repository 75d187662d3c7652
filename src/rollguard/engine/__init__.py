"""The decision engine: pure functions from measurements to decisions."""
