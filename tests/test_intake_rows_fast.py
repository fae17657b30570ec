"""Intake's per-row fast paths (issue 16) give the very results of the general code they stand in for."""

from __future__ import annotations

import ipaddress
import json
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from casebridge.connectors.local_schema import iso as stamp
from casebridge.connectors.local_schema import sla_to_json
from casebridge.errors import IntakeError
from casebridge.workflows import load_workflow
from casebridge.workflows.case_index import overlap_warnings
from casebridge.workflows.cases import ClockFields, SlaFields
from casebridge.workflows.directory import load_directory
from casebridge.workflows.identifiers import normalise_ip
from casebridge.workflows.intake import _MOMENT_FIELDS, _check_moments
from casebridge.workflows.model import ClockState
from casebridge.workflows.sla import clocks_to_json
from tests.factories import make_case

DATE_FIELDS = (
    "order_date",
    "submitted_at",
    "acknowledged_at",
    "responded_at",
    "preservation_expires_at",
    "mla_received_at",
    "article3_checked_at",
)


def test_the_year_check_reads_every_field_that_can_hold_a_date() -> None:
    assert _MOMENT_FIELDS == DATE_FIELDS


@pytest.mark.parametrize("field", ["from", "to"])
def test_an_identifier_range_out_of_years_names_its_place(field: str) -> None:
    moment = datetime(1980, 1, 1, tzinfo=UTC)
    case = make_case(
        identifiers=[{"type": "ip", "value": "10.0.0.1"}, {"type": "ip", "value": "1.2.3.4", field: moment}]
    )
    with pytest.raises(IntakeError, match=rf"^f.csv:2: identifiers\.1\.{field}: year 1980 is outside 1990\.\.2100"):
        _check_moments("f.csv:2", case, None, None)


def _ip_reference(value: str) -> str:
    """normalise_ip without its fast path."""
    text = value.strip().strip("[]")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text.casefold()
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.compressed
    return address.compressed


def test_the_dotted_quad_fast_path_agrees_with_ipaddress() -> None:
    rng = random.Random(16)
    octets = ["0", "1", "9", "10", "99", "100", "255", "256", "999", "00", "01", "010", "", "1000"]
    values = ["1.2.3.4", " [10.0.0.1] ", "1.2.3", "4294967295", ".", "...", "1.2.3.4.", "::ffff:1.2.3.4", "١.٢.٣.٤"]
    values += [".".join(rng.choice(octets) for _ in range(rng.randint(1, 5))) for _ in range(5000)]
    assert [v for v in values if normalise_ip(v) != _ip_reference(v)] == []


def test_the_tracker_sla_text_is_what_json_dumps_writes() -> None:
    rng = random.Random(16)
    names = ["legal", "provider_response", "a", "zz_9", 'odd"\\name', "caf\u00e9\u2028"]
    base = datetime(2026, 1, 1, tzinfo=UTC)

    def moment() -> datetime | None:
        if rng.random() < 0.3:
            return None
        return base + timedelta(seconds=rng.randint(-(10**8), 10**8), microseconds=rng.choice([0, 123456]))

    for _ in range(2000):
        states = [*ClockState, "odd\u00e9"]
        clocks = {
            n: ClockFields(moment(), moment(), str(rng.choice(states))) for n in rng.sample(names, rng.randint(0, 4))
        }
        sla = SlaFields(clocks=clocks, escalation_level=rng.randint(0, 3))
        assert sla_to_json(sla) == json.dumps(clocks_to_json(sla.clocks), sort_keys=True)


def test_overlap_warnings_keep_their_order_when_several_identifiers_are_shared() -> None:
    ids = [{"type": t, "value": v} for t, v in [("ip", "10.0.0.9"), ("email", "b@x.example"), ("email", "a@x.example")]]
    new = [(f"f.csv:{i}", make_case(f"R-{i}", identifiers=ids)) for i in range(2, 10)]
    warnings = overlap_warnings(new, [], load_directory([]), load_workflow("lawful-access"))
    assert len(warnings) == 3 * 7
    assert warnings[:3] == [
        "f.csv:3: R-3 names email:a@x.example, already named by open case R-2",
        "f.csv:3: R-3 names email:b@x.example, already named by open case R-2",
        "f.csv:3: R-3 names ip:10.0.0.9, already named by open case R-2",
    ]
    assert warnings[-1] == (
        "f.csv:9: R-9 names ip:10.0.0.9, already named by open case R-2, R-3, R-4, R-5, R-6 and 2 more "
        "(`casebridge find` lists them)"
    )


def test_the_tracker_stamp_is_what_strftime_writes() -> None:
    rng = random.Random(16)
    base = datetime(1000, 1, 1, tzinfo=UTC)
    for _ in range(5000):
        moment = base + timedelta(seconds=rng.randint(0, 9000 * 365 * 86400), microseconds=rng.randint(0, 999999))
        if 1001 < moment.year < 9998:
            moment = moment.astimezone(timezone(timedelta(minutes=rng.randint(-900, 900))))
        assert stamp(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    early = datetime(999, 6, 1, 12, tzinfo=UTC)
    assert stamp(early) == early.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
