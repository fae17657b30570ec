"""What became of one HTTP attempt: never sent, maybe applied, or answered. One table for Jira and Redmine.

A write must not be sent twice if the first one took effect, and must be sent again if it never left the
machine. Both HTTP boundaries (``connectors.jira.http`` and ``connectors.redmine.http``) ask this module,
so a failure means the same to both:

==============================================  ==============  =============================================
what happened                                   outcome         a write (POST) may be sent again ...
==============================================  ==============  =============================================
connection refused, DNS failure, no route,      NEVER_SENT      at once: nothing reached the server
connect timeout (no TCP connection was made)
read timeout, connection reset or closed after  MAYBE_APPLIED   only after checking it did not land
the request was sent, TLS or other failures
answer 500, 502, 503 or 504                     MAYBE_APPLIED   only after checking (it may have committed)
any other answer (2xx, 4xx incl. 429, 501...)   ANSWERED        as the status says (429: after Retry-After)
==============================================  ==============  =============================================

The transport failures are told apart by the exception types requests and urllib3 raise (urllib3 >= 2:
``NameResolutionError`` is a ``NewConnectionError``, which is raised only while opening the connection),
never by matching message text. Anything not known to be unsent counts as maybe applied.
"""

from __future__ import annotations

from enum import Enum

import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

# answers after which the server may or may not have committed the request
AMBIGUOUS_STATUSES = frozenset({500, 502, 503, 504})


class Outcome(Enum):
    NEVER_SENT = "never sent"  # no connection was made: any request may be sent again
    MAYBE_APPLIED = "maybe applied"  # sent, no usable answer: check before sending a write again
    ANSWERED = "answered"  # the server answered; its status says whether it was applied


def failure_outcome(exc: requests.exceptions.RequestException) -> Outcome:
    """The outcome of an attempt that raised ``exc`` instead of returning a response."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Outcome.NEVER_SENT
    if isinstance(exc, requests.exceptions.ConnectionError) and _opening_failed(exc):
        return Outcome.NEVER_SENT
    return Outcome.MAYBE_APPLIED


def answer_outcome(status: int) -> Outcome:
    """The outcome of an attempt the server answered with ``status``."""
    return Outcome.MAYBE_APPLIED if status in AMBIGUOUS_STATUSES else Outcome.ANSWERED


def _opening_failed(exc: BaseException) -> bool:
    """True when the connection could not be opened (refused, DNS, unreachable): requests wraps urllib3's
    ``NewConnectionError`` in a ``MaxRetryError`` (its ``reason``), as the first argument."""
    for arg in exc.args:
        if isinstance(arg, NewConnectionError):
            return True
        if isinstance(arg, MaxRetryError) and isinstance(arg.reason, NewConnectionError):
            return True
    return False
