"""The provider directory (validation with exact messages, alias resolution, agency overrides), the
identifier normal forms, `find`, and the sync job linking cases that name the same identifier, once."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from casebridge.cli import cli
from casebridge.connectors import Connector
from casebridge.connectors.local import LocalConfig, LocalConnector
from casebridge.errors import DirectoryError, IntakeError
from casebridge.state.audit import AuditLog
from casebridge.state.store import StateStore
from casebridge.sync import SyncJob, SyncOptions
from casebridge.workflows import load_workflow
from casebridge.workflows.case_index import check_providers, link_pairs, overlap_warnings
from casebridge.workflows.directory import builtin_files, load_directory, load_provider_file
from casebridge.workflows.identifiers import guess_keys, normalise
from tests.factories import make_case

WORKFLOW = load_workflow()
NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)

VALID = """
name = "Examplenet"
aliases = ["Example Net", "ExNet"]

[[entities]]
name = "Examplenet Ireland Limited"
country = "IE"
role = "eu_establishment"
source = "https://example.net/law-enforcement"
checked = 2026-12-05

[[entities]]
name = "Examplenet, Inc."
country = "US"
role = "us_parent"
source = "https://example.net/law-enforcement"
checked = 2026-12-05

[[channels]]
kind = "portal"
address = "https://le.example.net"
for = ["requests", "emergency"]
source = "https://example.net/law-enforcement"
checked = 2026-12-05

