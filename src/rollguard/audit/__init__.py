"""The audit trail: append-only, hash-chained, SQLite or PostgreSQL."""
