"""Org thing-type property schemas: a JSON Schema an organization sets on one ontology thing type.

Every create and update of a thing of that type in that org must then satisfy it, on top of the
structure the spec gives the type (`invalid_properties` when it does not). One schema per org and
type, owned by its `source` (`pack:tutoring`, `plugin:<name>`): the same source may replace it (an
upgrade), another source may not (a conflict naming the owner). A removal keeps a schema while live
things of its type exist, and says so, rather than leave them ungoverned behind the caller's back.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from shared.contracts.graph import GraphError, TypeName
from shared.kernel import subjects
from shared.kernel.envelope import Empty, Payload, register_message
from shared.kernel.errors import Conflict

Source = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,30}:[a-z0-9][a-z0-9_.-]{0,80}$")]
"""Who owns a schema: `<kind>:<name>`, e.g. `pack:tutoring`."""


class TypeSchemaOwned(GraphError, Conflict):
    """The type's schema in this org belongs to another source."""

    code = "type_schema_owned"


class TypeSchemaSet(Payload):
    type: TypeName = Field(description="An ontology thing type (not a granular alias).")
    properties_schema: dict[str, Any] = Field(description="A JSON Schema (2020-12) the things' `properties` must satisfy.")
    source: Source
    description: Annotated[str, StringConstraints(max_length=2000)] = ""


class TypeSchemaRemove(Payload):
    type: TypeName
    source: Source = Field(description="Only the owner removes a schema.")


class TypeSchema(BaseModel):
    type: str
    properties_schema: dict[str, Any]
    source: str
    description: str
    version: int = Field(description="Bumped by every change of the schema.")
    created_at: datetime
    updated_at: datetime


class TypeSchemaSaved(BaseModel):
    type_schema: TypeSchema
    outcome: Literal["created", "updated", "unchanged"]


class TypeSchemaRemoval(BaseModel):
    type: str
    outcome: Literal["removed", "kept", "absent"]
    reason: str | None = Field(None, description="Why a schema was kept.")
    live_things: int = Field(0, description="Live things of the type in the org, when that kept the schema.")


class TypeSchemas(BaseModel):
    schemas: list[TypeSchema]


def _message(type_: str, verb: str, payload: type[Payload], result: type[BaseModel], permission: str) -> Any:
    return register_message(type_, subjects.command("graph", verb), payload, result, permission=permission)


TYPE_SCHEMA_SET = _message(
    "graph.type_schema.set", "type_schemas.set", TypeSchemaSet, TypeSchemaSaved, permission="type_schemas:update"
)
TYPE_SCHEMA_REMOVE = _message(
    "graph.type_schema.remove", "type_schemas.remove", TypeSchemaRemove, TypeSchemaRemoval,
    permission="type_schemas:delete",
)
TYPE_SCHEMA_LIST = _message(
    "graph.type_schema.list", "type_schemas.list", Empty, TypeSchemas, permission="type_schemas:list"
)
