"""The SDK over the gateway's REST API: a user with only a URL and an API key, no NATS.

Each `MessageSpec` goes to its route (`routes.HTTP_ROUTES`): path fields into the path, the rest
into the query string or the JSON body, the key as `Authorization: Bearer`. A 2xx body is the
spec's result model; a problem body (RFC 9457) becomes the `OneError` class of its `code` (the
HTTP status names the family for a code this process does not know), as the bus reply would.
"""

import json
from collections.abc import AsyncIterator
from typing import Any, TypeVar
from urllib.parse import quote
from uuid import UUID

import httpx
from pydantic import BaseModel

from shared.contracts.tenancy import VerifiedKey
from shared.kernel.envelope import MessageSpec
from shared.kernel.errors import InvalidRequest, OneError, Unavailable
from shared.tools.sdk.routes import HTTP_ROUTES, Route
from shared.tools.sdk.transport import NoHttpRoute, Payload, as_json

R = TypeVar("R", bound=BaseModel)

FAMILY_BY_STATUS = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 409: "conflict", 413: "invalid",
                    422: "invalid", 429: "rate_limited", 503: "unavailable"}
WHOAMI = "/v1/whoami"
STATUS = "/v1/status"


class HttpTransport:
    kind = "http"

    def __init__(self, url: str, key: str, *, timeout: float = 10.0, org: UUID | None = None) -> None:
        if org is not None:
            raise InvalidRequest("acting in another org (--org) goes over the bus only; the gateway acts in the "
                                 "key's own org: use that org's key, or NATS_URL / the embedded stack")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.http = httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=timeout)
        self.verified: VerifiedKey | None = None

    async def request(self, spec: MessageSpec[Any, R], payload: Payload = None, *, timeout: float | None = None,
                      retry: bool = False) -> R:
        route = _route(spec)
        if route.stream:
            raise NoHttpRoute(f"{spec.type} is a stream over HTTP ({route.path}): follow it with `stream`")
        path, rest = await self._path(spec, route, as_json(payload))
        response = await self._send(route.method, path, timeout=timeout, **_carry(spec, route, rest))
        return spec.result.model_validate_json(response.content)

    async def stream(self, spec: MessageSpec[Any, BaseModel], payload: Payload, *, item: type[R],
                     resume_field: str = "after") -> AsyncIterator[R]:
        """A Server-Sent Events route's items, forever: a dropped connection resumes after the last id seen."""
        route = _route(spec)
        path, rest = await self._path(spec, route, as_json(payload))
        last: str | None = None
        while True:
            params = _carry(spec, route, {**rest, **({resume_field: int(last)} if last is not None else {})})["params"]
            try:
                async with self.http.stream("GET", path, params=params, timeout=httpx.Timeout(self.timeout, read=None)) as response:
                    async for data, event_id in event_stream(response):
                        last = event_id or last
                        yield item.model_validate_json(data)
            except (httpx.RemoteProtocolError, httpx.ReadError):
                continue  # the connection dropped: resume after `last`

    async def whoami(self) -> VerifiedKey:
        if self.verified is None:
            self.verified = VerifiedKey.model_validate_json((await self._send("GET", WHOAMI)).content)
        return self.verified

    async def health(self, timeout: float) -> dict[str, Any]:
        from shared.runtime.service import HealthReport  # the runtime's report model; loaded only when asked

        services = (await self._send("GET", STATUS, timeout=timeout + self.timeout)).json()["services"]
        return {name: HealthReport.model_validate(report) if "code" not in report else OneError.from_payload(report)
                for name, report in services.items()}

    async def close(self) -> None:
        await self.http.aclose()

    async def _path(self, spec: MessageSpec[Any, Any], route: Route, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        path = route.path
        for parameter, field in route.path_fields.items():
            value = data.pop(field, None)
            if value is None and field == "org_id":  # the tenancy payloads' "my own org"
                value = str((await self.whoami()).org_id)
            if value is None:
                raise InvalidRequest(f"{spec.type} needs {field}", {"field": field})
            path = path.replace(f"{{{parameter}}}", quote(str(value), safe=""))
        return path, data

    async def _send(self, method: str, path: str, *, timeout: float | None = None, **carry: Any) -> httpx.Response:
        try:
            response = await self.http.request(method, path, timeout=timeout or self.timeout, **carry)
        except httpx.TimeoutException:
            raise Unavailable(f"{method} {self.url}{path} did not answer in time", {"url": self.url}) from None
        except httpx.TransportError as error:
            raise Unavailable(f"cannot reach the gateway at {self.url}: {error}", {"url": self.url}) from None
        if response.status_code >= 400:
            raise _problem(response)
        return response


def _route(spec: MessageSpec[Any, Any]) -> Route:
    route = HTTP_ROUTES.get(spec.type)
    if route is None:
        raise NoHttpRoute(f"{spec.type} has no HTTP route at the gateway: it needs the bus (NATS_URL, or the "
                          "embedded stack of `one up`)", {"type": spec.type})
    return route


def _carry(spec: MessageSpec[Any, Any], route: Route, data: dict[str, Any]) -> dict[str, Any]:
    """The rest of the payload as httpx arguments: `json=` for a body, `params=` for a query string."""
    if route.send == "body":
        return {"json": data}
    if route.send == "query":
        return {"params": _query(route, data)}
    extra = [name for name, value in data.items() if value is not None]
    if extra:
        raise NoHttpRoute(f"{spec.type} over HTTP carries only {', '.join(route.path_fields) or 'nothing'}, "
                          f"not {', '.join(extra)}", {"type": spec.type, "fields": extra})
    return {}


def _query(route: Route, data: dict[str, Any]) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    for name, value in data.items():
        if value is None:
            if name in route.empty_nulls:
                params.append((name, ""))
            continue
        values = value if isinstance(value, list) else [value]
        for one in values:
            if name in route.clauses and isinstance(one, dict):
                one = ":".join([one["path"], one.get("op", "eq"), *([json.dumps(one["value"])] if "value" in one else [])])
            params.append((name, _scalar(one)))
    return params


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def _problem(response: httpx.Response) -> OneError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "code" not in body:
        return Unavailable(f"the gateway answered {response.status_code} without a problem body",
                           {"status": response.status_code})
    return _error(body, response.status_code)


def _error(problem: dict[str, Any], status: int) -> OneError:
    family = FAMILY_BY_STATUS.get(status, "unavailable" if status >= 500 else "invalid")
    return OneError.from_payload({"code": problem.get("code"), "family": family,
                                  "message": problem.get("detail"), "details": problem.get("details") or {}})


async def event_stream(response: httpx.Response) -> AsyncIterator[tuple[str, str | None]]:
    """(data, id) per message of a gateway's event stream; a refusal before the stream, or its final `problem`
    message, is raised as the typed error."""
    if response.status_code >= 400:
        await response.aread()
        raise _problem(response)
    async for name, data, event_id in _sse(response):
        if name == "problem":
            raise _error(json.loads(data), 503)
        yield data, event_id


async def _sse(response: httpx.Response) -> AsyncIterator[tuple[str, str, str | None]]:
    """(event name, data, id) per Server-Sent Events message; comments (heartbeats) skipped."""
    name, data, event_id = "message", [], None
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield name, "\n".join(data), event_id
            name, data, event_id = "message", [], None
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            name = value
        elif field == "id":
            event_id = value
