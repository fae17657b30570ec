"""Jira in bulk (issue 16): many references looked up in one search, many issues created in one request.

``find_cases``: one JQL search per ``LOOKUP_CHUNK`` references (``cf[N] ~ a OR cf[N] ~ b ...``,
answers checked for exact equality), instead of one search per reference.

``create_cases``: the batch's existing references found first (``find_cases``), the missing ones
created with ``POST issue/bulk`` (Jira takes at most ``BULK_LIMIT`` issues a request), then each new
issue walked to its state. Jira's bulk create is not atomic: it creates the valid issues and reports
the others in ``errors``; the created ones are returned and the first rejection is raised after
them. A lost answer is settled by searching the chunk's references: those found are not sent again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from casebridge.errors import RejectedError
from casebridge.workflows.cases import Case, TrackedCase

if TYPE_CHECKING:
    from casebridge.connectors.jira.cases import CaseOps

log = logging.getLogger(__name__)

LOOKUP_CHUNK = 50  # references per search (the JQL stays well under Jira's length limits)
BULK_LIMIT = 50  # issues per POST issue/bulk: Jira's documented maximum


def find_cases(ops: CaseOps, references: Iterable[str]) -> dict[str, TrackedCase]:
    refs, found = list(dict.fromkeys(references)), {}
    fields = ops.case_field_list()
    for start in range(0, len(refs), LOOKUP_CHUNK):
        chunk = refs[start : start + LOOKUP_CHUNK]
        for ref, issue in ops.by_references(ops.cfg.project, "reference", chunk, fields).items():
            tracked = ops.tracked(issue)
            if tracked is not None:
                found[ref] = tracked
    return found


def create_cases(ops: CaseOps, cases: Iterable[Case], states: Mapping[str, str] | None) -> Iterator[TrackedCase]:
    """Each case, existing or created, in order (a rejected one left out and raised after the rest)."""
    cases = list(cases)
    existing = find_cases(ops, [c.reference for c in cases])
    missing = [c for c in cases if c.reference not in existing]
    keys: dict[str, str] = {}
    rejected: list[RejectedError] = []
    for start in range(0, len(missing), BULK_LIMIT):
        made, refused = _create_chunk(ops, missing[start : start + BULK_LIMIT])
        keys.update(made)
        rejected += refused
    initial = ops.c.workflow.initial
    for case in cases:
        ref = case.reference
        if ref in existing:
            log.info("jira: case %s exists as %s; not created again", ref, existing[ref].key)
            yield existing[ref]
        elif ref in keys:
            state = (states or {}).get(ref)
            if state and state != initial:
                for step in ops.path(initial, state):
                    ops.transition(keys[ref], step)
            yield ops.get(keys[ref])
    if rejected:
        raise rejected[0]


def _create_chunk(ops: CaseOps, chunk: list[Case]) -> tuple[dict[str, str], list[RejectedError]]:
    """(key by reference of the issues created, rejections). Sends again only what did not land."""
    keys: dict[str, str] = {}
    rejected: list[RejectedError] = []
    pending = list(chunk)
    while pending:
        sent = pending

        def landed(sent: list[Case] = sent) -> dict[str, Any] | None:
            found = find_cases(ops, [c.reference for c in sent])
            return {"landed": {ref: t.key for ref, t in found.items()}} if found else None

        body = {"issueUpdates": [{"fields": _fields(ops, c)} for c in sent]}
        answer = ops.c.http().call("POST", "issue/bulk", json=body, landed=landed, case=sent[0].reference)
        if "landed" in answer:  # a lost answer: what landed is known; the rest is sent again
            keys.update(answer["landed"])
            pending = [c for c in sent if c.reference not in answer["landed"]]
            continue
        failed = {int(e.get("failedElementNumber", -1)): e for e in answer.get("errors") or []}
        created = iter(answer.get("issues") or [])  # in request order, the failed elements left out
        for n, case in enumerate(sent):
            if n in failed:
                rejected.append(_rejection(case, failed[n]))
            else:
                keys[case.reference] = next(created)["key"]
        pending = []
    return keys, rejected


def _fields(ops: CaseOps, case: Case) -> dict[str, Any]:
    return {"project": {"key": ops.cfg.project}, "issuetype": {"name": ops.cfg.issue_type}, **ops.case_fields(case)}


def _rejection(case: Case, error: dict[str, Any]) -> RejectedError:
    detail = error.get("elementErrors") or {}
    messages = [*detail.get("errorMessages", []), *(f"{k}: {v}" for k, v in (detail.get("errors") or {}).items())]
    text = "; ".join(str(m) for m in messages) or "no reason given"
    return RejectedError(
        f"jira: bulk create rejected {case.reference} ({error.get('status')}): {text}", case=case.reference
    )
