"""The Starlette app: routes, the body limit, the one engine and shared async client."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..engine import Engine
from ..engine_async import AsyncEngine
from ..routing.buffered_memory import BufferedMemory
from . import anthropic_format, openai_format
from .auth import allowed
from .errors import GatewayError, anthropic_body, gateway_error, openai_body

MAX_BODY = 4 * 1024 * 1024  # bytes; larger bodies get 413
CONNECTIONS = 64  # the shared client's connections to providers
MEMORY_INTERVAL = 0.25  # seconds between routing-memory writes (the staleness other processes see)


class _ClosingStream(StreamingResponse):
    """A streaming response that always closes its answer stream, even when the client went
    away before or during it: the call is then recorded as interrupted and its reservation
    released, instead of waiting for garbage collection."""

    def __init__(self, content, answer_stream, **kwargs):
        super().__init__(content, **kwargs)
        self.answer_stream = answer_stream

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()
            await self.answer_stream.aclose()


def create_app(engine: Engine, token: str | None, *, connections: int = CONNECTIONS) -> Starlette:
    from .. import __version__
    from ..http_pool import async_client

    state: dict = {}

    @asynccontextmanager
    async def lifespan(app):
        # Outcomes reach the routing memory's state file in one write per interval, from a
        # worker thread: a locked, fsynced write per request on the event loop would stall
        # every request in flight (BufferedMemory's docstring).
        memory = engine.memory = BufferedMemory(engine.memory, interval=MEMORY_INTERVAL, inline=False)
        flusher = asyncio.create_task(_flush_every(engine, memory))
        try:
            async with async_client(connections, {"User-Agent": f"llmroute/{__version__}"}) as aclient:
                state["engine"] = AsyncEngine(engine, aclient)
                yield
        finally:
            flusher.cancel()
            engine.bookkeep(memory.flush)  # what the last requests taught, before exiting
            engine.memory = memory.inner
            engine.close()

    def fail(error: BaseException, anthropic: bool) -> JSONResponse:
        problem = gateway_error(error)
        body = anthropic_body(problem) if anthropic else openai_body(problem)
        return JSONResponse(body, status_code=problem.status)

    async def read_json(request: HttpRequest) -> dict:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY:
            raise GatewayError(413, "request_too_large", f"the body is over {MAX_BODY} bytes")
        data = bytearray()
        async for piece in request.stream():
            data += piece
            if len(data) > MAX_BODY:
                raise GatewayError(413, "request_too_large", f"the body is over {MAX_BODY} bytes")
        try:
            body = json.loads(data)
        except ValueError:
            raise GatewayError(400, "invalid_request_error", "the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise GatewayError(400, "invalid_request_error", "the body must be a JSON object")
        return body

    def refused(request: HttpRequest, anthropic: bool) -> JSONResponse | None:
        if allowed(token, request.headers):
            return None
        return fail(GatewayError(401, "authentication_error", "missing or wrong token"), anthropic)

    async def chat(request: HttpRequest, fmt, anthropic: bool) -> Response:
        denied = refused(request, anthropic)
        if denied is not None:
            return denied
        asker: AsyncEngine = state["engine"]

        def on_error(error: BaseException) -> dict:
            problem = gateway_error(error)
            return anthropic_body(problem) if anthropic else openai_body(problem)

        try:
            parsed = fmt.parse(engine.config, await read_json(request))
            if not parsed.stream:
                answer = await asker.ask(parsed.request, parsed.options)
                headers = _headers(answer.target.id, answer.request_id, answer.cost_usd)
                return JSONResponse(fmt.response_body(answer), headers=headers)
            stream = await asker.astream(parsed.request, parsed.options)
        except Exception as error:  # noqa: BLE001 - each becomes the client's error body
            return fail(error, anthropic)
        if anthropic:
            body = fmt.sse(stream, on_error)
        else:
            body = fmt.sse(stream, parsed.include_usage, on_error)
        return _ClosingStream(body, stream, media_type="text/event-stream",
                              headers={**_headers(stream.target.id, stream.request_id, None),
                                       "cache-control": "no-cache"})

    async def chat_completions(request: HttpRequest) -> Response:
        return await chat(request, openai_format, False)

    async def messages(request: HttpRequest) -> Response:
        return await chat(request, anthropic_format, True)

    async def models(request: HttpRequest) -> Response:
        denied = refused(request, False)
        if denied is not None:
            return denied
        config = engine.config
        names = ["auto", *config.routes, *(t.id for t in config.all_targets())]
        kinds = {"auto": "route", **{name: "route" for name in config.routes}}
        return JSONResponse({"object": "list", "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "llmroute",
             "llmroute_kind": kinds.get(name, "target")} for name in dict.fromkeys(names)]})

    async def health(request: HttpRequest) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ], lifespan=lifespan)


async def _flush_every(engine: Engine, memory: BufferedMemory) -> None:
    """Write the queued outcomes and re-read the shared state every interval, off the loop."""
    while True:
        await asyncio.sleep(memory.interval)
        await asyncio.to_thread(engine.bookkeep, lambda: memory.flush(refresh=True))


def _headers(target: str, request_id: str, cost: float | None) -> dict[str, str]:
    headers = {"x-llmroute-target": target, "x-llmroute-request-id": request_id}
    if cost is not None:
        headers["x-llmroute-cost-usd"] = f"{cost:.8f}"
    return headers
