"""config.example.toml stays in step with the code: the active settings load, and every commented
connector block validates against that connector's config model once uncommented."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from casebridge.cli.config import AppConfig
from casebridge.connectors import connector_class
from casebridge.workflows.escalation import EscalationConfig

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


def commented_blocks() -> list[tuple[str, str]]:
    """Each commented ``# [section]`` block, uncommented, as (first line, TOML text)."""
    lines = EXAMPLE.read_text().splitlines()
    blocks = []
    for i, line in enumerate(lines):
        if re.fullmatch(r"# \[(tracker|liaison)\]", line):
            body = []
            for follow in lines[i:]:
                if not follow.startswith("# ") or follow.startswith("# ---"):
                    break
                body.append(follow[2:])
            blocks.append((f"line {i + 1}", "\n".join(body)))
    return blocks


def test_active_settings_load() -> None:
    app = AppConfig.model_validate(tomllib.loads(EXAMPLE.read_text()))
    assert app.tracker == {"connector": "local", "path": "casebridge.db"}
    EscalationConfig.from_raw(app.escalation)


BLOCKS = commented_blocks()


def test_every_connector_has_a_commented_block() -> None:
    names = {tomllib.loads(text)[next(iter(tomllib.loads(text)))]["connector"] for _, text in BLOCKS}
    assert {"redmine", "jira", "email"} <= names


@pytest.mark.parametrize(("where", "text"), BLOCKS, ids=[w for w, _ in BLOCKS])
def test_commented_block_validates(where: str, text: str) -> None:
    data = tomllib.loads(text)
    (section,) = data
    raw = dict(data[section])
    cls = connector_class(raw.pop("connector"))
    cls.config_model.model_validate(raw)
