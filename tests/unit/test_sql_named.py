"""`shared.runtime.sql.named`: a statement's `:name` parameters numbered for asyncpg, casts and words left alone."""

from shared.runtime.sql import named


def test_names_are_numbered_in_order_and_a_repeated_name_is_one_parameter() -> None:
    statement = named("SELECT CAST(:start AS uuid), x::jsonb, :org FROM t WHERE a = :start AND b = 'c:d'::text")
    assert statement.sql.text == "SELECT CAST($1 AS uuid), x::jsonb, $2 FROM t WHERE a = $1 AND b = 'c:d'::text"
    assert statement.names == ("start", "org")
    assert statement._args({"org": 2, "start": 1, "unused": 3}) == [1, 2]


def test_a_statement_is_numbered_once() -> None:
    text = "SELECT :a"
    assert named(text) is named(text)
