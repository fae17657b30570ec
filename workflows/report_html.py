"""`casebridge report --format html`: one self-contained page (no URL, no script, no CDN: it opens
offline from a USB stick) with five charts drawn by matplotlib as inline SVG, each beside the table it
shows, and the open breached cases with their tracker links. Prints on A4.

Figures come from ``report_render.report_dict`` (the JSON report), so page and JSON always agree. Every
value from a case is escaped. Each chart mark (bar, box) carries an id ``mark-...`` so a browser test can
count them. matplotlib is imported here only, so the CLI starts fast for the other formats.
"""

from __future__ import annotations

import html
import io
import re
from typing import Any

from casebridge.workflows.report import Group, Report
from casebridge.workflows.report_render import report_dict

__all__ = ["report_html"]

_SVG_HEAD = re.compile(r"^.*?(?=<svg)", re.S)
COLORS = ("#1f4e79", "#c0504d", "#9bbb59", "#8064a2", "#4bacc6", "#f79646", "#7f7f7f", "#2c7c3f", "#b65708", "#5a5a5a")


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _pyplot(salt: str) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib import pyplot as plt

    plt.rcParams.update(
        {"svg.fonttype": "none", "svg.hashsalt": salt, "font.size": 9, "figure.dpi": 96, "axes.spines.top": False,
         "axes.spines.right": False}
    )  # fmt: skip
    return plt


