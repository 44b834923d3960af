"""The feature store reads the behaviour-data events by name: the two schemas must agree."""

from __future__ import annotations

from creditline.data.domain.events import EVENT_FIELDS
from creditline.data.domain.events import EventType as BehaviourEventType
from creditline.features.domain.events import EVENT_COLUMNS, EventType


def test_every_feature_input_column_is_a_behaviour_event_field_of_the_same_type() -> None:
    behaviour = {name: kind.value for name, kind in EVENT_FIELDS}

    for name, kind in EVENT_COLUMNS:
        assert name in behaviour, name
        assert kind.split("[")[0] == behaviour[name], name


def test_every_behaviour_event_type_is_known_to_the_feature_store() -> None:
    known = {kind.value for kind in EventType}

    assert {kind.value for kind in BehaviourEventType} <= known
    assert EventType.TRANSFER_IN.value not in {kind.value for kind in BehaviourEventType}
