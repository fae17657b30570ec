"""Shared helpers of the end-to-end escalation tests (tests/test_escalate_targets*.py).

Every test drives the real ``casebridge`` command with a real casebridge.toml written into tmp_path:
in-process through ``casebridge.cli.main`` (SystemExit caught) or, where the process must be killed, as
a real subprocess (``python -m casebridge.cli``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from casebridge.workflows.render import _TreeBuilder
from tests.hostile_cases import FIELD_LIMITS, HOSTILE

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "cases.json"
NOW = "2026-12-01T09:00:00Z"
NOW_AT = datetime.fromisoformat(NOW.replace("Z", "+00:00"))
# when the embedded tracker imports the samples (it stamps the creation with --now, not the real clock):
# the samples' latest moment, since intake refuses moments after --now
INTAKE_NOW = "2026-12-01T02:00:00Z"
# the breached, escalating clocks of examples/cases.json at NOW (see tests/test_cli_escalate.py)
EXPECTED_KEYS = {
    "FIA-CCW-2026-0151/legal_deadline/L2",
    "FIA-CCW-2026-0142/followup/L1",
    "FIA-CCW-2026-0154/preservation/L1",
}
ESCALATED_REFS = {key.split("/")[0] for key in EXPECTED_KEYS}
# the state each escalated case ends in: 0154 is fulfilled (its preservation clock runs on) and the
# workflow has no transition fulfilled -> escalated, so it is only linked and commented
STATE_AFTER = {
    "FIA-CCW-2026-0151": "escalated",
    "FIA-CCW-2026-0142": "escalated",
    "FIA-CCW-2026-0154": "fulfilled",
}
BLOCKED = [{"reference": "FIA-CCW-2026-0159", "field": "article3_checked_by"}]
# the hostile strings that go into every free-text field of the escalated cases
HOSTILE_TEXT = " ".join(text for name, text in HOSTILE if name in ("html", "script", "style-iframe", "jira"))
HTML_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "ul", "li", "strong"}
HTML_TAGS |= {"table", "thead", "tbody", "tr", "th", "td", "a", "em", "code", "br", "hr"}


def posted_keys(data: dict[str, Any]) -> set[str]:
    return {o["dedupe_key"] for o in data["outcomes"] if o["status"] == "posted"}


def spawn(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """``casebridge ARGS`` as a real process (so it can be killed) in ``cwd``."""
    return subprocess.Popen(
        [sys.executable, "-m", "casebridge.cli", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def write_config(folder: Path, tracker: dict[str, Any], liaison: dict[str, Any] | None = None) -> Path:
    """casebridge.toml with ``[tracker]`` and (optionally) ``[liaison]``; the state store beside it."""
    lines = ['workflow = "lawful-access"', 'state = "casebridge-state.db"', "", "[tracker]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in tracker.items()]
    if liaison is not None:
        lines += ["", "[liaison]"] + [f"{k} = {toml_value(v)}" for k, v in liaison.items()]
    path = folder / "casebridge.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _shift(value: Any, delta: timedelta) -> Any:
    if isinstance(value, dict):
        return {k: _shift(v, delta) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift(v, delta) for v in value]
    if isinstance(value, str) and _INSTANT.match(value):
        moved = datetime.fromisoformat(value.replace("Z", "+00:00")) + delta  # keeps the row's own offset
        return moved.isoformat().replace("+00:00", "Z") if value.endswith("Z") else moved.isoformat()
    if isinstance(value, str) and _DAY.match(value):
        return (date.fromisoformat(value) + timedelta(days=round(delta / timedelta(days=1)))).isoformat()
    return value


def shifted_examples(folder: Path, now: datetime, source: Path = EXAMPLES) -> Path:
    """``source`` (default examples/cases.json) with every timestamp moved by ``now - NOW``, so that
    at ``now`` the cases stand where they stand at NOW: the same clocks breached, at the same levels,
    with the same dedupe keys (EXPECTED_KEYS).

    For trackers that stamp creations and status changes with their own clock (Redmine): cases
    created "today" from samples dated around NOW are created after NOW once the real date has
    passed it, and nothing is due. ``now`` is the tracker's time when the test starts; every clock of
    the samples except the business-day legal review (which starts at the tracker's creation stamp
    anyway) runs 24x7, so any shift keeps their order. The shift is whole seconds (trackers keep
    seconds); dates without a time move by the nearest whole number of days. Commands that run later
    in a test (``--now`` = the tracker's time then) evaluate a little past the shifted NOW: the next
    escalation of the samples after NOW comes an hour later (0150's follow-up, at 10:00Z)."""
    delta = timedelta(seconds=round((now - NOW_AT).total_seconds()))
    rows = json.loads(source.read_text(encoding="utf-8"))
    path = folder / f"shifted-{source.name}"
    path.write_text(json.dumps(_shift(rows, delta), ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def hostile_examples(folder: Path, text: str = HOSTILE_TEXT, source: Path = EXAMPLES) -> Path:
    """``source`` (default examples/cases.json) with ``text`` in every free-text field of the cases
    that escalate at NOW."""
    rows = json.loads(source.read_text(encoding="utf-8"))
    for row in rows:
        if row["reference"] in ESCALATED_REFS:
            row.update({name: text[:limit] for name, limit in FIELD_LIMITS.items()})
            row["identifiers"] = [{"type": "username", "value": text[:255]}]
    path = folder / "hostile-cases.json"
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def inert_html_text(html: str, allowed_hrefs: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    """The text of ``html`` after checking that every element is one the renderer itself makes
    (no script/img/iframe/svg from case data) and no attribute carries a handler or a foreign link."""
    builder = _TreeBuilder()
    builder.feed(html)
    nodes, text = [builder.root], []
    while nodes:
        node = nodes.pop()
        for child in node.children:
            if isinstance(child, str):
                text.append(child)
                continue
            assert child.tag in HTML_TAGS, f"element <{child.tag}> from case data"
            assert set(child.attrs) <= {"href", "charset", "dir", "style", "align"}, (child.tag, child.attrs)
            assert not any(a.startswith("on") for a in child.attrs)
            if child.tag == "a":
                assert child.attrs["href"] in allowed_hrefs, child.attrs["href"]
            nodes.append(child)
    return " ".join("".join(text).split())


def dry_run_dossiers(text: str) -> dict[str, str]:
    """From ``escalate --dry-run`` text output: dedupe key -> the dossier printed under it (plain text)."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("would post: "):
            current = found.setdefault(line.removeprefix("would post: ").split()[0], [])
        elif current is not None and (line.startswith("    ") or line == ""):
            current.append(line.removeprefix("    "))
        else:
            current = None
    return {key: "\n".join(lines).strip("\n") for key, lines in found.items()}
