"""Faults the fake Jira injects on demand, and the request counter benchmarks read.

A test arms a fault for the next N requests that match a method and a path regex::

    server.faults.add("429", method="POST", path=r"/issue$", times=3, retry_after=7)
    server.faults.add("drop_after_write", method="POST", path=r"/issue$")

``skip=N`` lets the first N matching requests through before the fault fires (a fault in the middle of
a run rather than on its first matching request).

Kinds: ``429`` (Retry-After and X-RateLimit-* headers), ``503``, ``500`` (answered *before* the
request is applied), ``drop_after_write`` (the request IS applied, then the connection is closed
without an answer: the client cannot know whether it worked), ``hold_after_write`` (the request IS
applied, ``fault.applied`` is set, and the answer waits until the test sets ``fault.release``: a test
kills the client process in that window, then releases), ``slow`` (answer after ``delay`` seconds,
really slept: only for tests that measure nothing by wall clock).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass, field

KINDS = ("429", "503", "500", "drop_after_write", "hold_after_write", "slow")


@dataclass
class Fault:
    kind: str
    method: str | None
    path: re.Pattern[str]
    remaining: int
    retry_after: int | None = 1
    delay: float = 0.0
    fired: int = 0
    skip: int = 0  # matching requests still to let through before firing
    applied: threading.Event = field(default_factory=threading.Event)  # hold_after_write: the write is in
    release: threading.Event = field(default_factory=threading.Event)  # hold_after_write: answer now


@dataclass
class FaultPlan:
    faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self,
        kind: str,
        *,
        method: str | None = None,
        path: str = ".*",
        times: int = 1,
        retry_after: int | None = 1,
        delay: float = 0.0,
        skip: int = 0,
    ) -> Fault:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(KINDS)}")
        fault = Fault(kind, method.upper() if method else None, re.compile(path), times, retry_after, delay, skip=skip)
        with self._lock:
            self.faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The first armed fault matching this request, consumed once."""
        with self._lock:
            for fault in self.faults:
                if fault.remaining <= 0:
                    continue
                if fault.method not in (None, method.upper()) or not fault.path.search(path):
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                fault.remaining -= 1
                fault.fired += 1
                return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()


@dataclass
class RequestCounter:
    """Requests by (method, route pattern) and by method; thread-safe."""

    by_route: Counter[tuple[str, str]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, method: str, pattern: str) -> None:
        with self._lock:
            self.by_route[(method.upper(), pattern)] += 1

    def reset(self) -> None:
        with self._lock:
            self.by_route.clear()

    @property
    def total(self) -> int:
        return sum(self.by_route.values())

    @property
    def writes(self) -> int:
        return sum(n for (method, pattern), n in self.by_route.items() if _is_write(method, pattern))

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {f"{m} {p}": n for (m, p), n in sorted(self.by_route.items())}


def _is_write(method: str, pattern: str) -> bool:
    # POST to the search endpoints reads; every other POST/PUT/DELETE writes
    return method in ("PUT", "DELETE") or (method == "POST" and not pattern.endswith(("/search", "/search/jql")))
