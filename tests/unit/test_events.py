"""`event_payload_json` writes what `EventPayload(...).to_bytes()` writes, byte for byte: a consumer cannot tell a
payload made on the hot path from one made through the model."""

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import pytest

from shared.kernel.events import EventPayload, event_payload_json
from shared.kernel.ids import uuid7


@pytest.mark.parametrize(("target_id", "target_type", "metadata"), [
    (uuid7(), "lesson", {"entityType": "lesson", "name": "Dürer ✓ \"quoted\"\n", "status": "draft"}),
    (None, None, {}),
    (UUID(int=0), "payment", {"amount": 1250, "ratio": 0.25, "nested": {"list": [1, None, True]}, "big": 2**62}),
    (uuid7(), "course", {"when": datetime(2026, 12, 7, tzinfo=UTC), "price": Decimal("10.50"), "id": uuid7()}),
])
def test_the_json_of_a_payload_is_the_models(target_id: UUID | None, target_type: str | None, metadata: dict) -> None:
    made = EventPayload(target_id=target_id, target_type=target_type, metadata=metadata)
    assert event_payload_json(target_id, target_type, metadata) == made.to_bytes()
