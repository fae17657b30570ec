"""The connector contract suite. Every case connector subclasses ``ConnectorContract`` and provides a
``connector`` fixture yielding a connector on an empty tracker with the default workflow.

Remote trackers stamp their own times, so nothing here back-dates (``at=``) or depends on wall time
beyond "later writes are not older".
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from casebridge.connectors import LIAISON, Connector, Escalation
from casebridge.errors import NotFoundError, TransitionNotAllowed
from casebridge.workflows.cases import Case, ClockFields, SlaFields
from tests.factories import make_case

HOSTILE_REFERENCES = [
    'FIA-"quoted"-1',
    "FIA\\back\\slash-2",
    "FIA-3 OR project = X",
    "FIA-4' AND 1=1 --",
    "ORDER BY created",
]


class ConnectorContract:
    # does the tracker keep a Provider field (Redmine, Jira: a custom field setup creates)? The embedded
    # tracker has none: it resolves the canonical name when it reads (TrackedCase.provider stays None)
    provider_field = True

    @pytest.fixture
    def connector(self) -> Connector:  # pragma: no cover - subclasses override
        raise NotImplementedError

    def test_find_unknown_reference_is_none(self, connector: Connector) -> None:
        assert connector.find_case("NOPE-404") is None

    def test_create_then_find_round_trips_the_case(self, connector: Connector) -> None:
        case = make_case("FIA-CCW-2026-0101")
        created = connector.create_case(case)
        found = connector.find_case("FIA-CCW-2026-0101")
        assert found is not None
        assert found.key == created.key
        assert found.case == case
        assert found.state == connector.workflow.initial

    def test_create_is_idempotent_per_reference(self, connector: Connector) -> None:
        first = connector.create_case(make_case("FIA-CCW-2026-0102"))
        second = connector.create_case(make_case("FIA-CCW-2026-0102"))
        assert first.key == second.key
        refs = [t.case.reference for t in connector.list_cases()]
        assert refs.count("FIA-CCW-2026-0102") == 1

    @pytest.mark.parametrize("reference", HOSTILE_REFERENCES)
    def test_hostile_reference_finds_exactly_that_case(self, connector: Connector, reference: str) -> None:
        connector.create_case(make_case("PLAIN-1"))
        created = connector.create_case(make_case(reference))
        found = connector.find_case(reference)
        assert found is not None and found.key == created.key and found.case.reference == reference
        assert connector.find_case(reference + "x") is None

    def test_update_changes_case_fields(self, connector: Connector) -> None:
        created = connector.create_case(make_case("FIA-CCW-2026-0103"))
        connector.update_case(created.key, make_case("FIA-CCW-2026-0103", provider_ticket="LERS-991"))
        found = connector.find_case("FIA-CCW-2026-0103")
        assert found is not None and found.case.provider_ticket == "LERS-991"

    def test_list_returns_every_case(self, connector: Connector) -> None:
        refs = {f"FIA-LIST-{i}" for i in range(3)}
        for ref in sorted(refs):
            connector.create_case(make_case(ref))
        assert {t.case.reference for t in connector.list_cases()} >= refs

    def test_list_since_later_time_excludes_older_cases(self, connector: Connector) -> None:
        created = connector.create_case(make_case("FIA-OLD-1"))
        later = created.updated_at.replace(year=created.updated_at.year + 1)
        assert [t.case.reference for t in connector.list_cases(updated_since=later)] == []

    def test_transition_is_recorded_in_history(self, connector: Connector) -> None:
        created = connector.create_case(make_case("FIA-CCW-2026-0104"))
        connector.transition(created.key, "legal_review")
        history = connector.read_history(created.key)
        assert [h.state for h in history] == [connector.workflow.initial, "legal_review"]
        assert history[0].at <= history[1].at
        found = connector.find_case("FIA-CCW-2026-0104")
        assert found is not None and found.state == "legal_review"

    def test_forbidden_transition_raises_and_changes_nothing(self, connector: Connector) -> None:
        created = connector.create_case(make_case("FIA-CCW-2026-0105"))
        with pytest.raises(TransitionNotAllowed):
            connector.transition(created.key, "fulfilled")  # draft -> fulfilled is not in the workflow
        found = connector.find_case("FIA-CCW-2026-0105")
        assert found is not None and found.state == connector.workflow.initial
        assert len(connector.read_history(created.key)) == 1

    def test_sla_fields_round_trip(self, connector: Connector) -> None:
        created = connector.create_case(make_case("FIA-CCW-2026-0106"))
        due = created.updated_at.replace(microsecond=0)
        sla = SlaFields(clocks={"followup": ClockFields(due_at=due, warn_at=None, state="running")}, escalation_level=1)
        connector.set_sla_fields(created.key, sla)
        found = connector.find_case("FIA-CCW-2026-0106")
        assert found is not None
        assert found.sla.clocks["followup"] == ClockFields(due_at=due, warn_at=None, state="running")
        assert found.sla.escalation_level == 1

    def test_comment_on_unknown_case_is_not_found(self, connector: Connector) -> None:
        with pytest.raises(NotFoundError):
            connector.comment("999999", "hello")

    def test_history_of_unknown_case_is_not_found(self, connector: Connector) -> None:
        with pytest.raises(NotFoundError):
            connector.read_history("999999")

    def test_escalation_post_then_find_by_key(self, connector: Connector) -> None:
        if LIAISON not in connector.capabilities:
            pytest.skip("not a liaison target")
        created = connector.create_case(make_case("FIA-CCW-2026-0107"))
        key = "FIA-CCW-2026-0107/followup/L1"
        assert connector.find_escalation(key) is None
        posted = connector.post_escalation(
            Escalation(
                dedupe_key=key,
                case_reference="FIA-CCW-2026-0107",
                case_key=created.key,
                case_url=None,
                title="Escalation: FIA-CCW-2026-0107",
                markdown="# Dossier\n\nText",
                level=1,
                clock="followup",
            )
        )
        again = connector.find_escalation(key)
        assert again is not None and again.key == posted.key
        assert connector.find_escalation(key + "/R1") is None
        connector.link_escalation(created.key, posted)

    def test_find_escalations_answers_exactly_the_posted_keys(self, connector: Connector) -> None:
        if LIAISON not in connector.capabilities:
            pytest.skip("not a liaison target")
        created = connector.create_case(make_case("FIA-CCW-2026-0108"))
        keys = [f"FIA-CCW-2026-0108/followup/L{n}" for n in (1, 2)]
        assert connector.find_escalations(keys) == {}
        posted = {}
        for n, key in enumerate(keys, 1):
            escalation = Escalation(
                dedupe_key=key,
                case_reference="FIA-CCW-2026-0108",
                case_key=created.key,
                case_url=None,
                title=f"Escalation L{n}: FIA-CCW-2026-0108",
                markdown="# Dossier",
                level=n,
                clock="followup",
            )
            posted[key] = connector.post_escalation(escalation)
        # a prefix, a longer key and a case variant of a posted key are not that key
        asked = [keys[1], keys[0] + "/R1", "FIA-CCW-2026-0108/followup/L", keys[0], keys[0].lower(), keys[1]]
        found = connector.find_escalations(asked)
        assert set(found) == set(keys)
        assert {k: p.key for k, p in found.items()} == {k: p.key for k, p in posted.items()}
        assert all(found[k].dedupe_key == k for k in keys)
        assert connector.find_escalations([]) == {}

    # -- abilities declared on the contract (each has a default; a connector may do better) ----------
    def test_link_cases_twice_is_harmless(self, connector: Connector) -> None:
        a = connector.create_case(make_case("FIA-CCW-2026-0190"))
        b = connector.create_case(make_case("FIA-CCW-2026-0191"))
        note = "Linked by casebridge: both name phone:+923001234567."
        connector.link_cases(a.key, b.key, note=note)
        connector.link_cases(a.key, b.key, note=note)  # a rerun after a lost answer or a lost store

    def test_provider_field_holds_the_canonical_name(self, connector: Connector) -> None:
        connector.use_provider_names(lambda case: "Meta" if case.provider == "Facebook" else case.provider)
        made = connector.create_case(make_case("FIA-PRV-1", provider="Facebook"))
        assert made.case.provider == "Facebook"  # the case keeps its own text
        if not self.provider_field:
            connector.set_provider(made.key, "Meta")  # nothing to write: harmless
            found = connector.find_case("FIA-PRV-1")
            assert found is not None and found.provider is None
            return
        assert made.provider == "Meta"
        connector.set_provider(made.key, "Meta Platforms")
        got = connector.get_case(made.key, "FIA-PRV-1")
        assert got is not None and got.provider == "Meta Platforms"
        assert [t.provider for t in connector.list_cases() if t.key == made.key] == ["Meta Platforms"]
        updated = connector.update_case(made.key, made.case)  # an intake update writes the name again
        assert updated.provider == "Meta"
        found = connector.find_case("FIA-PRV-1")
        assert found is not None and (found.provider, found.case.provider) == ("Meta", "Facebook")

    def test_find_cases_returns_exactly_the_known_references(self, connector: Connector) -> None:
        a = connector.create_case(make_case("FIA-BULK-1"))
        b = connector.create_case(make_case("FIA-BULK-2"))
        found = connector.find_cases(["FIA-BULK-1", "FIA-BULK-404", "FIA-BULK-2"])
        assert set(found) == {"FIA-BULK-1", "FIA-BULK-2"}
        assert (found["FIA-BULK-1"].key, found["FIA-BULK-2"].key) == (a.key, b.key)

    def test_create_cases_creates_each_in_its_state_and_never_twice(self, connector: Connector) -> None:
        first = connector.create_case(make_case("FIA-BULK-3"))
        cases = [make_case("FIA-BULK-3"), make_case("FIA-BULK-4")]
        states = {"FIA-BULK-4": "legal_review"}
        sla = None
        if connector.creates_with_sla:
            fields = ClockFields(due_at=first.updated_at.replace(microsecond=0), warn_at=None, state="running")
            sla = {c.reference: SlaFields(clocks={"followup": fields}, escalation_level=0) for c in cases}
        made = list(connector.create_cases(cases, states=states, at={}, sla=sla))
        assert [t.case.reference for t in made] == ["FIA-BULK-3", "FIA-BULK-4"]
        assert made[0].key == first.key
        assert made[1].state == "legal_review"
        refs = [t.case.reference for t in connector.list_cases()]
        assert refs.count("FIA-BULK-3") == 1 and refs.count("FIA-BULK-4") == 1
        if connector.creates_with_sla:
            found = connector.find_case("FIA-BULK-4")
            assert found is not None and found.sla.clocks["followup"].state == "running"

    def test_transaction_groups_writes_only_where_declared(self, connector: Connector) -> None:
        class Abort(Exception):
            pass

        with pytest.raises(Abort), connector.transaction():
            connector.create_case(make_case("FIA-TX-1"))
            raise Abort
        # transactional: the create was rolled back with the rest; else each write stood on its own
        assert (connector.find_case("FIA-TX-1") is None) is connector.transactional
        with connector.transaction(), connector.transaction():  # nested blocks join the outer one
            connector.create_case(make_case("FIA-TX-2"))
        assert connector.find_case("FIA-TX-2") is not None

    def test_get_case_reads_the_item_as_it_is_now(self, connector: Connector) -> None:
        created = connector.create_case(make_case("FIA-GET-1"))
        connector.transition(created.key, "legal_review")
        got = connector.get_case(created.key, "FIA-GET-1")
        assert got is not None and got.key == created.key and got.state == "legal_review"

    def test_read_all_histories_matches_per_case_reads(self, connector: Connector) -> None:
        a = connector.create_case(make_case("FIA-HIST-1"))
        b = connector.create_case(make_case("FIA-HIST-2"))
        connector.transition(b.key, "legal_review")
        every = connector.read_all_histories()
        assert every[a.key] == connector.read_history(a.key)
        assert every[b.key] == connector.read_history(b.key)
        assert [h.state for h in every[b.key]] == [connector.workflow.initial, "legal_review"]

    def test_list_case_texts_is_none_or_what_list_cases_and_read_history_read(self, connector: Connector) -> None:
        """The stored-text listing (``list_case_texts``): None (the default), or every listed case, its case
        JSON reading back as the same case and its history text as the same changes."""
        a = connector.create_case(make_case("FIA-TEXT-1"))
        connector.transition(a.key, "legal_review")
        connector.set_sla_fields(a.key, SlaFields(escalation_level=2))
        texts = connector.list_case_texts()
        if texts is None:
            return
        listed = {t.key: t for t in connector.list_cases()}
        assert sorted(texts.keys) == sorted(listed)
        row = list(texts.keys).index(a.key)
        assert Case.model_validate_json(texts.data[row]) == listed[a.key].case
        assert texts.states[row] == "legal_review" and texts.escalation_levels[row] == 2
        history = json.loads(texts.histories[row] or "[]")
        assert [(datetime.fromisoformat(at), state) for at, state in history] == [
            (h.at, h.state) for h in connector.read_history(a.key)
        ]

    def test_case_text_chunks_are_none_or_the_stored_text_listing_in_chunks(self, connector: Connector) -> None:
        """``case_text_chunks(size)``: None (the default), or ``list_case_texts`` cut ``size`` rows at a time,
        in its order, every chunk but the last full; an empty tracker gives no chunk."""
        empty = connector.case_text_chunks(3)
        if empty is None:
            return
        assert list(empty) == []
        for n in range(4):
            created = connector.create_case(make_case(f"FIA-CHUNK-{n}"))
            if n % 2:
                connector.transition(created.key, "legal_review")
        whole = connector.list_case_texts()
        assert whole is not None
        fields = ("keys", "data", "states", "updated_at", "sla", "escalation_levels", "histories")
        expected = list(zip(*(getattr(whole, name) for name in fields), strict=True))
        assert len(expected) == 4
        for size in (1, 3, 1000):
            chunks = list(connector.case_text_chunks(size) or ())
            rows = [row for texts in chunks for row in zip(*(getattr(texts, name) for name in fields), strict=True)]
            assert rows == expected
            assert [len(texts) for texts in chunks] == [size] * (4 // size) + ([4 % size] if 4 % size else [])
        assert all(t.url is None for t in connector.list_cases())  # the texts carry none: nothing lost

    def test_use_clock_stamps_writes_only_where_the_tracker_back_dates(self, connector: Connector) -> None:
        real = connector.now()
        moment = real.replace(year=real.year - 3, microsecond=0)
        connector.use_clock(lambda: moment)
        created = connector.create_case(make_case("FIA-CLOCK-1"))
        stamped = connector.read_history(created.key)[0].at
        if connector.back_dates:
            assert stamped == moment and connector.now() == moment
        else:
            # a remote tracker stamps its own time (its clock, not ours: compared with the moment asked
            # for, three years back, never with this process's year)
            assert stamped > moment

    def test_create_case_back_dates_only_when_declared(self, connector: Connector) -> None:
        real = connector.now()
        at = real.replace(year=real.year - 2, microsecond=0)
        created = connector.create_case(make_case("FIA-AT-1"), at=at)
        stamped = connector.read_history(created.key)[0].at
        assert (stamped == at) is connector.back_dates

    # -- reminders: comments are not idempotent, so a marker is searched before each post -------------
    def test_reminder_marker_is_found_only_on_its_case(self, connector: Connector) -> None:
        from casebridge.workflows.reminders import marker_for

        one = connector.create_case(make_case("FIA-REMIND-1"))
        other = connector.create_case(make_case("FIA-REMIND-2"))
        marker = marker_for("FIA-REMIND-1/preservation/T14d")
        assert not connector.has_comment_marker(one.key, marker)
        text = f"**Reminder:** *Preservation* lapses in 14 d (`x_y`, [link](https://example.org)).\n\nKey ({marker})"
        connector.post_reminder(one.key, text, notify=frozenset({"assignee", "watchers"}))
        assert connector.has_comment_marker(one.key, marker)
        assert not connector.has_comment_marker(other.key, marker)
        assert not connector.has_comment_marker(one.key, marker_for("FIA-REMIND-1/preservation/T3d"))
        assert sum(marker in c for c in connector.comments(one.key)) == 1
        connector.comment(one.key, "an unrelated comment")
        assert connector.has_comment_marker(one.key, marker)

    def test_comments_of_unknown_case_are_not_found(self, connector: Connector) -> None:
        with pytest.raises(NotFoundError):
            connector.comments("999999")
