"""The audit trail: append-only, hash-chained, SQLite or PostgreSQL.

``open_store`` lives in :mod:`rollguard.audit.factory` (it imports SQLAlchemy);
the interface in :mod:`rollguard.audit.base` stays light for the controller.
"""
