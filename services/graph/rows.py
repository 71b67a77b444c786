"""The rows the repository returns and takes: plain slotted dataclasses, typed and cheap.

A stored row is built positionally from a SQLAlchemy row of its table (`ThingRow(*row)`), so the
fields are declared in the table's column order (tests/unit/test_graph_rows.py checks it). No
pydantic here: a traversal or a batch makes thousands of these, and the columns are typed already.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID


@dataclass(slots=True)
class NewThing:
    """A thing about to be inserted: checked, with its id, and the hash that recognizes a repeated request."""

    id: UUID
    org_id: UUID
    type: str
    name: str
    properties: dict[str, Any]
    status: str
    version: int
    idempotency_key: str | None
    request_hash: str | None
    created_by: UUID | None = None


@dataclass(slots=True)
class ThingRow:
    """A stored thing, secrets unmasked: `service.to_thing` makes the reply form."""

    id: UUID
    org_id: UUID
    type: str
    name: str
    properties: dict[str, Any]
    status: str
    version: int
    idempotency_key: str | None
    request_hash: str | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    created_by: UUID | None = None
    """The actor whose request created it (a person, an agent, a service); what a scope rule's `own` means."""


@dataclass(slots=True)
class ConnectionRow:
    """A stored connection; `strength` is the column's exact numeric."""

    id: UUID
    org_id: UUID
    from_id: UUID
    to_id: UUID
    type: str
    metadata: dict[str, Any]
    strength: Decimal | None
    valid_from: datetime
    valid_to: datetime | None
    created_at: datetime
    updated_at: datetime
