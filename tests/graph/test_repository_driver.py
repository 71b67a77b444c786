"""The graph's hot statements numbered for asyncpg: `:name` parameters become `$n`, casts and words stay."""

from services.graph.repository_driver import numbered


def test_names_are_numbered_in_order_and_a_repeated_name_is_one_parameter() -> None:
    statement, names = numbered("SELECT CAST(:start AS uuid), x::jsonb, :org FROM t WHERE a = :start AND b = 'c:d'::text")
    assert statement.text == "SELECT CAST($1 AS uuid), x::jsonb, $2 FROM t WHERE a = $1 AND b = 'c:d'::text"
    assert names == ("start", "org")


def test_a_statement_is_numbered_once() -> None:
    text = "SELECT :a"
    assert numbered(text) is numbered(text)
