"""The connector contract and the registry.

A connector is a plugin for one tracker (or escalation target). Built-ins and third-party connectors are
both discovered through the ``casebridge.connectors`` entry-point group::

    [project.entry-points."casebridge.connectors"]
    mytracker = "mypackage.tracker:MyTrackerConnector"

A connector declares ``name``, its ``config_model`` (a pydantic model of its config section) and its
``capabilities``: ``"cases"`` (holds data-request cases) and/or ``"liaison"`` (can receive escalations).
Every case connector passes the contract suite in ``tests/contract.py``.
"""

from __future__ import annotations

import logging
from abc import ABC
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from casebridge.errors import ConfigError
from casebridge.workflows.cases import Case, SlaFields, StatusChange, TrackedCase
from casebridge.workflows.model import Workflow

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "casebridge.connectors"

CASES = "cases"
LIAISON = "liaison"


class ConnectorConfig(BaseModel):
    """Base of every connector's config model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Missing:
    """One thing the tracker lacks, and how to add it."""

    kind: str  # "custom field", "status", "transition", "project", "setting", ...
    name: str
    how: str

    def __str__(self) -> str:
        return f"missing {self.kind} {self.name!r}: {self.how}"


@dataclass(frozen=True)
class Escalation:
    """One item to post to the liaison queue."""

    dedupe_key: str  # case x clock x level (x repeat), e.g. "FIA-CCW-2026-0142/legal_deadline/L1"
    case_reference: str
    case_key: str | None  # the case's key in the *case* tracker, for linking; may be another tracker
    case_url: str | None
    title: str
    markdown: str  # the dossier; each target renders it (Redmine, Jira wiki/ADF, HTML mail)
    level: int
    clock: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PostedEscalation:
    dedupe_key: str
    key: str  # the posted item's id in the target (issue key, Message-ID, ...)
    url: str | None
    posted_at: datetime


class Connector(ABC):
    """Base of every connector. Subclasses set ``name``, ``config_model`` and ``capabilities``.

    Construction must not touch the network; ``check_schema`` and the first call do. Every method
    documents what it raises; all raise subclasses of ``connectors.errors.TrackerError`` for tracker
    failures (``TrackerUnreachable``, ``AuthenticationFailed``, ``PermissionDenied``, ``NotFoundError``,
    ``RejectedError``, ``TransitionNotAllowed``, ``TransientError``).
    """

    name: ClassVar[str]
    config_model: ClassVar[type[ConnectorConfig]] = ConnectorConfig
    capabilities: ClassVar[frozenset[str]] = frozenset({CASES})
    # True when the connector retries 429/5xx/dropped connections itself (Jira, Redmine): callers then
    # make one attempt, so retry layers never stack (6 connector attempts x 3 sync attempts = 18).
    owns_retries: ClassVar[bool] = False

    def __init__(self, config: ConnectorConfig, workflow: Workflow) -> None:
        self.config = config
        self.workflow = workflow

    # -- schema -------------------------------------------------------------------------------
    def check_schema(self) -> list[Missing]:
        """What the tracker lacks for this workflow (fields, statuses, transitions). Empty = ready.

        Raises: TrackerUnreachable, AuthenticationFailed, PermissionDenied.
        """
        return []

    def setup(self, *, apply: bool = False) -> str:
        """Instructions (or a script) that make the tracker ready for this workflow.

        With ``apply=True`` the connector first creates over its API what the account may create
        (and says what it did); what it cannot create is returned as text for an administrator
        (Redmine: a ``rails runner`` Ruby script). Raises: TrackerError subclasses.
        """
        return f"The {self.name} connector needs no setup."

    # -- cases ------------------------------------------------------------------------------
    def find_case(self, reference: str) -> TrackedCase | None:
        """The case whose reference field equals ``reference`` exactly, or None.

        Raises: TrackerError subclasses. If two tracker items carry the reference, returns the oldest
        and logs a warning (``sync --full`` reports duplicates).
        """
        raise NotImplementedError

    def create_case(self, case: Case, *, state: str | None = None, at: datetime | None = None) -> TrackedCase:
        """Create the case (in ``state``, default the workflow's initial state). Never creates a second
        item for a reference that exists: implementations check ``find_case`` first and after a lost
        answer. Raises: RejectedError, TrackerError subclasses.
        """
        raise NotImplementedError

    def update_case(self, key: str, case: Case) -> TrackedCase:
        """Overwrite the case fields of item ``key`` (not its state nor SLA fields).
        Raises: NotFoundError, RejectedError, TrackerError subclasses."""
        raise NotImplementedError

    def list_cases(self, updated_since: datetime | None = None) -> Iterator[TrackedCase]:
        """Every case (open and closed) updated at or after ``updated_since`` (all if None), paging
        internally. ``history`` may be None. Raises: TrackerError subclasses."""
        raise NotImplementedError

    def read_history(self, key: str) -> list[StatusChange]:
        """Status changes of item ``key`` in time order; the first entry is the state at creation.
        Raises: NotFoundError, TrackerError subclasses."""
        raise NotImplementedError

    def transition(self, key: str, state: str, *, note: str | None = None, at: datetime | None = None) -> None:
        """Move item ``key`` to workflow ``state``. ``at`` is honoured only by trackers that allow
        back-dating (local). Raises: TransitionNotAllowed (also when the tracker silently ignored it),
        NotFoundError, TrackerError subclasses."""
        raise NotImplementedError

    def set_sla_fields(self, key: str, sla: SlaFields) -> None:
        """Write the SLA fields (per clock due/warn/state, escalation level) of item ``key``.
        Raises: NotFoundError, RejectedError, TrackerError subclasses."""
        raise NotImplementedError

    def comment(self, key: str, markdown: str) -> None:
        """Add a comment rendered from Markdown into the tracker's text format.
        Raises: NotFoundError, TrackerError subclasses."""
        raise NotImplementedError

    # -- liaison queue ------------------------------------------------------------------------
    def find_escalation(self, dedupe_key: str) -> PostedEscalation | None:
        """The item posted earlier with this dedupe key, or None. Raises: TrackerError subclasses."""
        raise NotImplementedError

    def post_escalation(self, escalation: Escalation) -> PostedEscalation:
        """Post ``escalation`` to the liaison queue, storing its dedupe key with the item.
        Callers check ``find_escalation`` first. Raises: TrackerError subclasses."""
        raise NotImplementedError

    def link_escalation(self, key: str, posted: PostedEscalation) -> None:
        """Relate case item ``key`` to the posted escalation (relation, issue link, or a comment).
        Raises: TrackerError subclasses."""
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def available_connectors() -> dict[str, type[Connector]]:
    """Connector classes registered under the entry-point group, by name."""
    found: dict[str, type[Connector]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as exc:  # a broken third-party plugin must not take down the others
            log.warning("connector %r could not be loaded: %s", ep.name, exc)
            continue
        if not (isinstance(cls, type) and issubclass(cls, Connector)):
            log.warning("entry point %r is not a Connector subclass; ignored", ep.name)
            continue
        found[ep.name] = cls
    return found


def connector_class(name: str) -> type[Connector]:
    """Raises ConfigError naming the known connectors when ``name`` is not registered."""
    known = available_connectors()
    if name not in known:
        listed = ", ".join(sorted(known)) or "none"
        raise ConfigError(f"unknown connector {name!r} (installed: {listed}); install its package or fix the name")
    return known[name]


def make_connector(name: str, raw_config: dict[str, Any], workflow: Workflow, *, section: str) -> Connector:
    """Validate ``raw_config`` against the connector's model and build it.
    Raises ConfigError as ``[section] key <- problem``."""
    from pydantic import ValidationError

    cls = connector_class(name)
    try:
        config = cls.config_model.model_validate(raw_config)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(section)"
        raise ConfigError(f"[{section}] {key} <- {first['msg']}") from None
    return cls(config, workflow)
