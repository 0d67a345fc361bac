"""The provider interface and the shared HTTP driver every wire format uses.

A provider translates: a `Request` becomes one API's HTTP call, and that API's response, stream
or error body becomes a `Result`, `Chunk`s or a classified `ProviderError`. Providers never
route, retry or record; the engine does that.

`HttpProvider` holds what all HTTP formats share, so a format module only writes its
translation hooks (`build_call`, `parse_result`, `stream_parser`, `classify_error`,
`rate_limits`, `probe_call`):

- it is handed its `httpx.Client` / `httpx.AsyncClient` (tests pass `httpx.MockTransport`);
- one deadline covers connect + the whole answer (SPEC `timeout`), checked between reads;
- httpx failures map to `timeout` / `connection`, unparseable bodies to `malformed`;
- a finished answer that carried no text (buffered, or a stream that ended without a text
  chunk) is `empty` (SPEC §4.1), the same for every format — unless it carried tool calls:
  a tool call with no text is a real answer;
- the key is sent only over HTTPS or to loopback/private hosts unless `allow_insecure` (the
  planner already excludes such targets; this is the last line of defence);
- the key is redacted from every message that came from the provider.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, ClassVar, Iterator, Protocol
from urllib.parse import urlsplit

import httpx

from ..config.model import ProviderConfig
from ..errors import ErrorClass, ProviderError
from ..redact import redact
from ..types import Chunk, RateLimitInfo, Request, Result, ToolCallDelta, Usage
from .transport import key_transport_allowed  # noqa: F401  (re-exported: the one rule)


class StreamParser(Protocol):
    """Turns a response body, fed in arbitrary pieces, into chunks.

    Raises `ProviderError` for an error event inside the stream or an unparseable event;
    `close()` raises `malformed` when the stream ended before the format's terminator."""

    def feed(self, data: bytes) -> list[Chunk]: ...

    def close(self) -> list[Chunk]: ...


@dataclass(frozen=True)
class HttpCall:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    # multipart uploads (transcription): httpx `files=` / `data=` arguments
    files: Any = None
    data: Any = None


