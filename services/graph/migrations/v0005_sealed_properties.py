"""Secret properties sealed at rest (envelope encryption, `services/graph/keys.py`).

- `graph.data_keys`: each org's data keys, wrapped by a key-encryption key (`shared.runtime.keyring`).
- `graph.sealing_backlog`: the things stored before this migration whose properties may hold a secret in clear
  (any key of `SECRET_KEYS`, at any depth). Each replica seals them at start (`keys_backlog.py`) and deletes the row,
  so no clear value outlives the first start. Found across orgs: the owner reads past Row-Level Security for this
  one statement (NO FORCE, then FORCE again, in this migration's transaction). Like the quota's pending queue, the
  backlog is the service's own queue read across orgs: no RLS.
"""

from services.graph.properties import SECRET_KEYS
from shared.runtime.keyring import data_keys_table

_ANY_SECRET_KEY = '"(' + "|".join(sorted(SECRET_KEYS)) + ')": '

STATEMENTS = [
    *data_keys_table("graph"),
    """CREATE TABLE graph.sealing_backlog (
        org_id uuid NOT NULL,
        thing_id uuid NOT NULL,
        PRIMARY KEY (org_id, thing_id)
    )""",
    "ALTER TABLE graph.things NO FORCE ROW LEVEL SECURITY",
    f"""INSERT INTO graph.sealing_backlog (org_id, thing_id)
        SELECT org_id, id FROM graph.things WHERE properties::text ~ '{_ANY_SECRET_KEY}'""",
    "ALTER TABLE graph.things FORCE ROW LEVEL SECURITY",
]
