"""The graph repository builds its rows positionally from its tables' columns: the field orders must agree."""

from dataclasses import fields

import pytest
import sqlalchemy as sa

from services.graph.models import connections, things
from services.graph.repository import _INSERT_COLUMNS
from services.graph.rows import ConnectionRow, NewThing, ThingRow


@pytest.mark.parametrize(("row_class", "table"), [(ThingRow, things), (ConnectionRow, connections)])
def test_a_stored_row_declares_its_table_columns_in_order(row_class: type, table: sa.Table) -> None:
    assert [f.name for f in fields(row_class)] == [c.name for c in table.columns]


def test_a_new_thing_carries_exactly_the_inserted_columns() -> None:
    """Every field but the org (one value per statement) is sent as an array."""
    assert tuple(f.name for f in fields(NewThing) if f.name != "org_id") == _INSERT_COLUMNS
