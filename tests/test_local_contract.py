"""The embedded tracker passes the connector contract (it is the reference implementation)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.workflows import load_workflow
from tests.contract import ConnectorContract


class TestLocalContract(ConnectorContract):
    provider_field = False

    @pytest.fixture
    def connector(self, tmp_path: Path) -> Iterator[LocalConnector]:
        conn = LocalConnector(LocalConfig(path=str(tmp_path / "tracker.db")), load_workflow())
        yield conn
        conn.close()
