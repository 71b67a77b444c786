"""The A2A v1.0 server of every published agent (issue #19): a2a-sdk's wire, the agents service's tasks.

`mount.py` puts each agent at `/a2a/{org slug}/{agent slug}` (the org's id answers too): the public card at
`{base}/.well-known/agent-card.json` (card.py), JSON-RPC at `{base}` (POST) and HTTP+JSON below it
(`{base}/message:send`, `{base}/tasks/{id}`, ...), both with the 0.3 names as well; every call
but the card needs an API key of the agent's org (auth.py). The SDK's dispatchers parse, validate
and answer the wire; the request handler they call (handler.py) sends each operation as one
`one.proto.a2a.*` request to the agents service, which keeps the tasks: this gateway keeps none,
so any replica answers any task, also after a restart. Streams follow the task's run steps
(stream.py, with the AG-UI stream's follower).
"""
