"""rollguard: watch a release, decide, roll back, and keep an audit trail."""

__version__ = "0.1.0"
