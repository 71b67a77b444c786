"""The rows the repositories return: slotted dataclasses built from a table's row by column name (`of`).

Converting them to the contract's read models (with configs joined, secrets masked) is the services' job.
"""

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Self
from uuid import UUID


class _Row:
    @classmethod
    def of(cls, row: Any) -> Self:
        mapping = row._mapping
        return cls(**{f.name: mapping[f.name] for f in fields(cls)})  # type: ignore[call-arg, arg-type]


@dataclass(slots=True)
class AgentRow(_Row):
    id: UUID
    org_id: UUID
    slug: str
    name: str
    type: str
    description: str
    status: str
    prompts: list[UUID]
    created_by: UUID
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


@dataclass(slots=True)
class ConfigRow(_Row):
    id: UUID
    agent_id: UUID
    environment: str
    version: int
    config: dict[str, Any]
    created_by: UUID
    created_at: datetime


@dataclass(slots=True)
class PromptRow(_Row):
    id: UUID
    name: str
    step: str
    template: str
    variables: list[str]
    description: str
    tags: list[str]
    status: str
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class ConversationRow(_Row):
    id: UUID
    org_id: UUID
    title: str
    status: str
    external_thread_id: str | None
    tags: list[str]
    next_seq: int
    last_message_at: datetime | None
    created_by: UUID
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class RunRow(_Row):
    id: UUID
    org_id: UUID
    agent_id: UUID
    agent_slug: str
    conversation_id: UUID
    environment: str
    config_version: int
    status: str
    model: str
    iterations: int
    answer: str | None
    error: dict[str, Any] | None
    citations: list[dict[str, Any]]
    input_tokens: int
    output_tokens: int
    cost: float
    latency_ms: int | None
    parent_run_id: UUID | None
    depth: int
    chain: list[UUID]
    resumed: int
    actor_id: UUID
    auth: dict[str, Any]
    request: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None
    waiting: dict[str, Any] | None = None  # what a `waiting` run waits for (run_waiting.py)


@dataclass(slots=True)
class StepRow(_Row):
    run_id: UUID
    seq: int
    kind: str
    iteration: int
    body: dict[str, Any]
    created_at: datetime
