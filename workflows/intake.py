"""Intake, the domain half: CSV or JSON rows -> validated cases, and the SLA fields a new case is created with.

Applying an intake to a tracker is the application's (``casebridge.app.intake``).

The whole file is validated before anything is written (``read_intake_file``; ``iter_intake_file``
yields the rows as a CSV file is read, for an intake that writes inside one transaction and rolls
back on the first bad row): one bad row rejects the file with ``FILE:LINE: field: problem`` (JSON:
``FILE:item N: field: problem``). The reference is the
idempotency key, so re-importing a file changes nothing and a changed row updates its case.

Besides the case fields, a row may carry ``state`` (the workflow state to create the case in) and
``state_since`` (when it entered that state): both are used only when the case is created; later moves
happen in the tracker. A row with ``submitted_at`` and no ``state`` is created in the workflow's
submission state (the first state of the clock that starts at ``submitted_at``: ``submitted``), so its
legal clock runs; ``submitted_at`` on a row in a pre-submission state (``draft``, ``legal_review``,
``approved``) is an error.

Timestamps are strict: ISO 8601 strings with an
offset only, never numbers or booleans (the model refuses them), years 1990..2100, and moments that
have happened (``submitted_at``, ``acknowledged_at``, ``responded_at``, ``article3_checked_at``,
``state_since``) no more than a few minutes after ``now``. A JSON object with a key twice is refused.

Writing is cheap on purpose (issue 3: the first sync of 1,000 cases within 15% of a bare loop creating
them): the plan uses the connector's bulk lookup when it has one (``find_cases``), creation its bulk
create (``create_cases``), each new case is created with its SLA fields already evaluated, and the sync
job's state store is seeded with each created case's history, so the first sync reads no history and,
when time has not moved a clock across a threshold, writes nothing. Connectors without these
extensions get the contract's per-case calls, one SLA write and one history read per new case.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

from pydantic import AwareDatetime, ValidationError

from casebridge.errors import IntakeError
from casebridge.workflows.cases import Case, SlaFields, StatusChange, TrackedCase, strict_moment
from casebridge.workflows.clocks import evaluate_case
from casebridge.workflows.model import WILDCARD, Workflow
from casebridge.workflows.sla import computed_sla

log = logging.getLogger(__name__)

BATCH_MIN = 32  # rows whose SLA fields are predicted at once (numpy's set-up would not pay for fewer)

INTAKE_ONLY_FIELDS = ("state", "state_since")
YEARS = (1990, 2100)  # a moment outside is a typo (or a spreadsheet's serial number), never a real case
FUTURE_SLACK = timedelta(minutes=5)  # clocks of the sender's machine may be a little ahead
PAST_FIELDS = ("submitted_at", "acknowledged_at", "responded_at", "article3_checked_at", "mla_received_at")
LIST_SEPARATOR = ";"

# Audit kinds of intake's per-case path (Jira, Redmine): appended after the tracker confirmed the write;
# intake.create is announced first as an intent of its own kind (app/intake_intents.py: a killed
# intake's creations get their records on the next run); the sync job resolves only its own kind of
# intent. The embedded tracker's streamed intake records one ``intake.batch`` per batch through intents
# instead (app.intake_stream): intake holds the run lock sync and escalate take, so no sync resolves an
# intent whose write is still in flight.
CREATE, UPDATE, SET_FIELDS = "intake.create", "intake.update", "intake.set_fields"


def _holds_date(annotation: Any) -> bool:
    """Whether a field of this annotation can hold a date or datetime (``Moment``, ``Day``, optional)."""
    if isinstance(annotation, type) and (issubclass(annotation, date) or annotation is AwareDatetime):
        return True
    return any(_holds_date(arg) for arg in get_args(annotation))


# the Case fields that can hold a date, in field order: looked up once, not per row
_MOMENT_FIELDS = tuple(name for name, info in Case.model_fields.items() if _holds_date(info.annotation))


@dataclass(frozen=True)
class IntakeRow:
    where: str  # "FILE:LINE" or "FILE:item N", for messages
    case: Case
    state: str | None
    state_since: datetime | None


@dataclass(frozen=True)
class IntakeAction:
    kind: str  # "create" | "update" | "unchanged"
    row: IntakeRow
    existing: TrackedCase | None = None

    def describe(self) -> str:
        ref = self.row.case.reference
        if self.kind == "create":
            return f"create {ref} in state {self.row.state or 'initial'} ({self.row.where})"
        if self.kind == "update":
            return f"update {ref} (tracker key {self.existing.key if self.existing else '?'}; {self.row.where})"
        return f"unchanged {ref}"


def read_intake_file(path: Path, workflow: Workflow, now: datetime | None = None) -> list[IntakeRow]:
    """Parse and validate every row. Raises IntakeError at the first bad row, naming file, line, field.
    With ``now``, moments that have happened (``submitted_at``, ...) may not lie in the future."""
    rows = list(iter_intake_file(path, workflow, now))
    _reject_duplicate_references(rows)
    return rows


def iter_intake_file(path: Path, workflow: Workflow, now: datetime | None = None) -> Iterator[IntakeRow]:
    """The validated rows of one file, one at a time (a CSV file is read as it is parsed, so memory
    stays flat at any size). Raises IntakeError at the first bad row, as ``read_intake_file``; the
    caller rejects duplicate references (``DuplicateReferences``)."""
    suffix = path.suffix.lower()
    if suffix not in (".json", ".csv"):
        if not path.exists():
            raise IntakeError(f"{path}: no such file")
        raise IntakeError(f"{path}: unknown file type {suffix or '(none)'}; use .csv or .json")
    submission = submission_states(workflow)  # once per file, not per row
    count = 0
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            raw_rows = _json_rows(path, handle.read()) if suffix == ".json" else _csv_rows(path, handle)
            for where, raw in raw_rows:
                count += 1
                yield _validate_row(where, raw, workflow, now, submission)
    except FileNotFoundError:
        raise IntakeError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise IntakeError(f"{path}: cannot read ({exc}); intake files are UTF-8 CSV or JSON") from None
    if not count:
        raise IntakeError(f"{path}: no rows; nothing to import")


class DuplicateReferences:
    """Remembers where each reference was seen; a second sighting is an IntakeError naming both places."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}

    def check(self, row: IntakeRow) -> IntakeRow:
        ref = row.case.reference
        if ref in self._seen:
            raise IntakeError(f"{row.where}: reference: {ref} already appears at {self._seen[ref]}")
        self._seen[ref] = row.where
        return row