[preservation]
period = "90d"
extension = "90d"
source = "https://example.net/law-enforcement"
checked = 2026-12-05
"""


def write(tmp_path: Path, text: str, name: str = "examplenet.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- the shipped directory ---------------------------------------------------------------------------
def test_shipped_directory_is_valid_and_every_fact_is_sourced() -> None:
    directory = load_directory()
    names = {p.name for p in directory}
    wanted = {"Google", "Meta", "Microsoft", "Apple", "X", "TikTok", "Snap", "Telegram", "Discord", "Amazon"}
    assert wanted | {"Cloudflare", "OVHcloud", "Hetzner", "Key-Systems"} <= names
    assert len(builtin_files()) == len(directory)
    for p in directory:
        facts = [e.fact for e in p.entities] + [c.fact for c in p.channels]
        facts += [f for f in (p.foreign_orders_fact, p.preservation_fact) if f is not None]
        assert facts, p.name
        assert all(f.source.startswith("http") and f.checked.year >= 2026 for f in facts), p.name


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("Meta", "Meta"),
        ("facebook", "Meta"),
        ("Meta Platforms Ireland Ltd", "Meta"),  # the entity's name with the legal form abbreviated
        ("  META   platforms, ireland LIMITED ", "Meta"),
        ("Google LLC", "Google"),
        ("gmail", "Google"),
        ("SNAP INC.", "Snap"),
        ("Twitter", "X"),
        ("tik-tok", "TikTok"),
        ("OVH SAS", "OVHcloud"),
        ("Hetzner Online GmbH", "Hetzner"),
    ],
)
def test_resolution_by_name_alias_or_entity(spelling: str, canonical: str) -> None:
    found = load_directory().resolve(spelling)
    assert found is not None and found.name == canonical


def test_sample_providers_all_resolve() -> None:
    directory = load_directory()
    samples = json.loads((Path(__file__).parent.parent / "examples" / "cases.json").read_text())
    assert [c["provider"] for c in samples if directory.resolve(c["provider"]) is None] == []


def test_addressee_is_the_eu_establishment_under_an_eu_basis() -> None:
    meta = load_directory().resolve("Meta")
    assert meta is not None
    assert meta.addressee("eu-epo").name == "Meta Platforms Ireland Limited"
    assert meta.addressee("mlat").name == "Meta Platforms, Inc."


def test_agency_file_adds_and_overrides(tmp_path: Path) -> None:
    added = write(tmp_path, VALID)
    override = write(
        tmp_path,
        VALID.replace("Examplenet", "Snap (agency)").replace('["Example Net", "ExNet"]', '["Snapchat"]'),
        "snap.toml",
    )
    directory = load_directory([added, override])
    assert directory.resolve("exnet").name == "Examplenet"
    snap = directory.resolve("snapchat")
    assert snap is not None and snap.name == "Snap (agency)" and snap.source_path == str(override)
    assert directory.resolve("Snap Inc.") is None  # the shipped entry is replaced, not merged


def test_unknown_provider_warns_with_the_nearest_entries_and_strict_refuses() -> None:
    directory = load_directory()
    case = make_case("R-1", provider="Gogle", provider_legal_entity=None)
    [warning] = check_providers([("f.json:item 0", case)], directory, strict=False)
    assert warning.startswith("f.json:item 0: provider: 'Gogle' is not in the provider directory (nearest: Google")
    with pytest.raises(IntakeError, match=r"^f\.json:item 0: provider: 'Gogle'"):
        check_providers([("f.json:item 0", case)], directory, strict=True)


# -- broken files, each with its exact message --------------------------------------------------------
BROKEN = [
    (VALID.replace('name = "Examplenet"\n', ""), "name <- required key is missing"),
    (
        "website = 'x'\n" + VALID,
        "website <- unknown key (check the spelling; see workflows/providers/meta.toml for the keys)",
    ),
    (
        VALID.replace('source = "https://le.example.net"', "").replace(
            'address = "https://le.example.net"\nfor = ["requests", "emergency"]\nsource = "https://example.net/law-enforcement"',
            'address = "https://le.example.net"\nfor = ["requests", "emergency"]',
        ),
        "channels[0].source <- required key is missing",
    ),
    (
        VALID.replace('role = "eu_establishment"', 'role = "eu_office"'),
        "entities[0].role <- Input should be 'us_parent', 'parent', 'eu_establishment', "
        "'eu_legal_representative' or 'regional'",
    ),
    (
        VALID.replace('country = "IE"', 'country = "Ireland"'),
        "entities[0].country <- String should match pattern '^[A-Z]{2}$'",
    ),
    (
        VALID.replace('period = "90d"', 'period = "ninety days"'),
        "preservation.period <- bad duration 'ninety days': use a number and a unit s, m, h, d or w, "
        'like "8h" or "10d"',
    ),
    (
        VALID.replace(
            '[preservation]\nperiod = "90d"\nextension = "90d"\nsource = "https://example.net/law-enforcement"',
            '[preservation]\nperiod = "90d"\nextension = "90d"\nsource = "example.net/le"',
        ),
        "preservation.source <- source 'example.net/le' is not a URL (http:// or https://): cite the page the "
        "fact is from",
    ),
    (
        VALID.replace("checked = 2026-12-05", 'checked = "last week"', 1),
        "entities[0].checked <- Input should be a valid date or datetime, input is too short",
    ),
    (
        VALID.replace('"Example Net", "ExNet"', '"Example Net", "example-net"'),
        "aliases[1] <- 'example-net' repeats aliases[0]; remove it",
    ),
    (
        VALID.replace('for = ["requests", "emergency"]', 'for = ["fax"]'),
        "channels[0].for[0] <- Input should be 'requests', 'preservation', 'emergency' or 'abuse'",
    ),
    ("name = [", None),
]


@pytest.mark.parametrize(("text", "message"), BROKEN)
def test_broken_file_is_rejected_with_its_message(tmp_path: Path, text: str, message: str | None) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DirectoryError) as err:
        load_provider_file(path)
    if message is None:
        assert str(err.value).startswith(f"{path}: TOML syntax <- ")
    else:
        assert str(err.value) == f"{path}: {message}"


def test_valid_file_loads(tmp_path: Path) -> None:
    provider = load_provider_file(write(tmp_path, VALID))
    assert [c.address for c in provider.emergency_channels()] == ["https://le.example.net"]
    assert provider.preservation == "90d"


def test_shipped_name_claimed_twice_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from casebridge.workflows import directory as module

    write(tmp_path, VALID, "a.toml")
    write(tmp_path, VALID.replace('name = "Examplenet"', 'name = "Other"'), "b.toml")
    monkeypatch.setattr(module, "BUILTIN_DIR", tmp_path)
    with pytest.raises(DirectoryError, match=r"b.toml: name <- 'Other' shares a name with 'Examplenet'"):
        load_directory()


def test_providers_check_cli() -> None:
    result = CliRunner().invoke(cli, ["providers", "check"])
    assert result.exit_code == 0, result.output
    assert "ok: 14 providers" in result.output


# -- normal forms ------------------------------------------------------------------------------------
NORMAL_FORMS = [
    ("phone", "+92 300 1234567", None, "+923001234567"),
    ("phone", "0092-300-123 4567", None, "+923001234567"),
    ("phone", "(0300) 1234567", "PK", "+923001234567"),
    ("phone", "+49 (0)30 1234567", None, "+49301234567"),
    ("phone", "+1 415-555-0100", None, "+14155550100"),
    ("email", "Secure.Update.HBL@GMAIL.com", None, "secure.update.hbl@gmail.com"),
    ("email", "user@Bücher.DE", None, "user@xn--bcher-kva.de"),
    ("url", "HTTPS://Example.COM:443/Path?q=1#frag", None, "https://example.com/Path?q=1"),
    ("url", "http://example.com:8080", None, "http://example.com:8080/"),
    ("url", "example.com/x", None, "http://example.com/x"),
    ("url", "https://bücher.de/", None, "https://xn--bcher-kva.de/"),
    ("ip", "203.0.113.045".replace("045", "45"), None, "203.0.113.45"),
    ("ip", "2001:DB8:0:0:0:0:0:1", None, "2001:db8::1"),
    ("ip", "::ffff:192.0.2.10", None, "192.0.2.10"),
    ("domain", "Leaks-Example.ONION.example.", None, "leaks-example.onion.example"),
    ("username", "@Truth_Teller_PK", None, "truth_teller_pk"),
    ("username", "insta.rose.2009", None, "insta.rose.2009"),
    ("imei", "35-209900-176148-1", None, "352099001761481"),
    ("wallet", "0xAbC123", None, "0xabc123"),
    ("wallet", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT", None, "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"),
]


@pytest.mark.parametrize(("kind", "raw", "region", "expected"), NORMAL_FORMS)
def test_normal_forms(kind: str, raw: str, region: str | None, expected: str) -> None:
    assert normalise(kind, raw, region=region) == expected


def test_hostile_values_never_raise() -> None:
    for kind in ("phone", "email", "url", "ip", "domain", "username", "imei", "wallet", "account_id"):
        for raw in ("=cmd|' /C calc'!A0", "http://[::1", "@@@", "\u202e\u0000x", "a" * 255):
            assert isinstance(normalise(kind, raw), str)


def test_usernames_are_scoped_to_the_provider() -> None:
    directory = load_directory()
    a = make_case("R-1", provider="Instagram", identifiers=[{"type": "username", "value": "@same.name"}])
    b = make_case("R-2", provider="Facebook", identifiers=[{"type": "username", "value": "same.name"}])
    c = make_case("R-3", provider="Twitter", identifiers=[{"type": "username", "value": "same.name"}])
    tracked = [_tracked(a, "1"), _tracked(b, "2"), _tracked(c, "3")]
    pairs = link_pairs(tracked, directory, WORKFLOW)
    assert [(p.reference_a, p.reference_b, p.identifier) for p in pairs] == [("R-1", "R-2", "username:meta/same.name")]
    assert guess_keys("@same.name")[0].scope == "*"


def _tracked(case, key):
    from casebridge.workflows.cases import TrackedCase

    return TrackedCase(key=key, case=case, state="submitted", updated_at=NOW)


# -- find and linking on the embedded tracker ---------------------------------------------------------
def _two_cases_file(tmp_path: Path) -> Path:
    cases = [
        make_case("FIA-P-1", provider="snapchat", identifiers=[{"type": "phone", "value": "+92 300 1234567"}]),
        make_case("FIA-P-2", provider="SNAP INC.", identifiers=[{"type": "phone", "value": "0092-300-123 4567"}]),
        make_case("FIA-P-3", provider="Snap", identifiers=[{"type": "phone", "value": "+92 300 7654321"}]),
    ]
    path = tmp_path / "cases.json"
    path.write_text(json.dumps([c.to_record() for c in cases]))
    return path


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "casebridge.toml").write_text(
        'state = "casebridge-state.db"\n[tracker]\nconnector = "local"\npath = "casebridge.db"\n'
    )
    monkeypatch.delenv("CASEBRIDGE_CONFIG", raising=False)
    return tmp_path


def test_intake_warns_on_shared_identifier_and_find_sees_both_spellings(workdir: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["intake", str(_two_cases_file(workdir)), "--now", NOW.isoformat()])
    assert result.exit_code == 0, result.output
    assert "FIA-P-2 names phone:+923001234567, already named by open case FIA-P-1" in result.output
    for spelling in ("+923001234567", "0092 300 1234567"):
        found = runner.invoke(cli, ["find", spelling, "--json", "--now", NOW.isoformat()])
        assert found.exit_code == 0, found.output
        items = json.loads(found.output)
        assert [i["reference"] for i in items] == ["FIA-P-1", "FIA-P-2"]
        assert {i["provider_canonical"] for i in items} == {"Snap"}
    national = runner.invoke(cli, ["find", "0300-1234567", "--region", "pk", "--type", "phone"])
    assert "FIA-P-1" in national.output and "FIA-P-2" in national.output and "FIA-P-3" not in national.output
    assert "no case names" in runner.invoke(cli, ["find", "+923009999999"]).output


def test_sync_links_cases_sharing_an_identifier_exactly_once(workdir: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["intake", str(_two_cases_file(workdir)), "--now", NOW.isoformat()]).exit_code == 0
    dry = runner.invoke(cli, ["sync", "--dry-run", "--now", NOW.isoformat()])
    assert "would link FIA-P-1 <-> FIA-P-2 (both name phone:+923001234567)" in dry.output
    first = runner.invoke(cli, ["sync", "--now", NOW.isoformat()])
    assert first.exit_code == 0, first.output
    assert "link FIA-P-1 <-> FIA-P-2" in first.output
    again = runner.invoke(cli, ["sync", "--now", NOW.isoformat()])
    assert "link" not in again.output
    (workdir / "casebridge-state.db").unlink()  # the store is a cache: losing it must not link twice
    runner.invoke(cli, ["sync", "--now", NOW.isoformat()])
    tracker = LocalConnector(LocalConfig(path=str(workdir / "casebridge.db")), WORKFLOW)
    try:
        one = tracker.find_case("FIA-P-1")
        two = tracker.find_case("FIA-P-2")
        three = tracker.find_case("FIA-P-3")
        assert tracker.linked_cases(one.key) == [two.key]
        assert tracker.linked_cases(three.key) == []
        assert tracker.db.execute("SELECT COUNT(*) FROM case_links").fetchone()[0] == 1
    finally:
        tracker.close()


class _CommentOnly(LocalConnector):
    """A tracker without relations: the contract's default link (a comment)."""

    name = "comment-only"
    link_cases = Connector.link_cases


