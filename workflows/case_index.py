"""Cases x provider directory x identifier index: intake's provider check and overlap warnings, the
pairs of open cases the sync job links, and what ``find`` lists. Pure: callers pass the cases in."""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from casebridge.errors import IntakeError
from casebridge.workflows.cases import Case, TrackedCase
from casebridge.workflows.directory import Directory
from casebridge.workflows.identifiers import IdentifierIndex, Key, identifier_keys
from casebridge.workflows.model import Workflow

WARN_NAMES = 5  # open cases an overlap warning names before "and N more"


def canonical_provider(case: Case, directory: Directory) -> str | None:
    """The directory's name for the case's provider (by provider, else by legal entity), or None."""
    found = directory.resolve(case.provider) or directory.resolve(case.provider_legal_entity)
    return None if found is None else found.name


def provider_namer(directory: Callable[[], Directory]) -> Callable[[Case], str]:
    """A case's provider as the tracker's Provider field and the report name it: the directory's canonical
    name, else the case's own text. ``directory`` is called on the first case (lazily loaded). The name
    depends on the provider and legal entity texts only: each pair is resolved once (a report over
    100,000 cases names a few dozen providers)."""
    known: dict[tuple[str, str | None], str] = {}

    def name_of(case: Case) -> str:
        texts = (case.provider, case.provider_legal_entity)
        name = known.get(texts)
        if name is None:
            name = known[texts] = canonical_provider(case, directory()) or case.provider
        return name

    return name_of


def case_keys(case: Case, directory: Directory) -> set[Key]:
    return identifier_keys(case, canonical_provider(case, directory))


def check_providers(cases: Iterable[tuple[str, Case]], directory: Directory, *, strict: bool) -> list[str]:
    """A warning per case whose provider is not in the directory (``where: provider: ...``), naming the
    nearest entries; with ``strict`` the first one raises IntakeError instead."""
    warnings = []
    for where, case in cases:
        if canonical_provider(case, directory) is not None:
            continue
        near = directory.nearest(case.provider)
        hint = f"nearest: {', '.join(near)}" if near else "no close entry"
        message = (
            f"{where}: provider: {case.provider!r} is not in the provider directory ({hint}); "
            "fix the spelling or add it in a [providers] extra file"
        )
        if strict:
            raise IntakeError(message)
        warnings.append(message)
    return warnings


def is_open(workflow: Workflow, state: str) -> bool:
    known = workflow.states.get(state)
    return known is None or not known.terminal


def build_index(cases: Iterable[TrackedCase], directory: Directory) -> IdentifierIndex:
    index = IdentifierIndex()
    for tracked in cases:
        index.add(tracked.case.reference, case_keys(tracked.case, directory))
    return index


def overlap_warnings(
    new: Iterable[tuple[str, Case]], tracked: Iterable[TrackedCase], directory: Directory, workflow: Workflow
) -> list[str]:
    """A warning per new case naming an identifier that an open case (another reference) already names:
    one in the tracker, or one earlier in the same intake."""
    return OverlapWatch(tracked, directory, workflow).warnings(new)


