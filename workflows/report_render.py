"""`casebridge report` as JSON, text and CSV (the HTML page is ``workflows.report_html``).

Every format is built from one dict (``report_dict``), so they always agree. In an aggregate report
(``--aggregate``) no case data appears at all (no reference, title, officer, identifier, facts), groups
of fewer than ``min_count`` requests are pooled into "(other)" and any count from 1 to ``min_count - 1``
is suppressed (``null`` in JSON, ``<N`` in text and CSV), as are times computed from fewer values.
CSV cells are neutralised against spreadsheet formulas (a leading ``= + - @``, tab or CR gets a ``'``).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from casebridge.workflows.report import COUNTS, FORMULAS, Group, Report

__all__ = ["report_csv", "report_dict", "report_json", "report_text", "safe_cell"]

TIMES = ("first_response", "fulfilment")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _count(report: Report, value: int) -> int | None:
    if report.aggregate and 0 < value < report.min_count:
        return None
    return value


def group_dict(report: Report, group: Group) -> dict[str, Any]:
    out: dict[str, Any] = {"group": group.label}
    for name in COUNTS:
        out[name] = _count(report, group.counts[name])
    reasons = [r for r in report.refusal_reasons if r in group.refusals]
    out["refused_by_reason"] = {r: _count(report, group.refusals[r]) for r in reasons}
    out["compliance_pct"] = _round(group.compliance)
    if report.aggregate and (group.counts["legal_met"] + group.counts["legal_breached"]) < report.min_count:
        out["compliance_pct"] = None
    for which in TIMES:
        values = group.times(which)
        few = report.aggregate and len(getattr(group, which)) < report.min_count
        out[which] = {k: None if few else _round(v) for k, v in values.items()}
    if group.members:
        out["groups_pooled"] = group.members
    return out


def report_dict(report: Report) -> dict[str, Any]:
    cal = report.calendar
    out: dict[str, Any] = {
        "report": "casebridge report",
        "generated_at": report.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "workflow": report.workflow,
        "from": report.date_from.isoformat() if report.date_from else None,
        "to": report.date_to.isoformat() if report.date_to else None,
        "calendar": {
            "name": cal.name,
            "timezone": report.zone,
            "working_day_hours": round(cal.day_seconds / 3600, 2) if cal.kind == "business" else 24,
        },
        "aggregate": report.aggregate,
        "formulas": list(FORMULAS),
        "not_sent": _count(report, report.not_sent),
        "total": group_dict(report, report.total),
        "groupings": {g: [group_dict(report, x) for x in groups] for g, groups in report.groupings.items()},
    }
    if report.aggregate:
        out["min_count"] = report.min_count
        out["suppression"] = (
            f"groups of fewer than {report.min_count} requests are pooled into '(other)'; counts from 1 to "
            f"{report.min_count - 1} and figures computed from fewer than {report.min_count} values are suppressed"
        )
    else:
        out["open_breaches"] = [
            {
                "reference": f.reference,
                "title": f.title,
                "provider": f.provider,
                "state": f.state,
                "url": f.url,
                "clocks": [
                    {
                        "clock": b.clock,
                        "kind": b.kind,
                        "due_at": b.due_at.strftime("%Y-%m-%dT%H:%M:%SZ") if b.due_at else None,
                        "overdue_days": _round(b.overdue_seconds / 86400),
                    }
                    for b in f.open_breaches
                ],
            }
            for f in report.open_breaches
        ]
    return out


def report_json(report: Report) -> str:
    return json.dumps(report_dict(report), indent=2, ensure_ascii=False) + "\n"


def _cell(value: Any, report: Report) -> str:
    if value is None:
        return f"<{report.min_count}" if report.aggregate else "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


COLUMNS = (
    ("requests", "sent"),
    ("answered_full", "full"),
    ("answered_partial", "part"),
    ("refused", "refused"),
    ("redirected_mla", "to MLA"),
    ("no_reply", "no reply"),
    ("no_reply_overdue", "overdue"),
    ("legal_met", "met"),
    ("legal_breached", "breached"),
    ("legal_breached_open", "open"),
    ("compliance_pct", "compl. %"),
    ("escalations", "escal."),
)
TIME_COLUMNS = (
    ("first_response", "median_days", "1st resp med d"),
    ("first_response", "p90_days", "1st resp p90 d"),
    ("first_response", "median_working_days", "1st resp med wd"),
    ("fulfilment", "median_days", "fulfil med d"),
    ("fulfilment", "p90_days", "fulfil p90 d"),
    ("fulfilment", "median_working_days", "fulfil med wd"),
)


def table_rows(report: Report, grouping: str, data: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows (groups, then the total) of one grouping, as plain values."""
    header = [grouping, *(label for _, label in COLUMNS), *(label for *_, label in TIME_COLUMNS), "refused by reason"]
    rows = []
    for g in [*data["groupings"][grouping], {**data["total"], "group": "TOTAL"}]:
        reasons = "; ".join(f"{r} {_cell(n, report)}" for r, n in g["refused_by_reason"].items())
        rows.append([g["group"], *(g[k] for k, _ in COLUMNS), *(g[w][k] for w, k, _ in TIME_COLUMNS), reasons])
    return header, rows


