"""The provider directory: who a case's provider is, its legal entities and how it takes requests.

Shipped as TOML (``workflows/providers/*.toml``, one file per provider group); an agency adds or
overrides entries with its own files (``[providers] extra`` in the config). An agency entry whose name
(or any of its names) matches a shipped entry replaces it. Validation is strict, like the workflow
loader's: ``FILE: path.to.key <- problem`` (a ``DirectoryError``).

A provider is found by its canonical name, an alias or one of its entities' names, compared
case-insensitively with punctuation, spacing and legal-form spelling ("Limited"/"Ltd") normalised.
"""

from __future__ import annotations

import difflib
import functools
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pydantic import ValidationError

from casebridge.errors import DirectoryError
from casebridge.workflows import read_toml, schema
from casebridge.workflows.cases import LegalBasis
from casebridge.workflows.directory_schema import ProviderFile, Sourced

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).parent / "providers"
EU_BASES = frozenset({LegalBasis.EU_EPO, LegalBasis.EU_EPO_PR})
_LEGAL_FORMS = {"limited": "ltd", "incorporated": "inc", "corporation": "corp", "company": "co"}

__all__ = ["Directory", "Provider", "load_directory", "normalise_name"]


@functools.lru_cache(maxsize=4096)  # an intake names a few providers thousands of times
def normalise_name(text: str) -> str:
    """The comparison key of a provider name: NFKC, case-folded, punctuation dropped, spaces collapsed,
    legal forms spelled one way ("Meta Platforms Ireland Limited" == "meta platforms ireland ltd.")."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    words = re.sub(r"[^\w]+", " ", folded).split()
    return " ".join(_LEGAL_FORMS.get(w, w) for w in words)


@dataclass(frozen=True)
class Fact:
    source: str
    checked: date
    note: str = ""


@dataclass(frozen=True)
class Entity:
    name: str
    country: str | None
    role: str
    serves: str
    fact: Fact


@dataclass(frozen=True)
class Channel:
    kind: str
    address: str
    purposes: tuple[str, ...]
    fact: Fact


@dataclass(frozen=True)
class Provider:
    name: str
    aliases: tuple[str, ...]
    entities: tuple[Entity, ...]
    channels: tuple[Channel, ...]
    foreign_orders: bool | None
    foreign_orders_fact: Fact | None
    preservation: str | None
    preservation_extension: str | None
    preservation_fact: Fact | None
    source_path: str

    def names(self) -> list[str]:
        return [self.name, *self.aliases, *(e.name for e in self.entities)]

    def request_channels(self) -> list[Channel]:
        return [c for c in self.channels if "requests" in c.purposes]

    def emergency_channels(self) -> list[Channel]:
        return [c for c in self.channels if "emergency" in c.purposes]

    def addressee(self, legal_basis: str | None) -> Entity | None:
        """The entity a request goes to: under an EU basis (EPO, EPOC-PR) the establishment or legal
        representative in the Union; else the parent (a US parent first), else the first listed."""
        if not self.entities:
            return None
        if legal_basis in EU_BASES:
            for role in ("eu_establishment", "eu_legal_representative"):
                for entity in self.entities:
                    if entity.role == role:
                        return entity
        for role in ("us_parent", "parent"):
            for entity in self.entities:
                if entity.role == role:
                    return entity
        return self.entities[0]


@dataclass
class Directory:
    providers: dict[str, Provider] = field(default_factory=dict)  # canonical name -> provider
    _index: dict[str, str] = field(default_factory=dict)  # normalised name -> canonical name

    def resolve(self, name: str | None) -> Provider | None:
        """The provider ``name`` names (canonical, alias or entity name), or None."""
        if not name:
            return None
        canonical = self._index.get(normalise_name(name))
        return None if canonical is None else self.providers[canonical]

    def nearest(self, name: str, n: int = 3) -> list[str]:
        """Canonical names of the entries closest to ``name`` (for "did you mean")."""
        matches = difflib.get_close_matches(normalise_name(name), list(self._index), n=n * 3, cutoff=0.5)
        found: list[str] = []
        for key in matches:
            canonical = self._index[key]
            if canonical not in found:
                found.append(canonical)
        return found[:n]

    def __iter__(self) -> Iterator[Provider]:
        return iter(sorted(self.providers.values(), key=lambda p: p.name.casefold()))

    def __len__(self) -> int:
        return len(self.providers)


def builtin_files() -> list[Path]:
    return sorted(BUILTIN_DIR.glob("*.toml"))


def load_directory(extra: Sequence[str | Path] = ()) -> Directory:
    """The shipped directory plus ``extra`` files (later ones override earlier entries of the same name).
    Raises DirectoryError (``FILE: key <- problem``) for the first bad file."""
    directory = Directory()
    for path in builtin_files():
        _add(directory, load_provider_file(path, label=f"providers/{path.name}"), override=False)
    for item in extra:
        path = Path(item).expanduser()
        if not path.is_file():
            raise DirectoryError(f"{path}: no such provider directory file (named in [providers] extra)")
        _add(directory, load_provider_file(path), override=True)
    return directory


def load_provider_file(path: Path, label: str | None = None) -> Provider:
    """Parse and validate one provider file. Raises DirectoryError."""
    label = label or str(path)
    data = read_toml(path, label, DirectoryError)
    try:
        raw = ProviderFile.model_validate(data)
    except ValidationError as exc:
        problem = schema.describe_error(exc).replace("workflows/lawful-access.toml", "workflows/providers/meta.toml")
        raise DirectoryError(f"{label}: {problem}") from None
    _check_names(raw, label)
    return _build(raw, label)


def _check_names(raw: ProviderFile, label: str) -> None:
    seen: dict[str, str] = {normalise_name(raw.name): "name"}
    keyed = [(f"aliases[{i}]", a) for i, a in enumerate(raw.aliases)]
    keyed += [(f"entities[{i}].name", e.name) for i, e in enumerate(raw.entities)]
    for key, name in keyed:
        norm = normalise_name(name)
        if not norm:
            raise DirectoryError(f"{label}: {key} <- {name!r} has no letters or digits")
        if norm in seen and not key.startswith("entities"):
            raise DirectoryError(f"{label}: {key} <- {name!r} repeats {seen[norm]}; remove it")
        seen.setdefault(norm, key)


def _fact(spec: Sourced) -> Fact:
    return Fact(source=spec.source, checked=spec.checked, note=spec.note)


def _build(raw: ProviderFile, label: str) -> Provider:
    fo, pr = raw.foreign_orders, raw.preservation
    return Provider(
        name=raw.name,
        aliases=tuple(raw.aliases),
        entities=tuple(Entity(e.name, e.country, e.role, e.serves, _fact(e)) for e in raw.entities),
        channels=tuple(Channel(c.kind, c.address, tuple(c.for_), _fact(c)) for c in raw.channels),
        foreign_orders=None if fo is None else fo.accepted,
        foreign_orders_fact=None if fo is None else _fact(fo),
        preservation=None if pr is None else pr.period,
        preservation_extension=None if pr is None else pr.extension,
        preservation_fact=None if pr is None else _fact(pr),
        source_path=label,
    )


def _add(directory: Directory, provider: Provider, *, override: bool) -> None:
    keys = {normalise_name(n) for n in provider.names()}
    replaced = {directory._index[k] for k in keys if k in directory._index}
    if replaced and not override:
        other = sorted(replaced)[0]
        raise DirectoryError(
            f"{provider.source_path}: name <- {provider.name!r} shares a name with {other!r} "
            f"({directory.providers[other].source_path}); one name must identify one provider"
        )
    for canonical in replaced:
        log.info("provider directory: %s overrides %r", provider.source_path, canonical)
        gone = directory.providers.pop(canonical)
        for name in gone.names():
            directory._index.pop(normalise_name(name), None)
    directory.providers[provider.name] = provider
    for key in keys:
        directory._index[key] = provider.name


def describe_problems(directory: Directory) -> Iterable[str]:
    """Warnings about a valid directory (an entry with no request channel)."""
    for provider in directory:
        if not provider.request_channels():
            where = f"{provider.source_path}: {provider.name}"
            yield f"{where} has no sourced channel for requests (an agency file may add one)"
