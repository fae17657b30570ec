"""The one error hierarchy of casebridge.

Library code raises these typed errors; only the CLI turns them into one-line messages and exit codes.
``UserError`` and its subclasses are things the user can fix (bad config, bad input, a tracker that lacks
a field): the CLI prints them without a traceback unless ``-v``.

Exit codes (the sync job's contract, see DESIGN.md): 0 ok, 1 some cases failed, 2 usage/config/input
error, 3 tracker unreachable or refused authentication.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

EXIT_OK = 0
EXIT_CASES_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


class CasebridgeError(Exception):
    """Base of every error casebridge raises on purpose."""

    exit_code = EXIT_CASES_FAILED


class UserError(CasebridgeError):
    """Something the user can fix; shown as one line, no traceback unless -v."""

    exit_code = EXIT_USAGE


class ConfigError(UserError):
    """The configuration file is missing, unreadable or invalid (``[section] key <- problem``)."""


class SecretError(ConfigError):
    """A secret pointer (env var or command) could not be resolved. Never carries the secret itself."""


class WorkflowError(UserError):
    """A workflow definition is invalid (``FILE: path.to.key <- problem``)."""


class DirectoryError(UserError):
    """A provider directory file is invalid (``FILE: path.to.key <- problem``)."""


class IntakeError(UserError):
    """An intake file is invalid (``FILE:LINE: field: problem``); nothing was written."""


class LockHeldError(UserError):
    """Another run holds the run lock."""


class SafetyValveError(UserError):
    """A source suddenly returned nothing while the state store knows many cases; refused without --force."""


class EscalationBlocked(UserError):
    """A case cannot be escalated (for example, no Article 3 self-check); names the case and the field."""

    def __init__(self, message: str, *, reference: str = "", field: str = "") -> None:
        super().__init__(message)
        self.reference = reference
        self.field = field


class TrackerError(CasebridgeError):
    """A tracker call failed. ``case`` names the case reference when the failure is about one case."""

    def __init__(self, message: str, *, case: str | None = None) -> None:
        super().__init__(message)
        self.case = case


class TrackerUnreachable(TrackerError):
    """Connection refused, DNS failure, timeout: the tracker could not be reached."""

    exit_code = EXIT_UNREACHABLE


class AuthenticationFailed(TrackerError):
    """The tracker refused our credentials (401), or silently treated us as anonymous."""

    exit_code = EXIT_UNREACHABLE


class PermissionDenied(TrackerError):
    """403: the account lacks a permission."""


class NotFoundError(TrackerError):
    """404: the case, project or object does not exist."""


class RejectedError(TrackerError):
    """The tracker rejected a write (422/400) with its own messages."""


class TransitionNotAllowed(TrackerError):
    """The tracker's workflow does not allow moving the case to that state (or silently ignored it)."""


class TransientError(TrackerError):
    """429, 5xx or a dropped connection: worth retrying. ``retry_after`` in seconds when the server said;
    ``connection`` when no HTTP answer came at all (the connection failed), not a 429 or 5xx."""

    def __init__(
        self, message: str, *, case: str | None = None, retry_after: float | None = None, connection: bool = False
    ) -> None:
        super().__init__(message, case=case)
        self.retry_after = retry_after
        self.connection = connection


class SchemaMissing(UserError):
    """The tracker lacks fields, statuses or transitions the workflow needs; the message says how to add them."""


# Known secrets, masked wherever text leaves casebridge (messages, logs, audit, posted text). The registry
# lives here, at the bottom of the layers, because every layer's messages must be cleaned with it.
_known: set[str] = set()
_lock = threading.Lock()
MASK = "***"


def remember(value: str) -> None:
    """Register ``value`` as a secret to mask in logs and messages (short values are ignored), with the
    forms it takes inside other text: repr-escaped (an exception quoting a header) and base64 (a Basic
    authorization header is base64 of ``user:secret``; its tail after the user part is masked too)."""
    import base64

    if len(value) < 4:
        return
    forms = {value, repr(value)[1:-1], base64.b64encode(value.encode()).decode().rstrip("=")}
    with _lock:
        _known.update(f for f in forms if len(f) >= 4)


def redact(text: str) -> str:
    """``text`` with every known secret replaced by ***."""
    mask = redactor()
    return text if mask is None else mask(text)


def redactor() -> Callable[[str], str] | None:
    """``redact`` with the secrets known now, for masking many strings at once (an audit record's);
    None when no secret is known (nothing to mask)."""
    with _lock:
        secrets = sorted(_known, key=len, reverse=True)
    if not secrets:
        return None

    def masked(text: str) -> str:
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    return masked


def validation_problem(exc: ValidationError, model: type[BaseModel], prefix: str = "") -> str:
    """The first problem of a pydantic ValidationError as ``dotted.key <- problem``; a misspelt key
    comes first (it usually explains a "field required" too) and gets a "did you mean"."""
    import difflib

    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc = [str(p) for p in first["loc"]]
    where = ".".join([prefix, *loc] if prefix else loc) or "(top level)"
    if first["type"] != "extra_forbidden":
        return f"{where} <- {first['msg'].removeprefix('Value error, ')}"
    known = _keys_at(model, loc[:-1])
    near = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6) if loc else []
    hint = f"; did you mean {near[0]!r}?" if near else f" (known: {', '.join(sorted(known))})" if known else ""
    return f"{where} <- unknown key{hint}"


def _keys_at(model: type[BaseModel], path: list[str]) -> list[str]:
    """The keys (aliases where set) a model accepts at ``path``, following nested models by name."""
    from pydantic import BaseModel

    current: Any = model
    for part in path:
        info = current.model_fields.get(part)
        annotation = info.annotation if info is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        current = annotation
    return [info.alias or name for name, info in current.model_fields.items()]
