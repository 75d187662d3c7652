"""Client threads sending requests through a front end and logging who answered."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Answer:
    """One request: when it was sent and answered (perf_counter and wall clock), by whom."""

    sent: float
    received: float
    wall: float
    version: str
    status: int


class Traffic:
    """``threads`` clients looping GET ``/`` on ``url`` until the block ends."""

    def __init__(self, url: str, *, threads: int = 2, pause_seconds: float = 0.0) -> None:
        self.url = url
        self.pause_seconds = pause_seconds
        self._log: list[Answer] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while not self._stop.is_set():
                sent = time.perf_counter()
                try:
                    response = client.get("/")
                except httpx.HTTPError:
                    continue
                answer = Answer(
                    sent,
                    time.perf_counter(),
                    time.time(),
                    response.text.strip(),
                    response.status_code,
                )
                with self._lock:
                    self._log.append(answer)
                if self.pause_seconds:
                    self._stop.wait(self.pause_seconds)

    @property
    def answers(self) -> list[Answer]:
        with self._lock:
            return list(self._log)

    def since(self, start: float) -> list[Answer]:
        """Answers received at or after ``start`` (perf_counter), by send time."""
        return sorted((a for a in self.answers if a.received >= start), key=lambda a: a.sent)
