"""The agents service's secrets sealed with envelope encryption (`shared.runtime.keyring`), like graph's, tenancy's
and commerce's: AES-GCM under the org's data key in `agents.data_keys`, wrapped by a key-encryption key, so
`one keys rotate` re-wraps them without touching a secret. The additional data binds the org, the owning row's id
and the purpose: a blob copied to another org, another row, or used for another kind of secret does not open.

Sealed here: plugin installs' secret settings (`plugin_secrets`), external A2A agents' credentials, the token
and authentication of A2A push configs (`a2a_push`), and agent configs' HTTP tool secrets and MCP server headers
(`seal_config`, opened for a run by `open_config`). A credential stored in clear before v0009 still works and is
sealed at its first use (`external_credential`); a push config stored in clear before keeps working as it is.
"""

import base64
import json
from typing import Any
from uuid import UUID

from pydantic import SecretStr

from services.agents import repository_external
from services.agents.models_external import ExternalAgentRow
from shared.kernel.sealing_envelope import owner
from shared.runtime.keyring import keyring_for
from shared.runtime.service import ServiceRuntime

PLUGIN_SETTINGS = b"one.agents.plugin-settings"
"""A plugin install's secret settings (one JSON object per install)."""
EXTERNAL_CREDENTIAL = b"one.agents.external-credential"
"""The credential an external A2A agent demands (owner: the external agent's id)."""
PUSH_SECRETS = b"one.agents.a2a-push-secrets"
"""An A2A push config's token and authentication (owner: `<task id>/<config id>`)."""
HTTP_TOOL_SECRET = b"one.agents.http-tool-secret"
"""An agent config's HTTP tool signing secret (owner: `<agent id>/<tool name>`)."""
MCP_HEADERS = b"one.agents.mcp-headers"
"""An agent config's MCP server headers, one JSON object (owner: `<agent id>/<server name>`)."""


async def seal(runtime: ServiceRuntime, purpose: bytes, org_id: UUID, owner_id: UUID | str, plaintext: bytes) -> bytes:
    return await keyring_for(runtime).seal(org_id, plaintext, owner(purpose, org_id, owner_id))


async def open_sealed(runtime: ServiceRuntime, purpose: bytes, org_id: UUID, owner_id: UUID | str,
                      sealed: bytes) -> bytes:
    """The plaintext; ValueError if it was altered or moved (another org, row or purpose), LookupError if the KEK
    that wraps its data key is gone."""
    return await keyring_for(runtime).open(org_id, sealed, owner(purpose, org_id, owner_id))


async def credential_columns(runtime: ServiceRuntime, org_id: UUID, agent_id: UUID,
                             credential: SecretStr | str | None) -> dict[str, Any]:
    """An external agent's credential columns: sealed, with its last four characters as the hint (None: removed)."""
    plain = credential.get_secret_value() if isinstance(credential, SecretStr) else credential
    if not plain:
        return {"credential": None, "credential_sealed": None, "credential_hint": None}
    sealed = await seal(runtime, EXTERNAL_CREDENTIAL, org_id, agent_id, plain.encode())
    return {"credential": None, "credential_sealed": sealed, "credential_hint": f"...{plain[-4:]}"}


async def external_credential(runtime: ServiceRuntime, row: ExternalAgentRow) -> str | None:
    """The credential to send to the external agent; one still stored in clear is sealed now (then used)."""
    if row.credential_sealed is not None:
        return (await open_sealed(runtime, EXTERNAL_CREDENTIAL, row.org_id, row.id,
                                  bytes(row.credential_sealed))).decode()
    if row.credential:
        columns = await credential_columns(runtime, row.org_id, row.id, row.credential)
        async with runtime.db.transaction(row.org_id) as session:
            await repository_external.reseal_credential(session, row.org_id, row.id, row.credential, columns)
    return row.credential


async def seal_config(runtime: ServiceRuntime, org_id: UUID, agent_id: UUID, config: dict[str, Any]) -> dict[str, Any]:
    """An agent config as stored: each HTTP tool's `secret` and each MCP server's `headers` given in clear replaced
    by `secret_sealed` / `headers_sealed` (base64), bound to the agent and the tool's or server's name (so a deploy's
    copy of the config still opens)."""
    for tool in config.get("http_tools") or []:
        secret = tool.pop("secret", None)
        if secret:
            sealed = await seal(runtime, HTTP_TOOL_SECRET, org_id, f"{agent_id}/{tool['name']}", secret.encode())
            tool["secret_sealed"] = base64.b64encode(sealed).decode()
    for server in config.get("mcp_servers") or []:
        headers = server.pop("headers", None)
        if headers:
            plaintext = json.dumps(headers).encode()
            sealed = await seal(runtime, MCP_HEADERS, org_id, f"{agent_id}/{server['name']}", plaintext)
            server["headers_sealed"] = base64.b64encode(sealed).decode()
    return config


async def open_config(runtime: ServiceRuntime, org_id: UUID, agent_id: UUID, config: dict[str, Any]) -> dict[str, Any]:
    """A copy of a stored config with its HTTP tools' secrets and MCP servers' headers in clear (for a run, in memory
    only); a config stored before they were sealed has them in clear already."""
    tools = []
    for tool in config.get("http_tools") or []:
        tool = {**tool}
        if tool.get("secret_sealed"):
            tool["secret"] = (await open_sealed(runtime, HTTP_TOOL_SECRET, org_id, f"{agent_id}/{tool['name']}",
                                                base64.b64decode(tool.pop("secret_sealed")))).decode()
        tools.append(tool)
    servers = []
    for server in config.get("mcp_servers") or []:
        server = {**server}
        if server.get("headers_sealed"):
            plaintext = await open_sealed(runtime, MCP_HEADERS, org_id, f"{agent_id}/{server['name']}",
                                          base64.b64decode(server.pop("headers_sealed")))
            server["headers"] = json.loads(plaintext)
        servers.append(server)
    return {**config, "http_tools": tools, "mcp_servers": servers}
