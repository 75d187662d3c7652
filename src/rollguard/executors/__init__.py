"""Executors: local (demo router), haproxy, kubernetes, command, noop."""
