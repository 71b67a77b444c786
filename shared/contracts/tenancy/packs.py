"""Packs: installable bundles of thing types (with property schemas), roles with policies, field masks,
prompts and agents (seed 001's `installedPacks`), and the messages that install, uninstall and list them.

A pack document is JSON validated by `PackDocument`. Tenancy orchestrates an install: it asks the owner
of each part over the bus (the graph for type schemas and field masks, the agents service for prompts and
agents), then creates the roles and records the pack in one transaction of its own, so a pack is recorded
installed only once everything it brings exists. Every part has a deterministic name, and each step looks
before it creates: installing twice creates nothing twice, and a retry after a failure completes the work.
Managing packs is `packs:manage` (org owners).
"""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.contracts.agents import AgentCreate, PromptCreate
from shared.contracts.graph import TypeName
from shared.contracts.graph.access import FieldMaskSet
from shared.contracts.tenancy.messages import PolicyIn, RoleName, SecondFactor
from shared.kernel import subjects
from shared.kernel.envelope import Empty, Payload, register_message
from shared.kernel.errors import NotFound
from shared.kernel.ontology import Role, is_thing_type
from shared.kernel.rbac import BUILTIN_ROLES

PackName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,39}$")]
Version = Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$")]


class PackNotFound(NotFound):
    """No shipped pack has this name."""

    code = "pack_not_found"


class PackNotInstalled(NotFound):
    """The organization has not installed a pack of this name."""

    code = "pack_not_installed"


class PackThingType(BaseModel):
    """An ontology thing type and the JSON Schema its things' properties must satisfy in the org."""

    model_config = ConfigDict(extra="forbid")

    type: TypeName
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    properties_schema: dict[str, Any]

    @model_validator(mode="after")
    def _ontology_type(self) -> "PackThingType":
        if not is_thing_type(self.type):
            raise ValueError(f"{self.type!r} is not an ontology thing type")
        return self


class PackRole(BaseModel):
    """A role of the org's own; a pack does not change the built-in roles."""

    model_config = ConfigDict(extra="forbid")

    name: RoleName
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    policies: list[PolicyIn] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _not_builtin(self) -> "PackRole":
        if self.name in BUILTIN_ROLES:
            raise ValueError(f"{self.name} is a built-in role: a pack defines roles of its own")
        return self


class PackAgent(AgentCreate):
    prompts: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] = Field(
        default_factory=list, description="Names of the pack's prompts to attach to the agent.")


class PackDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PackName
    version: Version
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    thing_types: list[PackThingType] = Field(default_factory=list, max_length=50)
    roles: list[PackRole] = Field(default_factory=list, max_length=20)
    field_masks: list[FieldMaskSet] = Field(default_factory=list, max_length=100)
    prompts: list[PromptCreate] = Field(default_factory=list, max_length=50)
    agents: list[PackAgent] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _consistent(self) -> "PackDocument":
        _unique("thing type", [t.type for t in self.thing_types])
        _unique("role", [r.name for r in self.roles])
        _unique("prompt", [p.name for p in self.prompts])
        _unique("agent", [a.slug for a in self.agents])
        roles = {r.name for r in self.roles} | (BUILTIN_ROLES - {Role.PLATFORM_OWNER})
        for mask in self.field_masks:
            if mask.role not in roles:
                raise ValueError(f"field mask for unknown role {mask.role!r}: name one of the pack's roles or a built-in")
        prompts = {p.name for p in self.prompts}
        for agent in self.agents:
            missing = sorted(set(agent.prompts) - prompts)
            if missing:
                raise ValueError(f"agent {agent.slug} attaches prompts the pack does not define: {missing}")
        return self

    @property
    def source(self) -> str:
        """How the pack's parts name their owner elsewhere (type schemas' `source`, prompts' tag)."""
        return f"pack:{self.name}"


def _unique(what: str, names: list[str]) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{what} named more than once: {repeated}")


class PackInstall(SecondFactor):
    name: PackName | None = Field(None, description="A pack the platform ships (`one packs list` shows them).")
    document: PackDocument | None = Field(None, description="Or a pack document of the org's own.")

    @model_validator(mode="after")
    def _one_source(self) -> "PackInstall":
        if (self.name is None) == (self.document is None):
            raise ValueError("give a shipped pack's name or a pack document, not both")
        return self


class PackUninstall(SecondFactor):
    name: PackName


class PackItem(BaseModel):
    """One part of a pack and what an install or uninstall did with it (`reason`: why it stayed)."""

    kind: Literal["thing_type", "role", "policy", "field_mask", "prompt", "agent"]
    name: str
    outcome: Literal["created", "updated", "existing", "removed", "kept", "absent"]
    reason: str | None = None


class InstalledPack(BaseModel):
    name: str
    version: str
    title: str
    description: str
    installed_by: UUID | None
    installed_at: datetime
    updated_at: datetime
    thing_types: list[str]
    roles: list[str]
    prompts: list[str]
    agents: list[str]


class PackInstalled(BaseModel):
    pack: InstalledPack
    items: list[PackItem]


class PackUninstalled(BaseModel):
    name: str
    items: list[PackItem]


class AvailablePack(BaseModel):
    name: str
    version: str
    title: str
    description: str


class Packs(BaseModel):
    installed: list[InstalledPack]
    available: list[AvailablePack] = Field(description="The packs the platform ships.")


def _message(type_: str, verb: str, payload: type[Payload], result: type[BaseModel]) -> Any:
    return register_message(type_, subjects.command("tenancy", verb), payload, result, permission="packs:manage")


PACK_INSTALL = _message("tenancy.pack.install", "packs.install", PackInstall, PackInstalled)
PACK_UNINSTALL = _message("tenancy.pack.uninstall", "packs.uninstall", PackUninstall, PackUninstalled)
PACK_LIST = _message("tenancy.pack.list", "packs.list", Empty, Packs)
