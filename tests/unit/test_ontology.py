import pytest

from shared.kernel.ontology import (
    CONNECTION_CATEGORIES,
    CONNECTION_VARIANTS,
    CONSOLIDATED_CONNECTION_TYPES,
    CONSOLIDATED_EVENT_TYPES,
    EVENT_CATEGORIES,
    EVENT_VARIANTS,
    GRANULAR_CONNECTIONS,
    GRANULAR_EVENTS,
    GRANULAR_THINGS,
    PROTOCOL_CONNECTION_TYPES,
    PROTOCOL_EVENT_TYPES,
    SELF_LINK_ALLOWED,
    STATUS_TRANSITIONS,
    THING_CATEGORIES,
    ConnectionType,
    EventType,
    KnowledgeRole,
    KnowledgeType,
    MetadataProtocol,
    OrgPlan,
    OrgStatus,
    Role,
    ThingStatus,
    ThingType,
    UnknownOntologyType,
    can_transition,
    canonical_connection,
    canonical_event,
    canonical_thing,
    is_thing_type,
    thing_type,
)

# The spec states 66 thing, 25 connection and 67 event types (elsewhere also 35, 52 and 63 events,
# and "18 specific + 7 consolidated" connections), but its own type lists and per-category counts
# add up to 61, 31 and 72. We follow the lists; the plugin extension adds 8, 6 and 9 on top.
CORE_THING_COUNT = 61
CORE_CONNECTION_COUNT = 31
CORE_EVENT_COUNT = 72
PLUGIN_COUNTS = {"thing": 8, "connection": 6, "event": 9}

THING_CATEGORY_SIZES = {
    "core": 4, "business_agents": 10, "content": 7, "products": 4, "community": 3, "token": 2,
    "knowledge": 2, "platform": 6, "business": 7, "authentication": 5, "marketing": 6, "external": 3,
    "protocol": 2, "plugin": 8,
}
CONNECTION_CATEGORY_SIZES = {
    "ownership": 2, "ai": 3, "content": 5, "community": 4, "business": 3, "token": 3, "product": 4,
    "consolidated": 7, "plugin": 6,
}
EVENT_CATEGORY_SIZES = {
    "entity_lifecycle": 4, "user": 5, "authentication": 6, "organization": 5, "dashboard_ui": 4,
    "ai_clone": 4, "agent": 4, "token": 7, "course": 5, "analytics": 5, "inference": 7, "blockchain": 5,
    "consolidated": 11, "plugin": 9,
}


def test_enum_sizes_follow_the_spec_lists():
    assert len(ThingType) == CORE_THING_COUNT + PLUGIN_COUNTS["thing"]
    assert len(ConnectionType) == CORE_CONNECTION_COUNT + PLUGIN_COUNTS["connection"]
    assert len(EventType) == CORE_EVENT_COUNT + PLUGIN_COUNTS["event"]
    assert len(THING_CATEGORIES["plugin"]) == PLUGIN_COUNTS["thing"]
    assert len(CONNECTION_CATEGORIES["plugin"]) == PLUGIN_COUNTS["connection"]
    assert len(EVENT_CATEGORIES["plugin"]) == PLUGIN_COUNTS["event"]


def test_small_enums_match_the_spec():
    assert set(KnowledgeType) == {"label", "document", "chunk", "vector_only"}
    assert set(KnowledgeRole) == {"label", "summary", "chunk_of", "caption", "keyword"}
    assert set(ThingStatus) == {"draft", "active", "published", "inactive", "archived"}
    assert set(OrgStatus) == {"active", "suspended", "trial", "cancelled"}
    assert set(OrgPlan) == {"starter", "pro", "enterprise"}
    assert set(Role) == {"platform_owner", "org_owner", "org_user", "customer"}
    assert {"a2a", "acp", "ap2", "x402", "ag-ui", "native", "traditional", "webhook"} == set(MetadataProtocol)


@pytest.mark.parametrize(
    ("categories", "sizes", "enum_type"),
    [
        (THING_CATEGORIES, THING_CATEGORY_SIZES, ThingType),
        (CONNECTION_CATEGORIES, CONNECTION_CATEGORY_SIZES, ConnectionType),
        (EVENT_CATEGORIES, EVENT_CATEGORY_SIZES, EventType),
    ],
)
def test_categories_have_the_spec_sizes_and_partition_the_enum(categories, sizes, enum_type):
    assert {name: len(members) for name, members in categories.items()} == sizes
    members = [member for group in categories.values() for member in group]
    assert len(members) == len(set(members)) == len(enum_type)


def test_variant_tables_cover_exactly_the_consolidated_types():
    assert set(CONNECTION_VARIANTS) == CONSOLIDATED_CONNECTION_TYPES
    assert set(EVENT_VARIANTS) == CONSOLIDATED_EVENT_TYPES
    assert PROTOCOL_CONNECTION_TYPES <= CONSOLIDATED_CONNECTION_TYPES
    assert PROTOCOL_EVENT_TYPES <= CONSOLIDATED_EVENT_TYPES
    assert SELF_LINK_ALLOWED <= set(ConnectionType)


@pytest.mark.parametrize(
    ("granular", "enum_type", "variants"),
    [
        (GRANULAR_THINGS, ThingType, None),
        (GRANULAR_CONNECTIONS, ConnectionType, CONNECTION_VARIANTS),
        (GRANULAR_EVENTS, EventType, EVENT_VARIANTS),
    ],
)
def test_granular_names_map_to_members_with_spec_metadata(granular, enum_type, variants):
    for name, canonical in granular.items():
        assert name not in set(enum_type), f"{name} is both granular and consolidated"
        assert isinstance(canonical.type, enum_type)
        if variants is not None and canonical.metadata:
            known = variants[canonical.type]
            for key, value in canonical.metadata.items():
                assert value in known[key], f"{name}: {key}={value!r} is not a known variant"


