"""The HTML report opens in a real headless Chromium, offline, and shows the store's numbers."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

from audit_records import day, record_watch
from chromium import FLAGS, chromium_binary
from rollguard.audit.factory import open_store
from rollguard.reports.build import build, render_report


class _Collect(HTMLParser):
    """Reads data-metric cells, checklist items and chart bars from the rendered DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.metrics: dict[str, str] = {}
        self.checks: dict[str, str] = {}
        self.bars: dict[str, list[tuple[str, float]]] = {}
        self.external: list[str] = []
        self._metric: str | None = None
        self._chart: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if "data-metric" in found:
            self._metric = found["data-metric"]
        if "data-check" in found:
            self.checks[str(found["data-check"])] = str(found["data-status"])
        if tag == "svg":
            self._chart = found.get("id")
            self.bars[str(self._chart)] = []
        if tag == "rect" and self._chart and "data-value" in found:
            self.bars[self._chart].append(
                (str(found["data-label"]), float(str(found["data-value"])))
            )
        for name in ("src", "href"):
            if found.get(name):
                self.external.append(str(found[name]))

    def handle_data(self, data: str) -> None:
        if self._metric is not None:
            self.metrics[self._metric] = data.strip()
            self._metric = None


def test_html_renders_in_chromium_with_the_stores_numbers(tmp_path: Path) -> None:
    chromium = chromium_binary()
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    for n in range(7):
        record_watch(store, watch_id=f"ok{n}", start=day(2 + n))
    record_watch(
        store, watch_id="r1", start=day(10), detect_after=30, recover_after=4, affected_users=90
    )
    record_watch(
        store, watch_id="r2", start=day(10), detect_after=90, recover_after=6, affected_users=10
    )
    record_watch(
        store, watch_id="r3", start=day(14), detect_after=60, recover_after=8, outcome="failure"
    )
    report = build(store, since="2026-11-01T00:00:00Z", until=datetime(2026, 11, 30, tzinfo=UTC))
    store.close()
    page = tmp_path / "report.html"
    page.write_text(render_report(report, format="html"), encoding="utf-8")
    profile = tmp_path / "profile"
    profile.mkdir()
    done = subprocess.run(
        [
            str(chromium),
            *FLAGS,
            f"--user-data-dir={profile}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = _Collect()
    dom.feed(done.stdout)
    assert dom.metrics["total_deployments"] == "10"
    assert dom.metrics["rollback_events"] == "3"
    assert dom.metrics["rollback_rate"] == "30.00%"
    assert dom.metrics["failed_rollbacks"] == "1"
    assert dom.metrics["affected_users"] == "100"
    assert dom.metrics["time_to_detect_mean"] == "60.0s"
    assert dom.metrics["time_to_detect_p95"] == "90.0s"
    assert dom.metrics["time_to_recover_mean"] == "6.0s"
    assert dom.checks["No failed rollbacks"] == "fail"
    assert dom.checks["Audit trail complete"] == "pass"
    per_day = dict(dom.bars["rollbacks-per-day"])
    assert len(per_day) == 30
    assert (per_day["2026-11-10"], per_day["2026-11-14"], per_day["2026-11-11"]) == (2, 1, 0)
    assert sum(value for _, value in dom.bars["time-to-detect"]) == 3
    assert dom.external == []  # nothing to fetch: the page works offline
