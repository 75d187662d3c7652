"""``python -m rollguard`` runs the CLI."""

from rollguard.cli.main import run

run()
