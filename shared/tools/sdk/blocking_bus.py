"""One request over NATS on a blocking socket: a short-lived process's way to ask (`one whoami`).

A CLI command lives for a request or two. Importing asyncio and nats-py (which imports aiohttp when it is
installed) was most of `one whoami`'s start (issue 18); this speaks the few lines of the NATS client
protocol a request needs instead: read INFO, send CONNECT, subscribe a reply inbox, publish the envelope,
read the reply (`MSG`/`HMSG`), answer the server's PINGs. It logs in as `BusClient` does (the settings'
user and password, else the URL's). The reply is decoded by the kernel's `decode_reply`: the result model,
or the service's typed error; no responders and no answer in time are `Unavailable`, as with `BusClient`.

Plain `nats://` servers only: a TLS server or a websocket URL raises `NeedsFullClient` before anything is
sent, and the caller uses the SDK's `BusTransport` (nats-py). No trace context is sent: the service starts
the trace.
"""

import json
import os
import socket
import time
from itertools import count
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel

from shared.kernel.envelope import Envelope, MessageSpec, decode_reply
from shared.kernel.errors import PayloadTooLarge, Unavailable

if TYPE_CHECKING:
    from shared.kernel.settings import Settings
    from shared.tools.sdk.connect import ClientSettings

R = TypeVar("R", bound=BaseModel)
_CRLF = b"\r\n"


class NeedsFullClient(Exception):
    """This server needs what only nats-py speaks (TLS, websocket): nothing was sent."""


class BlockingBus:
    def __init__(self, sock: socket.socket, info: dict[str, Any], timeout: float) -> None:
        self._sock = sock
        self._info = info
        self._timeout = timeout
        self._buffer = bytearray()
        self._sids = count(1)
        self._inbox = f"_INBOX.{os.urandom(12).hex()}."
        self._unsent = b""  # the CONNECT, sent with the first request

    @classmethod
    def connect(cls, settings: "Settings | ClientSettings", name: str = "one-client") -> "BlockingBus":
        """Connect and log in; the CONNECT goes out with the first request (one round trip for both)."""
        url = urlsplit(settings.nats_url if "://" in settings.nats_url else f"nats://{settings.nats_url}")
        if url.scheme != "nats" or "," in url.netloc:
            raise NeedsFullClient(f"{url.scheme}:// servers")
        timeout = settings.request_timeout
        sock = socket.create_connection((url.hostname or "127.0.0.1", url.port or 4222), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            bus = cls(sock, {}, timeout)
            word, _, info = bus._line(time.monotonic() + timeout).partition(" ")
            if word != "INFO":
                raise ConnectionError(f"nats: expected INFO from the server, got {word!r}")
            bus._info = json.loads(info)
            if bus._info.get("tls_required"):
                raise NeedsFullClient("the server requires TLS")
        except BaseException:
            sock.close()
            raise
        login: dict[str, Any] = {"verbose": False, "pedantic": False, "lang": "python3", "version": "one",
                                 "protocol": 1, "headers": True, "no_responders": True, "name": name}
        if settings.nats_user:
            login |= {"user": settings.nats_user,
                      "pass": settings.nats_password.get_secret_value() if settings.nats_password else None}
        elif url.username is not None:  # as nats-py: `nats://token@host`, or `nats://user:password@host`
            login |= {"auth_token": url.username} if url.password is None else {"user": url.username,
                                                                                 "pass": url.password}
        bus._unsent = b"CONNECT " + json.dumps(login).encode() + _CRLF
        return bus

    def request(self, spec: MessageSpec[Any, R], envelope: Envelope, *, timeout: float | None = None) -> R:
        """Send one envelope to its spec's subject and return the decoded reply (or raise its typed error)."""
        body = envelope.to_bytes()
        limit = self._info.get("max_payload")
        if limit is not None and len(body) > limit:
            raise PayloadTooLarge(f"a {spec.type} request of {len(body):,} bytes exceeds the broker's {limit:,}",
                                  {"size": len(body), "max_payload": limit})
        sid = next(self._sids)
        inbox = f"{self._inbox}{sid}"
        self._send(f"SUB {inbox} {sid}\r\nUNSUB {sid} 1\r\nPUB {spec.subject} {inbox} {len(body)}\r\n".encode()
                   + body + _CRLF)
        deadline = time.monotonic() + (timeout or self._timeout)
        while True:
            try:
                line = self._line(deadline)
            except TimeoutError:
                raise Unavailable(f"{spec.subject} did not answer in time", {"subject": spec.subject}) from None
            word, _, rest = line.partition(" ")
            if word == "PING":
                self._send(b"PONG\r\n")
            elif word == "-ERR":
                raise ConnectionError("nats: " + rest.strip("'"))
            elif word in ("MSG", "HMSG"):
                fields = rest.split()
                sizes = [int(n) for n in fields[-2 if word == "HMSG" else -1:]]
                data = self._exact(sizes[-1] + 2, deadline)[:-2]
                if fields[0] != inbox:
                    continue
                headers, payload = (data[:sizes[0]], data[sizes[0]:]) if word == "HMSG" else (b"", data)
                if headers.startswith(b"NATS/1.0 503"):  # the server's "nobody listens"
                    raise Unavailable(f"no service answers {spec.subject}", {"subject": spec.subject})
                return decode_reply(bytes(payload), spec)
            # INFO updates, PONG, +OK: nothing to do

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> "BlockingBus":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _send(self, data: bytes) -> None:
        self._sock.sendall(self._unsent + data)
        self._unsent = b""

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self._sock.settimeout(remaining)
        chunk = self._sock.recv(65536)  # socket.timeout is TimeoutError
        if not chunk:
            raise ConnectionError("nats: the server closed the connection")
        self._buffer += chunk

    def _line(self, deadline: float) -> str:
        while (end := self._buffer.find(_CRLF)) < 0:
            self._fill(deadline)
        line = self._buffer[:end].decode()
        del self._buffer[:end + 2]
        return line

    def _exact(self, size: int, deadline: float) -> bytearray:
        while len(self._buffer) < size:
            self._fill(deadline)
        data = self._buffer[:size]
        del self._buffer[:size]
        return data
