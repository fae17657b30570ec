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
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import entry_points
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from casebridge.connectors.case_text import CaseTexts
from casebridge.errors import ConfigError, validation_problem
from casebridge.workflows.cases import Case, Escalation, PostedEscalation, SlaFields, StatusChange, TrackedCase
from casebridge.workflows.model import Workflow

log = logging.getLogger(__name__)

# Escalation and PostedEscalation are the domain's; connectors (third-party ones too) import them here.
__all__ = ["CASES", "LIAISON", "CaseTexts", "Connector", "ConnectorConfig", "Escalation", "Missing", "PostedEscalation"]

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


class Connector(ABC):
    """Base of every connector. Subclasses set ``name``, ``config_model`` and ``capabilities``.

    Construction must not touch the network; ``check_schema`` and the first call do. Every method
    documents what it raises; all raise subclasses of ``casebridge.errors.TrackerError`` for tracker
    failures (``TrackerUnreachable``, ``AuthenticationFailed``, ``PermissionDenied``, ``NotFoundError``,
    ``RejectedError``, ``TransitionNotAllowed``, ``TransientError``).
    """

    name: ClassVar[str]
    config_model: ClassVar[type[ConnectorConfig]] = ConnectorConfig
    capabilities: ClassVar[frozenset[str]] = frozenset({CASES})
    # True when the connector retries 429/5xx/dropped connections itself (Jira, Redmine): callers then
    # make one attempt, so retry layers never stack (6 connector attempts x 3 sync attempts = 18).
    owns_retries: ClassVar[bool] = False
    # Abilities beyond the per-case calls, each with a default below; the contract suite covers them all.
    # True when ``create_case(sla=...)`` writes the SLA fields in the creating request (Redmine); else
    # callers write them with ``set_sla_fields`` once the case exists.
    creates_with_sla: ClassVar[bool] = False
    # True when ``create_case(at=...)`` back-dates the creation (the embedded tracker); remote trackers
    # stamp their own time and ignore ``at``.
    back_dates: ClassVar[bool] = False
    # True when ``read_all_histories`` is one cheap read (the embedded tracker): the sync job then uses it
    # instead of one read per case once many cases need their history.
    bulk_history: ClassVar[bool] = False
    # True when ``transaction()`` makes every write inside commit together or not at all (the embedded
    # tracker): intake then creates a whole file in one transaction; a killed run leaves nothing.
    transactional: ClassVar[bool] = False
    _provider_names: Callable[[Case], str] | None = None  # see use_provider_names

    def __init__(self, config: ConnectorConfig, workflow: Workflow) -> None:
        self.config = config
        self.workflow = workflow

    def identity(self) -> str:
        """Which tracker this is, stable across runs (the state store remembers it, so a store is never
        used with another tracker's cases). Default: the connector's name."""
        return self.name

    def exists(self) -> bool:
        """False when the tracker has never been written (the embedded tracker before its first case):
        read-only commands then say so instead of creating it. Default: True (a remote tracker)."""
        return True

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes inside commit together when ``transactional``. Default: no grouping (each write is its
        own, as a remote tracker's requests are). Raises: TrackerError subclasses (storage errors)."""
        yield

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

    def create_case(
        self,
        case: Case,
        *,
        state: str | None = None,
        at: datetime | None = None,
        sla: SlaFields | None = None,
    ) -> TrackedCase:
        """Create the case (in ``state``, default the workflow's initial state), back-dated to ``at`` when
        ``back_dates``, with SLA fields ``sla`` in the same request when ``creates_with_sla`` (callers
        pass ``sla`` only then). Never creates a second item for a reference that exists:
        implementations check ``find_case`` first and after a lost answer; the existing item is returned.
        Raises: RejectedError, TrackerError subclasses.
        """
        raise NotImplementedError

    def create_cases(
        self,
        cases: Iterable[Case],
        *,
        states: Mapping[str, str] | None = None,
        at: Mapping[str, datetime | None] | None = None,
        sla: Mapping[str, SlaFields] | None = None,
    ) -> Iterator[TrackedCase]:
        """Create many cases (``states``/``at``/``sla`` by reference, as ``create_case``), yielding each
        case, existing or created, in order. Default: ``create_case`` per case; trackers with a bulk
        lookup override it. ``sla`` is read for a case just before that case is created (a clock that
        starts at creation starts at that case's own stamp). Raises: as ``create_case``."""
        for case in cases:
            ref = case.reference
            fields = sla[ref] if sla is not None else None
            yield self.create_case(case, state=(states or {}).get(ref), at=(at or {}).get(ref), sla=fields)

    def find_cases(self, references: Iterable[str]) -> dict[str, TrackedCase]:
        """The cases with these references, by reference (absent ones left out). Default: ``find_case``
        per reference; trackers with a filtered search override it. Raises: TrackerError subclasses."""
        return {ref: t for ref in references if (t := self.find_case(ref)) is not None}

    def get_case(self, key: str, reference: str) -> TrackedCase | None:
        """Item ``key`` (carrying ``reference``) as the tracker holds it now, or None when it is gone.
        Default: ``find_case(reference)``; trackers that read by key override it (Jira: one GET instead
        of a search). Raises: TrackerError subclasses."""
        return self.find_case(reference)

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

    def read_all_histories(self) -> dict[str, list[StatusChange]]:
        """Every case's history by key. Default: ``read_history`` per listed case; worth calling only when
        ``bulk_history``. Raises: TrackerError subclasses."""
        return {t.key: self.read_history(t.key) for t in self.list_cases()}

    def list_case_texts(self) -> CaseTexts | None:
        """Every case (as ``list_cases()``, in any order) as the tracker stores it, as text columns
        (``CaseTexts``: the case's JSON, its SLA fields, its history in the state store's layout); the
        caller parses what it needs and, when a row does not read cleanly, uses ``list_cases`` and
        ``read_history``. Default: None, the tracker keeps no such text (callers use ``list_cases``). The
        embedded tracker returns its rows in one query. Raises: TrackerError subclasses."""
        return None

    def case_text_chunks(self, size: int) -> Iterator[CaseTexts] | None:
        """``list_case_texts`` read ``size`` rows at a time (the last chunk may be shorter), so a command that
        counts cases as it reads them (``report``) never holds them all. The texts carry no URL: offer
        this only when ``list_cases`` gives none (``TrackedCase.url`` None). Default: None, as
        ``list_case_texts``. Raises: TrackerError subclasses."""
        return None

    # -- the Provider field ----------------------------------------------------------------------
    def use_provider_names(self, name_of: Callable[[Case], str]) -> None:
        """How the tracker's Provider field names a case's provider: ``name_of(case)`` (the provider
        directory's canonical name). Trackers with the field (Redmine, Jira) write it on create and
        update. Default (and until called): the case's own ``provider`` text."""
        self._provider_names = name_of

    def provider_name(self, case: Case) -> str:
        """What the Provider field should hold for ``case`` (see ``use_provider_names``)."""
        return case.provider if self._provider_names is None else self._provider_names(case)

    def set_provider(self, key: str, name: str) -> None:  # noqa: B027 - optional ability
        """Write ``name`` into the Provider field of item ``key`` (the sync job, when the canonical name
        differs from what the tracker holds). Trackers with the field read it back into
        ``TrackedCase.provider``; the default (no field: ``provider`` stays None) does nothing.
        Raises: NotFoundError, RejectedError, TrackerError subclasses."""

    # -- time -----------------------------------------------------------------------------------------
    def use_clock(self, clock: Callable[[], datetime]) -> None:  # noqa: B027 - optional hook
        """Stamp writes with ``clock()`` where casebridge chooses the time (the embedded tracker, so a
        ``--now`` replay writes the same history). Default: ignored; remote trackers stamp their own."""

    def now(self) -> datetime:
        """The time this tracker stamps a write made now. Default: the real time."""
        return datetime.now(UTC)

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

    def link_cases(self, key_a: str, key_b: str, *, note: str) -> None:
        """Relate two case items that name the same identifier (Redmine relation, Jira issue link, the
        embedded tracker's link row). Idempotent where the tracker can tell (linking a linked pair does
        nothing); the sync job also remembers the pairs it linked. Default: ``note`` as a comment on
        ``key_a`` (a tracker without relations). Raises: NotFoundError, TrackerError subclasses."""
        self.comment(key_a, note)

    def comments(self, key: str) -> list[str]:
        """The comments on item ``key`` as the tracker holds them (its own markup), oldest first.
        Raises: NotFoundError, TrackerError subclasses."""
        raise NotImplementedError

    def has_comment_marker(self, key: str, marker: str) -> bool:
        """Does a comment on item ``key`` carry ``marker`` (letters and digits, e.g. a reminder's
        ``CBR...`` token)? Comments are not idempotent: callers check this before posting one that must
        be posted once. Default: scan ``comments``. Raises: as ``comments``."""
        return any(marker in text for text in self.comments(key))

    def post_reminder(self, key: str, markdown: str, *, notify: frozenset[str] = frozenset()) -> None:
        """Post a reminder on item ``key``, telling the people in ``notify`` ("assignee", "watchers")
        the tracker's own way. Default: a ``comment`` (Redmine's journal note notifies the assignee and
        watchers by itself); Jira mentions the assignee. Raises: as ``comment``."""
        self.comment(key, markdown)

    # -- liaison queue ------------------------------------------------------------------------
    def find_escalation(self, dedupe_key: str) -> PostedEscalation | None:
        """The item posted earlier with this dedupe key, or None. Raises: TrackerError subclasses."""
        raise NotImplementedError

    def find_escalations(self, dedupe_keys: Iterable[str]) -> dict[str, PostedEscalation]:
        """The items posted earlier with these dedupe keys, by key (absent ones left out). Default:
        ``find_escalation`` per key; targets with an index or a filtered search override it (the embedded
        tracker: one query per chunk; Redmine and Jira: one search per page of keys).
        Raises: TrackerError subclasses."""
        return {key: p for key in dict.fromkeys(dedupe_keys) if (p := self.find_escalation(key)) is not None}

    def post_escalation(self, escalation: Escalation) -> PostedEscalation:
        """Post ``escalation`` to the liaison queue, storing its dedupe key with the item.
        Callers check ``find_escalation`` first. Raises: TrackerError subclasses."""
        raise NotImplementedError

    def complete_escalation(self, escalation: Escalation, posted: PostedEscalation) -> None:  # noqa: B027
        """Finish a posted item after it was created, idempotently: called after every post and again
        on the run after a crash until it succeeded (Jira: attach the whole dossier when the description
        had to be cut to its text limit). Default: nothing to finish. Raises: TrackerError subclasses."""

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
    """Imports only the connector named (the embedded tracker never pays for jira, requests, smtplib).
    Raises ConfigError naming the installed connectors when ``name`` is not registered or cannot load."""
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
        try:
            cls = ep.load()
        except Exception as exc:
            raise ConfigError(f"connector {name!r} could not be loaded: {exc}; reinstall its package") from None
        if isinstance(cls, type) and issubclass(cls, Connector):
            return cls
        raise ConfigError(f"connector {name!r} is not a Connector subclass; fix or remove its package")
    listed = ", ".join(sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})) or "none"
    raise ConfigError(f"unknown connector {name!r} (installed: {listed}); install its package or fix the name")


def make_connector(name: str, raw_config: dict[str, Any], workflow: Workflow, *, section: str) -> Connector:
    """Validate ``raw_config`` against the connector's model and build it (no network).
    Raises ConfigError as ``section.key <- problem``."""
    from pydantic import ValidationError

    cls = connector_class(name)
    try:
        config = cls.config_model.model_validate(raw_config)
    except ValidationError as exc:
        raise ConfigError(validation_problem(exc, cls.config_model, section)) from None
    return cls(config, workflow)
