"""Test-local helpers for the Redmine tests."""

from __future__ import annotations

from casebridge.workflows import load_workflow
from casebridge.workflows.model import Workflow


def load_test_workflow() -> Workflow:
    """The bundled default workflow (lawful-access), as a deployment would load it."""
    return load_workflow("lawful-access")
