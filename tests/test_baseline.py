"""Loading a baseline file: every bad file is one InputError naming the file, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rollguard.baseline import load_baseline
from rollguard.errors import InputError

GOOD = {
    "timestamp": "2026-06-01T12:00:00Z",
    "metrics": {"error_rate_percent": 0.5, "avg_latency_ms": 80.0, "p95_latency_ms": 200.0},
}


def test_a_good_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(GOOD))
    assert load_baseline(path).metrics.p95_latency_ms == 200.0


def test_a_binary_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(InputError, match=r"baseline\.json: cannot read baseline"):
        load_baseline(path)


@pytest.mark.parametrize("number", ["NaN", "Infinity"])
def test_non_finite_numbers_are_refused(tmp_path: Path, number: str) -> None:
    # Python's json reads NaN and Infinity; an infinite p95 would make every latency healthy
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(GOOD).replace("200.0", number))
    with pytest.raises(InputError, match=r"metrics\.p95_latency_ms"):
        load_baseline(path)
