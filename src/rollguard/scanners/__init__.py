"""Vulnerability reports from scanners (Trivy, Grype, SARIF producers) and the deploy gate.

``reports.load_report`` reads any supported file into :class:`~.findings.Finding`
values, ``ignores.load_ignores`` reads the ignore file, and ``gate.evaluate_gate``
turns findings, limits, ignores and the baseline into a :class:`~.gate.GateResult`
without any I/O, so the CLI, the controller and the tests share one decision.
"""