def test_default_link_is_a_comment_made_once_per_pair(tmp_path: Path) -> None:
    tracker = _CommentOnly(LocalConfig(path=str(tmp_path / "t.db")), WORKFLOW)
    store = StateStore(tmp_path / "state.db")
    audit = AuditLog(tmp_path / "audit.db")
    try:
        for ref, phone in (("R-1", "+92 300 1234567"), ("R-2", "00923001234567")):
            tracker.create_case(make_case(ref, identifiers=[{"type": "phone", "value": phone}]))
        job = lambda: SyncJob(tracker, WORKFLOW, store, audit, SyncOptions(), directory=load_directory())  # noqa: E731
        assert [(p.reference_a, p.reference_b) for p in job().run(NOW).links] == [("R-1", "R-2")]
        assert job().run(NOW).links == []
        key = tracker.find_case("R-1").key
        notes = [c for c in tracker.comments(key) if "Linked by casebridge" in c]
        assert notes == [
            "Linked by casebridge: R-1 and R-2 both name phone:+923001234567. Coordinate before sending either request."
        ]
    finally:
        tracker.close()
        store.close()
        audit.close()


def test_dossier_cites_the_eu_establishment_and_channels_for_an_eu_basis() -> None:
    from casebridge.workflows.dossier import Step, build_dossier

    directory = load_directory()
    case = make_case("R-EU", provider="Facebook", legal_basis="eu-epo")
    step = Step("R-EU/legal_deadline/L1", "legal_deadline", 1, "NCB", 0, "")
    text = build_dossier(
        _tracked(case, "1"),
        [],
        step,
        WORKFLOW,
        allowed=frozenset({"provider"}),
        now=NOW,
        provider=directory.resolve("Facebook"),
    )
    assert "- **Directory entry:** Meta" in text
    assert (
        r"- **Addressee:** Meta Platforms Ireland Limited \(IE, eu establishment\) ([source](https://about.meta.com/"
        in text
    )
    assert r"- **Request channel:** portal: https://www\.facebook\.com/records" in text
    us = build_dossier(
        _tracked(case.model_copy(update={"legal_basis": "mlat"}), "1"),
        [],
        step,
        WORKFLOW,
        allowed=frozenset({"provider"}),
        now=NOW,
        provider=directory.resolve("Facebook"),
    )
    assert r"- **Addressee:** Meta Platforms, Inc\. \(US, us parent\)" in us


