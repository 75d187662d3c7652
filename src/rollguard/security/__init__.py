"""Runtime security signals: attack signatures in access logs, 401/403 rates, Falco alerts.

Sources here answer :data:`~rollguard.signals.Signal.SUSPICIOUS_EVENTS` and
:data:`~rollguard.signals.Signal.UNAUTHORIZED_PER_MINUTE` queries through
:class:`~rollguard.security.provider.SecurityProvider`, a metrics Provider the
controller can combine with the policy's main provider.
"""
