"""Identifier normalisation and the identifier index: which cases name the same account.

Each identifier type has one normal form, made with the library that knows the format:

- phone: E.164 with ``phonenumbers`` ("+92 300 1234567", "0092-300-1234567" -> "+923001234567"; a
  national number needs a region, e.g. ``region="PK"``);
- email: lower-cased, the domain in IDNA (``idna``, UTS #46) form;
- url: scheme and host lower-case, host in IDNA form, default port dropped, empty path "/", no fragment;
- ip: ``ipaddress`` compressed form ("2001:DB8:0:0::1" -> "2001:db8::1");
- domain: lower-case IDNA without the trailing dot;
- username: lower-case without a leading "@", scoped to the provider (the same handle on two
  platforms is two accounts); account_id likewise scoped, kept as written;
- imei: digits only; wallet: as written (base58 is case-sensitive), "0x" hex lower-cased.

A value that does not parse keeps a trimmed, case-folded form: hostile or sloppy data never stops intake.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import idna

from casebridge.workflows.cases import Case, IdentifierType
from casebridge.workflows.fastbuild import frozen_builder

SCOPED = frozenset({IdentifierType.USERNAME, IdentifierType.ACCOUNT_ID})
_SCOPED_NAMES = frozenset(str(kind) for kind in SCOPED)
_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}

__all__ = ["IdentifierIndex", "Key", "guess_keys", "identifier_keys", "normalise"]


@functools.lru_cache(maxsize=8192)  # a few providers' domains recur in every intake (IDNA is slow)
def _host(text: str) -> str:
    host = text.strip().rstrip(".").lower()
    if not host:
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        return host


def normalise_phone(value: str, region: str | None = None) -> str:
    import phonenumbers  # imported when a phone number is met: start-up does not pay for it

    text = value.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return re.sub(r"[^\d+]", "", text)
    if not phonenumbers.is_possible_number(number):
        return re.sub(r"[^\d+]", "", text)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(value: str) -> str:
    local, at, domain = value.strip().rpartition("@")
    if not at:
        return value.strip().casefold()
    return f"{local.casefold()}@{_host(domain)}"


def normalise_url(value: str) -> str:
    text = value.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return value.strip().casefold()
    scheme = parts.scheme.lower()
    host = _host(parts.hostname or "")
    if ":" in host:  # an IPv6 literal goes back in brackets
        host = f"[{ipaddress.ip_address(host).compressed}]" if _is_ip(host) else f"[{host}]"
    netloc = host if port is None or _DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


_IPV4_CHARS = "0123456789."


def normalise_ip(value: str) -> str:
    text = value.strip().strip("[]")
    if text and not text.strip(_IPV4_CHARS):
        # only ASCII digits and dots: a valid IPv4 address is already in its compressed form (ipaddress
        # refuses leading zeros), anything else does not parse and keeps its text (casefold: unchanged)
        return text
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text.casefold()
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.compressed
    return address.compressed


def normalise_username(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip().lstrip("@").casefold()


def normalise(kind: IdentifierType | str, value: str, *, region: str | None = None) -> str:
    """The normal form of ``value`` as an identifier of type ``kind``."""
    if type(kind) is not IdentifierType:  # a validated case's type already is one: no Enum lookup per call
        kind = IdentifierType(kind)
    if kind is IdentifierType.PHONE:
        return normalise_phone(value, region)
    if kind is IdentifierType.EMAIL:
        return normalise_email(value)
    if kind is IdentifierType.URL:
        return normalise_url(value)
    if kind is IdentifierType.IP:
        return normalise_ip(value)
    if kind is IdentifierType.DOMAIN:
        return _host(value)
    if kind is IdentifierType.USERNAME:
        return normalise_username(value)
    if kind is IdentifierType.IMEI:
        return re.sub(r"\D", "", value)
    if kind is IdentifierType.WALLET:
        text = value.strip()
        return text.lower() if text.lower().startswith("0x") else text
    return value.strip()


@dataclass(frozen=True, order=True, slots=True)
class Key:
    """One identifier in normal form; ``scope`` is the canonical provider for scoped types, else ''."""

    type: str
    scope: str
    value: str

    def __str__(self) -> str:
        scope = f"{self.scope}/" if self.scope else ""
        return f"{self.type}:{scope}{self.value}"


# an intake or a listing builds two or three per case: the plain-twin constructor costs a fifth of the
# frozen __init__, and slots keep the index of 100,000 cases' keys some 20 MB smaller
_key = frozen_builder(Key)


def identifier_keys(case: Case, provider: str | None = None) -> set[Key]:
    """The keys of a case's identifiers. ``provider``: the canonical provider name (scope of usernames);
    default the case's own provider text, normalised."""
    scope_name = (provider or case.provider).casefold()
    keys = set()
    for ident in case.identifiers:
        kind = str(ident.type)
        scope = scope_name if kind in _SCOPED_NAMES else ""  # str hashes in C; an Enum member in Python
        keys.add(_key(kind, scope, normalise(ident.type, ident.value)))
    return keys


def guess_keys(text: str, *, kind: str | None = None, region: str | None = None) -> list[Key]:
    """The keys a typed-in identifier may mean (for ``find``): its one type when ``kind`` is given, else
    every type it could be. Scoped types get scope '*' (any provider)."""
    kinds = [IdentifierType(kind)] if kind else _plausible(text)
    return [Key(str(k), "*" if k in SCOPED else "", normalise(k, text, region=region)) for k in kinds]


def _plausible(text: str) -> list[IdentifierType]:
    t = text.strip()
    if _is_ip(t.strip("[]")):
        return [IdentifierType.IP]
    if "://" in t:
        return [IdentifierType.URL]
    if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", t):
        return [IdentifierType.EMAIL]
    kinds = []
    if re.fullmatch(r"[+(]?[\d\s().\-/]{6,}", t):
        kinds += [IdentifierType.PHONE, IdentifierType.IMEI, IdentifierType.ACCOUNT_ID]
    if "." in t and " " not in t and not t.startswith("@"):
        kinds += [IdentifierType.DOMAIN, IdentifierType.URL]
    kinds += [IdentifierType.USERNAME, IdentifierType.ACCOUNT_ID, IdentifierType.WALLET]
    return list(dict.fromkeys(kinds))


class IdentifierIndex:
    """Normal-form identifier -> references of the cases naming it (built from a listing, in memory)."""

    def __init__(self) -> None:
        self._refs: dict[Key, set[str]] = defaultdict(set)

    def add(self, reference: str, keys: Iterable[Key]) -> None:
        for key in keys:
            self._refs[key].add(reference)

    def find(self, keys: Iterable[Key]) -> set[str]:
        found: set[str] = set()
        for key in keys:
            if key.scope == "*":
                found |= {
                    r for k, refs in self._refs.items() if (k.type, k.value) == (key.type, key.value) for r in refs
                }
            else:
                found |= self._refs.get(key, set())
        return found

    def named(self, key: Key, *, but: str) -> set[str]:
        """``find([key]) - {but}``, without building two sets for the (usual) key no case names yet."""
        if key.scope == "*":
            return self.find([key]) - {but}
        refs = self._refs.get(key)
        if not refs or (len(refs) == 1 and but in refs):
            return set()
        return refs - {but}

    def shared(self) -> Iterator[tuple[Key, set[str]]]:
        """Every key named by two or more cases."""
        # only the shared keys are sorted (at 100,000 cases, sorting every key was a second of a sync pass)
        yield from sorted((key, refs) for key, refs in self._refs.items() if len(refs) > 1)