def _svg(fig: Any, plt: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": "casebridge"})
    plt.close(fig)
    return _SVG_HEAD.sub("", buf.getvalue(), count=1)


def _fig(plt: Any, rows: int) -> tuple[Any, Any]:
    fig, ax = plt.subplots(figsize=(6.2, max(1.6, 0.32 * rows + 0.9)))
    return fig, ax


def _table(caption: str, header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th scope='col'>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _show(value: Any, report: Report) -> str:
    if value is None:
        return f"<{report.min_count}" if report.aggregate else "-"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def _compliance(report: Report, providers: list[dict[str, Any]]) -> tuple[str, str]:
    plt = _pyplot("compliance")
    shown = [p for p in providers if p["compliance_pct"] is not None]
    fig, ax = _fig(plt, len(shown))
    labels = [p["group"] for p in shown][::-1]
    values = [p["compliance_pct"] for p in shown][::-1]
    bars = ax.barh(labels, values, color=COLORS[0])
    for i, bar in enumerate(bars):
        bar.set_gid(f"mark-compliance-{i}")
    ax.set_xlim(0, 100)
    ax.set_xlabel("legal deadlines met, % of met + breached")
    rows = [[p["group"], p["legal_met"], p["legal_breached"], _show(p["compliance_pct"], report)] for p in providers]
    return _svg(fig, plt), _table("Compliance by provider", ["provider", "met", "breached", "compliance %"], rows)


def _first_answer(report: Report, providers: list[dict[str, Any]], groups: dict[str, Group]) -> tuple[str, str]:
    plt = _pyplot("first-answer")
    shown = [p for p in providers if p["first_response"]["median_days"] is not None]
    fig, ax = _fig(plt, len(shown))
    data = [sorted(v[0] for v in groups[p["group"]].first_response) for p in shown][::-1]
    if data:
        boxes = ax.boxplot(data, orientation="horizontal", patch_artist=True, widths=0.6, whis=(0, 100))
        ax.set_yticks(range(1, len(data) + 1), [p["group"] for p in shown][::-1])
        for i, box in enumerate(boxes["boxes"]):
            box.set_gid(f"mark-first-answer-{i}")
            box.set_facecolor("#dbe5f1")
    ax.set_xlabel("calendar days from provider receipt to first response (box: quartiles, whiskers: min-max)")
    keys = ("median_days", "p90_days", "median_working_days")
    rows = [[p["group"], *(_show(p["first_response"][k], report) for k in keys), _show(p["no_reply"], report)]
            for p in providers]  # fmt: skip
    header = ["provider", "median days", "p90 days", "median working days", "no reply yet"]
    return _svg(fig, plt), _table("Time to first answer per provider", header, rows)


def _refusals(report: Report, providers: list[dict[str, Any]], reasons: list[str]) -> tuple[str, str]:
    plt = _pyplot("refusals")
    shown = [p for p in providers if any(p["refused_by_reason"].values())]
    fig, ax = _fig(plt, len(shown))
    labels = [p["group"] for p in shown][::-1]
    left = [0] * len(labels)
    mark = 0
    for j, reason in enumerate(reasons):
        values = [(p["refused_by_reason"].get(reason) or 0) for p in shown][::-1]
        if not any(values):
            continue
        bars = ax.barh(labels, values, left=left, color=COLORS[j % len(COLORS)], label=reason)
        for bar, value in zip(bars, values, strict=True):
            if value:
                bar.set_gid(f"mark-refusals-{mark}")
                mark += 1
            else:
                bar.set_visible(False)
        left = [a + b for a, b in zip(left, values, strict=True)]
    if mark:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    ax.set_xlabel("refused requests, by reason")
    used = [r for r in reasons if any(p["refused_by_reason"].get(r) for p in providers)]
    rows = [[p["group"], *(_show(p["refused_by_reason"].get(r, 0), report) for r in used)] for p in providers]
    return _svg(fig, plt), _table("Refusals by reason per provider", ["provider", *used], rows)


def _trend(report: Report, months: list[dict[str, Any]]) -> tuple[str, str]:
    plt = _pyplot("trend")
    fig, ax = plt.subplots(figsize=(6.2, 2.6))
    x = list(range(len(months)))
    sent = [m["requests"] or 0 for m in months]
    breached = [m["legal_breached"] or 0 for m in months]
    for i, bar in enumerate(ax.bar([v - 0.2 for v in x], sent, width=0.4, color=COLORS[0], label="requests")):
        bar.set_gid(f"mark-trend-requests-{i}")
    for i, bar in enumerate(ax.bar([v + 0.2 for v in x], breached, width=0.4, color=COLORS[1], label="breached")):
        bar.set_gid(f"mark-trend-breached-{i}")
    ax.set_xticks(x, [m["group"] for m in months])
    ax.legend(fontsize=7, frameon=False)
    ax.set_ylabel("count")
    rows = [[m["group"], _show(m["requests"], report), _show(m["legal_breached"], report)] for m in months]
    caption = "Requests and breached legal deadlines per month"
    return _svg(fig, plt), _table(caption, ["month", "requests", "breached"], rows)


def _link(url: str | None, text: str) -> str:
    if url and url.startswith(("https://", "http://")):
        return f"<a href='{_e(url)}'>{_e(text)}</a>"
    return _e(text)


def _breaches(data: dict[str, Any]) -> str:
    rows = []
    for case in data.get("open_breaches", []):
        for c in case["clocks"]:
            rows.append(
                "<tr>"
                f"<td>{_link(case['url'], case['reference'])}</td><td>{_e(case['provider'])}</td>"
                f"<td>{_e(case['state'])}</td><td>{_e(c['clock'])} ({_e(c['kind'])})</td>"
                f"<td>{_e(c['due_at'])}</td><td>{_e(c['overdue_days'])}</td>"
                "</tr>"
            )
    names = ("case", "provider", "state", "clock", "due (UTC)", "days over")
    head = "".join(f"<th scope='col'>{h}</th>" for h in names)
    body = "".join(rows) or "<tr><td colspan='6'>none</td></tr>"
    return (
        "<section id='open-breaches'><h2>Open breached cases</h2><table><caption>Cases with a clock past its due "
        f"time and still running</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>"
    )


def _section(ident: str, title: str, chart: tuple[str, str]) -> str:
    svg, table = chart
    return (
        f"<section class='chart' id='{ident}'><h2>{_e(title)}</h2><div class='pair'>"
        f"<figure role='img' aria-label='{_e(title)}'>{svg}</figure>{table}</div></section>"
    )


def report_html(report: Report) -> str:
    """The whole page. The report must be grouped by provider and month (the CLI adds both)."""
    data = report_dict(report)
    providers = [p for p in data["groupings"].get("provider", [])]
    months = data["groupings"].get("month", [])
    groups = {g.label: g for g in report.groupings.get("provider", [])}
    total = data["total"]
    cal = data["calendar"]
    sections = [
        _section("compliance", "Compliance with legal deadlines by provider", _compliance(report, providers)),
        _section("first-answer", "Time to first answer per provider", _first_answer(report, providers, groups)),
        _section("refusals", "Refusals by reason per provider", _refusals(report, providers, report.refusal_reasons)),
        _section("trend", "Requests and breaches per month", _trend(report, months)),
    ]
    if not report.aggregate:
        sections.append(_breaches(data))
    notes = "".join(f"<li>{_e(f)}</li>" for f in data["formulas"])
    if report.aggregate:
        notes += f"<li>{_e(data['suppression'])}</li>"
    summary = (
        f"{_show(total['requests'], report)} requests; compliance "
        f"{_show(total['compliance_pct'], report)} %; {_show(total['refused'], report)} refused; "
        f"{_show(total['no_reply'], report)} without reply"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>casebridge report {_e(data["generated_at"])}</title>
<style>{_CSS}</style></head>
<body><header><h1>Cross-border data requests: who answers, how fast, why they refuse</h1>
<p>Generated {_e(data["generated_at"])} (workflow {_e(data["workflow"])}); requests received by the provider
from {_e(data["from"] or "the first")} to {_e(data["to"] or "now")}; days in {_e(cal["timezone"])}, working days
on calendar {_e(cal["name"])} ({_e(cal["working_day_hours"])} h a day).</p>
<p class="summary">{_e(summary)}</p></header>
{"".join(sections)}
<section id="notes"><h2>How the figures are computed</h2><ul>{notes}</ul></section>
</body></html>
"""


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem;color:#1a1a1a;max-width:75rem}
h1{font-size:1.4rem} h2{font-size:1.1rem;margin-top:1.6rem;border-bottom:1px solid #ccc}
.summary{font-weight:600}
.pair{display:flex;flex-wrap:wrap;gap:1.2rem;align-items:flex-start}
figure{margin:0;flex:1 1 30rem} figure svg{max-width:100%;height:auto}
table{border-collapse:collapse;font-size:.8rem;flex:1 1 18rem}
caption{text-align:left;font-weight:600;padding-bottom:.3rem}
th,td{border:1px solid #ccc;padding:.15rem .4rem;text-align:right} th:first-child,td:first-child{text-align:left}
@page{size:A4;margin:12mm}
@media print{body{margin:0;max-width:none;font-size:9pt}.pair{display:block}figure svg{max-height:9cm}
section{break-inside:avoid;page-break-inside:avoid} a{color:inherit}}
"""