class _Object(dict[str, Any]):
    """A JSON object that remembers a key it was given twice (the last would silently win)."""

    duplicate: str | None = None


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object()
    for key, value in pairs:
        if key in obj and obj.duplicate is None:
            obj.duplicate = key
        obj[key] = value
    return obj


def _duplicate_key(value: Any) -> str | None:
    if isinstance(value, _Object) and value.duplicate is not None:
        return value.duplicate
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return next((found for child in children if (found := _duplicate_key(child)) is not None), None)


def _json_rows(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    try:
        data = json.loads(text, object_pairs_hook=_object)
    except json.JSONDecodeError as exc:
        raise IntakeError(f"{path}:{exc.lineno}: JSON syntax: {exc.msg}") from None
    except RecursionError:
        raise IntakeError(f"{path}: JSON nested too deep; a case is a flat object") from None
    if not isinstance(data, list):
        raise IntakeError(f"{path}: the top level must be a list of case objects")
    rows = []
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise IntakeError(f"{path}:item {index}: must be an object with case fields")
        duplicate = _duplicate_key(item)
        if duplicate is not None:
            raise IntakeError(f"{path}:item {index}: {duplicate}: given twice in one object; keep one")
        rows.append((f"{path}:item {index}", dict(item)))
    return rows


def _csv_rows(path: Path, lines: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise IntakeError(f"{path}:1: CSV syntax: {exc}") from None
    header = [h.strip() for h in header]
    _check_header(path, header)
    try:
        width = len(header)
        for values in reader:
            line = reader.line_num
            if len(values) != width:
                if not any(v.strip() for v in values):
                    continue  # a blank line, whatever its commas
                raise IntakeError(f"{path}:{line}: row has {len(values)} cells, the header has {width}")
            record: dict[str, Any] = {k: v for k, v in zip(header, values, strict=True) if v.strip()}
            if not record:
                continue  # every cell blank
            if "identifiers" in record:
                record["identifiers"] = _split_identifiers(f"{path}:{line}", record["identifiers"])
            yield (f"{path}:{line}", record)
    except csv.Error as exc:
        raise IntakeError(f"{path}:{reader.line_num}: CSV syntax: {exc}") from None


def _check_header(path: Path, header: list[str]) -> None:
    known = set(Case.model_fields) | set(INTAKE_ONLY_FIELDS)
    seen: set[str] = set()
    for name in header:
        if name not in known:
            raise IntakeError(f"{path}:1: {name or '(empty)'}: unknown column; see examples/cases.csv for the columns")
        if name in seen:
            raise IntakeError(f"{path}:1: {name}: column appears twice")
        seen.add(name)


def _split_identifiers(where: str, text: str) -> list[dict[str, str]]:
    items = []
    for part in text.split(LIST_SEPARATOR):
        if not part.strip():
            continue
        kind, sep, value = part.partition(":")
        if not sep or not value.strip():
            raise IntakeError(f"{where}: identifiers: {part.strip()!r} is not type:value (e.g. email:a@b.example)")
        items.append({"type": kind.strip(), "value": value.strip()})
    return items


def _validate_row(
    where: str,
    raw: dict[str, Any],
    workflow: Workflow,
    now: datetime | None,
    submission_of: tuple[str | None, set[str]] | None = None,
) -> IntakeRow:
    fields = dict(raw)  # the case's fields: the row without the intake-only ones (same order)
    for name in INTAKE_ONLY_FIELDS:
        fields.pop(name, None)
    try:
        case = Case.model_validate(fields)
    except ValidationError as exc:
        raise IntakeError(f"{where}: {_describe(exc)}") from None
    if case.refusal_reason is not None and case.refusal_reason not in workflow.refusal_reasons:
        known = ", ".join(workflow.refusal_reasons)
        raise IntakeError(
            f"{where}: refusal_reason: {case.refusal_reason!r} is not a reason of workflow {workflow.name} "
            f"(known: {known}; an agency adds its own under [workflow] refusal_reasons)"
        )
    state = raw.get("state")
    if state is not None and (not isinstance(state, str) or state not in workflow.states):
        known = ", ".join(workflow.states)
        raise IntakeError(f"{where}: state: unknown workflow state {state!r} (known: {known})")
    since = _parse_since(where, raw.get("state_since"))
    _check_moments(where, case, since, now)
    submission, before = submission_of or submission_states(workflow)
    if case.submitted_at is not None and submission is not None:
        if state is None:
            state = submission  # a submitted request: its legal clock must run
        elif state in before:
            raise IntakeError(
                f"{where}: submitted_at: the case is in {state!r}, before submission; "
                f"drop submitted_at or set state to {submission!r} (or later)"
            )
    return IntakeRow(where=where, case=case, state=state, state_since=since)


def submission_states(workflow: Workflow) -> tuple[str | None, set[str]]:
    """The state a submitted request is in (of the states that start the clock running from
    ``submitted_at``, the one nearest the initial state) and the states before it: those that lead
    there and cannot be reached from it. Linear in states + transitions."""
    starts = {s for c in workflow.clocks.values() if c.start_field == "submitted_at" for s in c.start_on}
    forward: dict[str, list[str]] = {name: [] for name in workflow.states}
    backward: dict[str, list[str]] = {name: [] for name in workflow.states}
    for t in workflow.transitions:
        for source in workflow.states if WILDCARD in t.sources else sorted(t.sources):
            forward.setdefault(source, []).append(t.target)
            backward.setdefault(t.target, []).append(source)
    start = next((s for s in _reach(forward, workflow.initial) if s in starts), None)
    if start is None:
        return None, set()
    return start, set(_reach(backward, start)) - set(_reach(forward, start))


def _reach(edges: dict[str, list[str]], start: str) -> list[str]:
    """Breadth-first from ``start``: the states reached, nearest first."""
    seen, order, i = {start}, [start], 0
    while i < len(order):
        for nxt in edges.get(order[i], ()):
            if nxt not in seen:
                seen.add(nxt)
                order.append(nxt)
        i += 1
    return order


def _check_moments(where: str, case: Case, since: datetime | None, now: datetime | None) -> None:
    fields = case.__dict__  # the validated values, read once (getattr per field costs 1 µs a row each)
    low, high = YEARS
    for name in _MOMENT_FIELDS:  # only fields that can hold a date: no other value ever fails the check
        value = fields[name]
        if value is not None and not low <= value.year <= high:
            _out_of_years(where, name, value)
    for i, x in enumerate(case.identifiers):  # the field names are built only for a range that fails
        if x.range_from is not None and not low <= x.range_from.year <= high:
            _out_of_years(where, f"identifiers.{i}.from", x.range_from)
        if x.range_to is not None and not low <= x.range_to.year <= high:
            _out_of_years(where, f"identifiers.{i}.to", x.range_to)
    if since is not None and not low <= since.year <= high:
        _out_of_years(where, "state_since", since)
    if now is None:
        return
    latest = now + FUTURE_SLACK
    for name in PAST_FIELDS:
        value = fields[name]
        if value is not None and value > latest:
            _in_future(where, name, value, now)
    if since is not None and since > latest:
        _in_future(where, "state_since", since, now)


def _in_future(where: str, name: str, value: datetime, now: datetime) -> None:
    raise IntakeError(
        f"{where}: {name}: {value.isoformat()} is in the future (now is {now.isoformat()}); "
        "record it once it has happened"
    )


def _out_of_years(where: str, name: str, value: date) -> None:
    low, high = YEARS
    raise IntakeError(f"{where}: {name}: year {value.year} is outside {low}..{high}; check the date")


def _parse_since(where: str, value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        strict_moment(value)
        moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise IntakeError(
            f"{where}: state_since: {value!r} is not an ISO 8601 timestamp with an offset (e.g. 2026-11-02T09:00:00Z)"
        ) from None
    return moment


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "(row)"
    message = first["msg"].removeprefix("Value error, ")
    # a naive timestamp never reaches pydantic's own check: strict_moment refuses it first, in these words
    if first["type"] == "extra_forbidden":
        message = "unknown field; see examples/cases.json for the fields"
    elif first["type"] == "missing":
        message = "required field is missing"
    elif first["type"] == "enum":
        message = f"{first.get('input')!r} is not one of {first['ctx']['expected']}"
    return f"{field}: {message}"


def _reject_duplicate_references(rows: list[IntakeRow]) -> None:
    seen = DuplicateReferences()
    for row in rows:
        seen.check(row)


def predicted_sla(
    row: IntakeRow, workflow: Workflow, now: datetime, *, created_at: datetime | None = None
) -> SlaFields:
    """The SLA fields of a case created in the row's state: history ``[(state_since or now, state)]``
    evaluated at ``now``. ``created_at``: the creation time a tracker that cannot back-date will stamp
    (it then also ignores state_since); the history starts there, to the second as trackers keep it,
    and is evaluated no earlier, so the fields agree with what the next sync computes."""
    if created_at is None:
        start, at = row.state_since or now, now
    else:
        start = created_at.replace(microsecond=0)
        at = max(now, start)
    return computed_sla(evaluate_case(row.case, created_history(row, workflow, start), workflow, at))


def created_history(row: IntakeRow, workflow: Workflow, start: datetime) -> list[StatusChange]:
    """The history of a case created from ``row`` at ``start``: one entry, the row's state (else the
    workflow's initial one)."""
    return [StatusChange(at=start, state=row.state or workflow.initial)]


class FieldsAtCreation(Mapping[str, SlaFields]):
    """SLA fields by reference for a bulk create, each evaluated when the connector asks for it, i.e.
    just before that case's create request: with a thousand cases created over a minute, a clock that
    starts at creation (no start_field) must start at each case's own creation stamp, not at intake's."""

    def __init__(
        self,
        rows: dict[str, IntakeRow],
        workflow: Workflow,
        now: datetime,
        clock: Callable[[], datetime] | None,
    ) -> None:
        self._rows, self._workflow, self._now, self._clock = rows, workflow, now, clock
        self._done: dict[str, SlaFields] = {}

    def __getitem__(self, reference: str) -> SlaFields:
        if not self._done and self._clock is None and len(self._rows) >= BATCH_MIN:
            self._done = self._all_at_once()
        if reference not in self._done:
            row = self._rows[reference]
            created_at = None if self._clock is None else self._clock()  # None: the tracker back-dates
            self._done[reference] = predicted_sla(row, self._workflow, self._now, created_at=created_at)
        return self._done[reference]

    def _all_at_once(self) -> dict[str, SlaFields]:
        """A tracker that back-dates: every row is evaluated at intake's ``now``, so all at once through
        the batch clock path (equal to ``predicted_sla`` row by row). If the batch fails, nothing is kept:
        each row is then evaluated alone and the failing one raises as before."""
        from casebridge.workflows.clock_compare import computed_at  # numpy: only for a large intake

        refs = list(self._rows)
        rows = [self._rows[r] for r in refs]
        now, workflow = self._now, self._workflow
        histories = [created_history(r, workflow, r.state_since or now) for r in rows]
        try:
            fields = computed_at([r.case for r in rows], histories, self._workflow, now)
        except Exception:  # the row-by-row path reports the case alone
            log.debug("batch SLA prediction failed; row by row", exc_info=True)
            return {}
        return dict(zip(refs, fields, strict=True))

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)
