"""A local forward proxy that counts what it carries: HTTP (absolute-URI requests and CONNECT
tunnels) and SOCKS5, with optional credentials, on its own thread and event loop.

    with ForwardProxy(user="u", password="p") as proxy:
        proxy.url            # http://u:p@127.0.0.1:PORT  (proxy.socks_url: socks5://...)
        proxy.requests       # [Proxied("http", "127.0.0.1", 8002, "/talk.html"), Proxied("connect", ...)]

Every request that reaches a target is recorded; one refused for missing or wrong credentials
(407, or a SOCKS5 auth failure) is counted in `refused` and goes nowhere.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import struct
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from tests.support.aioserver import LoopThread


@dataclass(frozen=True)
class Proxied:
    """One request the proxy carried: how ("http", "connect", "socks5"), where, and the path
    (an absolute-URI request's; "" for tunnels, whose contents the proxy does not see)."""

    kind: str
    host: str
    port: int
    path: str = ""


class ForwardProxy(LoopThread):
    thread_name = "forward-proxy"

    def __init__(self, user: str | None = None, password: str | None = None, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.user = user
        self.password = password
        self.requests: list[Proxied] = []
        self.refused = 0
        self._server: asyncio.Server | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The HTTP proxy URL, credentials included."""
        return f"http://{self._userinfo()}{self.host}:{self.port}"

    @property
    def socks_url(self) -> str:
        """The SOCKS5 URL of the same proxy (socks5: the client resolves names)."""
        return f"socks5://{self._userinfo()}{self.host}:{self.port}"

    def _userinfo(self) -> str:
        return f"{self.user}:{self.password}@" if self.user is not None else ""

    def carried(self, kind: str | None = None) -> list[Proxied]:
        with self._lock:
            return [r for r in self.requests if kind is None or r.kind == kind]

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    def _record(self, request: Proxied) -> None:
        with self._lock:
            self.requests.append(request)

    def _refuse(self) -> None:
        with self._lock:
            self.refused += 1

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await reader.readexactly(1)
            if first == b"\x05":
                await self._socks5(reader, writer)
            else:
                await self._http(first, reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, OSError, ValueError):
            pass
        finally:
            writer.close()

    # -- HTTP: absolute-URI requests and CONNECT
    async def _http(self, first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = first + await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ", 2)
        headers = [line for line in header_lines if line]
        auth = next(
            (v.strip() for k, _, v in (h.partition(":") for h in headers) if k.lower() == "proxy-authorization"), ""
        )
        if (
            self.user is not None
            and auth != "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        ):
            self._refuse()
            writer.write(
                b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n"
            )
            await writer.drain()
            return
        if method == "CONNECT":
            host, _, port_text = target.rpartition(":")
            upstream_reader, upstream_writer = await asyncio.open_connection(host.strip("[]"), int(port_text))
            self._record(Proxied("connect", host.strip("[]"), int(port_text)))
            writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            await writer.drain()
            await _pipe(reader, writer, upstream_reader, upstream_writer)
            return
        url = urlsplit(target)
        port = url.port or 80
        upstream_reader, upstream_writer = await asyncio.open_connection(url.hostname, port)
        self._record(Proxied("http", url.hostname or "", port, url.path or "/"))
        path = url.path or "/"
        if url.query:
            path += "?" + url.query
        kept = [
            h
            for h in headers
            if h.partition(":")[0].strip().lower() not in ("proxy-authorization", "proxy-connection", "connection")
        ]
        upstream_writer.write(f"{method} {path} {version}\r\n".encode("latin-1"))
        upstream_writer.write(("\r\n".join([*kept, "Connection: close"]) + "\r\n\r\n").encode("latin-1"))
        await upstream_writer.drain()
        await _pipe(reader, writer, upstream_reader, upstream_writer)

    # -- SOCKS5 (RFC 1928, 1929)
    async def _socks5(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        methods = await reader.readexactly((await reader.readexactly(1))[0])
        wanted = 0x02 if self.user is not None else 0x00
        if wanted not in methods:
            self._refuse()
            writer.write(b"\x05\xff")
            return
        writer.write(bytes([5, wanted]))
        if wanted == 0x02:
            await reader.readexactly(1)  # sub-negotiation version
            user = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
            password = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
            if (user, password) != (self.user, self.password):
                self._refuse()
                writer.write(b"\x01\x01")
                return
            writer.write(b"\x01\x00")
        _, command, _, kind = await reader.readexactly(4)
        if kind == 1:
            host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
        elif kind == 4:
            host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
        else:
            host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        if command != 1:  # CONNECT only
            writer.write(b"\x05\x07\x00\x01" + bytes(6))
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        self._record(Proxied("socks5", host, port))
        writer.write(b"\x05\x00\x00\x01" + bytes(6))
        await writer.drain()
        await _pipe(reader, writer, upstream_reader, upstream_writer)


async def _pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    upstream_reader: asyncio.StreamReader,
    upstream_writer: asyncio.StreamWriter,
) -> None:
    """Copy both ways until either side closes."""

    async def copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        with contextlib.suppress(Exception):
            sink.close()

    await asyncio.gather(copy(reader, upstream_writer), copy(upstream_reader, writer))
