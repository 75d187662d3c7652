"""The compliance report: numbers computed from the audit store, Markdown or HTML."""
