"""The HTTP boundary of the Redmine connector: status codes -> typed errors, retries, in one place.

python-redmine's own engine turns 401/403/404/422 into its exceptions and loses the response (no
``Retry-After``, no request path). ``CasebridgeEngine`` replaces that mapping so every python-redmine call
raises the errors of ``casebridge.errors`` with a one-line message, and retries what is safe to retry:

* reads (GET) on 429, 5xx, timeouts and dropped connections;
* writes only when the request certainly did not take effect (``connectors.http_outcome``: never sent,
  i.e. connection refused, DNS failure, connect timeout; or a 429). A write that may have been applied
  (read timeout, reset connection, 500/502/503/504) raises ``OutcomeUnknown``; the connector then checks
  whether it took effect before trying again.

Backoff is exponential with full jitter and a ceiling; ``Retry-After`` is honoured between a floor and
that ceiling. ``sleep`` is injectable so tests never wait.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from redminelib.engines.sync import SyncEngine

from casebridge.connectors.http_outcome import Outcome, answer_outcome, failure_outcome
from casebridge.connectors.retry import RetryPolicy
from casebridge.errors import (
    AuthenticationFailed,
    NotFoundError,
    PermissionDenied,
    RejectedError,
    TrackerError,
    TrackerUnreachable,
    TransientError,
    redact,
)

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD"})
RETRY_AFTER_FLOOR = 1.0


class OutcomeUnknown(TransientError):
    """A write reached (or may have reached) Redmine but no usable answer came back: it may have been
    applied. Callers check the tracker before writing again."""


def default_policy(*, attempts: int = 5, ceiling: float = 30.0, sleep: Any = None) -> RetryPolicy:
    """Redmine's defaults: 5 attempts, backoff from 0.5 s, at most 30 s between attempts."""
    return RetryPolicy(
        attempts=attempts, floor=RETRY_AFTER_FLOOR, ceiling=ceiling, base=0.5, sleep=sleep, label="redmine"
    )


def _path(url: str) -> str:
    return urlsplit(url).path or "/"


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _redmine_messages(response: requests.Response) -> str:
    try:
        errors = response.json().get("errors", [])
    except ValueError:
        return ""
    flat = [": ".join(e) if isinstance(e, list) else str(e) for e in errors]
    return "; ".join(flat)


class CasebridgeEngine(SyncEngine):  # type: ignore[misc]  # python-redmine ships no type hints
    """python-redmine engine with our error mapping, timeouts and retries.

    Extra options (popped before python-redmine sees them): ``timeout`` (seconds), ``retry``
    (a RetryPolicy), ``key_hint`` (where the key came from, for messages; never the key).
    """

    def __init__(self, **options: Any) -> None:
        self.timeout: float = options.pop("timeout", 30.0)
        self.retry: RetryPolicy = options.pop("retry", None) or default_policy()
        self.key_hint: str = options.pop("key_hint", "the configured API key")
        super().__init__(**options)

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        params: Any = None,
        data: Any = None,
    ) -> Any:
        verb = method.upper()

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, OutcomeUnknown):
                return verb in SAFE_METHODS
            return isinstance(exc, TransientError | TrackerUnreachable)

        return self.retry.run(lambda: self._once(method, url, headers, params, data), retryable=retryable)

    def _once(self, method: str, url: str, headers: Mapping[str, str] | None, params: Any, data: Any) -> Any:
        kwargs = self.construct_request_kwargs(method, dict(headers or {}), params, data)
        verb, path = method.upper(), _path(url)
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise self.transport_error(exc, verb, path, url) from None
        return self.process_response(response)

    def transport_error(self, exc: requests.RequestException, verb: str, path: str, url: str) -> TrackerError:
        """Never sent -> TrackerUnreachable (any request may be retried); maybe applied -> OutcomeUnknown."""
        if failure_outcome(exc) is Outcome.NEVER_SENT:
            if isinstance(exc, requests.exceptions.ConnectTimeout):
                return TrackerUnreachable(
                    f"Redmine at {self._base(url)} did not accept a connection within "
                    f"{self.timeout:g} s; check url and that the server is up"
                )
            return TrackerUnreachable(
                f"cannot connect to Redmine at {self._base(url)} (connection refused or DNS); "
                "check url and that the server is up"
            )
        if isinstance(exc, requests.exceptions.ReadTimeout):
            return OutcomeUnknown(f"Redmine did not answer {verb} {path} within {self.timeout:g} s")
        return OutcomeUnknown(f"connection to Redmine dropped during {verb} {path}")

    @staticmethod
    def _base(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"

    def process_response(self, response: requests.Response) -> Any:
        status = response.status_code
        if status in (200, 201, 204):
            return super().process_response(response)
        verb, path = response.request.method or "?", _path(response.request.url or "")
        raise self.error_for(status, verb, path, response)

    def error_for(self, status: int, verb: str, path: str, response: requests.Response) -> TrackerError:
        where = f"{verb} {path}"
        if status == 401:
            return AuthenticationFailed(
                f"Redmine refused {self.key_hint} (401 on {where}); check the key and that the REST API is enabled"
            )
        if status == 403:
            return PermissionDenied(f"Redmine: the account lacks the permission for {where} (403)")
        if status == 404:
            return NotFoundError(f"Redmine: {where} not found (404); check the project identifier / issue id")
        if status in (400, 409, 412, 413, 422):
            messages = redact(_redmine_messages(response)) or response.reason or "no message"
            return RejectedError(f"Redmine rejected {where} ({status}): {messages}")
        if status == 429:
            return TransientError(f"Redmine throttled {where} (429)", retry_after=_retry_after(response))
        if answer_outcome(status) is Outcome.MAYBE_APPLIED:
            # the server may have committed before failing: a write must be checked before a retry
            return OutcomeUnknown(f"Redmine failed on {where} ({status})", retry_after=_retry_after(response))
        if status >= 500:
            return TransientError(f"Redmine failed on {where} ({status})", retry_after=_retry_after(response))
        return TrackerError(f"Redmine answered {where} with unexpected HTTP {status}")