def test_cases_about_one_account_are_linked_to_the_first_not_each_to_each() -> None:
    same = [{"type": "email", "value": "threat@example.com"}]
    tracked = [_tracked(make_case(f"R-{i}", identifiers=same), str(10 + i)) for i in range(5)]
    pairs = link_pairs(tracked, load_directory(), WORKFLOW)
    assert [(p.reference_a, p.reference_b) for p in pairs] == [("R-0", f"R-{i}") for i in range(1, 5)]
    many = [_tracked(make_case(f"M-{i:04d}", identifiers=same), str(i)) for i in range(1500)]
    assert len(link_pairs(many, load_directory(), WORKFLOW)) == 1499  # not 1,124,250


def test_an_overlap_warning_names_a_few_cases_and_counts_the_rest() -> None:
    directory = load_directory()
    shared = [{"type": "ip", "value": "192.0.2.7"}]
    tracked = [_tracked(make_case(f"R-{i:02d}", provider="Google", identifiers=shared), str(i)) for i in range(8)]
    new = [("new.json:item 0", make_case("R-NEW", provider="Google", identifiers=shared))]
    (warning,) = overlap_warnings(new, tracked, directory, WORKFLOW)
    assert "R-00, R-01, R-02, R-03, R-04 and 3 more" in warning
    assert "R-05" not in warning


def test_agency_files_named_in_the_config_are_found_beside_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[providers] extra`` paths are relative to the config file, whatever the working directory."""
    (tmp_path / "agency").mkdir()
    write(tmp_path / "agency", VALID)
    config = tmp_path / "casebridge.toml"
    config.write_text('[providers]\nextra = ["agency/examplenet.toml"]\n', encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = CliRunner().invoke(cli, ["--config", str(config), "providers", "show", "ExNet", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["name"] == "Examplenet"
    assert shown["defined_in"] == str(tmp_path / "agency" / "examplenet.toml")