class OverlapWatch:
    """``overlap_warnings`` a batch at a time: each batch is checked against the open tracked cases and
    every earlier batch (a streamed intake keeps the identifiers, not the cases).

    Per identifier it keeps the references naming it and, sorted, the WARN_NAMES + 1 smallest: a warning
    names the first few and counts the rest. Copying and sorting every reference for each new case was
    quadratic: an intake of 16,000 cases naming one VPN exit address took 26 s of CPU against 2 s."""

    def __init__(self, tracked: Iterable[TrackedCase], directory: Directory, workflow: Workflow) -> None:
        self.directory = directory
        self._refs: dict[Key, set[str]] = {}
        self._least: dict[Key, list[str]] = {}  # the WARN_NAMES + 1 smallest of _refs[key] (2 or more), sorted
        for t in tracked:
            if is_open(workflow, t.state):
                self._add(t.case.reference, case_keys(t.case, directory))

    def _add(self, reference: str, keys: Iterable[Key]) -> None:
        for key in keys:
            refs = self._refs.setdefault(key, set())
            if reference in refs:
                continue
            refs.add(reference)
            if len(refs) == 1:  # most identifiers are named once: no list of the smallest (``_named``)
                continue
            least = self._least.get(key)
            if least is None:
                self._least[key] = sorted(refs)
            elif len(least) <= WARN_NAMES or reference < least[-1]:
                insort(least, reference)
                del least[WARN_NAMES + 1 :]

    def _named(self, key: Key, but: str) -> tuple[list[str], int]:
        """(the first WARN_NAMES references naming ``key`` other than ``but``, sorted; how many there are)."""
        refs = self._refs.get(key)
        if not refs:
            return [], 0
        count = len(refs) - (but in refs)
        least = self._least.get(key) or list(refs)  # none kept: one reference
        return [r for r in least if r != but][:WARN_NAMES], count

    def warnings(self, new: Iterable[tuple[str, Case]]) -> list[str]:
        warnings = []
        for where, case in new:
            keys = case_keys(case, self.directory)
            # most keys are named by no other case: sort only the ones that are (same order, same text)
            shared = [(key, found) for key in keys if (found := self._named(key, case.reference))[1]]
            for key, (first, count) in sorted(shared, key=lambda pair: pair[0]):
                # a shared identifier may be named by hundreds of cases: the warning names a few
                names = ", ".join(first)
                if count > WARN_NAMES:
                    names += f" and {count - WARN_NAMES} more (`casebridge find` lists them)"
                warnings.append(f"{where}: {case.reference} names {key}, already named by open case {names}")
            self._add(case.reference, keys)
        return warnings


@dataclass(frozen=True, order=True)
class LinkPair:
    """Two open cases naming the same identifier (keys ordered so a pair has one spelling)."""

    key_a: str
    key_b: str
    reference_a: str
    reference_b: str
    identifier: str


def link_pairs(cases: Iterable[TrackedCase], directory: Directory, workflow: Workflow) -> list[LinkPair]:
    """The links that join open cases sharing an identifier, once per pair (the first shared key named).

    Each case is linked to the first open case (by reference) naming the identifier: a star of n - 1
    links, not every pair. Every pair would be n(n - 1)/2 relations: 1,500 cases naming one VPN exit
    address would get 1.1 million, and each case a list of 1,499 links nobody reads; from the first
    case, every other one is one click away (and `casebridge find` lists them all)."""
    by_ref = {t.case.reference: t for t in cases if is_open(workflow, t.state)}
    return _star_pairs({ref: (t.key, case_keys(t.case, directory)) for ref, t in by_ref.items()})


def _star_pairs(by_ref: dict[str, tuple[str, set[Key]]]) -> list[LinkPair]:
    """``link_pairs`` from each open case's reference -> (tracker key, identifier keys)."""
    index = IdentifierIndex()
    for ref, (_, keys) in by_ref.items():
        index.add(ref, keys)
    pairs: dict[tuple[str, str], LinkPair] = {}
    for key, refs in index.shared():
        first, *others = sorted(refs)
        for other in others:
            key_a, key_b = by_ref[first][0], by_ref[other][0]
            ka, kb = sorted((key_a, key_b))
            ra, rb = (first, other) if ka == key_a else (other, first)
            pairs.setdefault((ka, kb), LinkPair(ka, kb, ra, rb, str(key)))
    return sorted(pairs.values())


class LinkWatch:
    """``link_pairs`` over cases seen one at a time (the sync pass streams 100,000): keeps each case's key,
    reference and identifier keys, never the case. ``pairs(skip)`` is ``link_pairs`` of the cases noted
    (the last noted per tracker key) whose key is not in ``skip``."""

    def __init__(self, directory: Directory, workflow: Workflow) -> None:
        self.directory, self.workflow = directory, workflow
        self._by_key: dict[str, tuple[str, set[Key] | None]] = {}  # key -> (reference, keys; None: closed)

    def note(self, tracked: TrackedCase) -> None:
        keys = case_keys(tracked.case, self.directory) if is_open(self.workflow, tracked.state) else None
        self._by_key[tracked.key] = (tracked.case.reference, keys)

    def pairs(self, skip: Collection[str] = frozenset()) -> list[LinkPair]:
        by_ref: dict[str, tuple[str, set[Key]]] = {}
        for key, (ref, keys) in self._by_key.items():
            if keys is not None and key not in skip:
                by_ref[ref] = (key, keys)
        return _star_pairs(by_ref)