def test_granular_name_sets():
    assert set(GRANULAR_THINGS) == {"intent_mandate", "cart_mandate"}
    assert set(GRANULAR_CONNECTIONS) == {"communicates_with", "fulfills", "follows", "taught_by"}
    assert set(GRANULAR_EVENTS) == {
        "content_created", "content_updated", "content_deleted", "content_viewed", "content_shared",
        "content_liked", "content_changed", "content_interacted", "content_generated",
        "payment_requested", "payment_verified", "payment_processed",
        "subscription_started", "subscription_renewed", "subscription_cancelled", "subscription_updated",
        "livestream_scheduled", "livestream_started", "livestream_ended", "livestream_joined", "livestream_left",
        "livestream_chat", "livestream_donation", "livestream_status_changed", "livestream_interaction",
        "referral_created", "referral_completed", "referral_rewarded",
        "task_delegated", "task_completed", "task_failed",
        "price_checked", "price_changed",
        "message_sent", "clone_interaction", "notification_delivered", "purchase_initiated",
        "mandate_created", "revenue_generated",
    }


@pytest.mark.parametrize(
    ("name", "expected_type", "expected_metadata"),
    [
        ("task_delegated", EventType.TASK_EVENT, {"action": "delegated"}),
        ("payment_processed", EventType.PAYMENT_EVENT, {"status": "processed"}),
        ("payment_requested", EventType.PAYMENT_EVENT, {"status": "requested"}),
        ("payment_verified", EventType.PAYMENT_EVENT, {"status": "verified"}),
        ("mandate_created", EventType.MANDATE_EVENT, {"action": "created"}),
        ("price_checked", EventType.PRICE_EVENT, {"action": "checked"}),
        ("message_sent", EventType.COMMUNICATION_EVENT, {}),
        ("content_viewed", EventType.CONTENT_EVENT, {"action": "viewed"}),
        ("content_liked", EventType.CONTENT_EVENT, {"action": "liked"}),
        ("content_changed", EventType.CONTENT_EVENT, {}),
        ("notification_delivered", EventType.NOTIFICATION_EVENT, {"deliveryStatus": "delivered"}),
        ("purchase_initiated", EventType.COMMERCE_EVENT, {"eventType": "purchase_initiated"}),
        ("livestream_started", EventType.LIVESTREAM_EVENT, {"status": "started"}),
        ("livestream_joined", EventType.LIVESTREAM_EVENT, {"action": "joined"}),
    ],
)
def test_granular_events_from_the_spec(name, expected_type, expected_metadata):
    canonical = canonical_event(name)
    assert canonical.type is expected_type
    assert dict(canonical.metadata) == expected_metadata


@pytest.mark.parametrize(
    ("name", "expected_type", "inverse"),
    [
        ("communicates_with", ConnectionType.COMMUNICATED, False),
        ("fulfills", ConnectionType.FULFILLED, False),
        ("follows", ConnectionType.FOLLOWING, False),
        ("taught_by", ConnectionType.TEACHING, True),
        ("delegated", ConnectionType.DELEGATED, False),
    ],
)
def test_granular_connections_from_the_spec(name, expected_type, inverse):
    canonical = canonical_connection(name)
    assert canonical.type is expected_type
    assert canonical.inverse is inverse


def test_folded_thing_types_carry_their_variant():
    assert canonical_thing("intent_mandate").type is ThingType.MANDATE
    assert dict(canonical_thing("cart_mandate").metadata) == {"mandateType": "cart"}


@pytest.mark.parametrize(
    ("resolve", "enum_type"),
    [(canonical_thing, ThingType), (canonical_connection, ConnectionType), (canonical_event, EventType)],
)
def test_consolidated_names_round_trip_with_empty_metadata(resolve, enum_type):
    for member in enum_type:
        canonical = resolve(member.value)
        assert canonical.type is member
        assert dict(canonical.metadata) == {}
        assert canonical.inverse is False


@pytest.mark.parametrize(
    ("resolve", "kind"),
    [(canonical_thing, "thing"), (canonical_connection, "connection"), (canonical_event, "event"), (thing_type, "thing")],
)
@pytest.mark.parametrize("name", ["", "Task_Delegated", "tag", "achievement_unlocked", "entity-created"])
def test_unknown_names_raise(resolve, kind, name):
    with pytest.raises(UnknownOntologyType) as raised:
        resolve(name)
    assert raised.value.kind == kind
    assert raised.value.name == name
    assert isinstance(raised.value, ValueError)


def test_thing_type_lookup():
    assert thing_type("course") is ThingType.COURSE
    assert is_thing_type("external_agent")
    assert is_thing_type(ThingType.TOKEN)
    assert not is_thing_type("intent_mandate")
    with pytest.raises(UnknownOntologyType):
        thing_type("intent_mandate")


def test_canonical_metadata_is_read_only():
    with pytest.raises(TypeError):
        canonical_event("task_delegated").metadata["action"] = "failed"  # type: ignore[index]
    assert canonical_event("task_delegated").metadata["action"] == "delegated"


def test_status_transitions():
    assert set(STATUS_TRANSITIONS) == set(ThingStatus)
    assert can_transition(ThingStatus.DRAFT, ThingStatus.PUBLISHED)
    assert can_transition(ThingStatus.ACTIVE, ThingStatus.ACTIVE)
    assert not can_transition(ThingStatus.ARCHIVED, ThingStatus.PUBLISHED)
    for status in ThingStatus:
        if status is not ThingStatus.ARCHIVED:
            assert can_transition(status, ThingStatus.ARCHIVED)
