"""Cutting Markdown to a target's size limit at a marked point, never inside markup.

Targets cap their text fields: Jira at 32,767 characters per description, comment and text custom field
(as it stores them: wiki markup in Data Center, the ADF document's JSON in Cloud); Redmine's text columns
and mail are far larger. A dossier that would not fit is cut *in Markdown*, at the end of a line outside
any fenced code block, and a marker paragraph is added after a blank line (so it never joins a table or
a list); the target then renders the cut Markdown as usual, so escaping is never split and no markup is
left open. The longest prefix whose rendering fits is found by bisection over line ends.

Every dossier is also capped at ``DOSSIER_CAP`` characters of Markdown (50,000 identifiers make 2 MB):
cut the same way, with a marker saying the case in the tracker holds the rest.
"""

from __future__ import annotations

from collections.abc import Callable

from casebridge.workflows.render import md_text

JIRA_TEXT_LIMIT = 32_767  # characters, Jira Cloud and Data Center (jira.text.field.character.limit default)
DOSSIER_CAP = 1_000_000  # characters of Markdown: the whole dossier, as attached or mailed
_FENCES = ("```", "~~~")


def truncation_marker(attached_as: str | None) -> str:
    """The marker paragraph (Markdown): where the whole text is."""
    if attached_as:
        return md_text(f"[truncated: full dossier attached as {attached_as}]")
    return md_text("[truncated: the text exceeds the target's size limit]")


def _line_ends(markdown: str) -> list[int]:
    """Offsets at which the text may be cut: after a line that is outside any fenced code block."""
    ends, fenced, offset = [], False, 0
    for line in markdown.split("\n"):
        offset += len(line) + 1
        if line.lstrip().startswith(_FENCES):
            fenced = not fenced
        if not fenced:
            ends.append(min(offset - 1, len(markdown)))
    return ends


def fit_markdown(
    markdown: str, fits: Callable[[str], bool], marker: str, *, upper: int | None = None
) -> tuple[str, bool]:
    """``markdown`` unchanged when ``fits`` accepts it, else its longest cut (at a line end outside code
    fences) that ``fits`` accepts with ``marker`` appended as its own paragraph; (text, cut?).
    ``fits`` is called O(log lines) times, only on prefixes. When not even the marker fits alone, the
    marker is returned (a target that cannot hold its own marker is misconfigured). ``upper``: no cut
    longer than this many characters of Markdown is tried (it keeps each rendering small)."""
    if (upper is None or len(markdown) <= upper) and fits(markdown):
        return markdown, False
    ends = [end for end in _line_ends(markdown) if upper is None or end <= upper]

    def candidate(i: int) -> str:
        return markdown[: ends[i]].rstrip() + "\n\n" + marker

    lo, hi, best = 0, len(ends) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        if fits(candidate(mid)):
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    return (candidate(best) if best is not None else marker), True


def cap_dossier(markdown: str, cap: int = DOSSIER_CAP) -> str:
    """The dossier at most ``cap`` characters of Markdown (cut at a line end, with a marker)."""
    if len(markdown) <= cap:
        return markdown
    marker = md_text(f"[truncated: the dossier exceeds {cap:,} characters; the case in the tracker holds every value]")
    text, _ = fit_markdown(markdown, lambda md: len(md) <= cap, marker)
    return text


def attachment_name(dedupe_key: str, suffix: str = ".md") -> str:
    """A safe file name for a dossier: ``dossier-`` and the dedupe key with every character outside
    letters, digits, dot, dash and underscore replaced (case data never picks a path or an extension)."""
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_" for ch in dedupe_key)
    return "dossier-" + safe.strip("._")[:150] + suffix
