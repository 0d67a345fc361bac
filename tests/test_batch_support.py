"""Batch throughput helpers: buffered routing-memory updates replay exactly like direct ones;
the sharded transport spreads requests over small pools behind one client."""

from __future__ import annotations

import asyncio
import ssl

import httpx
import pytest

from llmroute.batch_support import BufferedMemory, LazyCookies, ShardedTransport, async_client
from llmroute.errors import ErrorClass
from llmroute.routing.memory import RoutingMemory
from llmroute.types import Target
from tests.support import refused_url

A = Target("p", "a")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def outcomes(memory, clock):
    for i in range(3):
        clock.now += 1
        memory.record_success(A, 100 + i, None, 10)
    for _ in range(3):
        clock.now += 1
        memory.record_failure(A, ErrorClass.SERVER_ERROR, None, None, 20.0)


def test_buffered_outcomes_leave_the_same_state_as_direct_ones(tmp_path):
    clock_a, clock_b = Clock(), Clock()
    direct = RoutingMemory(tmp_path / "a", clock=clock_a)
    outcomes(direct, clock_a)
    ticks = iter(range(100))
    buffered = BufferedMemory(RoutingMemory(tmp_path / "b", clock=clock_b), interval=1000,
                              monotonic=lambda: next(ticks))
    buffered.flush()
    outcomes(buffered, clock_b)
    assert buffered.inner.store.read() == {}  # nothing written before the flush
    buffered.flush()
    assert buffered.inner.store.read() == direct.store.read()
    assert buffered.snapshot().breaker(A.id).state == "open"


def test_rare_calls_flush_first_and_go_straight_through(tmp_path):
    clock = Clock()
    buffered = BufferedMemory(RoutingMemory(tmp_path, clock=clock), interval=1000, monotonic=lambda: 0.0)
    buffered.record_success(A, 50, None, 1)
    assert buffered.advance_round_robin("k", 3) == 0
    assert buffered.inner.store.read()["latency"] == {A.id: 50.0}


def test_sharded_transport_uses_several_pools_behind_one_client():
    seen = []

    def handler(request):
        seen.append(request.url.path)
        return httpx.Response(200, json={"ok": True})

    transport = ShardedTransport(32, pool_size=8)
    assert len(transport.plain.pools) == 4
    transport.plain.pools = [httpx.MockTransport(handler) for _ in transport.plain.pools]  # no sockets

    async def go():
        async with httpx.AsyncClient(transport=transport) as client:
            responses = await asyncio.gather(*(client.get(f"http://x/{i}") for i in range(10)))
        return [r.json() for r in responses]

    assert asyncio.run(go()) == [{"ok": True}] * 10
    assert sorted(seen) == sorted(f"/{i}" for i in range(10)) and transport.plain.busy == [0, 0, 0, 0]
    assert transport.tls is None  # no HTTPS request: the CA bundle was never loaded


def test_https_goes_through_verifying_pools_built_on_first_use():
    transport = ShardedTransport(4, pool_size=2)
    plain_context = transport.plain.pools[0]._pool._ssl_context
    # The plain pools' context trusts no CA: an HTTPS request sent there could never skip checks.
    assert plain_context.verify_mode == ssl.CERT_REQUIRED and plain_context.check_hostname
    assert plain_context.cert_store_stats()["x509_ca"] == 0
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
    context = transport.tls.pools[0]._pool._ssl_context
    assert context.verify_mode == ssl.CERT_REQUIRED and context.cert_store_stats()["x509_ca"] > 0
    assert hosts == ["http://local/a"]


def _serve(handle):
    """A one-function asyncio TCP server on loopback; returns (server, port)."""
    async def start():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return server, server.sockets[0].getsockname()[1]
    return start()


def test_asyncio_backend_speaks_http_and_reuses_the_connection():
    connections = []

    async def handle(reader, writer):
        connections.append(writer)
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length")), b"0"))
            body = await reader.readexactly(length)
            reply = b"echo:" + body
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(reply), reply))
            await writer.drain()

    async def go():
        server, port = await _serve(handle)
        async with server, httpx.AsyncClient(transport=ShardedTransport(1)) as client:
            first = await client.post(f"http://127.0.0.1:{port}/", content=b"one")
            second = await client.post(f"http://127.0.0.1:{port}/", content=b"two")
            for writer in connections:
                writer.close()
            return first.text, second.text

    assert asyncio.run(go()) == ("echo:one", "echo:two")
    assert len(connections) == 1  # keep-alive: both requests over one connection


def test_asyncio_backend_notices_a_closed_keepalive_connection_and_reconnects():
    connections = []

    async def handle(reader, writer):
        connections.append(writer)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # the server drops the idle connection without saying so

    async def go():
        server, port = await _serve(handle)
        transport = ShardedTransport(1)
        async with server, httpx.AsyncClient(transport=transport) as client:
            first = await client.get(f"http://127.0.0.1:{port}/")
            pool = transport.plain.pools[0]._pool
            while pool.connections and not pool.connections[0].has_expired():  # until the close reaches us
                await asyncio.sleep(0.001)
            second = await client.get(f"http://127.0.0.1:{port}/")
            return first.text, second.text

    assert asyncio.run(go()) == ("ok", "ok")
    assert len(connections) == 2


def test_asyncio_backend_maps_errors_to_httpx_ones():
    async def refused():
        async with httpx.AsyncClient(transport=ShardedTransport(1)) as client:
            await client.get(refused_url())

    with pytest.raises(httpx.ConnectError):
        asyncio.run(refused())

    async def silent(reader, writer):
        await reader.read(1 << 16)  # read the request, never answer
        await asyncio.sleep(5)

    async def times_out():
        server, port = await _serve(silent)
        async with server, httpx.AsyncClient(transport=ShardedTransport(1)) as client:
            await client.get(f"http://127.0.0.1:{port}/", timeout=httpx.Timeout(5, read=0.05))

    with pytest.raises(httpx.ReadTimeout):
        asyncio.run(times_out())


def test_lazy_cookies_still_keeps_a_cookie_the_server_sets():
    def handler(request):
        if request.url.path == "/set":
            return httpx.Response(200, headers={"set-cookie": "session=abc; Path=/"})
        return httpx.Response(200, text=request.headers.get("cookie", ""))

    async def go():
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        client._cookies = LazyCookies()
        async with client:
            before = (await client.get("http://api.test/echo")).text
            await client.get("http://api.test/set")
            after = (await client.get("http://api.test/echo")).text
        return before, after

    assert asyncio.run(go()) == ("", "session=abc")


def test_async_client_uses_the_sharded_transport_and_lazy_cookies():
    client = async_client(8, {"User-Agent": "t"})
    assert isinstance(client._transport, ShardedTransport) and isinstance(client.cookies, LazyCookies)
    assert client.headers["user-agent"] == "t"
    asyncio.run(client.aclose())
