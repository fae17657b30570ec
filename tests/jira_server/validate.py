"""Check the fake Jira's traffic against Atlassian's own OpenAPI documents.

The documents are read at test time from ``JIRA_OPENAPI_DIR``, by default ``shared/jira-openapi`` beside
the checkout (``<checkout>/../shared/jira-openapi``), and never copied into the project (README, "Testing":
which documents, where Atlassian publishes them, their SHA-256). Before the first use their SHA-256 are
checked against ``DOCUMENTS`` (and against the directory's ``SHA256SUMS`` when it has one); a missing or
different document raises ``DocumentsUnavailable`` with one line saying what and where to get it. Each is
parsed once per process (the Cloud one is 2.4 MB).

Only the minimal patches listed in that directory's README are applied:
- load with ``spec_validator_cls=None`` (none of the documents passes strict validation);
- ``servers`` rewritten to the fake's base URL;
- DC 10.3: ``IssueBean.fields.additionalProperties`` relaxed from ``{type: object}`` to ``{}`` (it
  rejects the string and number values every real Jira returns); ``IssueUpdateBean.fields`` (the body
  of create/edit) has the same defect and gets the same relaxation.
- DC 10.3 "array-vs-item" defects (README): ``GET /api/2/field`` and ``GET /api/2/project/{key}/statuses``
  answer arrays but declare one item; their 200 schemas are wrapped in ``{type: array, items: ...}``.
  ``POST /api/2/issue/{key}/attachments`` has the same defect (to be added to that README) and the same
  patch.
Four more defects, found here and to be added to that README:
- Both type the multipart body of ``POST .../issue/{key}/attachments`` as a non-object (Cloud: an array
  of ``MultipartFile``; DC: one binary string); it becomes an object with a required binary ``file`` part.
- DC 10.3 declares only HTTP Basic; Data Center personal access tokens are sent as
  ``Authorization: Bearer``. A ``bearer`` scheme is added as an alternative wherever ``basic`` is required.
- A ``204`` answer has no body (RFC 9110 15.3.5), but Cloud v3 gives some 204s ``application/json``
  content; that content is dropped from 204 responses. Likewise a 2xx whose content schema is untyped
  (``{}``, e.g. ``POST /issueLink`` 201, which Jira answers with an empty body) declares no content.
- Jira writes timestamps as ``2026-01-05T10:00:00.000+0000`` (offset without a colon), which the
  documents' ``format: date-time`` (RFC 3339) rejects; ``date-time`` is checked as ISO 8601 instead.
Cloud mode serves ``/rest/api/2/...`` too (the ``jira`` client's default); those requests are checked as
``/rest/api/3/...``, which Atlassian documents as the same operations.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict


def _spec_dir() -> Path:
    """``JIRA_OPENAPI_DIR``, else ``shared/jira-openapi`` beside the checkout."""
    if os.environ.get("JIRA_OPENAPI_DIR"):
        return Path(os.environ["JIRA_OPENAPI_DIR"])
    return Path(__file__).resolve().parents[3] / "shared" / "jira-openapi"


SPEC_DIR = _spec_dir()
CLOUD_SPEC = "jira-cloud-platform-v3.openapi.json"
DC_SPEC = "jira-software-dc-10.3.openapi.json"
# The documents the checks were written against: name -> (SHA-256, where Atlassian publishes it)
DOCUMENTS = {
    CLOUD_SPEC: (
        "1f0911c58a45c712ba748f6b2b71bad688a0d28283296e6d24c7b2cc0d304624",
        "https://developer.atlassian.com/cloud/jira/platform/swagger-v3.v3.json",
    ),
    DC_SPEC: (
        "f326fbc98de4d5212a4becbe330aeecf778d56297bf08e1df6ee999c10fd6449",
        "https://dac-static.atlassian.com/server/jira/platform/jira_software_dc_10003_swagger.v3.json",
    ),
}
PLACEHOLDER_HOST = "http://jira.invalid"
# DC 10.3 operations that answer a JSON array but declare a single item (README: "array-vs-item defects")
DC_ARRAY_RESPONSES = (
    ("get", "/api/2/field"),
    ("get", "/api/2/project/{projectIdOrKey}/statuses"),
    # answers the array of attachments added (as Cloud's document says); DC declares one AttachmentJsonBean
    ("post", "/api/2/issue/{issueIdOrKey}/attachments"),
)
UPLOAD_SCHEMA = {"type": "object", "required": ["file"], "properties": {"file": {"type": "string", "format": "binary"}}}
_lock = threading.Lock()


def _prefix(filename: str) -> str:
    return "/rest/api/3" if filename == CLOUD_SPEC else "/api/2"


class DocumentsUnavailable(RuntimeError):
    """Atlassian's OpenAPI documents are missing (``missing``) or are not the expected bytes."""

    def __init__(self, message: str, *, missing: bool) -> None:
        super().__init__(message)
        self.missing = missing


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _listed_sums(directory: Path) -> dict[str, str]:
    """``SHA256SUMS`` (``sha256sum`` format) of the directory, if it has one."""
    sums = directory / "SHA256SUMS"
    if not sums.is_file():
        return {}
    pairs = (line.split(maxsplit=1) for line in sums.read_text(encoding="utf-8").splitlines() if line.strip())
    return {name.strip().lstrip("*"): digest.lower() for digest, name in pairs}


