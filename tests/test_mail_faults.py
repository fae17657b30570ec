"""Kill -9 harness for the mail liaison target: no escalation is ever lost (issue 11, item 2).

`casebridge escalate` (a real process, the real CLI) posts the examples' three escalations to an SMTP
server on loopback whose DATA phase takes 300 ms (the message is stored when DATA ends, the 250 comes
300 ms later); it is SIGKILLed at a random moment around the k-th message, then one rerun completes.
After every run: each escalation arrived at least once (0 lost); every key that arrived twice carries
the same Message-ID both times and was reported by the rerun as ``resent``; the cases are escalated; and
the audit log agrees with the sent-record and the tracker (tests/audit_gaps.py): every mail sent has its
``escalation.posted`` and ``escalation.handled`` records, every case its link and one comment (0 gaps).

Figures: ``CASEBRIDGE_MAIL_KILL_RUNS=100 pytest tests/test_mail_faults.py -s`` (default 12 runs; from 40 runs
the harness also checks that it really hit the window between the end of DATA and the 250).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.workflows import load_workflow
from tests.audit_gaps import Gaps, dump, escalation_gaps, mail_held
from tests.escalate_e2e import EXAMPLES, EXPECTED_KEYS, NOW, STATE_AFTER, spawn, write_config
from tests.test_email import free_port
from tests.test_escalate_targets import case_states, messages

RUNS = int(os.environ.get("CASEBRIDGE_MAIL_KILL_RUNS", "12"))
SEED = int(os.environ.get("CASEBRIDGE_MAIL_KILL_SEED", "20261205"))
DATA_DELAY = 0.3


class SlowSink:
    """Keeps each message when its DATA ends and answers 250 only ``DATA_DELAY`` seconds later."""

    def __init__(self) -> None:
        self.messages: list[tuple[Any, bool, bool]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope, False, False))
        await asyncio.sleep(DATA_DELAY)
        return "250 OK queued"


@pytest.fixture(scope="module")
def slow_server() -> Iterator[tuple[SlowSink, int]]:
    sink, port = SlowSink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


def _template(folder: Path, port: int) -> Path:
    folder.mkdir()
    write_config(
        folder,
        {"connector": "local", "path": "casebridge.db"},
        {
            "connector": "email",
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "from": "casebridge@fia.example.gov.pk",
            "to": ["ncb-liaison@ncb.example.org"],
            "sent_record": "casebridge-mail.sqlite",
        },
    )
    intake = spawn(folder, "intake", str(EXAMPLES))
    _, err = intake.communicate(timeout=120)
    assert intake.returncode == 0, err
    return folder


def _kill_around(child: Any, sink: SlowSink, start: int, nth: int, delay: float) -> bool:
    """SIGKILL ``child`` ``delay`` s after the ``nth`` message of this run arrived (or when it exits)."""
    deadline = time.monotonic() + 60
    while len(sink.messages) - start < nth and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(delay)
    if child.poll() is not None:
        return False
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    return True


def test_kill_9_never_loses_a_mail_escalation(tmp_path: Path, slow_server: tuple[SlowSink, int]) -> None:
    sink, port = slow_server
    template = _template(tmp_path / "template", port)
    rng = random.Random(SEED)
    figures: Counter[str] = Counter()
    problems: list[str] = []
    for run in range(RUNS):
        folder = shutil.copytree(template, tmp_path / f"run{run}")
        start = len(sink.messages)
        child = spawn(folder, "escalate", "--yes", "--now", NOW)
        killed = _kill_around(child, sink, start, rng.randint(1, 3), rng.uniform(0, 0.45))
        child.communicate()
        figures["killed"] += killed
        rerun = spawn(folder, "escalate", "--yes", "--json", "--now", NOW)
        out, err = rerun.communicate(timeout=300)
        if rerun.returncode != 1:  # 1: the examples' blocked case
            problems.append(f"run {run}: rerun exited {rerun.returncode}: {err[-500:]}")
            continue
        outcomes = {o["dedupe_key"]: o["status"] for o in json.loads(out)["outcomes"]}
        # a rerun that could not post (e.g. an SMTP timeout on a loaded machine) says why
        problems += [
            f"run {run}: rerun: {o['dedupe_key']}: {o['error']}" for o in json.loads(out)["outcomes"] if o["error"]
        ]
        figures["resent_reported"] += sum(1 for s in outcomes.values() if s == "resent")
        arrived = messages(_Run(sink, start))  # type: ignore[arg-type]
        per_key = Counter(m["X-Casebridge-Dedupe-Key"] for m in arrived)
        figures["messages"] += len(arrived)
        for key in EXPECTED_KEYS:
            if per_key[key] == 0:
                figures["lost"] += 1
                problems.append(f"run {run}: {key} never arrived")
            elif per_key[key] > 1:
                figures["duplicates"] += per_key[key] - 1
                ids = {m["Message-ID"] for m in arrived if m["X-Casebridge-Dedupe-Key"] == key}
                if len(ids) != 1:
                    problems.append(f"run {run}: {key} arrived with Message-IDs {sorted(ids)}")
                if outcomes.get(key) != "resent":
                    problems.append(f"run {run}: {key} arrived twice, reported {outcomes.get(key)!r}")
        if set(per_key) - EXPECTED_KEYS:
            problems.append(f"run {run}: unexpected keys {sorted(set(per_key) - EXPECTED_KEYS)}")
        states = case_states(folder)
        if any(states[ref] != state for ref, state in STATE_AFTER.items()):
            problems.append(f"run {run}: case states {states}")
        gaps = _gaps(folder)
        figures["audit_gaps"] += len(gaps.audit_gaps)
        figures["missing_links"] += len(gaps.missing_links) + len(gaps.missing_comments)
        if gaps.count:
            problems.append(f"run {run}: {dump(gaps)}")
    print(
        f"\nmail kill -9 harness: {RUNS} runs, {figures['killed']} killed mid-run, {figures['messages']} messages "
        f"for {RUNS * len(EXPECTED_KEYS)} escalations, {figures['duplicates']} duplicates (same Message-ID), "
        f"{figures['resent_reported']} reported as resent, {figures['lost']} lost, "
        f"{figures['audit_gaps']} audit gaps, {figures['missing_links']} missing links or comments"
    )
    assert problems == [], problems[:10]
    assert figures["lost"] == 0 and figures["audit_gaps"] == 0 and figures["missing_links"] == 0
    assert figures["duplicates"] <= figures["resent_reported"]
    if RUNS >= 40:  # the harness must really have hit the window between the end of DATA and the 250
        assert figures["killed"] >= RUNS // 2 and figures["duplicates"] > 0, figures


def _gaps(folder: Path) -> Gaps:
    tracker = LocalConnector(LocalConfig(path=str(folder / "casebridge.db")), load_workflow("lawful-access"))
    try:
        held = mail_held(folder / "casebridge-mail.sqlite")
        return escalation_gaps(tracker, folder / "casebridge-state.audit.db", held, STATE_AFTER)
    finally:
        tracker.close()


class _Run:
    """The messages of one run (the sink is shared by all runs)."""

    def __init__(self, sink: SlowSink, start: int) -> None:
        self.messages = sink.messages[start:]
