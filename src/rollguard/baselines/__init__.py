"""Make performance baselines from load-test reports (Artillery, k6, Locust).

Each reader turns its tool's report into a :class:`~.summary.LoadTestSummary`;
:func:`~.summary.make_baseline` turns that into a
``performance-baseline.json`` (:class:`rollguard.baseline.Baseline`).
"""
