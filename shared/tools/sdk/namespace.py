"""The base of `one.things`, `one.knowledge`, ...: typed methods that are one `request` each."""

from typing import Any

from shared.tools.sdk.transport import Transport


class Namespace:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    async def _call(self, spec: Any, timeout: float | None = None, **fields: Any) -> Any:
        """`spec` with the fields given (None = not given: the service's default applies)."""
        return await self.transport.request(spec, given(fields), timeout=timeout)


def given(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}
