"""The embedded tracker's streamed intake (app/intake_stream.py) in this process (issue 19): what a
killed run's batch intents become on the next run, the batches and counts, and the refusal to stream
into a tracker that cannot roll back. The kill itself is tested in a child process by
tests/test_intake_faults.py; here the intents it leaves are planted, so every branch of the recovery
is seen (and mutation runs, which cannot follow a child process, see it too)."""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from casebridge.app.intake_stream import INTAKE_BATCH, digest, intake_streamed, recover_intake
from casebridge.errors import TrackerError
from casebridge.state.audit import AuditLog
from tests.factories import T0, make_case
from tests.factories import intake_rows as rows
from tests.test_sync_support import CountingTracker, Env

NOW = T0 + timedelta(days=1)


class NotTransactional(CountingTracker):
    transactional = False
    name = "jira"


@pytest.fixture
def env(tmp_path: Path) -> Env:
    env = Env(tmp_path)
    env.write_config()
    return env


def pending_and_records(audit: AuditLog) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, dict[str, Any]]]]:
    return [(k, d) for _, k, d in audit.pending()], [(r["kind"], r["data"]) for r in audit.records()]


def test_a_killed_runs_batch_is_recorded_with_only_what_the_tracker_holds_and_a_batch_never_committed_dropped(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = env.tracker(NOW)
    intake_streamed(rows("FIA-S-1", "FIA-S-2", "FIA-S-3"), tracker, None, None, now=NOW)
    keys = {ref: t.key for ref, t in tracker.find_cases(["FIA-S-1", "FIA-S-2", "FIA-S-3"]).items()}
    changed = make_case("FIA-S-2", submitted_at=T0, title="Changed")
    tracker.update_case(keys["FIA-S-2"], changed)
    stale = make_case("FIA-S-3", submitted_at=T0, title="Not what the tracker holds")

    created = [
        {"reference": "FIA-S-1", "key": keys["FIA-S-1"], "state": "submitted"},  # landed
        {"reference": "FIA-S-9", "key": "90", "state": "submitted"},  # absent: never committed
        {"reference": "FIA-S-3", "key": "77", "state": "submitted"},  # another case holds that reference
    ]
    updated = [
        {"reference": "FIA-S-2", "key": keys["FIA-S-2"], "digest": digest(changed)},  # landed
        {"reference": "FIA-S-3", "key": keys["FIA-S-3"], "digest": digest(stale)},  # not what was written
    ]
    mixed = {"evaluated_at": NOW.isoformat(), "created": created, "updated": updated}
    never = {"evaluated_at": NOW.isoformat(), "created": [{"reference": "FIA-S-8", "key": "80"}], "updated": []}
    audit = AuditLog(env.audit_path)
    audit.begin_intents(INTAKE_BATCH, [mixed, never])
    other = {"key": keys["FIA-S-1"], "reference": "FIA-S-1", "fields": {}}
    audit.begin_intent("intake.set_fields", other)  # the per-case path's: not this recovery's

    with caplog.at_level(logging.INFO):
        assert recover_intake(tracker, audit) == (1, 1)
    pending, records = pending_and_records(audit)
    audit.close()
    assert pending == [("intake.set_fields", other)]
    assert records == [(INTAKE_BATCH, {**mixed, "created": created[:1], "updated": updated[:1], "recovered": True})]
    assert "intake: recovered 1 interrupted batches, dropped 1 never committed" in caplog.text


def test_a_batch_whose_only_write_is_an_update_that_landed_is_recorded(env: Env) -> None:
    tracker = env.tracker(NOW)
    intake_streamed(rows("FIA-U-1"), tracker, None, None, now=NOW)
    key = tracker.find_cases(["FIA-U-1"])["FIA-U-1"].key
    changed = make_case("FIA-U-1", submitted_at=T0, title="Changed")
    tracker.update_case(key, changed)
    entry = {"reference": "FIA-U-1", "key": key, "digest": digest(changed)}
    audit = AuditLog(env.audit_path)
    audit.begin_intents(INTAKE_BATCH, [{"evaluated_at": NOW.isoformat(), "updated": [entry]}])
    assert recover_intake(tracker, audit) == (1, 0)
    assert pending_and_records(audit)[1][0][1]["updated"] == [entry]
    audit.close()


def test_nothing_to_recover_says_nothing(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    audit = AuditLog(env.audit_path)
    with caplog.at_level(logging.INFO):
        assert recover_intake(env.tracker(NOW), audit) == (0, 0)
    audit.close()
    assert "recovered" not in caplog.text


def test_an_update_is_recorded_by_a_digest_of_the_case_as_written() -> None:
    case = make_case("FIA-D-1")
    assert digest(case) == hashlib.sha256(case.model_dump_json().encode("utf-8")).hexdigest()[:32]
    assert digest(case) != digest(make_case("FIA-D-1", title="Other"))


def test_streaming_into_a_tracker_that_cannot_roll_back_is_refused_before_anything_is_written(env: Env) -> None:
    tracker = NotTransactional(env.tracker(NOW))
    with pytest.raises(TrackerError) as err:
        intake_streamed(rows("FIA-T-1"), tracker, None, None, now=NOW)
    assert str(err.value) == "jira: a streamed intake needs a transactional tracker; use apply_intake"
    assert env.tracker(NOW).find_cases(["FIA-T-1"]) == {}


def test_rows_are_planned_and_reported_a_batch_at_a_time_and_each_batch_is_one_record(env: Env) -> None:
    tracker = env.tracker(NOW)
    audit = AuditLog(env.audit_path)
    seen: list[list[str]] = []
    refs = [f"FIA-B-{i}" for i in range(5)]
    counts = intake_streamed(
        rows(*refs), tracker, audit, None, now=NOW, batch_size=2, report=lambda a: seen.append([x.kind for x in a])
    )
    assert seen == [["create", "create"], ["create", "create"], ["create"]] and counts == {"create": 5}
    pending, records = pending_and_records(audit)
    audit.close()
    assert pending == [] and [k for k, _ in records] == [INTAKE_BATCH] * 3
    assert [[e["reference"] for e in d["created"]] for _, d in records] == [refs[:2], refs[2:4], refs[4:]]
    assert all(d["evaluated_at"] == NOW.isoformat() and d["updated"] == [] for _, d in records)
