"""Bulk lookup of Redmine issues by the values of one custom field (the case reference).

One filtered listing per chunk of values (``v[cf_N][]=a&v[cf_N][]=b``, operator ``=``) instead of one
request per value, and independent of how many issues the project holds (a full listing of a project
with 100,000 issues would be 1,000 pages for a ten-row intake file). A page holds at most 100 issues; a
chunk with duplicates can exceed that, so pages are followed.

Chunks are small for a reason found the hard way: Redmine keeps the issue query's filters in the
session, a 4 KiB cookie, even for API-key requests, and answers 500 (CookieOverflow) once the values
add up to about 1,700 bytes (measured on Redmine 5.0: 82 references of 17 characters pass, 86 fail).
Chunks stay under 1,000 bytes of values (about 60 such references), and under 6,000 characters of
query string (puma refuses more than 10 KiB; proxies often cap request lines near 8 KiB).

Like the single-value search, a filter Redmine silently ignores (field not "used as a filter") is
detected: the answer then holds issues carrying none of the values asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import quote

from casebridge.errors import SchemaMissing

log = logging.getLogger(__name__)

Get = Callable[..., dict[str, Any]]
PAGE = 100  # Redmine's cap on ``limit``
CHUNK_VALUES = 100
CHUNK_SESSION_BYTES = 1000  # sum of (UTF-8 length + 3) per value; Redmine fails near 1,700 (see above)
CHUNK_URL_CHARS = 6000  # encoded values per request; well under puma's 10 KiB query limit


def chunks(values: Iterable[str], field_id: int) -> Iterator[list[str]]:
    """Distinct values in order, grouped so each request stays short."""
    seen: set[str] = set()
    chunk: list[str] = []
    session = url = 0
    for value in values:
        if value in seen:
            continue
        seen.add(value)
        in_session = len(value.encode("utf-8")) + 3
        in_url = len(f"&v%5Bcf_{field_id}%5D%5B%5D=") + len(quote(value, safe=""))
        full = len(chunk) >= CHUNK_VALUES
        if chunk and (full or session + in_session > CHUNK_SESSION_BYTES or url + in_url > CHUNK_URL_CHARS):
            yield chunk
            chunk, session, url = [], 0, 0
        chunk.append(value)
        session += in_session
        url += in_url
    if chunk:
        yield chunk


def ignored_filter(field_name: str) -> SchemaMissing:
    return SchemaMissing(
        f"Redmine ignored the filter on custom field {field_name!r} and returned other issues: "
        f"Administration > Custom fields > {field_name}: tick 'Used as a filter'"
    )


def search_values(
    get: Get, project_id: int, field_id: int, field_name: str, values: Iterable[str]
) -> Iterator[dict[str, Any]]:
    """Every issue of the project (any status) whose custom field equals one of ``values`` exactly,
    sorted by id within each chunk. Raises SchemaMissing when Redmine ignores the filter."""
    cf = f"cf_{field_id}"
    for chunk in chunks(values, field_id):
        wanted = set(chunk)
        folded = {v.casefold() for v in chunk}
        offset = 0
        while True:
            found = get(
                "/issues.json",
                project_id=project_id,
                sort="id",
                limit=PAGE,
                offset=offset,
                **{"f[]": ["status_id", cf], "op[status_id]": "*", f"op[{cf}]": "=", f"v[{cf}][]": chunk},
            )
            issues = found["issues"]
            for issue in issues:
                value = field_value(issue, field_id)
                if value in wanted:
                    yield issue
                elif str(value).casefold() not in folded:
                    # a case-insensitive database matching 'abc' for 'ABC' is fine; anything else is not
                    raise ignored_filter(field_name)
            offset += len(issues)
            if not issues or offset >= int(found.get("total_count", 0)):
                break


def field_value(issue: dict[str, Any], field_id: int) -> Any:
    for f in issue.get("custom_fields", []):
        if f["id"] == field_id:
            return f.get("value")
    return None
