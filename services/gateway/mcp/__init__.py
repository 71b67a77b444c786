"""The platform as a Model Context Protocol server at `/mcp` (Streamable HTTP, stateless, JSON replies).

Any MCP client — Claude Desktop, an IDE's agent, the official `mcp` SDK — connects with an org's API key
(`Authorization: Bearer <key>`, verified and rate-counted like every gateway route) and gets the ontology
as tools (things, connections, events, knowledge search, agent chat) and resources (`one://things/{id}`,
`one://knowledge/{id}`). Every tool is one bus request with the caller's own auth context, so RBAC, the
org scope and the events a mutation leaves are exactly those of the REST route doing the same.
"""
