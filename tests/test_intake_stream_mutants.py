"""The embedded tracker's streamed intake (app/intake_stream.py), what its mutation run found unpinned
(issue 19): a rerun that updates changed cases and records exactly what it wrote; cases created in the
row's state since ``state_since``, with their SLA fields in the tracker and in the audit record; a
tracker that cannot back-date (warned, and the fields predicted from its own creation stamp); a tracker
that reads histories one case at a time gets them from intake, so the first sync reads none; and the
recovery of several batches, one without updates, behind another kind of intent.

The embedded tracker stands in for the other kinds through a proxy; nothing is mocked."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from casebridge.app.intake_stream import INTAKE_BATCH, digest, intake_streamed, recover_intake
from casebridge.state.audit import AuditLog
from casebridge.state.store import StateStore
from casebridge.workflows.intake import IntakeRow, predicted_sla
from casebridge.workflows.sla import sla_to_json
from tests.factories import T0, make_case
from tests.factories import intake_rows as rows
from tests.test_sync_support import WORKFLOW, CountingTracker, Env

NOW = T0 + timedelta(days=1)
SINCE = T0 + timedelta(hours=3)


class OneHistoryAtATime(CountingTracker):
    """A transactional tracker whose histories are read one case per request."""

    bulk_history = False


class CannotBackDate(OneHistoryAtATime):
    """A transactional tracker that stamps each creation with its own clock (as Redmine does)."""

    back_dates = False
    name = "stamping"


class CreatesWithoutFields(OneHistoryAtATime):
    """A transactional tracker whose create takes no SLA fields (the first sync writes them)."""

    creates_with_sla = False


@pytest.fixture
def env(tmp_path: Path) -> Env:
    env = Env(tmp_path)
    env.write_config()
    return env


def records(audit: AuditLog) -> list[dict[str, Any]]:
    return [r["data"] for r in audit.records() if r["kind"] == INTAKE_BATCH]


def acknowledged_since(*refs: str) -> list[IntakeRow]:
    return [
        IntakeRow(
            where=f"cases.csv:{i + 2}", case=make_case(ref, submitted_at=T0), state="acknowledged", state_since=SINCE
        )
        for i, ref in enumerate(refs)
    ]


def test_a_rerun_updates_only_the_changed_case_and_records_what_it_wrote(env: Env) -> None:
    tracker, audit = env.tracker(NOW), AuditLog(env.audit_path)
    intake_streamed(rows("FIA-R-1", "FIA-R-2"), tracker, audit, None, now=NOW)
    keys = {ref: t.key for ref, t in tracker.find_cases(["FIA-R-1", "FIA-R-2"]).items()}
    changed = make_case("FIA-R-1", submitted_at=T0, title="Subscriber info, corrected")
    again = [*rows("FIA-R-2"), IntakeRow(where="cases.csv:3", case=changed, state="submitted", state_since=None)]

    counts = intake_streamed(again, tracker, audit, None, now=NOW)

    assert counts == {"update": 1, "unchanged": 1}
    assert tracker.find_cases(["FIA-R-1"])["FIA-R-1"].case.title == "Subscriber info, corrected"
    second = records(audit)[1]
    audit.close()
    entry = {"reference": "FIA-R-1", "key": keys["FIA-R-1"], "digest": digest(changed)}
    assert second == {"evaluated_at": NOW.isoformat(), "created": [], "updated": [entry]}


def test_cases_are_created_in_the_rows_state_since_its_state_since_with_their_sla_fields_recorded(env: Env) -> None:
    tracker, audit = env.tracker(NOW), AuditLog(env.audit_path)
    intake_streamed(acknowledged_since("FIA-A-1", "FIA-A-2"), tracker, audit, None, now=NOW)
    found = tracker.find_cases(["FIA-A-1", "FIA-A-2"])
    (record,) = records(audit)
    audit.close()
    expected = []
    for ref, row in zip(["FIA-A-1", "FIA-A-2"], acknowledged_since("FIA-A-1", "FIA-A-2"), strict=True):
        t = found[ref]
        assert t.state == "acknowledged"
        assert tracker.read_history(t.key)[-1].at == SINCE  # back-dated, not stamped at --now
        fields = predicted_sla(row, WORKFLOW, NOW)
        assert t.sla == fields and fields.clocks  # the tracker holds the fields the create was given
        expected.append({"reference": ref, "key": t.key, "state": "acknowledged", "fields": sla_to_json(fields)})
    assert record["created"] == expected


def test_a_tracker_that_cannot_back_date_is_warned_about_and_its_fields_start_at_its_own_creation_stamp(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    tracker, audit = CannotBackDate(env.tracker(NOW)), AuditLog(env.audit_path)
    (row,) = acknowledged_since("FIA-W-1")
    before = datetime.now(UTC)
    with caplog.at_level(logging.WARNING):
        intake_streamed([row], tracker, audit, None, now=NOW)
    after = datetime.now(UTC)
    (record,) = records(audit)
    audit.close()
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "stamping cannot back-date: state_since ignored for new cases"
    ]
    fields = record["created"][0]["fields"]
    assert fields in (
        sla_to_json(predicted_sla(row, WORKFLOW, NOW, created_at=before)),
        sla_to_json(predicted_sla(row, WORKFLOW, NOW, created_at=after)),
    )
    assert fields != sla_to_json(predicted_sla(row, WORKFLOW, NOW))


def test_a_tracker_whose_create_takes_no_fields_gets_none_and_the_record_claims_none(env: Env) -> None:
    tracker, audit = CreatesWithoutFields(env.tracker(NOW)), AuditLog(env.audit_path)
    intake_streamed(rows("FIA-F-1"), tracker, audit, None, now=NOW)
    (record,) = records(audit)
    audit.close()
    created = tracker.find_cases(["FIA-F-1"])["FIA-F-1"]
    assert created.sla.clocks == {}
    assert record["created"] == [{"reference": "FIA-F-1", "key": created.key, "state": "submitted"}]


def test_no_warning_when_no_row_has_state_since_or_the_tracker_back_dates(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        intake_streamed(rows("FIA-N-1"), CannotBackDate(env.tracker(NOW)), None, None, now=NOW)
        intake_streamed(acknowledged_since("FIA-N-2"), env.tracker(NOW), None, None, now=NOW)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_tracker_reading_one_history_per_request_gets_them_from_intake_and_the_first_sync_reads_none(
    env: Env,
) -> None:
    tracker = OneHistoryAtATime(env.tracker(NOW))
    store = StateStore(env.state_path)
    try:
        store.claim(tracker.identity())
        intake_streamed(rows("FIA-H-1", "FIA-H-2"), tracker, None, store, now=NOW)
    finally:
        store.close()
    env.sync(NOW, tracker=tracker)
    assert tracker.calls["read_history"] == 0 and tracker.calls["read_all_histories"] == 0


def test_without_a_state_store_such_a_tracker_still_takes_the_intake(env: Env) -> None:
    tracker = OneHistoryAtATime(env.tracker(NOW))
    assert intake_streamed(rows("FIA-S-1"), tracker, None, None, now=NOW) == {"create": 1}
    assert tracker.find_cases(["FIA-S-1"])["FIA-S-1"].state == "submitted"


def test_recovery_resolves_every_batch_behind_another_kinds_intent_and_says_how_many(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = env.tracker(NOW)
    intake_streamed(rows("FIA-K-1", "FIA-K-2"), tracker, None, None, now=NOW)
    keys = {ref: t.key for ref, t in tracker.find_cases(["FIA-K-1", "FIA-K-2"]).items()}
    audit = AuditLog(env.audit_path)
    audit.begin_intent("intake.set_fields", {"key": keys["FIA-K-1"], "reference": "FIA-K-1", "fields": {}})
    batches = [  # no "updated" in either: a batch of creates only
        {"evaluated_at": NOW.isoformat(), "created": [{"reference": ref, "key": keys[ref], "state": "submitted"}]}
        for ref in ("FIA-K-1", "FIA-K-2")
    ]
    audit.begin_intents(INTAKE_BATCH, batches)
    with caplog.at_level(logging.INFO):
        assert recover_intake(tracker, audit) == (2, 0)
    assert [d["created"] for d in records(audit)] == [b["created"] for b in batches]
    audit.close()
    assert [r.getMessage() for r in caplog.records if "recovered" in r.getMessage()] == [
        "intake: recovered 2 interrupted batches, dropped 0 never committed"
    ]


def test_two_batches_never_committed_are_both_dropped_and_counted(env: Env) -> None:
    audit = AuditLog(env.audit_path)
    never = [{"evaluated_at": NOW.isoformat(), "created": [{"reference": f"FIA-G-{i}", "key": "9"}]} for i in (1, 2)]
    audit.begin_intents(INTAKE_BATCH, never)
    assert recover_intake(env.tracker(NOW), audit) == (0, 2)
    assert list(audit.pending()) == [] and records(audit) == []
    audit.close()
