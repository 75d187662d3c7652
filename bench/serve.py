"""``rollguard serve`` under load: 1,000 deployments watched, API latency at 200 rps.

    python bench/serve.py [--deployments 1000] [--interval 10] [--rps 200] [--seconds 20]

Starts ``rollguard serve`` as its own process over a folder of replay
policies (each deployment with its own 20-minute recording; one in twenty goes
bad 20 s in and is rolled back), waits until every deployment has been evaluated, then
measures the server process from /proc:

- idle: CPU share (CPU seconds per wall second, of one core) and RSS while it
  only watches;
- loaded: an open-loop async client sends ``--rps`` requests per second (85 %
  one deployment's detail, 10 % the full list, 5 % /healthz, and /metrics every
  5 s as a Prometheus would scrape it) and
  the table gives p50 / p99 / max latency per endpoint (counted from when each
  request was due, over 32 keep-alive connections) and the server's CPU.

Numbers depend on the machine and what else runs on it; the load average is
printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")
CONNECTIONS = 32
SCRAPE_SECONDS = 5.0
HEADER = "time,version,requests,errors,latency_p95_ms,memory_mb"


def write_folder(folder: Path, deployments: int, interval: float) -> None:
    """One policy and one recording per deployment; every twentieth goes bad after 20 s."""
    for n in range(deployments):
        bad = n % 20 == 0
        rows = [HEADER]
        for at in range(10, 1210, 10):
            errors = 15 if bad and at > 20 else 1
            rows.append(f"{at},stable,200,1,120,300")
            rows.append(f"{at},canary,200,{errors},{125 + n % 7},{305 + n % 11}")
        (folder / f"d{n:04}.csv").write_text("\n".join(rows) + "\n")
        (folder / f"d{n:04}.yaml").write_text(
            f"""\
target: {{deployment: d{n:04}, executor: {{type: noop}}}}
metrics: {{provider: replay, file: d{n:04}.csv}}
analysis: {{interval: {interval}s, persistence: 2}}
baseline: {{compare_with: stable}}
error_rate_trigger: {{threshold: 5%, measurement_window: 1m}}
latency_trigger: {{threshold: 30% increase from baseline, measurement_window: 1m,
  action: gradual_rollback}}
memory_trigger: {{threshold: 50MB increase from baseline, measurement_window: 1m,
  action: scaling_and_rollback}}
