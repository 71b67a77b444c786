"""An unfiltered index search is planned once per connection; HNSW graphs use ef_construction 128.

**Plans.** `knowledge.nearest_<dim>` (v0003, v0005) forced a custom plan on every call, so that a
generic plan could not choose an exact scan for a large org. Planning that query (26 columns, a
dozen indexes to cost) took 100-150 µs of the ~2 ms a search costs Postgres. The service calls
these functions only for an org it already sends through the index (`search.py`: at least
`knowledge_exact_below` vectors), and when nothing narrows the org's rows but the model and the
usual types, the index walk is the only right plan: with `enable_sort = off` for the statement
no plan that sorts can win, so the generic plan is that walk, and it is made once per connection
(`force_generic_plan`). Measured on the bench's 100k rows (backend CPU per call, 12 alternating
blocks of 300): ~2.0 ms against ~2.2 ms, lower in every block, the same hits. A search narrowed
by source type, source thing, labels or fewer types keeps its custom plan: the planner may rightly
sort the few rows such a filter leaves rather than walk a graph whose candidates it would discard.

**Graph quality.** pgvector's default `ef_construction` (64) gave recall@10 of 97.1-98.0% at
`ef_search` 200 over five builds of the bench's clustered 384-d vectors (94.5% once in a full
bench); 128 gave 98.2-98.5% over four, at no query cost we could measure, with builds ~1.6x as long.
`ALTER INDEX ... SET` applies to every row inserted from now on; rows already indexed keep the
graph they were built into until the index is rebuilt, which an operator can do without blocking
searches: `REINDEX INDEX CONCURRENTLY knowledge.items_embedding_<dim>` (it cannot run inside a
migration's transaction, and a write lock on a large table at upgrade time is not worth it).
"""

from services.knowledge.migrations import v0005_more_indexed_sizes as v0005

DIMS = (384, *v0005.SIZES)
EF_CONSTRUCTION = 128

_CUSTOM_PLANS = """set_config('hnsw.ef_search', p_ef_search::text, true),
                set_config('plan_cache_mode', 'force_custom_plan', true);"""
_PLAN_BY_FILTERS = """set_config('hnsw.ef_search', p_ef_search::text, true);
        IF p_source_types IS NULL AND p_source_thing IS NULL AND p_labels IS NULL
           AND p_types @> ARRAY['chunk', 'vector_only'] THEN
            PERFORM set_config('enable_sort', 'off', true), set_config('plan_cache_mode', 'force_generic_plan', true);
        ELSE
            PERFORM set_config('plan_cache_mode', 'force_custom_plan', true);
        END IF;"""


def _function(dim: int) -> str:
    """v0005's function (v0003's, for 384) with its plan chosen by the filters: only the settings differ."""
    created = v0005._function(dim)
    assert created.count(_CUSTOM_PLANS) == 1, "v0005's function text is not what this migration replaces"
    return created.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1).replace(_CUSTOM_PLANS, _PLAN_BY_FILTERS)


STATEMENTS = [
    statement
    for dim in DIMS
    for statement in (f"ALTER INDEX knowledge.items_embedding_{dim} SET (ef_construction = {EF_CONSTRUCTION})",
                      _function(dim))
]
