"""The fake Jira's text-field limit and attachments, as real Jira behaves.

Text limit (enforced in routes.py, ``TEXT_LIMIT``): Jira refuses a description, comment body or
text custom field longer than ``jira.text.field.character.limit`` (32,767 characters by default, Cloud
and Data Center): 400 with ``{"errorMessages": [], "errors": {"<field id or comment>": "The entered text
is too long. It exceeds the allowed limit of 32,767 characters."}}``, the message as Jira writes it
(quoted in many public bug reports, e.g. mozilla/jira-bugzilla-integration#180 and
jenkinsci/jira-plugin#667). API v2 counts the wiki string; for API v3's ADF the fake counts the
document's compact JSON, which is at least as strict.

Attachments (``POST /rest/api/{2,3}/issue/{issueIdOrKey}/attachments``, both documents): multipart/form-data
whose parts are named ``file``; without ``X-Atlassian-Token: no-check`` Jira blocks the request (403, "XSRF
check failed"). The answer is 200 with a JSON array of Attachment objects (Cloud's document says so; DC
10.3's declares one ``AttachmentJsonBean``, another of its array-vs-item defects, patched in validate.py).
The issue then lists them in its ``attachment`` field.
"""

from __future__ import annotations

from typing import Any

from tests.jira_server.routes import ApiError, Ctx

XSRF_FAILED = "XSRF check failed"


def add_attachments(ctx: Ctx) -> tuple[int, Any]:
    issue = ctx.issue()
    if (ctx.headers or {}).get("X-Atlassian-Token", "").lower() != "no-check":
        raise ApiError(403, [XSRF_FAILED])
    uploads = ctx.files.getlist("file") if ctx.files is not None else []
    if not uploads:
        raise ApiError(400, ["No file was attached: the multipart part must be named 'file'."])
    added = []
    for upload in uploads:
        content = upload.read()
        added.append(
            ctx.state.add_attachment(
                issue, upload.filename or "file", content, upload.mimetype or "application/octet-stream"
            )
        )
    return 200, [ctx.render.attachment(issue, a) for a in added]
