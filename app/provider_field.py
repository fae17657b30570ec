"""The tracker's Provider field (issue 15): the provider directory's canonical name of each case's provider.

Redmine and Jira hold it in a custom field that ``setup`` creates and ``check`` checks; casebridge writes
it on create and update (``Connector.use_provider_names``), and the sync job corrects it where the name
the tracker holds differs from the directory's (a case created before the field existed, a directory
entry an agency added or renamed). Only cases the tracker listed this pass carry the field as read
(``TrackedCase.provider``); cached ones are not rewritten, so ``sync --full`` re-checks every case.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial

from casebridge.connectors import Connector
from casebridge.errors import NotFoundError, TrackerError
from casebridge.state.audit import AuditLog
from casebridge.workflows.case_index import provider_namer
from casebridge.workflows.cases import Case, TrackedCase

log = logging.getLogger(__name__)
__all__ = ["ProviderWrite", "noting_drift", "provider_namer", "write_providers"]


@dataclass(frozen=True)
class ProviderWrite:
    key: str
    reference: str
    before: str
    name: str

    def describe(self) -> str:
        return f"set {self.reference}: provider {self.before or '(empty)'!r} -> {self.name!r}"

    def to_json(self) -> dict[str, str]:
        return {"reference": self.reference, "key": self.key, "before": self.before, "provider": self.name}


def noting_drift(
    cases: Iterable[TrackedCase], name_of: Callable[[Case], str], drift: list[ProviderWrite]
) -> Iterator[TrackedCase]:
    """Pass ``cases`` through, noting in ``drift`` each whose Provider field (as read) is not its name."""
    for tracked in cases:
        if tracked.provider is not None:
            name = name_of(tracked.case)
            if tracked.provider != name:
                drift.append(ProviderWrite(tracked.key, tracked.case.reference, tracked.provider, name))
        yield tracked


def write_providers(
    writes: list[ProviderWrite],
    tracker: Connector,
    audit: AuditLog,
    *,
    call: Callable[[Callable[[], None]], None],
    fail: Callable[[str, TrackerError], None],
) -> list[ProviderWrite]:
    """Write each name (a value: a retry or a rerun after a crash writes the same), audit it; a failure
    is that case's, the next pass retries it. Returns the writes that landed."""
    done = []
    for write in writes:
        try:
            call(partial(tracker.set_provider, write.key, write.name))
        except NotFoundError:
            log.warning("%s: no longer in the tracker (key %s); provider not written", write.reference, write.key)
            continue
        except TrackerError as exc:
            log.warning("%s: provider not written: %s", write.reference, exc)
            fail(write.reference, exc)
            continue
        audit.append("sync.provider", write.to_json())
        done.append(write)
    return done
