"""A policy with its baseline, as the generators read them.

The baseline file named in a policy is found relative to the policy's own
folder (as the controller does), so ``rollguard generate`` gives the same
thresholds wherever it is run from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rollguard.baseline import Baseline, load_baseline
from rollguard.policy import load_policy
from rollguard.policy.model import Policy
from rollguard.policy.triggers import Trigger


@dataclass(frozen=True)
class PolicySource:
    """A loaded policy, the file it came from, and its baseline when it names one."""

    policy: Policy
    path: Path
    baseline: Baseline | None

    def baseline_value(self, rule: Trigger) -> float | None:
        """The baseline's reference value for a relative rule, or None to compare with stable."""
        if self.policy.reference_for(rule) != "baseline" or self.baseline is None:
            return None
        return self.baseline.value_for(rule.signal)


def resolve(policy_path: Path, relative: str) -> Path:
    """A path written in a policy, taken relative to the policy's folder."""
    path = Path(relative)
    return path if path.is_absolute() else policy_path.parent / path


def load_source(path: str | Path, *, baseline_file: Path | None = None) -> PolicySource:
    """Load a policy and its baseline (``baseline_file`` overrides the policy's);
    raise PolicyError or InputError naming the file."""
    policy_path = Path(path)
    policy = load_policy(policy_path)
    baseline = None
    if baseline_file is not None:
        baseline = load_baseline(baseline_file)
    elif policy.baseline.file is not None:
        baseline = load_baseline(resolve(policy_path, policy.baseline.file))
    return PolicySource(policy=policy, path=policy_path, baseline=baseline)
