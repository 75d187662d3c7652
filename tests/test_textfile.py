"""Every user file is read one way: missing or not UTF-8 is one message, exit 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rollguard.baseline import load_baseline
from rollguard.baselines import k6
from rollguard.errors import ExitCode, RollguardError
from rollguard.metrics.recording import read_recording
from rollguard.policy import load_policy
from rollguard.scanners.ignores import load_ignores
from rollguard.scanners.reports import load_report
from rollguard.textfile import read_text

LOADERS: dict[str, Callable[[Path], object]] = {
    "policy": load_policy,
    "replay": read_recording,
    "report": load_report,
    "ignore file": load_ignores,
    "baseline": load_baseline,
    "k6 summary": k6.read,
}


@pytest.mark.parametrize("loader", LOADERS.values(), ids=LOADERS)
def test_a_file_that_is_not_utf8_is_named_with_why(
    tmp_path: Path, loader: Callable[[Path], object]
) -> None:
    path = tmp_path / "input"
    path.write_bytes("café".encode("latin-1"))
    with pytest.raises(RollguardError) as caught:
        loader(path)
    assert caught.value.exit_code is ExitCode.INVALID
    message = str(caught.value)
    assert str(path) in message
    assert "cannot read" in message
    assert "not UTF-8 text (unexpected end of data)" in message


@pytest.mark.parametrize("loader", LOADERS.values(), ids=LOADERS)
def test_a_missing_file_is_named_with_why(tmp_path: Path, loader: Callable[[Path], object]) -> None:
    path = tmp_path / "missing"
    with pytest.raises(RollguardError, match=r"cannot read.*No such file or directory"):
        loader(path)


def test_a_byte_order_mark_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfname: x\n")
    assert read_text(path) == "name: x\n"


def test_the_reading_idiom_has_one_home() -> None:
    import rollguard

    package = Path(rollguard.__file__).parent
    idiom = "exc.strerror if isinstance(exc, OSError)"
    assert [p.name for p in package.rglob("*.py") if idiom in p.read_text()] == []
