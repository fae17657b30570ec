"""A stateful fake Jira (Cloud and Data Center) checked against Atlassian's OpenAPI documents."""

from tests.jira_server.app import JiraServer

__all__ = ["JiraServer"]