class Provider(ABC):
    """One configured provider. Subclasses set `requires_key` and implement `complete`."""

    requires_key: ClassVar[bool] = True
    supports_stream: ClassVar[bool] = True

    def __init__(
        self,
        config: ProviderConfig,
        *,
        key: str | None = None,
        client: httpx.Client | None = None,
        aclient: httpx.AsyncClient | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.config = config
        self.name = config.name
        self._key = key
        self._client = client
        self._aclient = aclient
        self._sleep = sleep

    @abstractmethod
    def complete(self, request: Request, model: str, *, timeout: float) -> Result:
        """The whole answer at once."""

    def stream(self, request: Request, model: str, *, timeout: float) -> Iterator[Chunk]:
        """Text chunks as they come; a chunk carrying the usage comes last when known."""
        result = self.complete(request, model, timeout=timeout)
        yield Chunk(text=result.text, usage=result.usage, finish_reason=result.finish_reason)

    async def acomplete(self, request: Request, model: str, *, timeout: float) -> Result:
        """Async twin of `complete` for compare/batch; HTTP formats override it."""
        import asyncio

        return await asyncio.to_thread(self.complete, request, model, timeout=timeout)

    async def astream(self, request: Request, model: str, *, timeout: float) -> AsyncIterator[Chunk]:
        """Async twin of `stream` (the gateway); HTTP formats override it. Here: the whole
        answer from `acomplete` as one chunk."""
        result = await self.acomplete(request, model, timeout=timeout)
        if result.text:
            yield Chunk(text=result.text)
        for index, call in enumerate(result.tool_calls):
            yield Chunk(tool_call=ToolCallDelta(index, call.id, call.name, call.arguments))
        yield Chunk(usage=result.usage, finish_reason=result.finish_reason,
                    provider_cost_usd=result.provider_cost_usd)

    def needs_key(self) -> bool:
        """Whether this configured provider needs an API key: `providers.needs_key`, the one
        rule the planner and the engine use too (an OpenAI-compatible local server does not)."""
        from .transport import needs_key

        return needs_key(self.config)

    def probe(self, *, timeout: float) -> list[str]:
        """The cheapest liveness check (list models). Returns model ids."""
        return list(self.config.models)

    def redact(self, text: str) -> str:
        return redact(text, [self._key, *self.config.headers.values()])

    def use_client(self, client: httpx.Client) -> None:
        """Hand the provider the (shared) sync client it should send through."""
        self._client = client

    def close(self) -> None:
        """Release what the provider holds (an in-process model). Shared HTTP clients belong
        to whoever created them and are not closed here."""


class HttpProvider(Provider):
    """Shared HTTP driving for every wire format; see the module docstring."""

    default_base_url: ClassVar[str] = ""

    def __init__(self, config: ProviderConfig, *, now: Callable[[], float] = time.time, **kwargs):
        super().__init__(config, **kwargs)
        # The wall clock, for turning reset instants and HTTP-date Retry-After values into
        # waits; tests pass a fixed one.
        self.now = now

    def bearer_headers(self, *, json_body: bool = True) -> dict[str, str]:
        """`Authorization: Bearer <key>` (only when there is a key), JSON content type for
        bodies, then the config's extra headers: what most formats send."""
        headers = {"content-type": "application/json"} if json_body else {}
        if self._key:
            headers["authorization"] = f"Bearer {self._key}"
        headers.update(self.config.headers)
        return headers

    @property
    def base_url(self) -> str:
        return (self.config.base_url or self.default_base_url).rstrip("/")

    # --- translation hooks --------------------------------------------------------------

    @abstractmethod
    def build_call(self, request: Request, model: str, *, stream: bool) -> HttpCall: ...

    @abstractmethod
    def parse_result(self, body: Any, headers: httpx.Headers) -> Result: ...

    @abstractmethod
    def stream_parser(self) -> StreamParser: ...

    @abstractmethod
    def classify_error(self, status: int, headers: httpx.Headers, body: str) -> ProviderError: ...

    def rate_limits(self, headers: httpx.Headers) -> RateLimitInfo | None:
        return None

    @abstractmethod
    def probe_call(self) -> HttpCall: ...

    def parse_probe(self, body: Any) -> list[str]:
        data = body.get("data") or body.get("models") or [] if isinstance(body, dict) else []
        return [str(m.get("id") or m.get("name")) for m in data if isinstance(m, dict)]

    # --- sync driving ---------------------------------------------------------------------

    def complete(self, request: Request, model: str, *, timeout: float) -> Result:
        call = self.build_call(request, model, stream=False)
        status, headers, body = self._send_buffered(call, timeout)
        return self._result_from(body, headers)

    def stream(self, request: Request, model: str, *, timeout: float) -> Iterator[Chunk]:
        call = self.build_call(request, model, stream=True)
        self._check_transport(call.url)
        deadline = time.monotonic() + timeout
        try:
            with self._require_client().stream(
                call.method, call.url, headers=call.headers, json=call.json,
                timeout=httpx.Timeout(timeout),
            ) as response:
                if response.status_code >= 400:
                    body = response.read().decode("utf-8", errors="replace")
                    raise self._error_from(response.status_code, response.headers, body)
                parser = self.stream_parser()
                seen = _TextSeen()
                for data in response.iter_bytes():
                    for chunk in parser.feed(data):
                        yield seen.note(chunk)
                    if time.monotonic() > deadline:
                        raise ProviderError(ErrorClass.TIMEOUT, f"no full answer within {timeout:g}s")
                for chunk in parser.close():
                    yield seen.note(chunk)
                if not seen.text and not seen.tool_call:
                    raise empty_answer(self.name, seen.finish_reason, http_status=response.status_code,
                                       usage=seen.usage)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, timeout) from None

    def probe(self, *, timeout: float) -> list[str]:
        status, headers, body = self._send_buffered(self.probe_call(), timeout)
        try:
            return self.parse_probe(json.loads(body))
        except (ValueError, AttributeError, TypeError):
            raise ProviderError(ErrorClass.MALFORMED, "unreadable model list", http_status=status) from None

    def _send_buffered(self, call: HttpCall, timeout: float) -> tuple[int, httpx.Headers, str]:
        """Send a call and read the whole body within the deadline; raise on HTTP errors."""
        self._check_transport(call.url)
        deadline = time.monotonic() + timeout
        try:
            with self._require_client().stream(
                call.method, call.url, headers=call.headers, json=call.json,
                files=call.files, data=call.data, timeout=httpx.Timeout(timeout),
            ) as response:
                parts = []
                for data in response.iter_bytes():
                    parts.append(data)
                    if time.monotonic() > deadline:
                        raise ProviderError(ErrorClass.TIMEOUT, f"no full answer within {timeout:g}s")
                body = b"".join(parts).decode("utf-8", errors="replace")
                if response.status_code >= 400:
                    raise self._error_from(response.status_code, response.headers, body)
                return response.status_code, response.headers, body
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, timeout) from None

    # --- async driving --------------------------------------------------------------------

    async def acomplete(self, request: Request, model: str, *, timeout: float) -> Result:
        import asyncio

        call = self.build_call(request, model, stream=False)
        self._check_transport(call.url)
        if self._aclient is None:
            raise RuntimeError(f"provider {self.name!r} was built without an async client")
        try:
            response = await asyncio.wait_for(
                self._aclient.request(
                    call.method, call.url, headers=call.headers, json=call.json,
                    timeout=httpx.Timeout(timeout),
                ),
                timeout,
            )
        except asyncio.TimeoutError:
            raise ProviderError(ErrorClass.TIMEOUT, f"no full answer within {timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, timeout) from None
        body = response.text
        if response.status_code >= 400:
            raise self._error_from(response.status_code, response.headers, body)
        return self._result_from(body, response.headers)

    async def astream(self, request: Request, model: str, *, timeout: float) -> AsyncIterator[Chunk]:
        """`stream` over the async client: the same parser, deadline and error mapping. A stream
        that ended with neither text nor a tool call is `empty`."""
        call = self.build_call(request, model, stream=True)
        self._check_transport(call.url)
        if self._aclient is None:
            raise RuntimeError(f"provider {self.name!r} was built without an async client")
        deadline = time.monotonic() + timeout
        try:
            async with self._aclient.stream(
                call.method, call.url, headers=call.headers, json=call.json,
                timeout=httpx.Timeout(timeout), extensions={"llmroute.stream": True},
            ) as response:
                if response.status_code >= 400:
                    body = (await response.aread()).decode("utf-8", errors="replace")
                    raise self._error_from(response.status_code, response.headers, body)
                parser = self.stream_parser()
                seen = _TextSeen()
                async for data in response.aiter_bytes():
                    for chunk in parser.feed(data):
                        yield seen.note(chunk)
                    if time.monotonic() > deadline:
                        raise ProviderError(ErrorClass.TIMEOUT, f"no full answer within {timeout:g}s")
                for chunk in parser.close():
                    yield seen.note(chunk)
                if not seen.text and not seen.tool_call:
                    raise empty_answer(self.name, seen.finish_reason, http_status=response.status_code,
                                       usage=seen.usage)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, timeout) from None

    # --- shared helpers -------------------------------------------------------------------

    def _result_from(self, body: str, headers: httpx.Headers) -> Result:
        try:
            parsed = json.loads(body)
        except ValueError:
            raise ProviderError(
                ErrorClass.MALFORMED, f"unparseable response body: {self.redact(body[:120])!r}"
            ) from None
        try:
            result = self.parse_result(parsed, headers)
        except ProviderError:
            raise
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise ProviderError(ErrorClass.MALFORMED, f"unexpected response shape ({exc!r})") from None
        limits = self.rate_limits(headers)
        if not has_text(result.text) and not result.tool_calls:
            raise empty_answer(self.name, result.finish_reason, http_status=200,
                               rate_limits=result.rate_limits or limits, usage=result.usage)
        if limits is not None and result.rate_limits is None:
            from dataclasses import replace

            result = replace(result, rate_limits=limits)
        return result

    def _error_from(self, status: int, headers: httpx.Headers, body: str) -> ProviderError:
        error = self.classify_error(status, headers, body)
        error.message = self.redact(error.message)
        error.args = (error.message,)
        if error.http_status is None:
            error.http_status = status
        if error.rate_limits is None:
            error.rate_limits = self.rate_limits(headers)
        return error

    def _transport_error(self, exc: httpx.HTTPError, timeout: float) -> ProviderError:
        if isinstance(exc, httpx.TimeoutException):
            return ProviderError(ErrorClass.TIMEOUT, f"timed out after {timeout:g}s ({type(exc).__name__})")
        if isinstance(exc, (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError,
                            httpx.WriteError, httpx.NetworkError, httpx.ProxyError)):
            return ProviderError(ErrorClass.CONNECTION, self.redact(f"{type(exc).__name__}: {exc}"))
        if isinstance(exc, httpx.DecodingError):
            return ProviderError(ErrorClass.MALFORMED, self.redact(str(exc)))
        return ProviderError(ErrorClass.CONNECTION, self.redact(f"{type(exc).__name__}: {exc}"))

    def _require_client(self) -> httpx.Client:
        if self._client is None:
            raise RuntimeError(f"provider {self.name!r} was built without an HTTP client")
        return self._client

    def _check_transport(self, url: str) -> None:
        if self._key and not self.config.allow_insecure and not key_transport_allowed(url):
            host = urlsplit(url).hostname
            raise ProviderError(
                ErrorClass.AUTH,
                f"refusing to send {self.name}'s key over plain HTTP to public host {host}; "
                f"use https, or set allow_insecure: true for provider {self.name}",
            )


