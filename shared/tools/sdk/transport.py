"""What both transports offer the SDK: one generic `request`, the caller's identity, and health.

`BusTransport` speaks NATS (the embedded stack, or `NATS_URL`), `HttpTransport` the gateway's REST
API (`ONE_URL`). Each sends a contract's `MessageSpec` with its payload and returns the spec's
result model, or raises the contract's `OneError` class the service (or the gateway's problem body)
named, so code written against one runs unchanged on the other.
"""

from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from shared.kernel.envelope import MessageSpec
from shared.kernel.errors import InvalidRequest, OneError

if TYPE_CHECKING:
    from shared.contracts.tenancy import VerifiedKey

R = TypeVar("R", bound=BaseModel)
Payload = BaseModel | dict[str, Any] | None


class NoHttpRoute(InvalidRequest):
    """The message has no route at the gateway: it is reachable over the bus only."""

    code = "no_http_route"


class NoCredentials(OneError):
    """Nothing to authenticate with: no API key given, in `ONE_API_KEY`, or in the data directory."""

    code = "no_credentials"


class Transport(Protocol):
    kind: str
    """`bus` or `http`."""

    async def request(self, spec: MessageSpec[Any, R], payload: Payload = None, *, timeout: float | None = None,
                      retry: bool = False) -> R: ...

    async def whoami(self) -> "VerifiedKey": ...

    async def health(self, timeout: float) -> dict[str, Any]: ...

    async def close(self) -> None: ...


def as_json(payload: Payload) -> dict[str, Any]:
    """A payload as JSON values: a model only with the fields that were set (a PATCH changes only those)."""
    if payload is None:
        return {}
    if isinstance(payload, BaseModel):
        return payload.model_dump(mode="json", exclude_unset=True)
    return to_jsonable_python(payload)
