"""Prometheus alert rules and Grafana dashboards generated from a policy."""
