"""`casebridge report`: properties of the computation, the aggregate (shareable) form, hostile CSV cells,
refusal reasons on `transition` and in the workflow."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casebridge.cli import main
from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.workflows import load_workflow
from casebridge.workflows.cases import StatusChange, TrackedCase
from casebridge.workflows.report import COUNTS, GROUPINGS, build_report, median, p90
from casebridge.workflows.report_html import report_html
from casebridge.workflows.report_render import report_csv, report_dict, report_json, report_text, safe_cell
from tests.report_samples import NOW, NOW_ISO, SAMPLES, Sample, at, load_samples, sample_case, write_config

WORKFLOW = load_workflow()
T0 = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)

# ------------------------------------------------------------------------------------------- properties
PATHS = (
    (),
    ("acknowledged",),
    ("acknowledged", "fulfilled"),
    ("fulfilled",),
    ("partial",),
    ("refused",),
    ("refused", "redirected_mla"),
    ("awaiting_requester", "acknowledged", "fulfilled"),
    ("escalated", "acknowledged", "fulfilled"),
)
KINDS = (
    ("subscriber", "eu-epo"),
    ("subscriber", "voluntary"),
    ("emergency", "eu-epo"),
    ("subscriber", "budapest-2ap-7"),
)

case_spec = st.tuples(
    st.sampled_from(("Meta", "Google", "X", "Telegram")),
    st.sampled_from(KINDS),
    st.integers(0, 300 * 24),  # hours after T0 the provider received it
    st.sampled_from(PATHS),
    st.lists(st.integers(1, 20 * 24), min_size=8, max_size=8),  # hours between moves
    st.sampled_from((*WORKFLOW.refusal_reasons, None)),
)


def _tracked(i: int, spec: tuple) -> tuple[TrackedCase, list[StatusChange]]:
    provider, (rtype, basis), start, path, gaps, reason = spec
    sent = T0 + timedelta(hours=start)
    s = Sample(f"P-{i}", provider, rtype, basis, "FIA", sent)
    case = sample_case(s, refusal_reason=reason)
    history = [StatusChange(sent, "submitted")]
    for state, gap in zip(path, gaps, strict=False):
        history.append(StatusChange(history[-1].at + timedelta(hours=gap), state))
    return TrackedCase(str(i), case, history[-1].state, history[-1].at), history


@settings(deadline=None, max_examples=60)
@given(st.lists(case_spec, max_size=25), st.integers(0, 400))
def test_groups_add_up_to_the_total(specs: list[tuple], now_days: int) -> None:
    now = T0 + timedelta(days=now_days)
    cases = [_tracked(i, s) for i, s in enumerate(specs)]
    report = build_report(cases, WORKFLOW, now, by=GROUPINGS)
    for grouping, groups in report.groupings.items():
        for name in COUNTS:
            assert sum(g.counts[name] for g in groups) == report.total.counts[name], (grouping, name)
        assert sum(len(g.first_response) for g in groups) == len(report.total.first_response)
    total = report.total.counts
    assert total["requests"] + report.not_sent == len(cases)
    assert total["answered_full"] + total["answered_partial"] <= total["requests"]
    assert total["legal_breached_open"] <= total["legal_breached"]
    assert sum(report.total.refusals.values()) == total["refused"]
    compliance = report.total.compliance
    if total["legal_breached"] == 0:
        assert compliance in (None, 100.0)  # nothing breached: 100 %, or no deadline ended at all
        assert (compliance is None) == (total["legal_met"] == 0)
    else:
        assert compliance is not None and compliance < 100.0


@settings(deadline=None)
@given(st.lists(st.floats(0, 1000, allow_nan=False), min_size=1, max_size=40))
def test_median_and_p90_are_values_in_range(values: list[float]) -> None:
    ordered = sorted(values)
    assert ordered[0] <= median(ordered) <= ordered[-1]
    top = p90(ordered)
    assert top in ordered
    assert sum(1 for v in ordered if v <= top) >= 0.9 * len(ordered)


# --------------------------------------------------------------------------------------------- aggregate
MARKER = "ZQXMARKER"


def _marked_report(tmp_path: Path, min_count: int, by: tuple[str, ...] = GROUPINGS):
    tracker = LocalConnector(LocalConfig(path=str(tmp_path / "m.db")), WORKFLOW)
    free = {
        "title": f"{MARKER} title",
        "officer": f"{MARKER} officer",
        "officer_email": "zqxmarker@example.org",
        "facts": f"{MARKER} facts",
        "offence": f"{MARKER} offence",
        "statute": f"{MARKER} s.1",
        "penalty": f"{MARKER} years",
        "court": f"{MARKER} court",
        "court_order_ref": f"{MARKER}-CO",
        "provider_ticket": f"{MARKER}-T",
        "provider_legal_entity": f"{MARKER} Ltd",
        "refusal_text": f"{MARKER} refusal",
        "handling_restrictions": f"{MARKER} restricted",
        "ncb_action": f"{MARKER} act",
        "identifiers": [{"type": "username", "value": f"{MARKER}.user"}],
    }
    # references carry the marker too; a provider with one case (fewer than min_count) must not be named
    samples = tuple(replace(s, reference=f"{MARKER}-{s.reference}") for s in SAMPLES)
    lone = Sample(f"{MARKER}-LONE", f"{MARKER} Lone Provider", "subscriber", "voluntary", f"{MARKER} agency", at(3, 3))
    load_samples(tracker, (*samples, lone), **free)
    cases = [(t, tracker.read_history(t.key)) for t in tracker.list_cases()]
    tracker.close()
    return build_report(cases, WORKFLOW, NOW, by=by, aggregate=True, min_count=min_count)


@pytest.mark.parametrize("min_count", [2, 3, 5])
def test_aggregate_output_holds_no_case_text(tmp_path: Path, min_count: int) -> None:
    report = _marked_report(tmp_path, min_count)
    outputs = [report_json(report), report_text(report), report_csv(report), report_html(report)]
    for out in outputs:
        assert MARKER.lower() not in out.lower()
    data = report_dict(report)
    assert "open_breaches" not in data
    assert data["total"]["requests"] == 10
    # provider and agency are group labels (the report is per provider); the lone provider's group holds
    # fewer than min_count cases, so it is pooled into "(other)" and never named
    assert all(g["group"] != f"{MARKER} Lone Provider" for g in data["groupings"]["provider"])


def test_aggregate_suppresses_small_cells_and_pools_small_groups(tmp_path: Path) -> None:
    data = report_dict(_marked_report(tmp_path, 3, by=("provider",)))
    rows = {g["group"]: g for g in data["groupings"]["provider"]}
    # Meta 4 and Google 3 requests stay; Telegram (2) and the lone provider (1) are pooled
    assert set(rows) == {"Meta", "Google", "(other)"}
    assert rows["(other)"]["requests"] == 3 and rows["(other)"]["groups_pooled"] == 2
    assert rows["Meta"]["answered_full"] is None  # 2 < 3: suppressed
    assert rows["Meta"]["requests"] == 4
    assert rows["Meta"]["first_response"]["median_days"] == 2.0  # 3 values: shown
    assert rows["Google"]["refused"] is None  # 2 < 3
    assert sum(r["requests"] for r in rows.values()) == data["total"]["requests"]


# ----------------------------------------------------------------------------------------- hostile CSV
@pytest.mark.parametrize("text", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_csv_cells_never_start_a_formula(tmp_path: Path, text: str) -> None:
    assert safe_cell(text) == "'" + text
    tracker = LocalConnector(LocalConfig(path=str(tmp_path / "h.db")), WORKFLOW)
    load_samples(tracker, tuple(Sample(f"H-{i}", text + " Corp", *x) for i, x in enumerate(
        [("subscriber", "eu-epo", text, at(3, 2))])))  # fmt: skip
    cases = [(t, tracker.read_history(t.key)) for t in tracker.list_cases()]
    tracker.close()
    report = build_report(cases, WORKFLOW, NOW, by=("provider", "agency"))
    for row in csv.reader(io.StringIO(report_csv(report))):
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
    assert "&lt;" in report_html(_html_case(tmp_path)) and "<script>" not in report_html(_html_case(tmp_path))


def _html_case(tmp_path: Path):
    tracker = LocalConnector(LocalConfig(path=str(tmp_path / "x.db")), WORKFLOW)
    evil = "<script>alert(1)</script>"
    load_samples(tracker, (Sample("<b>X-1</b>", evil, "subscriber", "eu-epo", evil, at(2, 9)),))
    cases = [(t, tracker.read_history(t.key)) for t in tracker.list_cases()]
    tracker.close()
    return build_report(cases, WORKFLOW, NOW, by=("provider", "month"))


# ------------------------------------------------------------------------------------ refusal reasons
def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def test_transition_records_the_refusal_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CASEBRIDGE_CONFIG", raising=False)
    tracker = LocalConnector(LocalConfig(path=str(write_config(tmp_path))), WORKFLOW)
    load_samples(tracker, (SAMPLES[3],))  # RPT-M4, submitted, no answer
    tracker.close()
    code, _, err = run(capsys, "transition", "RPT-M4", "refused", "--reason", "bogus", "--at", NOW_ISO)
    assert code == 2 and "not a refusal reason" in err and "us-legal-process-required" in err
    code, _, err = run(capsys, "transition", "RPT-M4", "acknowledged", "--reason", "no-data", "--at", NOW_ISO)
    assert code == 2 and "--reason is for a refusal" in err
    code, _, _ = run(
        capsys, "transition", "RPT-M4", "refused", "--reason", "mlat-required", "--note", "MLA", "--at", NOW_ISO
    )
    assert code == 0
    code, out, _ = run(capsys, "report", "--format", "json", "--now", NOW_ISO)
    assert json.loads(out)["total"]["refused_by_reason"] == {"mlat-required": 1}
    tracker = LocalConnector(LocalConfig(path=str(tmp_path / "casebridge.db")), WORKFLOW)
    assert tracker.find_case("RPT-M4").case.refusal_reason == "mlat-required"
    tracker.close()


def test_workflow_lists_and_extends_refusal_reasons(tmp_path: Path) -> None:
    assert "us-legal-process-required" in WORKFLOW.refusal_reasons and "other" in WORKFLOW.refusal_reasons
    text = (Path(WORKFLOW.source_path)).read_text(encoding="utf-8")
    custom = tmp_path / "wf.toml"
    custom.write_text(text.replace('  "other",\n]', '  "other",\n  "court-order-expired",\n]'), encoding="utf-8")
    assert load_workflow(custom).refusal_reasons[-1] == "court-order-expired"
    custom.write_text(text.replace("[report]\n", "[report]\nbogus = 1\n"), encoding="utf-8")
    with pytest.raises(Exception, match=r"report\.bogus"):
        load_workflow(custom)
    custom.write_text(text.replace('refused = ["refused"]', 'refused = ["nope"]'), encoding="utf-8")
    with pytest.raises(Exception, match=r"report\.refused <- unknown state 'nope'"):
        load_workflow(custom)


# ------------------------------------------------------------------------------ providers (issue 15)
def test_report_groups_by_the_directorys_canonical_provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CASEBRIDGE_CONFIG", raising=False)
    tracker = LocalConnector(LocalConfig(path=str(write_config(tmp_path))), WORKFLOW)
    spellings = ("Facebook", "Meta Platforms Ireland Limited", "instagram", "Acme Hosting")
    load_samples(tracker, tuple(replace(SAMPLES[3], reference=f"P-{i}", provider=p) for i, p in enumerate(spellings)))
    tracker.close()
    code, out, err = run(capsys, "report", "--format", "json", "--now", NOW_ISO)
    assert code == 0, err
    groups = {g["group"]: g["requests"] for g in json.loads(out)["groupings"]["provider"]}
    assert groups == {"Meta": 3, "Acme Hosting": 1}  # unknown to the directory: its own text
