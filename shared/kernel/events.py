"""The payload of every domain event on `one.events.<protocol>.<org_id>.<event_type>`.

The envelope carries who (`actor_id`), where (`org_id`), which protocol and
when; the payload says what the event is about (`target_id`/`target_type`) and
its `metadata` (the spec's event structure: variant, protocol, amounts, ...).
"""

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_json


class EventPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_id: UUID | None = None
    target_type: str | None = Field(None, description="The target thing's type, e.g. `organization`, `course`.")
    metadata: dict[str, Any] = Field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """The payload's JSON, as its event's envelope carries it (`model_dump_json`, minus its Python wrapper)."""
        return self.__pydantic_serializer__.to_json(self)


def event_payload_json(target_id: UUID | None, target_type: str | None, metadata: dict[str, Any]) -> bytes:
    """`EventPayload(...).to_bytes()` without building the model, for a hot path that makes hundreds of payloads
    from values the service checked itself (a batch create's events): the same bytes (tests/unit/test_events.py)."""
    return to_json({"target_id": target_id, "target_type": target_type, "metadata": metadata})
