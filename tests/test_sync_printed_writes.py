"""`casebridge sync` prints a "set ..." line for each write that landed, and none for a write that failed
(the printed lines are the applied actions, found by identity among the plan's: 100,000 first writes
used to be compared with every applied one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from casebridge.connectors.local import LocalConnector
from casebridge.errors import TrackerError
from tests.cli_runner import Cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "cases.json"
NOW = "2026-12-01T09:00:00Z"
FAILS = "FIA-CCW-2026-0151"  # one of the three the sync at NOW writes (intake wrote the others)

pytestmark = pytest.mark.usefixtures("cli_dir")


def test_only_the_writes_that_landed_are_printed(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("intake", str(EXAMPLES), "--now", "2026-12-01T02:00:00Z")[0] == 0
    real = LocalConnector.set_sla_fields

    def refusing_one(self: LocalConnector, key: str, sla: object) -> None:
        # an injected tracker failure for one case (the embedded tracker has no way to refuse one write)
        refused = self.find_case(FAILS)
        if refused is not None and refused.key == key:
            raise TrackerError(f"{FAILS}: refused (injected)")
        real(self, key, sla)  # type: ignore[arg-type]

    monkeypatch.setattr(LocalConnector, "set_sla_fields", refusing_one)
    code, out, err = cli("sync", "--now", NOW)
    assert code == 1 and f"FAILED {FAILS}" in err
    printed = {line.split(":")[0].removeprefix("set ") for line in out.splitlines() if line.startswith("set ")}
    assert printed == {"FIA-CCW-2026-0150", "FIA-CCW-2026-0160"} and "2 updated, 1 failed" in out