class HeldErrors:
    """Mixin for stream parsers: an error that arrives in the same network read as some text is
    held back and raised on the next call, so the text before it still reaches the reader (and
    a failure mid-answer is reported after the words that did arrive)."""

    _pending: "ProviderError | None" = None

    def _deliver(self, items: list, handle: Callable[..., list[Chunk]]) -> list[Chunk]:
        """Chunks of one read, holding back an error that follows text."""
        self._raise_pending()
        chunks: list[Chunk] = []
        try:
            for item in items:
                chunks += handle(item)
        except ProviderError as error:
            if not chunks:
                raise
            self._pending = error
        return chunks

    def _raise_pending(self) -> None:
        if self._pending is not None:
            error, self._pending = self._pending, None
            raise error


def has_text(text: str | None) -> bool:
    """Whether an answer carried text: whitespace alone is no answer."""
    return bool(text) and not text.isspace()


def empty_answer(provider: str, finish_reason: str | None, *, http_status: int | None = None,
                 rate_limits: RateLimitInfo | None = None, usage: Usage | None = None) -> ProviderError:
    """SPEC §4.1 `empty`: the call succeeded but the answer held no text (a filtered answer,
    a reasoning model that spent every token thinking, a server that returned nothing). The
    tokens the provider reported for it were billed: they travel as `billed`."""
    why = f" (finish reason {finish_reason})" if finish_reason else ""
    billed = Result(text="", usage=usage, finish_reason=finish_reason) if usage is not None else None
    return ProviderError(ErrorClass.EMPTY, f"{provider} answered with no text{why}",
                         http_status=http_status, rate_limits=rate_limits, billed=billed)


