"""One retry policy for every tracker call: 429, 5xx and dropped connections (``TransientError``).

Honour the server's ``Retry-After`` between a floor and a ceiling; otherwise back off exponentially with
full jitter (uniform in [0, min(ceiling, base * 2^(n-1))]), so many clients throttled together do not
come back in step. ``sleep`` is injectable so tests never wait in real time. The Jira and Redmine HTTP
boundaries and the sync job all use this class (one layer at a time: see ``Connector.owns_retries``).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from casebridge.errors import TransientError

log = logging.getLogger(__name__)
T = TypeVar("T")


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TransientError)


class RetryPolicy:
    def __init__(
        self,
        *,
        attempts: int = 3,
        floor: float = 1.0,
        ceiling: float = 60.0,
        base: float = 1.0,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        label: str = "tracker",
    ) -> None:
        self.attempts = max(1, attempts)
        self.floor = floor
        self.ceiling = ceiling
        self.base = base
        self.sleep = sleep if sleep is not None else time.sleep
        self.rng = rng or random.Random()
        self.label = label  # for log lines: "jira GET issue/X", "redmine", ...

    def with_attempts(self, attempts: int) -> RetryPolicy:
        """A copy making ``attempts`` attempts (1 = no retry), same waits."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__, attempts=max(1, attempts))
        return clone

    def with_sleep(self, sleep: Callable[[float], None]) -> RetryPolicy:
        """A copy that waits with ``sleep``."""
        clone = self.with_attempts(self.attempts)
        clone.sleep = sleep
        return clone

    def wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return min(self.ceiling, max(self.floor, float(retry_after)))
        return self.rng.uniform(0, min(self.ceiling, self.base * 2 ** (state.attempt_number - 1)))

    def retrying(self, *, retryable: Callable[[BaseException], bool] = is_transient, label: str = "") -> Retrying:
        """A tenacity ``Retrying`` with this policy (re-raises the last error when attempts run out)."""
        what = label or self.label
        return Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=self.wait,
            retry=retry_if_exception(retryable),
            sleep=self.sleep,
            reraise=True,
            before_sleep=lambda s: log.info(
                "%s: %s; retry %d/%d",
                what,
                type(s.outcome.exception()).__name__ if s.outcome else "?",
                s.attempt_number,
                self.attempts,
            ),
        )

    def run(self, fn: Callable[[], T], *, retryable: Callable[[BaseException], bool] = is_transient) -> T:
        return self.retrying(retryable=retryable)(fn)

    # the sync job's name for run()
    call = run