@cache
def documents_problem() -> DocumentsUnavailable | None:
    """None when both documents are in ``SPEC_DIR`` with the expected SHA-256, else the error, whose
    one-line message says what is wrong and where to get them."""
    missing = [name for name in DOCUMENTS if not (SPEC_DIR / name).is_file()]
    if missing:
        where = "; ".join(f"{name} from {DOCUMENTS[name][1]}" for name in missing)
        return DocumentsUnavailable(
            f"Jira OpenAPI documents missing in {SPEC_DIR} (set JIRA_OPENAPI_DIR): {where} "
            "(README, Testing, lists their SHA-256)",
            missing=True,
        )
    listed = _listed_sums(SPEC_DIR)
    for name, (expected, url) in DOCUMENTS.items():
        actual = _sha256(SPEC_DIR / name)
        for source, digest in (("the README", expected), (f"{SPEC_DIR / 'SHA256SUMS'}", listed.get(name, actual))):
            if actual != digest:
                return DocumentsUnavailable(
                    f"{SPEC_DIR / name}: SHA-256 {actual} is not the {digest} that {source} lists; "
                    f"get Atlassian's document again from {url}",
                    missing=False,
                )
    return None


def require_documents() -> None:
    """Raise ``DocumentsUnavailable`` unless the documents are there and intact."""
    if problem := documents_problem():
        raise problem


@cache
def _raw_spec(filename: str) -> dict[str, Any]:
    require_documents()
    return json.loads((SPEC_DIR / filename).read_text(encoding="utf-8"))


def _patched(filename: str, server_url: str) -> dict[str, Any]:
    spec = copy.deepcopy(_raw_spec(filename))
    spec["servers"] = [{"url": server_url}]
    for item in spec["paths"].values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for status, answer in operation.get("responses", {}).items():
                content = answer.get("content", {})
                untyped = all(media.get("schema", {}) == {} for media in content.values())
                if status == "204" or (status.startswith("2") and content and untyped):
                    answer.pop("content", None)
            if filename == DC_SPEC and operation.get("security") == [{"basic": []}]:
                operation["security"] = [{"basic": []}, {"bearer": []}]
    # both documents type the multipart body of the attachments upload as a non-object (Cloud: an array of
    # MultipartFile, DC: one binary string); a multipart/form-data body is an object of named parts
    # (OpenAPI 3.0, "Special Considerations for multipart Content"), and the operation's own text says the
    # part is named "file"
    upload = spec["paths"][_prefix(filename) + "/issue/{issueIdOrKey}/attachments"]["post"]["requestBody"]
    upload["content"]["multipart/form-data"]["schema"] = UPLOAD_SCHEMA
    if filename == DC_SPEC:
        for method, path in DC_ARRAY_RESPONSES:  # the README's "array-vs-item" defects, for the operations we serve
            content = spec["paths"][path][method]["responses"]["200"]["content"]["application/json"]
            content["schema"] = {"type": "array", "items": content["schema"]}
        for bean in ("IssueBean", "IssueUpdateBean"):  # the same defect on the way in and out
            spec["components"]["schemas"][bean]["properties"]["fields"]["additionalProperties"] = {}
        spec["components"]["securitySchemes"]["bearer"] = {"type": "http", "scheme": "bearer"}
    return spec


