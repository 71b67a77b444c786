"""The ONE SDK: `async with await One.connect() as one:` over the bus or the gateway (see `client.py`)."""

from shared.tools.sdk.client import One
from shared.tools.sdk.transport import NoCredentials, NoHttpRoute

__all__ = ["NoCredentials", "NoHttpRoute", "One"]
