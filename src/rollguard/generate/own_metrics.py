"""Names of rollguard's own metrics, shared by ``serve`` and the generators.

``rollguard serve`` exports these on ``/metrics``; generated alerts and
dashboards query them. Keeping the names in one place means a rename cannot
leave a dashboard silently empty.
"""

from __future__ import annotations

#: Counter: evaluations per deployment.
EVALUATIONS = "rollguard_evaluations_total"
#: Counter: decisions per deployment, action and trigger (``continue`` included).
DECISIONS = "rollguard_decisions_total"
#: Counter: rollbacks carried out per deployment and action.
ROLLBACKS = "rollguard_rollbacks_total"
#: Histogram: seconds one evaluation took (measure + decide).
EVALUATION_SECONDS = "rollguard_evaluation_duration_seconds"
#: Gauge: the last measured value per deployment, signal and version.
SIGNAL_VALUE = "rollguard_signal_value"
#: Gauge: the last limit a trigger compared with, per deployment and trigger.
TRIGGER_LIMIT = "rollguard_trigger_limit"
#: Gauge: percent of traffic on the canary per deployment.
CANARY_WEIGHT = "rollguard_canary_weight_percent"
#: Counter: rejected requests to the control endpoints (missing or wrong token).
UNAUTHORIZED = "rollguard_api_unauthorized_total"
#: Gauge: 1 per policy file that failed to load.
POLICY_ERRORS = "rollguard_policy_errors"

#: The Prometheus job name rollguard is scraped under, by default.
DEFAULT_JOB = "rollguard"
