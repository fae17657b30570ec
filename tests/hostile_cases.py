"""A corpus of hostile case data: every string here must render as inert text in every target.

Each entry is (name, text). ``hostile_case(text)`` puts the text into every free-text field of a
valid case (trimmed to the field's limit), so one dossier exercises headings, bullets, tables and
paragraphs at once. ``HUGE`` bypasses validation to check the dossier caps runaway fields.
"""

from __future__ import annotations

from typing import Any

from casebridge.workflows.cases import Case
from tests.factories import make_case

HOSTILE: list[tuple[str, str]] = [
    ("html", '<b>bold</b> <i>it</i> <a href="https://evil.example/">click</a> &amp; &lt;x&gt; &#60;y&#62;'),
    ("script", "<script>alert('xss')</script><img src=x onerror=alert(1)><svg onload=alert(2)>"),
    ("style-iframe", '<style>body{display:none}</style><iframe src="javascript:alert(3)"></iframe>'),
    ("markdown", "# Heading\n\n**bold** _it_ `code` [link](https://evil.example/) ![img](https://evil.example/x.png)"),
    ("markdown-blocks", "- item\n1. one\n> quote\n    indented code\n---\n===\n| a | b |\n|---|---|"),
    ("markdown-autolink", "<https://evil.example/> www.evil.example https://evil.example/path?q=1"),
    (
        "jira",
        "h1. Heading\n{code}x{code} {noformat}y{noformat} {color:red}red{color} [~admin] [Click|https://evil.example]",
    ),
    ("jira-inline", "*bold* _it_ -strike- +under+ ^sup^ ~sub~ ??cite?? {{mono}} (y) (!) :) ;) ---- \\\\ br"),
    ("jira-table", "||head||head||\n|cell|cell|\nbq. quote\n# numbered\n* bullet"),
    ("textile", 'h2. Heading\np. para\n"link":https://evil.example !https://evil.example/x.png! @code@ %{color:red}x%'),
    ("textile-inline", "*bold* _it_ -del- +ins+ ^sup^ ~sub~ ==notextile== <notextile>raw</notextile> bc. code"),
    ("redmine-links", "#1 r42 commit:abc123 attachment:x.png @admin [[Wiki]] {{macro_list}} document#1"),
    ("control", "tab\there\x00nul\x07bell\x1b[31mansi\x7fdel\x85nel\u2028ls\r\ncrlf\x0bvt"),
    ("rtl", "مرحبا بالعالم — שלום עולם — ابو الحسن"),
    ("bidi-override", "invoice\u202egpj.exe\u202c and \u2066isolate\u2069 ref"),
    ("backslashes", "C:\\Users\\x\\ \\*not bold\\* \\\\ \\"),
    ("entities", "&nbsp; &#x3C;script&#x3E; &amp;lt; &copy; &#0;"),
    ("email-header", "Subject line\r\nBcc: victim@example.com\r\n\r\nbody"),
]

FIELD_LIMITS = {
    "title": 255,
    "offence": 2000,
    "facts": 2000,
    "statute": 255,
    "penalty": 255,
    "officer": 255,
    "requesting_agency": 255,
    "provider": 255,
    "provider_legal_entity": 255,
    "provider_ticket": 255,
    "court_order_ref": 255,
    "court": 255,
    "refusal_text": 2000,
    "handling_restrictions": 2000,
    "ncb_action": 2000,
    "article3_checked_by": 255,
}


def hostile_case(text: str, reference: str = "FIA-HOSTILE-1", **overrides: Any) -> Case:
    fields: dict[str, Any] = {name: text[:limit] for name, limit in FIELD_LIMITS.items()}
    fields["identifiers"] = [{"type": "username", "value": text[:255]}, {"type": "url", "value": text[:255]}]
    fields.update(overrides)
    return make_case(reference, **fields)


def long_case(reference: str = "FIA-LONG-1") -> Case:
    """Every free-text field at its maximum length (the model's limits)."""
    word = "lorem<b>ipsum</b>*x* "
    return hostile_case((word * 200)[:2000], reference)


def huge_case(reference: str = "FIA-HUGE-1") -> Case:
    """A 200,000-character field that skipped validation (a tracker can hold anything)."""
    return make_case(reference).model_copy(update={"facts": "<script>x</script>" * 12_000})
