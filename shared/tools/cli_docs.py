"""`one asyncapi`: the bus's AsyncAPI 3 document, generated from the contracts' registered messages.

The same document the gateway serves at `/asyncapi.json`; no stack needs to run to write it.
"""

import json
from pathlib import Path

import typer


def asyncapi(
    out: Path = typer.Option(None, "--out", "-o", help="Write it to this file instead of standard output."),
) -> None:
    """Write the AsyncAPI 3 document of the bus's subjects and messages (JSON)."""
    from shared.contracts.asyncapi import asyncapi_document  # imports every contract: only when run

    text = json.dumps(asyncapi_document(), indent=2) + "\n"
    if out is None:
        print(text, end="")
        return
    out.write_text(text)
    typer.echo(f"wrote {out}", err=True)