"""
        )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_share(pid: int, seconds: float) -> float:
    """CPU seconds used per wall second over ``seconds`` (1.0 = one core busy)."""
    before, start = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - start)


@dataclass
class Samples:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    late_starts: int = 0


class Connection:
    """One keep-alive HTTP/1.1 connection: a tiny client, so the load generator (not a
    general-purpose library's connection pool) is never the bottleneck being measured."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        request = f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nAccept: */*\r\n\r\n"
        self.writer.write(request.encode())
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status


async def load(url: str, deployments: int, rps: float, seconds: float) -> Samples:
    """Open loop: request i is due at start + i / rps; latency counts from when it was due,
    so time spent waiting for a free connection is included (no coordinated omission)."""
    samples = Samples()
    rng = random.Random(7)
    host, port = url.removeprefix("http://").split(":")
    queue: asyncio.Queue[tuple[float, str, str] | None] = asyncio.Queue()

    async def worker() -> None:
        connection = Connection(host, int(port))
        while (item := await queue.get()) is not None:
            due, kind, path = item
            try:
                status = await connection.get(path)
                what = f"HTTP {status}"
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                status, what = 0, type(exc).__name__
                connection = Connection(host, int(port))
            elapsed = (time.perf_counter() - due) * 1000
            if status == 200:
                samples.latencies.setdefault(kind, []).append(elapsed)
            else:
                samples.errors += 1
                samples.error_kinds[what] = samples.error_kinds.get(what, 0) + 1

    workers = [asyncio.create_task(worker()) for _ in range(CONNECTIONS)]
    start = time.perf_counter()
    for i in range(int(rps * seconds)):
        due = start + i / rps
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.05:
            samples.late_starts += 1
        pick = rng.random()
        if i % int(rps * SCRAPE_SECONDS) == 0:
            kind, path = "metrics", "/metrics"  # a Prometheus scraping every few seconds
        elif pick < 0.85:
            kind, path = "detail", f"/api/v1/deployments/d{rng.randrange(deployments):04}"
        elif pick < 0.95:
            kind, path = "list", "/api/v1/deployments"
        else:
            kind, path = "healthz", "/healthz"
        queue.put_nowait((due, kind, path))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return samples


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def wait_evaluated(url: str, deployments: int, timeout: float) -> float:
    """Seconds until every deployment has at least one evaluation."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            listed = httpx.get(f"{url}/api/v1/deployments", timeout=10).json()["deployments"]
        except (httpx.HTTPError, ValueError, KeyError):
            listed = []
        if len(listed) == deployments and all(d["evaluations"] > 0 for d in listed):
            return time.monotonic() - start
        time.sleep(1)
    raise SystemExit(f"not every deployment was evaluated within {timeout:g}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--rps", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    args = parser.parse_args()

    port = 18000 + os.getpid() % 1000
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_folder(folder, args.deployments, args.interval)
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "rollguard", "serve", "--policies", tmp),
                *("--listen", f"127.0.0.1:{port}", "--log-level", "error"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            result = measure(process.pid, url, args)
        finally:
            process.terminate()
            process.wait(timeout=30)
    report(args, result)


@dataclass
class Result:
    startup: float
    idle_cpu: float
    idle_rss: float
    loaded_cpu: float
    loaded_rss: float
    rolled_back: int
    samples: Samples


def measure(pid: int, url: str, args: argparse.Namespace) -> Result:
    """Idle figures first, then the same under load."""
    startup = wait_evaluated(url, args.deployments, timeout=300)
    idle_cpu = cpu_share(pid, args.idle_seconds)
    idle_rss = rss_mb(pid)
    before = cpu_seconds(pid)
    began = time.monotonic()
    samples = asyncio.run(load(url, args.deployments, args.rps, args.seconds))
    loaded_cpu = (cpu_seconds(pid) - before) / (time.monotonic() - began)
    rolled = httpx.get(f"{url}/rollback/status", timeout=30).json()
    return Result(
        startup=startup,
        idle_cpu=idle_cpu,
        idle_rss=idle_rss,
        loaded_cpu=loaded_cpu,
        loaded_rss=rss_mb(pid),
        rolled_back=sum(row["rolled_back"] for row in rolled["deployments"]),
        samples=samples,
    )


def report(args: argparse.Namespace, result: Result) -> None:
    """Two Markdown tables: the process, then latency per endpoint."""
    startup, idle_cpu, idle_rss = result.startup, result.idle_cpu, result.idle_rss
    loaded_cpu, loaded_rss, samples = result.loaded_cpu, result.loaded_rss, result.samples
    load1, _, _ = os.getloadavg()
    print(f"rollguard serve: {args.deployments} deployments (replay), interval {args.interval:g}s")
    print(f"machine: {os.cpu_count()} cores, load average {load1:.1f} at the end\n")
    print(f"| {'measure':<44} | {'value':>12} |")
    print(f"|{'-' * 46}|{'-' * 14}|")
    print(f"| {'time until all evaluated once (s)':<44} | {startup:>12.1f} |")
    print(f"| {'idle CPU share (cores)':<44} | {idle_cpu:>12.3f} |")
    print(f"| {'idle RSS (MB)':<44} | {idle_rss:>12.0f} |")
    print(f"| {f'CPU share under {args.rps:g} rps (cores)':<44} | {loaded_cpu:>12.3f} |")
    print(f"| {'RSS after load (MB)':<44} | {loaded_rss:>12.0f} |")
    rolled = f"deployments rolled back (of {args.deployments // 20} gone bad)"
    print(f"| {rolled:<44} | {result.rolled_back:>12} |")
    print(f"| {'failed requests':<44} | {samples.errors:>12} |")
    for what, count in sorted(samples.error_kinds.items()):
        print(f"| {'  ' + what:<44} | {count:>12} |")
    print(f"| {'requests sent >50 ms late (client-bound)':<44} | {samples.late_starts:>12} |")
    print()
    print(f"| {'endpoint':<10} | {'requests':>8} | {'p50 ms':>8} | {'p99 ms':>8} | {'max ms':>8} |")
    print(f"|{'-' * 12}|{'-' * 10}|{'-' * 10}|{'-' * 10}|{'-' * 10}|")
    everything: list[float] = []
    for kind in ("detail", "list", "healthz", "metrics"):
        values = samples.latencies.get(kind, [])
        everything += values
        if values:
            print(
                f"| {kind:<10} | {len(values):>8} | {statistics.median(values):>8.1f} | "
                f"{percentile(values, 0.99):>8.1f} | {max(values):>8.1f} |"
            )
    if everything:
        print(
            f"| {'all':<10} | {len(everything):>8} | {statistics.median(everything):>8.1f} | "
            f"{percentile(everything, 0.99):>8.1f} | {max(everything):>8.1f} |"
        )


if __name__ == "__main__":
    main()
