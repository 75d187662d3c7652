"""The policy: schema, human units, loading with file:line errors."""

from rollguard.policy.actions import Action, Severity
from rollguard.policy.load import load_policy, parse_policy
from rollguard.policy.model import Policy
from rollguard.policy.triggers import Trigger

__all__ = ["Action", "Policy", "Severity", "Trigger", "load_policy", "parse_policy"]
