"""The Jira connector passes the shared connector contract, in Cloud and in Data Center mode."""

from __future__ import annotations

import pytest

from casebridge.connectors.jira import JiraConnector
from tests.contract import ConnectorContract

pytest_plugins = ["tests.jira_fixtures"]


class TestJiraContract(ConnectorContract):
    @pytest.fixture
    def connector(self, make_connector) -> JiraConnector:  # both modes: jira_server is parametrised
        return make_connector()
