"""Intake: CSV or JSON rows -> validated cases -> a plan of creates/updates against a tracker.

The whole file is validated before anything is written: one bad row rejects the file with
``FILE:LINE: field: problem`` (JSON: ``FILE:item N: field: problem``). The reference is the
idempotency key, so re-importing a file changes nothing and a changed row updates its case.

Besides the case fields, a row may carry ``state`` (the workflow state to create the case in) and
``state_since`` (when it entered that state): both are used only when the case is created; later moves
happen in the tracker.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from connectors import Connector
from connectors.errors import IntakeError
from workflows.cases import Case, TrackedCase
from workflows.model import Workflow

log = logging.getLogger(__name__)

INTAKE_ONLY_FIELDS = ("state", "state_since")
LIST_SEPARATOR = ";"


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


def read_intake_file(path: Path, workflow: Workflow) -> list[IntakeRow]:
    """Parse and validate every row. Raises IntakeError at the first bad row, naming file, line, field."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise IntakeError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise IntakeError(f"{path}: cannot read ({exc}); intake files are UTF-8 CSV or JSON") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        raw_rows = _json_rows(path, text)
    elif suffix == ".csv":
        raw_rows = _csv_rows(path, text)
    else:
        raise IntakeError(f"{path}: unknown file type {suffix or '(none)'}; use .csv or .json")
    if not raw_rows:
        raise IntakeError(f"{path}: no rows; nothing to import")
    rows = [_validate_row(where, raw, workflow) for where, raw in raw_rows]
    _reject_duplicate_references(rows)
    return rows


def _json_rows(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IntakeError(f"{path}:{exc.lineno}: JSON syntax: {exc.msg}") from None
    if not isinstance(data, list):
        raise IntakeError(f"{path}: the top level must be a list of case objects")
    rows = []
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise IntakeError(f"{path}:item {index}: must be an object with case fields")
        rows.append((f"{path}:item {index}", item))
    return rows


def _csv_rows(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    reader = csv.reader(text.splitlines(keepends=True))
    try:
        header = next(reader)
    except StopIteration:
        return []
    except csv.Error as exc:
        raise IntakeError(f"{path}:1: CSV syntax: {exc}") from None
    header = [h.strip() for h in header]
    _check_header(path, header)
    rows = []
    try:
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise IntakeError(f"{path}:{line}: row has {len(values)} cells, the header has {len(header)}")
            record = {k: v for k, v in zip(header, values, strict=True) if v.strip() != ""}
            if "identifiers" in record:
                record["identifiers"] = _split_identifiers(f"{path}:{line}", record["identifiers"])
            rows.append((f"{path}:{line}", record))
    except csv.Error as exc:
        raise IntakeError(f"{path}:{reader.line_num}: CSV syntax: {exc}") from None
    return rows


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


def _validate_row(where: str, raw: dict[str, Any], workflow: Workflow) -> IntakeRow:
    fields = {k: v for k, v in raw.items() if k not in INTAKE_ONLY_FIELDS}
    try:
        case = Case.model_validate(fields)
    except ValidationError as exc:
        raise IntakeError(f"{where}: {_describe(exc)}") from None
    state = raw.get("state")
    if state is not None and state not in workflow.states:
        known = ", ".join(workflow.states)
        raise IntakeError(f"{where}: state: unknown workflow state {state!r} (known: {known})")
    since = _parse_since(where, raw.get("state_since"))
    return IntakeRow(where=where, case=case, state=state, state_since=since)


def _parse_since(where: str, value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise IntakeError(f"{where}: state_since: {value!r} is not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise IntakeError(f"{where}: state_since: {value!r} has no offset; add Z or +05:00")
    return moment


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "(row)"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "timezone_aware":
        message = f"{first.get('input')!r} has no offset; timestamps need Z or an offset like +05:00"
    elif first["type"] == "extra_forbidden":
        message = "unknown field; see examples/cases.json for the fields"
    elif first["type"] == "missing":
        message = "required field is missing"
    elif first["type"] == "enum":
        message = f"{first.get('input')!r} is not one of {first['ctx']['expected']}"
    return f"{field}: {message}"


def _reject_duplicate_references(rows: list[IntakeRow]) -> None:
    seen: dict[str, str] = {}
    for row in rows:
        ref = row.case.reference
        if ref in seen:
            raise IntakeError(f"{row.where}: reference: {ref} already appears at {seen[ref]}")
        seen[ref] = row.where


def plan_intake(rows: list[IntakeRow], tracker: Connector) -> list[IntakeAction]:
    """Compare each row with the tracker (found by reference). Reads only."""
    actions = []
    for row in rows:
        existing = tracker.find_case(row.case.reference)
        if existing is None:
            actions.append(IntakeAction("create", row))
        elif existing.case != row.case:
            actions.append(IntakeAction("update", row, existing))
        else:
            actions.append(IntakeAction("unchanged", row, existing))
    return actions


def apply_intake(actions: list[IntakeAction], tracker: Connector, audit: Any = None) -> list[TrackedCase]:
    """Execute creates and updates. ``audit`` (optional) gets ``append(kind, data)`` per write."""
    written = []
    for action in actions:
        if action.kind == "create":
            tracked = tracker.create_case(action.row.case, state=action.row.state, at=action.row.state_since)
        elif action.kind == "update" and action.existing is not None:
            tracked = tracker.update_case(action.existing.key, action.row.case)
        else:
            continue
        written.append(tracked)
        if audit is not None:
            audit.append(f"intake.{action.kind}", {"reference": action.row.case.reference, "key": tracked.key})
    return written