class _TextSeen:
    """Watches a stream's chunks: did any carry text (or a piece of a tool call, which is an
    answer too), and how did it finish."""

    def __init__(self) -> None:
        self.text = False
        self.tool_call = False
        self.finish_reason: str | None = None
        self.usage: Usage | None = None

    def note(self, chunk: Chunk) -> Chunk:
        self.text = self.text or has_text(chunk.text)
        self.tool_call = self.tool_call or chunk.tool_call is not None
        self.finish_reason = chunk.finish_reason or self.finish_reason
        self.usage = chunk.usage or self.usage
        return chunk


def classify_by_status(table: dict[int, ErrorClass], status: int, message: str,
                       context_markers: tuple[str, ...]) -> ErrorClass:
    """SPEC §4.1 class from a format's status table: unlisted 5xx are server errors, other
    unlisted codes bad requests, and a bad request whose message says the prompt is too long
    is `context_length` (so fallback moves to a larger context instead of stopping)."""
    error_class = table.get(status)
    if error_class is None:
        error_class = ErrorClass.SERVER_ERROR if status >= 500 else ErrorClass.BAD_REQUEST
    if error_class is ErrorClass.BAD_REQUEST and any(m in message.lower() for m in context_markers):
        return ErrorClass.CONTEXT_LENGTH
    return error_class


def json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
