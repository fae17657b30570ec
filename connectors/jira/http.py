"""The Jira HTTP boundary: one retry policy, one place mapping failures to casebridge errors.

The ``jira`` package builds the authenticated session (Basic email:token for Cloud, Bearer personal
access token for Data Center). Its own retry loop is switched off (``max_retries=0``: its
``ResilientSession.request`` then makes exactly one attempt and never sleeps) so that retries are never
stacked; this module owns the policy with tenacity:

- 429/5xx/connection failures are retried up to ``max_attempts``;
- ``Retry-After`` is honoured, clamped to [retry_floor, retry_ceiling]; otherwise exponential backoff with
  full jitter, capped at the ceiling;
- ``X-RateLimit-*`` headers slow us down *before* the limit (a pause when fewer than ``near_limit`` of
  the budget remains or Jira says ``X-RateLimit-NearLimit: true``);
- a non-idempotent write whose answer was lost (``connectors.http_outcome``: maybe applied) is first
  checked for with the caller's ``landed`` probe; only if it did not land is it sent again. A POST that
  never left the machine (refused, DNS, connect timeout) is sent again without a probe.

Messages never carry ``JIRAError`` text (it includes headers) nor the secret (everything passes
``redact``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests
from jira.exceptions import JIRAError

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
T = TypeVar("T")


class _LostAnswer(TransientError):
    """A write may or may not have been applied (connection dropped after sending, or 5xx)."""


def pause_for_rate_limit(headers: Any, now: datetime, policy: RetryPolicy, near_limit: float) -> float:
    """Seconds to pause before the next call, from the X-RateLimit-* headers of the last answer: when
    fewer than ``near_limit`` of the budget remains, spread what is left until the reset (within the
    policy's floor and ceiling)."""
    remaining = _number(headers.get("X-RateLimit-Remaining"))
    limit = _number(headers.get("X-RateLimit-Limit"))
    near = str(headers.get("X-RateLimit-NearLimit", "")).lower() == "true"
    if not near and (remaining is None or not limit or remaining / limit > near_limit):
        return 0.0
    reset = _parse_reset(headers.get("X-RateLimit-Reset"))
    if reset is not None:
        spread = (reset - now).total_seconds() / max(remaining or 0, 1)
        return min(policy.ceiling, max(policy.floor, spread))
    return policy.floor


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _parse_reset(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class JiraHttp:
    """JSON calls to ``{base}/rest/api/{api}/{path}`` through the ``jira`` package's session."""

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        api: str,
        *,
        policy: RetryPolicy,
        sleep: Callable[[float], None],
        timeout: float = 30.0,
        near_limit: float = 0.1,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.session = session
        self.base = base_url.rstrip("/")
        self.api = api
        self.policy = policy
        self.sleep = sleep
        self.timeout = timeout
        self.near_limit = near_limit
        self.now = now
        self.requests_sent = 0

    def url(self, path: str) -> str:
        return f"{self.base}/rest/api/{self.api}/{path}"

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        landed: Callable[[], T | None] | None = None,
        case: str | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
    ) -> Any:
        """The decoded JSON answer (None for an empty one). ``landed``: for non-idempotent writes, a probe
        returning the result if a lost write did apply (then it is not sent again). ``files``: a
        multipart upload (attachments: Jira's XSRF header is added, the session's JSON type dropped).
        Raises the casebridge.errors types (TransientError only once the retries are used up)."""
        retrying = self.policy.with_sleep(self.sleep).retrying(label=f"jira {method} {path}")
        lost_once = False
        try:
            for attempt in retrying:
                with attempt:
                    if lost_once and landed is not None:
                        found = landed()
                        if found is not None:
                            log.info("jira %s %s: the lost write had been applied; not sent again", method, path)
                            return found
                    try:
                        return self._once(method, path, params, json, case, files)
                    except _LostAnswer:
                        lost_once = True
                        raise
        except TransientError as exc:
            if exc.connection:
                raise TrackerUnreachable(f"{exc} (gave up after {self.policy.attempts} attempts)", case=case) from None
            raise TransientError(str(exc), case=case, retry_after=exc.retry_after) from None
        raise AssertionError("unreachable")  # pragma: no cover - tenacity reraises

    def _once(self, method: str, path: str, params: Any, body: Any, case: str | None, files: Any = None) -> Any:
        url = self.url(path)
        self.requests_sent += 1
        writes = method.upper() in ("POST", "PUT", "DELETE")
        response: requests.Response | None
        try:
            # the session carries the timeout (ResilientSession passes its own)
            if files is None:
                response = self.session.request(method, url, params=params, json=body)
            else:  # as the jira client's add_attachment: no JSON content type, the XSRF opt-out header
                upload = {"content-type": None, "X-Atlassian-Token": "no-check"}
                response = self.session.request(method, url, params=params, files=files, headers=upload)  # type: ignore[arg-type]  # requests drops a header set to None; its stubs do not say so
        except JIRAError as exc:
            response = exc.response
            if response is None:
                raise TrackerError(f"jira {method} {path}: no answer", case=case) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            maybe_applied = failure_outcome(exc) is Outcome.MAYBE_APPLIED
            kind = _LostAnswer if (writes and maybe_applied) else TransientError
            # the URL (never with credentials: config refuses user-info) says which Jira could not be reached
            message = f"jira {method} {url}: connection failed ({type(exc).__name__})"
            raise kind(message, case=case, connection=True) from None
        if response.ok:
            pause = pause_for_rate_limit(response.headers, self.now(), self.policy, self.near_limit)
            if pause > 0:
                log.info("jira: near the rate limit; pausing %.1fs", pause)
                self.sleep(pause)
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                raise TrackerError(f"jira {method} {path}: answer is not JSON", case=case) from None
        raise map_failure(method, path, response, case=case, ambiguous=writes and method.upper() == "POST")


def map_failure(
    method: str, path: str, response: requests.Response, *, case: str | None = None, ambiguous: bool = False
) -> TrackerError:
    """The casebridge error for a non-2xx Jira answer. The one place status codes are interpreted."""
    status = response.status_code
    where = f"jira {method} {path}"
    detail = _envelope(response)
    if status == 401:
        return AuthenticationFailed(f"{where}: Jira refused the credentials (401); check the token pointer in config")
    if status == 403:
        return PermissionDenied(f"{where}: permission denied (403){detail}", case=case)
    if status == 404:
        return NotFoundError(f"{where}: not found (404){detail}", case=case)
    if status == 429 or status >= 500:
        retry_after = _number(response.headers.get("Retry-After"))
        cls = _LostAnswer if ambiguous and answer_outcome(status) is Outcome.MAYBE_APPLIED else TransientError
        return cls(f"{where}: Jira answered {status}{detail}", case=case, retry_after=retry_after)
    return RejectedError(f"{where}: Jira rejected the request ({status}){detail}", case=case)


def _envelope(response: requests.Response) -> str:
    """Jira's own error messages (``errorMessages`` and per-field ``errors``), one line, redacted."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts = [str(m) for m in body.get("errorMessages") or []]
    errors = body.get("errors") or {}
    if isinstance(errors, list):  # a bulk create's answer: one entry per rejected element
        elements = [e.get("elementErrors") or {} for e in errors if isinstance(e, dict)]
        parts += [str(m) for e in elements for m in e.get("errorMessages") or []]
        errors = {k: v for e in elements for k, v in (e.get("errors") or {}).items()}
    parts += [f"{k}: {v}" for k, v in errors.items()]
    text = "; ".join(parts).replace("\n", " ")
    return f": {redact(text)[:500]}" if text else ""