def report_text(report: Report) -> str:
    data = report_dict(report)
    lines = [f"casebridge report at {data['generated_at']} (workflow {report.workflow})"]
    span = f"requests received by the provider from {data['from'] or 'the first'} to {data['to'] or 'now'}"
    cal = data["calendar"]
    lines.append(f"{span}; days in {cal['timezone']}; working days on calendar {cal['name']!r} "
                 f"({cal['working_day_hours']} h a day)")  # fmt: skip
    if report.aggregate:
        lines.append(f"aggregate: {data['suppression']}")
    for grouping in data["groupings"]:
        header, rows = table_rows(report, grouping, data)
        cells = [header] + [[_cell(v, report) for v in row] for row in rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(header) - 1)]
        lines.append("")
        for row in cells:
            lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)).rstrip())
            if row[-1] and row is not cells[0]:
                lines.append(f"    refused by reason: {row[-1]}")
    lines.append("")
    lines += [f"* {f}" for f in FORMULAS]
    lines.append(f"* not yet sent (left out): {_cell(data['not_sent'], report)}")
    if not report.aggregate and data["open_breaches"]:
        lines += ["", "open breached cases:"]
        for case in data["open_breaches"]:
            clocks = ", ".join(f"{c['clock']} due {c['due_at']} ({c['overdue_days']} d over)" for c in case["clocks"])
            link = f"  {case['url']}" if case["url"] else ""
            lines.append(f"  {case['reference']}  {case['provider']}  [{case['state']}]  {clocks}{link}")
    return "\n".join(lines).rstrip() + "\n"


def safe_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: text starting like a formula gets a leading apostrophe
    (numbers are left as numbers)."""
    if value is None:
        return ""
    if isinstance(value, int | float):
        return value
    text = str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def report_csv(report: Report) -> str:
    """One table per grouping, stacked, each row led by the grouping's name; then the open breaches."""
    data = report_dict(report)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for grouping in data["groupings"]:
        header, rows = table_rows(report, grouping, data)
        writer.writerow(["grouping", *header])
        for row in rows:
            cells = [f"<{report.min_count}" if v is None and report.aggregate else v for v in row]
            writer.writerow([grouping, *(safe_cell(v) for v in cells)])
    if not report.aggregate:
        header = ["reference", "provider", "state", "clock", "due_at", "overdue_days", "url"]
        writer.writerow(["open breached cases", *header])
        for case in data["open_breaches"]:
            for c in case["clocks"]:
                values = (
                    case["reference"],
                    case["provider"],
                    case["state"],
                    c["clock"],
                    c["due_at"],
                    c["overdue_days"],
                    case["url"],
                )
                writer.writerow(["open breached cases", *(safe_cell(v) for v in values)])
    writer.writerow(["note", *(safe_cell(f) for f in FORMULAS)])
    return out.getvalue()
