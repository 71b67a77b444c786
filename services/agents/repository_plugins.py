"""Every SQL statement of plugins: the registry (platform-wide, read by every org) and installs (org-scoped, RLS)."""

from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.agents.models_plugins import InstallRow, PluginRow, plugin_installs, plugins

NOW = sa.func.clock_timestamp()
_p = plugins.c
_i = plugin_installs.c


async def plugin(session: AsyncConnection, name: str) -> PluginRow | None:
    row = (await session.execute(sa.select(plugins).where(_p.name == name))).first()
    return PluginRow.of(row) if row else None


async def plugins_named(session: AsyncConnection, names: list[str]) -> dict[str, PluginRow]:
    if not names:
        return {}
    rows = await session.execute(sa.select(plugins).where(_p.name.in_(names)))
    return {row.name: PluginRow.of(row) for row in rows}


async def plugins_by_ids(session: AsyncConnection, ids: list[UUID]) -> dict[UUID, PluginRow]:
    if not ids:
        return {}
    rows = await session.execute(sa.select(plugins).where(_p.id.in_(ids)))
    return {row.id: PluginRow.of(row) for row in rows}


async def list_plugins(session: AsyncConnection, *, text: str | None, installable: bool | None, cursor: str | None,
                       limit: int) -> list[PluginRow]:
    statement = sa.select(plugins).order_by(_p.name).limit(limit)
    if text:
        statement = statement.where(_p.name.contains(text, autoescape=True))
    if installable is not None:
        statement = statement.where(_p.installable == installable)
    if cursor is not None:
        statement = statement.where(_p.name > cursor)
    return [PluginRow.of(row) for row in await session.execute(statement)]


async def upsert_plugin(session: AsyncConnection, values: dict[str, Any]) -> None:
    statement = pg_insert(plugins).values(**values)
    statement = statement.on_conflict_do_update(index_elements=[_p.name], set_={
        "version": statement.excluded.version, "manifest": statement.excluded.manifest,
        "installable": statement.excluded.installable, "imported_at": NOW})
    await session.execute(statement)


async def install(session: AsyncConnection, org_id: UUID, plugin_name: str, *,
                  for_update: bool = False) -> InstallRow | None:
    statement = sa.select(plugin_installs).where(_i.org_id == org_id, _i.plugin == plugin_name)
    if for_update:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).first()
    return InstallRow.of(row) if row else None


async def installs(session: AsyncConnection, org_id: UUID, *, text: str | None = None) -> list[InstallRow]:
    statement = sa.select(plugin_installs).where(_i.org_id == org_id).order_by(_i.plugin)
    if text:
        statement = statement.where(_i.plugin.contains(text, autoescape=True))
    return [InstallRow.of(row) for row in await session.execute(statement)]


async def insert_install(session: AsyncConnection, values: dict[str, Any]) -> InstallRow | None:
    """None when the org has installed the plugin already (meanwhile)."""
    statement = pg_insert(plugin_installs).values(**values).on_conflict_do_nothing()
    row = (await session.execute(statement.returning(plugin_installs))).first()
    return InstallRow.of(row) if row else None


async def update_install(session: AsyncConnection, org_id: UUID, install_id: UUID, values: dict[str, Any]) -> InstallRow:
    statement = (sa.update(plugin_installs).where(_i.org_id == org_id, _i.id == install_id)
                 .values(**values, updated_at=NOW).returning(plugin_installs))
    return InstallRow.of((await session.execute(statement)).one())


async def delete_install(session: AsyncConnection, org_id: UUID, install_id: UUID) -> None:
    await session.execute(sa.delete(plugin_installs).where(_i.org_id == org_id, _i.id == install_id))


async def record_success(session: AsyncConnection, org_id: UUID, install_id: UUID) -> InstallRow:
    """One more execution, and the failure streak broken (one statement: concurrent calls add up)."""
    return await update_install(session, org_id, install_id, {"executions": _i.executions + 1,
                                                               "consecutive_failures": 0})


async def record_failure(session: AsyncConnection, org_id: UUID, install_id: UUID, suspend_at: int,
                         reason: str) -> InstallRow:
    """One more failure in the streak; the install is suspended (with `reason`) when the streak reaches `suspend_at`
    while it is active."""
    failures = _i.consecutive_failures + 1
    suspend = sa.and_(failures >= suspend_at, _i.status == "active")
    return await update_install(session, org_id, install_id, {
        "executions": _i.executions + 1, "consecutive_failures": failures,
        "status": sa.case((suspend, "suspended"), else_=_i.status),
        "suspended_reason": sa.case((suspend, reason), else_=_i.suspended_reason)})