def _iso_datetime(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


@cache
def openapi_for(mode: str) -> OpenAPI:
    """The parsed document for ``mode`` ("cloud" | "datacenter"), cached for the process.

    The servers entry is a fixed placeholder host; requests are presented with that host so one parsed
    document serves every fake server (each test gets its own port)."""
    cloud = mode == "cloud"
    spec = _patched(CLOUD_SPEC if cloud else DC_SPEC, PLACEHOLDER_HOST + ("" if cloud else "/rest"))
    config = Config(spec_validator_cls=None, extra_format_validators={"date-time": _iso_datetime})
    return OpenAPI.from_dict(spec, config=config)


@dataclass
class SpecRequest:
    """openapi-core's Request protocol, with the path pattern our router already matched."""

    method: str
    path: str
    path_pattern: str
    parameters: RequestParameters
    body: bytes | None
    content_type: str
    host_url: str = PLACEHOLDER_HOST


@dataclass
class SpecResponse:
    status_code: int
    data: bytes
    headers: Headers
    content_type: str = "application/json"


def spec_path(mode: str, api_path: str) -> str:
    """``/rest/api/2/issue/{issueIdOrKey}`` -> the document's own path for ``mode``."""
    if mode == "cloud":
        return api_path.replace("/rest/api/2/", "/rest/api/3/", 1)
    return api_path.removeprefix("/rest")


def make_request(
    mode: str,
    method: str,
    path: str,
    pattern: str,
    path_params: dict[str, str],
    query: ImmutableMultiDict,
    headers: Headers,
    body: bytes,
    content_type: str,
) -> SpecRequest:
    prefix = "" if mode == "cloud" else "/rest"
    params = RequestParameters(path=path_params, query=query, header=headers, cookie=ImmutableMultiDict())
    return SpecRequest(
        method=method.lower(),
        path=prefix + spec_path(mode, path),
        path_pattern=prefix + spec_path(mode, pattern),
        parameters=params,
        body=body or None,
        content_type=content_type or "application/json",
    )


def check_request(mode: str, request: SpecRequest) -> str | None:
    """None when the request matches the document, else a one-line description of the mismatch."""
    api = openapi_for(mode)
    try:
        with _lock:  # openapi-core's caches are not documented as thread-safe
            api.validate_request(request)
    except Exception as exc:  # every openapi-core failure is a mismatch to report
        return _describe(exc)
    return None


def check_response(mode: str, request: SpecRequest, response: SpecResponse) -> str | None:
    api = openapi_for(mode)
    try:
        with _lock:
            api.validate_response(request, response)
    except Exception as exc:
        return _describe(exc)
    return None


def _describe(exc: BaseException) -> str:
    """The schema errors first (they say what is wrong), then the exception chain, shortened."""
    details: list[str] = []
    chain: list[str] = []
    cause: BaseException | None = exc
    while cause is not None and len(chain) < 4:
        chain.append(type(cause).__name__)
        for error in list(getattr(cause, "schema_errors", None) or [])[:3]:
            path = "/".join(str(p) for p in getattr(error, "absolute_path", []))
            details.append(f"at {path or '(root)'}: {str(getattr(error, 'message', error))[:200]}")
        cause = cause.__cause__
    head = str(exc)[:200]
    return (" | ".join(details) + " || " if details else "") + " <- ".join(chain) + f": {head}"


@cache
def documented_statuses(mode: str, pattern: str, method: str) -> frozenset[str]:
    """Response codes the document lists for this operation ("default" included if present)."""
    raw = _raw_spec(CLOUD_SPEC if mode == "cloud" else DC_SPEC)
    operation = raw["paths"].get(spec_path(mode, pattern), {}).get(method.lower(), {})
    return frozenset(operation.get("responses", {}))
