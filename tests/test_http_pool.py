"""The batch's HTTP client: one `httpx.AsyncClient` whose requests are spread over several small
stock connection pools, never more connections than the batch's concurrency, HTTPS pools (and
their CA bundle) only once an HTTPS request comes."""

from __future__ import annotations

import asyncio
import socket
import ssl

import httpx
import pytest

from llmroute.http_pool import ShardedTransport, async_client
from tests.support import refused_url


def _gated_pools(count: int):
    """`count` mock pools whose requests wait until the test opens `gate`; `entered[i]` counts
    the requests pool i is carrying."""
    gate = asyncio.Event()
    entered = [0] * count
    arrived = asyncio.Event()

    def pool(index: int) -> httpx.MockTransport:
        async def handler(request: httpx.Request) -> httpx.Response:
            entered[index] += 1
            arrived.set()
            await gate.wait()
            return httpx.Response(200, json={"pool": index})
        return httpx.MockTransport(handler)

    return [pool(i) for i in range(count)], gate, entered, arrived


def test_requests_in_flight_go_to_the_least_busy_pool():
    transport = ShardedTransport(8, pool_size=2)
    assert len(transport.plain.pools) == 4

    async def go():
        pools, gate, entered, arrived = _gated_pools(4)
        transport.plain.pools = pools  # no sockets: the spreading is what is under test
        async with httpx.AsyncClient(transport=transport) as client:
            calls = [asyncio.create_task(client.get(f"http://x/{i}")) for i in range(8)]
            while sum(entered) < 8:
                arrived.clear()
                await arrived.wait()
            spread = list(entered)
            busy_while_waiting = list(transport.plain.busy)
            gate.set()
            responses = await asyncio.gather(*calls)
        return spread, busy_while_waiting, sorted(r.json()["pool"] for r in responses)

    spread, busy_while_waiting, pools = asyncio.run(go())
    assert spread == [2, 2, 2, 2] and busy_while_waiting == [2, 2, 2, 2]
    assert pools == [0, 0, 1, 1, 2, 2, 3, 3]
    assert transport.plain.busy == [0, 0, 0, 0]  # every slot freed once its answer was read
    assert transport.tls is None  # no HTTPS request: the CA bundle was never loaded


def test_a_failed_request_frees_its_pool_slot():
    transport = ShardedTransport(4, pool_size=2)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/slow":
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(200, text="ok")

    transport.plain.pools = [httpx.MockTransport(handler) for _ in transport.plain.pools]

    async def go():
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get("http://x/slow")
            assert transport.plain.busy == [0, 0]
            return (await client.get("http://x/fast")).text

    assert asyncio.run(go()) == "ok"


def test_https_goes_through_verifying_pools_built_on_first_use():
    transport = ShardedTransport(4, pool_size=2)
    # The plain pools' context trusts no CA: an HTTPS request sent there could never skip checks.
    plain = transport.plain.ssl_context
    assert plain.verify_mode == ssl.CERT_REQUIRED and plain.check_hostname
    assert plain.cert_store_stats()["x509_ca"] == 0
    hosts = []

    def handler(request):
        hosts.append(str(request.url))
        return httpx.Response(200, text="ok")

    async def go():
        async with httpx.AsyncClient(transport=transport) as client:
            transport.plain.pools = [httpx.MockTransport(handler)] * 2
            await client.get("http://local/a")
            assert transport.tls is None
            with pytest.raises(httpx.ConnectError):  # nothing listens; the shards exist by now
                await client.get(refused_url().replace("http://", "https://"))

    asyncio.run(go())
    assert transport.tls is not None and len(transport.tls.pools) == 2
    verifying = transport.tls.ssl_context
    assert verifying.verify_mode == ssl.CERT_REQUIRED and verifying.cert_store_stats()["x509_ca"] > 0
    assert hosts == ["http://local/a"]


class _Server:
    """A keep-alive HTTP/1.1 server on loopback, in the test's event loop: `reply(head)` gives
    each request's (extra headers, body); every accepted connection is kept in `connections`."""

    def __init__(self, reply):
        self.reply = reply
        self.connections: list[asyncio.StreamWriter] = []
        self.heads: list[str] = []

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connections.append(writer)
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                length = next((int(line.split(":", 1)[1]) for line in head.split("\r\n")
                               if line.lower().startswith("content-length:")), 0)
                await reader.readexactly(length)
                self.heads.append(head)
                headers, body = self.reply(head)
                writer.write(f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\n{headers}\r\n".encode()
                             + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def aclose(self) -> None:
        for writer in self.connections:
            writer.close()
        self.server.close()
        await self.server.wait_closed()


def test_connections_are_kept_alive_across_requests():
    server = _Server(lambda head: ("", head.split(" ", 2)[1].encode()))

    async def go():
        url = await server.start()
        try:
            async with httpx.AsyncClient(transport=ShardedTransport(1)) as client:
                first = await client.post(f"{url}/one", content=b"1")
                second = await client.post(f"{url}/two", content=b"2")
        finally:
            await server.aclose()
        return first.text, second.text

    assert asyncio.run(go()) == ("/one", "/two")
    assert len(server.connections) == 1


def test_the_batch_client_opens_at_most_its_concurrency_in_connections():
    server = _Server(lambda head: ("", b"ok"))

    async def go():
        url = await server.start()
        try:
            async with async_client(4, {"User-Agent": "t"}) as client:
                responses = await asyncio.gather(*(client.get(f"{url}/{i}") for i in range(20)))
        finally:
            await server.aclose()
        return [r.text for r in responses]

    assert asyncio.run(go()) == ["ok"] * 20
    assert 1 <= len(server.connections) <= 4  # a stock client would open one per request in flight


def test_the_batch_client_sends_its_headers_and_keeps_a_cookie_the_server_sets():
    def reply(head: str):
        if " /set " in head.split("\r\n")[0]:
            return "set-cookie: session=abc; Path=/\r\n", b""
        cookie = next((line.split(":", 1)[1].strip() for line in head.split("\r\n")
                       if line.lower().startswith("cookie:")), "")
        return "", cookie.encode()

    server = _Server(reply)

    async def go():
        url = await server.start()
        try:
            async with async_client(2, {"User-Agent": "llmroute/test"}) as client:
                before = (await client.get(f"{url}/echo")).text
                await client.get(f"{url}/set")
                after = (await client.get(f"{url}/echo")).text
        finally:
            await server.aclose()
        return before, after

    assert asyncio.run(go()) == ("", "session=abc")
    assert all("user-agent: llmroute/test" in head.lower() for head in server.heads)
