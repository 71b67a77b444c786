"""The subject scheme, written down once.

- commands and queries:      one.<service>.<verb>            (request/reply, queue group per service)
- domain events (JetStream): one.events.<protocol>.<org_id>.<event_type>
- protocol traffic:          one.proto.<protocol>.<verb>
- notifications (core NATS): one.notify.<channel>            (drops for adapters that deliver them, e.g. a mailer)
"""

from uuid import UUID

PREFIX = "one"
SERVICES = ("tenancy", "graph", "eventlog", "knowledge", "agents", "commerce", "gateway")
EVENTS_ROOT = f"{PREFIX}.events"
ALL_EVENTS = f"{EVENTS_ROOT}.>"
DEAD_LETTER_ROOT = f"{PREFIX}.deadletter"
ALL_DEAD_LETTERS = f"{DEAD_LETTER_ROOT}.>"


def command(service: str, verb: str) -> str:
    """`one.graph.things.create` = command("graph", "things.create")."""
    return f"{PREFIX}.{service}.{verb}"


def health(service: str) -> str:
    return command(service, "health")


def queue_group(service: str) -> str:
    """Replicas of a service share one queue group, so each request is handled once."""
    return f"{PREFIX}.{service}"


def event(protocol: str, org_id: UUID | str, event_type: str) -> str:
    return f"{EVENTS_ROOT}.{protocol}.{org_id}.{event_type}"


def events_filter(protocol: str = "*", org_id: UUID | str = "*", event_type: str = "*") -> str:
    """A wildcard filter over domain events, e.g. every x402 event of one org."""
    return f"{EVENTS_ROOT}.{protocol}.{org_id}.{event_type}"


def proto(protocol: str, verb: str) -> str:
    return f"{PREFIX}.proto.{protocol}.{verb}"


def notify(channel: str) -> str:
    """`one.notify.email`: a message a delivery adapter (mailer, SMS) consumes; core NATS, never the event stream."""
    return f"{PREFIX}.notify.{channel}"


def dead_letter(service: str) -> str:
    return f"{DEAD_LETTER_ROOT}.{service}"
