"""Jira's 32,767-character limit on text fields, and the attachment that carries what did not fit.

Jira refuses (400, ``errors: {field: "The entered text is too long. It exceeds the allowed limit of 32,767
characters."}``) a description, comment body or text custom field longer than its
``jira.text.field.character.limit`` (32,767 by default, Cloud and Data Center). What counts is what Jira
stores: the wiki markup (Data Center, API v2) or the ADF document as JSON (Cloud, API v3), so each text is
measured *after* rendering. casebridge never sends one that is too long:

- a dossier (the liaison issue's description) that does not fit is cut at a marked point
  (``workflows.text_fit``: at a line end of the Markdown, never inside markup or an escape) that says
  ``[truncated: full dossier attached as dossier-<key>.md]``, and the whole dossier (itself capped at
  ``text_fit.DOSSIER_CAP``) is attached to the issue as that file (``POST issue/{key}/attachments``,
  multipart ``file``, ``X-Atlassian-Token: no-check``). The attachment is made by
  ``complete_escalation``, which the escalation run calls after every post and again on the run after a
  crash: it looks for the file first, so it is attached once;
- a comment or a case description is cut the same way, with a marker saying it was cut;
- the case's machine-readable data (a text custom field read back verbatim) cannot be cut: a case whose
  data does not fit is refused with a message saying what to do (it takes tens of thousands of
  identifiers; every other field is capped by the model).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from casebridge.connectors import Escalation, PostedEscalation
from casebridge.errors import RejectedError
from casebridge.workflows.text_fit import (
    JIRA_TEXT_LIMIT,
    attachment_name,
    fit_markdown,
    truncation_marker,
)

if TYPE_CHECKING:
    from casebridge.connectors.jira.cases import CaseOps

log = logging.getLogger(__name__)
DOSSIER_TYPE = "text/markdown; charset=utf-8"


def stored_length(rendered: Any) -> int:
    """Characters Jira counts: a wiki string's length, or the ADF document's JSON."""
    if isinstance(rendered, str):
        return len(rendered)
    return len(json.dumps(rendered, separators=(",", ":"), ensure_ascii=False))


class TextLimits:
    def __init__(self, ops: CaseOps, limit: int = JIRA_TEXT_LIMIT) -> None:
        self.ops = ops
        self.limit = limit

    @property
    def upper(self) -> int:
        """Markdown longer than this is cut without rendering it whole (rendering never shrinks text
        to half: escapes and table rules are all it drops)."""
        return 2 * self.limit

    def cut_needed(self, markdown: str) -> bool:
        """Exactly when ``rich`` cuts (without a reserve)."""
        return len(markdown) > self.upper or not self.fits(markdown)

    def fits(self, markdown: str, reserve: int = 0) -> bool:
        return stored_length(self.ops.rich(markdown)) <= self.limit - reserve

    def rich(self, markdown: str, attached_as: str | None = None, *, reserve: int = 0) -> tuple[Any, bool]:
        """The rendered text within the limit (less ``reserve`` characters the caller adds, e.g. a
        mention), and whether it had to be cut."""
        text, cut = fit_markdown(
            markdown, lambda md: self.fits(md, reserve), truncation_marker(attached_as), upper=self.upper
        )
        if cut:
            log.info("jira: text of %d characters cut to fit %d", len(markdown), self.limit)
        return self.ops.rich(text), cut

    def check_plain(self, field: str, text: str, reference: str) -> None:
        """Machine data that cannot be cut: refused when it does not fit."""
        size = stored_length(self.ops.plain(text))
        if size > self.limit:
            raise RejectedError(
                f"jira: case {reference}: its data ({field}) is {size:,} characters, over Jira's "
                f"{self.limit:,}-character limit for text fields; list fewer identifiers in this case "
                "(split it), or raise jira.text.field.character.limit on the Jira server",
                case=reference,
            )

    # -- the dossier attachment --------------------------------------------------------------------
    def dossier_description(self, escalation: Escalation) -> Any:
        rendered, _ = self.rich(escalation.markdown, attachment_name(escalation.dedupe_key))
        return rendered

    def complete(self, escalation: Escalation, posted: PostedEscalation) -> None:
        """Attach the whole dossier when the description had to be cut (once: looked for first)."""
        if not self.cut_needed(escalation.markdown):
            return
        name = attachment_name(escalation.dedupe_key)
        if name in self.attachments(posted.key):
            return
        http = self.ops.c.http()
        data = escalation.markdown.encode("utf-8")
        files = {"file": (name, data, DOSSIER_TYPE)}

        def landed() -> list[Any] | None:
            return [] if name in self.attachments(posted.key) else None

        http.call("POST", f"issue/{posted.key}/attachments", files=files, landed=landed, case=escalation.case_reference)
        log.info("jira: full dossier attached to %s as %s (%d bytes)", posted.key, name, len(data))

    def attachments(self, key: str) -> set[str]:
        issue = self.ops.c.http().call("GET", f"issue/{key}", params={"fields": "attachment"}) or {}
        return {str(a.get("filename")) for a in (issue.get("fields") or {}).get("attachment") or []}
