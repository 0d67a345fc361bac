"""The HTTP client a batch shares across its prompts: requests fanned out over several small
stock connection pools behind one `httpx.AsyncClient`.

Why: httpcore's async pool rescans every connection each time a request starts or ends, so
one pool carrying dozens of connections spends milliseconds of CPU per request and becomes the
batch's bottleneck (DESIGN.md, "Many requests at once": ~90 requests/s for one shared pool on
a 2-core machine, 500-550/s spread over several small ones). `ShardedTransport` keeps the
client single (one place for headers, timeouts, cookies) and sends each request through the
least busy of several stock `httpx.AsyncHTTPTransport`s with two connections each. Only public
httpx API is used.

The verifying TLS context (a ~100 ms CA bundle load) is built only when the first HTTPS
request comes, so a batch against a local server never pays for it.
"""

from __future__ import annotations

import ssl

import httpx

POOL_SIZE = 2  # connections per shard
# A request extension: the caller streams the body (the gateway), so it is not read here.
STREAM = "llmroute.stream"


class _Shards:
    """Several small stock connection pools and how many requests each is carrying."""

    def __init__(self, count: int, per: int, ssl_context: ssl.SSLContext):
        limits = httpx.Limits(max_connections=per, max_keepalive_connections=per)
        self.ssl_context = ssl_context
        self.pools: list[httpx.AsyncBaseTransport] = [
            httpx.AsyncHTTPTransport(verify=ssl_context, limits=limits) for _ in range(count)]
        self.busy = [0] * count

    async def send(self, request: httpx.Request) -> httpx.Response:
        busy = self.busy
        index = busy.index(min(busy))
        busy[index] += 1
        try:
            response = await self.pools[index].handle_async_request(request)
            if not request.extensions.get(STREAM):
                await response.aread()  # the body is read while the slot is counted as busy
            return response
        finally:
            busy[index] -= 1

    async def aclose(self) -> None:
        for pool in self.pools:
            await pool.aclose()


class ShardedTransport(httpx.AsyncBaseTransport):
    """Sends each request through the least busy of several small connection pools.

    Plain-HTTP requests (local servers) and HTTPS requests use separate pools, and the HTTPS
    ones (with the verifying TLS context) are built only when the first HTTPS request comes.
    The plain pools get a TLS context that trusts no CA at all, so even if one were ever asked
    for HTTPS it would refuse rather than skip verification.
    """

    def __init__(self, connections: int, *, pool_size: int = POOL_SIZE):
        self.count = max(1, -(-connections // pool_size))
        self.per = max(1, -(-connections // self.count))
        self.plain = _Shards(self.count, self.per, ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
        self.tls: _Shards | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme != "https":
            return await self.plain.send(request)
        if self.tls is None:
            self.tls = _Shards(self.count, self.per, httpx.create_ssl_context())
        return await self.tls.send(request)

    async def aclose(self) -> None:
        await self.plain.aclose()
        if self.tls is not None:
            await self.tls.aclose()


def async_client(concurrency: int, headers: dict[str, str]) -> httpx.AsyncClient:
    """The one client a batch shares across all its prompts."""
    return httpx.AsyncClient(headers=headers, transport=ShardedTransport(concurrency))
