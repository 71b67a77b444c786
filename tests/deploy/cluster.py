"""A 3-node NATS cluster on loopback: one nats-server process per node, each with its own
JetStream store, cluster port and server name, routes to the other two. What
deploy/k8s/nats-values.yaml asks the Helm chart for, in miniature."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from shared.tools.embedded import EmbeddedNats, free_port

CLUSTER_NAME = "one-test"


def node_config(name: str, cluster_port: int, routes: list[int]) -> str:
    route_urls = ", ".join(f'"nats-route://127.0.0.1:{port}"' for port in routes)
    return f"""
server_name: {name}
jetstream {{
  # Every write fsynced before the ack, as in production (deploy/k8s/nats-values.yaml).
  sync_interval: always
}}
cluster {{
  name: {CLUSTER_NAME}
  listen: 127.0.0.1:{cluster_port}
  routes: [{route_urls}]
}}
"""


@dataclass
class NatsCluster:
    root: Path
    size: int = 3
    nodes: list[EmbeddedNats] = field(default_factory=list)

    def start(self) -> list[str]:
        cluster_ports = [free_port() for _ in range(self.size)]
        client_ports = [free_port() for _ in range(self.size)]
        for i in range(self.size):
            data_dir = self.root / f"n{i + 1}"
            data_dir.mkdir(parents=True, exist_ok=True)
            config = data_dir / "node.conf"
            config.write_text(node_config(f"n{i + 1}", cluster_ports[i], [p for p in cluster_ports if p != cluster_ports[i]]))
            # EmbeddedNats adds `-a 127.0.0.1 -p <port> -js -sd <data_dir>/jetstream`; the file adds the rest.
            self.nodes.append(EmbeddedNats(data_dir, port=client_ports[i], config_file=config, start_timeout=30))
        for node in self.nodes:
            node.start()
        return self.urls

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def node(self, server_name: str) -> EmbeddedNats:
        return self.nodes[int(server_name.removeprefix("n")) - 1]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
