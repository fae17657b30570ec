"""The README's worked example is replayed for real: every ``$ casebridge ...`` line of its console blocks
runs in order on a fresh embedded tracker, and what it prints must be what the README shows. A README
that drifts from the code fails here (edit the README, or the code, until they agree).

Matching: each shown line must appear in order in stdout (or anywhere in stderr, where warnings go);
a line ``...`` skips any number of lines; a line ending in ``...`` matches by its beginning. Without a
trailing ``...`` the command may print nothing more than what is shown.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_runner import Cli

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def console_steps(text: str) -> Iterator[tuple[list[str], list[str]]]:
    """(argv after `casebridge`, the lines shown under it) for each command of every console block."""
    for block in re.findall(r"^```console\n(.*?)^```", text, flags=re.S | re.M):
        command: list[str] | None = None
        shown: list[str] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command is not None:
                    yield command, shown
                words = shlex.split(line[2:], comments=True)
                assert words[0] == "casebridge", line
                command, shown = words[1:], []
            else:
                shown.append(line)
        if command is not None:
            yield command, shown


def _matches(shown: str, line: str) -> bool:
    if shown.endswith("...") and shown.strip() != "...":
        return line.startswith(shown[:-3].rstrip())
    return line == shown


def check_output(command: list[str], shown: list[str], out: str, err: str) -> None:
    lines, errors = out.splitlines(), err.splitlines()
    at, gap = 0, False
    for expected in shown:
        if expected.strip() == "...":
            gap = True
            continue
        if any(_matches(expected, e) for e in errors):
            continue
        while at < len(lines) and not _matches(expected, lines[at]):
            assert gap, f"casebridge {' '.join(command)}: expected {expected!r}, got {lines[at]!r}\n{out}{err}"
            at += 1
        assert at < len(lines), f"casebridge {' '.join(command)}: {expected!r} not printed\n{out}{err}"
        at, gap = at + 1, False
    assert gap or at == len(lines), f"casebridge {' '.join(command)}: more than the README shows: {lines[at:]}"


def test_readme_worked_example_is_what_casebridge_prints(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the README's paths (examples/cases.json) are relative to the repository
    steps = list(console_steps(README.read_text(encoding="utf-8")))
    assert len(steps) >= 8
    homes = {os.environ["XDG_STATE_HOME"]: "~/.local/state", os.environ["XDG_DATA_HOME"]: "~/.local/share"}
    for command, shown in steps:
        _, out, err = cli(*command)
        for real, shown_as in homes.items():
            out, err = out.replace(real, shown_as), err.replace(real, shown_as)
        check_output(command, shown, out, err)


def test_the_matcher_notices_a_difference() -> None:
    with pytest.raises(AssertionError, match="expected 'b'"):
        check_output(["x"], ["a", "b"], "a\nc\n", "")
    with pytest.raises(AssertionError, match="more than the README shows"):
        check_output(["x"], ["a"], "a\nb\n", "")
    check_output(["x"], ["a", "...", "d"], "a\nb\nc\nd\n", "")
    check_output(["x"], ["a...", "warn"], "abc\n", "warn\n")
