"""Golden report: the samples of tests/report_samples.py at 2026-03-31T12:00Z on the embedded tracker,
every figure computed by hand below (arithmetic in the comments), compared with `casebridge report
--format json`.

Clocks (bundled lawful-access workflow): eu-epo subscriber/traffic: legal 10 d; eu-epo emergency: legal
8 h; budapest-2ap-7 subscriber: legal 30 d; voluntary subscriber: operational follow-up 30 d. A legal
clock that stops in `fulfilled` in time is met, late is breached; stopping in `refused` is neither.
Working days: agency calendar 09:00-17:00 Asia/Karachi = 04:00-12:00 UTC, 8 h a day.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from casebridge.cli import main
from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.workflows import load_workflow
from tests.report_samples import NOW_ISO, load_samples, write_config

H = 1 / 24  # an hour in days


@pytest.fixture
def sample_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CASEBRIDGE_CONFIG", raising=False)
    tracker = LocalConnector(LocalConfig(path=str(write_config(tmp_path))), load_workflow())
    load_samples(tracker)
    tracker.close()
    return tmp_path


def report_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    with pytest.raises(SystemExit) as done:
        main(["report", "--format", "json", "--now", NOW_ISO, *args])
    out, err = capsys.readouterr()
    assert done.value.code in (0, None), err
    return json.loads(out)


def times(median: float, p90: float, median_wd: float, p90_wd: float) -> dict[str, float]:
    return {
        "median_days": round(median, 2),
        "p90_days": round(p90, 2),
        "median_working_days": round(median_wd, 2),
        "p90_working_days": round(p90_wd, 2),
    }


def test_total_by_hand(sample_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = report_json(capsys)
    total = data["total"]
    # 10 samples; RPT-D1 is a draft, never sent: 9 requests, 1 left out
    assert data["not_sent"] == 1
    assert total["requests"] == 9
    assert total["answered_full"] == 3  # M1, M2, T2 reached fulfilled
    assert total["answered_partial"] == 1  # G1 (partial, never fulfilled)
    assert total["refused"] == 3  # M3, G2, G3
    assert total["refused_by_reason"] == {"us-legal-process-required": 2, "no-data": 1}  # M3+G3, G2
    assert total["redirected_mla"] == 1  # M3
    assert total["no_reply"] == 2  # M4 and T1 (T1's move to escalated is not a response)
    # M4: legal 10 d from 2 Mar 04:00 lapsed 12 Mar; T1: 30 d from 9 Feb lapsed 11 Mar
    assert total["no_reply_overdue"] == 2
    # legal clocks: M1 met (fulfilled after 7 d < 10 d); T2 met (4 h < 8 h); M2 breached (14 d > 10 d,
    # stopped); M4 and T1 breached and still open; M3 stopped by the refusal (neither)
    assert (total["legal_met"], total["legal_breached"], total["legal_breached_open"]) == (2, 3, 2)
    assert total["compliance_pct"] == 40.0  # 2 / (2 + 3) x 100
    assert total["escalations"] == 1  # T1 moved to escalated once
    # first response, calendar days: M1 1, M2 14 (fulfilled), M3 2, G1 6 h = 0.25, G2 7, G3 1, T2 4 h
    # sorted 4/24, 0.25, 1, 1, 2, 7, 14 (n=7): median = 4th = 1; p90 = rank ceil(6.3) = 7th = 14
    # working days (8 h): M1 1, M2 10 (two weeks), M3 2, G1 6/8 = 0.75, G2 5, G3 1, T2 4/8 = 0.5
    # sorted 0.5, 0.75, 1, 1, 2, 5, 10: median 1; p90 10
    assert total["first_response"] == times(1, 14, 1, 10)
    # fulfilment: M1 7 d (5 wd), M2 14 d (10 wd), T2 4 h (0.5 wd); sorted 4/24, 7, 14: median 7, p90 rank 3 = 14
    assert total["fulfilment"] == times(7, 14, 5, 10)


def test_by_provider_by_hand(sample_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = {g["group"]: g for g in report_json(capsys)["groupings"]["provider"]}
    assert list(rows) == ["Meta", "Google", "Telegram"]  # most requests first: 4, 3, 2
    meta, google, telegram = rows["Meta"], rows["Google"], rows["Telegram"]
    assert (meta["requests"], meta["answered_full"], meta["refused"], meta["no_reply"]) == (4, 2, 1, 1)
    assert meta["refused_by_reason"] == {"us-legal-process-required": 1}
    # Meta legal: M1 met; M2, M4 breached (M4 open): 1 / (1 + 2) = 33.33 %
    assert (meta["legal_met"], meta["legal_breached"], meta["legal_breached_open"]) == (1, 2, 1)
    assert meta["compliance_pct"] == 33.33
    # Meta first responses 1, 14, 2 -> sorted 1, 2, 14: median 2, p90 rank ceil(2.7) = 3 -> 14; wd 1, 2, 10
    assert meta["first_response"] == times(2, 14, 2, 10)
    # Google: voluntary requests have no legal clock: no compliance figure
    assert (google["requests"], google["answered_partial"], google["refused"]) == (3, 1, 2)
    assert google["refused_by_reason"] == {"us-legal-process-required": 1, "no-data": 1}
    assert google["compliance_pct"] is None
    assert google["first_response"] == times(1, 7, 1, 5)  # 0.25, 1, 7 / wd 0.75, 1, 5
    # Telegram: T2 met, T1 breached and open: 1 / 2 = 50 %; T1 escalated once
    assert (telegram["compliance_pct"], telegram["escalations"], telegram["no_reply_overdue"]) == (50.0, 1, 1)
    assert telegram["first_response"] == times(4 * H, 4 * H, 0.5, 0.5)


def test_by_month_agency_and_range(sample_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = report_json(capsys, "--by", "month", "--by", "agency")
    months = {g["group"]: g for g in data["groupings"]["month"]}
    # received 09:00 Karachi time: Feb M1 M2 G1 T1; Mar M3 M4 G2 G3 T2. Breached legal: Feb M2 T1, Mar M4
    assert {m: (g["requests"], g["legal_breached"]) for m, g in months.items()} == {
        "2026-02": (4, 2),
        "2026-03": (5, 1),
    }
    agencies = {g["group"]: g["requests"] for g in data["groupings"]["agency"]}
    assert agencies == {"FIA CCW": 7, "FIA Lahore": 2}
    march = report_json(capsys, "--from", "2026-03-01", "--to", "2026-03-31")
    assert march["total"]["requests"] == 5
    assert march["total"]["compliance_pct"] == 50.0  # T2 met, M4 breached


def test_open_breaches_by_hand(sample_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    found = {
        c["reference"]: [(x["clock"], x["due_at"], x["overdue_days"]) for x in c["clocks"]]
        for c in report_json(capsys)["open_breaches"]
    }
    # due + overdue up to 31 Mar 12:00: from 11 Mar 04:00 = 20 d 8 h = 20.33 d
    assert found == {
        "RPT-G1": [("followup", "2026-03-11T04:00:00Z", 20.33)],  # 30 d from 9 Feb, partial keeps it running
        # EU production (Reg. 1182/71 Art. 3, Meta: Irish calendar): received Mon 2 Mar 04:00 GMT; day 10 =
        # Thu 12 Mar, ends 24:00 GMT = 13 Mar 00:00Z; to 31 Mar 12:00: 18 d 12 h = 18.5 d
        "RPT-M4": [("legal_deadline", "2026-03-13T00:00:00Z", 18.5)],
        "RPT-T1": [("legal_deadline", "2026-03-11T04:00:00Z", 20.33)],
    }


def test_text_and_csv_state_the_formula(sample_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for fmt in ("text", "csv"):
        with pytest.raises(SystemExit):
            main(["report", "--format", fmt, "--now", NOW_ISO])
        out = capsys.readouterr().out
        assert "compliance % = met / (met + breached)" in out
        assert "Meta" in out and "40.0" in out


def test_out_file_is_private(sample_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["report", "--format", "json", "--now", NOW_ISO, "--out", "r.json"])
    assert done.value.code in (0, None)
    assert (sample_dir / "r.json").stat().st_mode & 0o777 == 0o600
    assert json.loads((sample_dir / "r.json").read_text())["total"]["requests"] == 9


def test_same_report_after_a_sync_and_the_embedded_tracker_streamed(
    sample_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a sync the report says the same. The embedded tracker reads every history in one query, so the
    report streams its cases instead of loading the state store's copy (trackers read one history a request
    reuse the store: tests/test_report_trackers.py)."""
    from casebridge.app.report import load_cases
    from casebridge.cli.config import load_settings

    before = report_json(capsys)
    with pytest.raises(SystemExit) as done:
        main(["-q", "sync", "--now", NOW_ISO])
    assert done.value.code in (0, None)
    capsys.readouterr()
    assert (sample_dir / "casebridge-state.db").is_file()
    assert report_json(capsys) == before
    settings = load_settings(str(sample_dir / "casebridge.toml"))
    tracker = settings.tracker()
    loaded = load_cases(tracker, settings.state_path)
    assert len(list(loaded.cases)) == 10
    tracker.close()
    assert (loaded.history_reads, loaded.from_cache) == (1, 0)  # one bulk read, nothing from the store
