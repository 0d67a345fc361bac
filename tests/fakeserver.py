"""A small fake LLM provider on 127.0.0.1 for end-to-end tests and benchmarks.

Run as a process: `python tests/fakeserver.py --format openai --mode ok` prints its port on the
first line of stdout, then serves until killed or until `--lifetime` seconds pass (so a leaked
server can never outlive a test run by much). It speaks each wire format of
../shared/reference/providers.md closely enough for llmroute's adapters: paths, bodies, usage
fields, stream framing and error bodies.

Modes: `ok`, `error:STATUS` (the format's own error body), `ratelimit:SECONDS` (429 with
`retry-after`), `exhausted:RESET` (200 with `x-ratelimit-remaining-requests: 0` and the reset as
a Go duration), `slow:MS` (answers after a delay), `midstream` (a stream that breaks after some
text), `garbage` (200 with a body that is not JSON), `empty` (a well-formed answer, buffered or
streamed, that carries no text), `judge-first`/`judge-content` (answer `A`, `B` or `TIE` for
judge prompts). Every request is appended to `--log` as one JSON line, with the credential it
carried (`key`: the `Authorization: Bearer` token, `x-api-key` or `x-goog-api-key`, else null).
`--require-key KEY` answers every request that does not carry KEY with the format's 401, as a
LiteLLM proxy or company gateway with a master key does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from http.client import responses


class Behaviour:
    def __init__(self, args: argparse.Namespace):
        self.format = args.format
        self.mode = args.mode
        self.reply = args.reply
        self.latency_ms = args.latency_ms
        self.log = args.log
        self.require_key = getattr(args, "require_key", None)
        self.count = 0


def words(text: str) -> int:
    return max(1, len(text.split()))


class Handler:
    """One request and its response. The request is already read; the response is built in
    memory (`out`) and sent after `delay` seconds, so one asyncio loop serves every connection
    without a thread each (the threaded server spent more CPU than the client under test)."""

    behaviour: Behaviour

    def __init__(self, command: str, path: str, headers: dict[str, str], raw: bytes):
        self.command = command
        self.path = path
        self.headers = headers
        self.raw = raw
        self.out: list[bytes] = []
        self.delay = 0.0
        self.close_connection = headers.get("connection", "").lower() == "close"

    # --- plumbing -------------------------------------------------------------------------

    def send_response(self, status: int) -> None:
        self.out.append(f"HTTP/1.1 {status} {responses.get(status, '')}\r\nserver: fakeserver\r\n".encode())

    def send_header(self, key: str, value: str) -> None:
        self.out.append(f"{key}: {value}\r\n".encode("latin1"))

    def end_headers(self) -> None:
        self.out.append(b"\r\n")

    def sleep(self, seconds: float) -> None:
        self.delay += seconds

    def _body(self) -> dict:
        raw = self.raw
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return {"_raw": raw[:4000].decode("latin1")}

    def _send(self, status: int, body, headers: dict | None = None, content_type="application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.out.append(data)

    def _stream(self, events: list[bytes], content_type="text/event-stream", break_after: int | None = None) -> None:
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("connection", "close")
        self.end_headers()
        for index, event in enumerate(events):
            if break_after is not None and index == break_after:
                self.close_connection = True
                return
            self.out.append(event)
        self.close_connection = True

    def _record(self, body: dict) -> int:
        b = self.behaviour
        b.count += 1
        if b.log:
            with open(b.log, "a") as log:
                log.write(json.dumps({"path": self.path, "body": body, "n": b.count,
                                      "key": self._presented_key()}) + "\n")
        return b.count

    def _presented_key(self) -> str | None:
        auth = self.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return self.headers.get("x-api-key") or self.headers.get("x-goog-api-key")

    def _refused_key(self) -> bool:
        """With `--require-key`, a request without that key gets a 401 (True: answered)."""
        required = self.behaviour.require_key
        if required is None or self._presented_key() == required:
            return False
        self._error(401)
        return True

    # --- requests -------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._record({})
        if self._refused_key():
            return
        b = self.behaviour
        if b.mode.startswith("error:"):
            return self._error(int(b.mode.split(":")[1]))
        if b.mode.startswith("slow:"):
            self.sleep(int(b.mode.split(":")[1]) / 1000)
        models = {"openai": {"object": "list", "data": [{"id": "fake-model", "object": "model"}]},
                  "anthropic": {"data": [{"type": "model", "id": "fake-model"}], "has_more": False},
                  "gemini": {"models": [{"name": "models/fake-model"}]},
                  "ollama": {"models": [{"name": "fake-model:latest"}]},
                  "cohere": {"models": [{"name": "fake-model", "endpoints": ["chat"]}]}}
        self._send(200, models[b.format])

    def do_POST(self) -> None:
        body = self._body()
        self._record(body)
        if self._refused_key():
            return
        b = self.behaviour
        if b.latency_ms:
            self.sleep(b.latency_ms / 1000)
        mode = b.mode
        if mode.startswith("error:"):
            return self._error(int(mode.split(":")[1]))
        if mode.startswith("ratelimit:"):
            seconds = mode.split(":")[1]
            return self._error(429, {"retry-after": seconds})
        if mode == "garbage":
            return self._send(200, b"<html>this is not json", content_type="text/html")
        if mode.startswith("slow:"):
            self.sleep(int(mode.split(":")[1]) / 1000)
        if self.path.endswith("/audio/transcriptions"):
            return self._transcription(body)
        text = self._answer_text(body)
        headers = {}
        if mode.startswith("exhausted:"):
            headers = {"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "0",
                       "x-ratelimit-reset-requests": mode.split(":")[1]}
        streaming = self._wants_stream(body)
        prompt = json.dumps(body.get("messages") or body.get("contents") or "")
        usage_in, usage_out = words(prompt), words(text)
        fmt = FORMATS[b.format]
        if streaming:
            events = fmt.stream(text, usage_in, usage_out)
            break_after = 2 if mode == "midstream" else None
            ctype = "application/x-ndjson" if b.format == "ollama" else "text/event-stream"
            return self._stream(events, ctype, break_after)
        self._send(200, fmt.body(text, usage_in, usage_out), headers)

    def _transcription(self, body: dict) -> None:
        """OpenAI's multipart transcription endpoint: json gives text + duration usage, the
        other formats the raw transcript."""
        raw = body.get("_raw", "")
        match = re.search(r'name="response_format"\r\n\r\n(\w+)', raw)
        fmt = match.group(1) if match else "json"
        text = self.behaviour.reply.replace("{prompt}", "audio")
        if fmt == "json":
            return self._send(200, {"text": text, "usage": {"type": "duration", "seconds": 2.0}})
        if fmt == "srt":
            text = f"1\n00:00:00,000 --> 00:00:02,000\n{text}\n"
        elif fmt == "vtt":
            text = f"WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n{text}\n"
        self._send(200, text.encode(), content_type="text/plain")

    def _wants_stream(self, body: dict) -> bool:
        if self.behaviour.format == "gemini":
            return ":streamGenerateContent" in self.path
        if self.behaviour.format == "ollama":
            return body.get("stream", True) is not False
        return bool(body.get("stream"))

    def _answer_text(self, body: dict) -> str:
        b = self.behaviour
        if b.mode == "empty":
            return ""
        prompt = _last_user_text(body)
        if b.mode in ("judge-first", "judge-content") and "Answer with exactly" in prompt:
            return _judge(prompt, b.mode)
        return b.reply.replace("{prompt}", prompt[:80])

    def _error(self, status: int, headers: dict | None = None) -> None:
        self._send(status, FORMATS[self.behaviour.format].error(status), headers)


def _last_user_text(body: dict) -> str:
    messages = body.get("messages") or []
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content)
    for content in reversed(body.get("contents") or []):
        return " ".join(p.get("text", "") for p in content.get("parts", []))
    return ""


def _judge(prompt: str, mode: str) -> str:
    """Judge by content: the answer that contains 'GOOD' wins. In `judge-first` mode the judge
    also has a position bias: it says `A` for a third of the prompts regardless."""
    match_a = re.search(r"\[Answer A\](.*?)\[Answer B\]", prompt, re.S)
    match_b = re.search(r"\[Answer B\](.*?)(\[End\]|$)", prompt, re.S)
    a = match_a.group(1) if match_a else ""
    bb = match_b.group(1) if match_b else ""
    if mode == "judge-first" and hash(prompt) % 10 < 3:
        return "A"
    if "GOOD" in a and "GOOD" not in bb:
        return "A"
    if "GOOD" in bb and "GOOD" not in a:
        return "B"
    return "TIE"


def sse(data, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {payload}\n\n".encode()


class OpenAIFormat:
    @staticmethod
    def body(text, n_in, n_out):
        return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 1735689600, "model": "fake-model",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out}}

    @staticmethod
    def stream(text, n_in, n_out):
        base = {"id": "c1", "object": "chat.completion.chunk", "created": 1735689600, "model": "fake-model"}
        events = [sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}], "usage": None})]
        for piece in re.findall(r"\S+\s*", text):
            events.append(sse({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}], "usage": None}))
        events.append(sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": None}))
        events.append(sse({**base, "choices": [], "usage": {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out}}))
        events.append(b"data: [DONE]\n\n")
        return events

    @staticmethod
    def error(status):
        kinds = {401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
                 404: ("invalid_request_error", "model_not_found", "The model does not exist."),
                 429: ("requests", "rate_limit_exceeded", "Rate limit reached. Please try again in 20s."),
                 400: ("invalid_request_error", None, "Bad request.")}
        kind, code, message = kinds.get(status, ("server_error", None, "The server had an error while processing your request."))
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class AnthropicFormat:
    @staticmethod
    def body(text, n_in, n_out):
        return {"id": "msg_fake", "type": "message", "role": "assistant", "model": "fake-model",
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": n_in, "output_tokens": n_out}}

    @staticmethod
    def stream(text, n_in, n_out):
        events = [sse({"type": "message_start", "message": {"id": "msg_fake", "type": "message", "role": "assistant", "model": "fake-model", "content": [], "stop_reason": None, "usage": {"input_tokens": n_in, "output_tokens": 1}}}, "message_start"),
                  sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}, "content_block_start"),
                  sse({"type": "ping"}, "ping")]
        for piece in re.findall(r"\S+\s*", text):
            events.append(sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}, "content_block_delta"))
        events += [sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
                   sse({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": n_out}}, "message_delta"),
                   sse({"type": "message_stop"}, "message_stop")]
        return events

    @staticmethod
    def error(status):
        kinds = {401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error", 529: "overloaded_error",
                 400: "invalid_request_error", 503: "overloaded_error"}
        return {"type": "error", "error": {"type": kinds.get(status, "api_error"), "message": "fake error"}}


class GeminiFormat:
    @staticmethod
    def body(text, n_in, n_out):
        return {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": n_in, "candidatesTokenCount": n_out, "totalTokenCount": n_in + n_out},
                "modelVersion": "fake-model", "responseId": "r1"}

    @staticmethod
    def stream(text, n_in, n_out):
        pieces = re.findall(r"\S+\s*", text) or [text]
        events = []
        for i, piece in enumerate(pieces):
            chunk = {"candidates": [{"content": {"role": "model", "parts": [{"text": piece}]}, "index": 0}],
                     "usageMetadata": {"promptTokenCount": n_in, "totalTokenCount": n_in}}
            if i == len(pieces) - 1:
                chunk["candidates"][0]["finishReason"] = "STOP"
                chunk["usageMetadata"] = {"promptTokenCount": n_in, "candidatesTokenCount": n_out, "totalTokenCount": n_in + n_out}
            events.append(f"data: {json.dumps(chunk)}\r\n\r\n".encode())
        return events

    @staticmethod
    def error(status):
        statuses = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
                    500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
        body = {"error": {"code": status, "message": "fake error", "status": statuses.get(status, "INTERNAL")}}
        if status == 429:
            body["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "36s"}]
        return body


class OllamaFormat:
    @staticmethod
    def body(text, n_in, n_out):
        return {"model": "fake-model", "created_at": "2025-01-01T00:00:00Z", "message": {"role": "assistant", "content": text},
                "done": True, "done_reason": "stop", "prompt_eval_count": n_in, "eval_count": n_out}

    @staticmethod
    def stream(text, n_in, n_out):
        events = [(json.dumps({"model": "fake-model", "message": {"role": "assistant", "content": piece}, "done": False}) + "\n").encode()
                  for piece in re.findall(r"\S+\s*", text)]
        events.append((json.dumps({"model": "fake-model", "message": {"role": "assistant", "content": ""}, "done": True,
                                   "done_reason": "stop", "prompt_eval_count": n_in, "eval_count": n_out}) + "\n").encode())
        return events

    @staticmethod
    def error(status):
        return {"error": "model 'fake-model' not found" if status == 404 else "fake error"}


class CohereFormat:
    @staticmethod
    def body(text, n_in, n_out):
        return {"id": "fake", "finish_reason": "COMPLETE", "message": {"role": "assistant", "content": [{"type": "text", "text": text}]},
                "usage": {"billed_units": {"input_tokens": n_in, "output_tokens": n_out}, "tokens": {"input_tokens": n_in + 60, "output_tokens": n_out}}}

    @staticmethod
    def stream(text, n_in, n_out):
        events = [sse({"id": "fake", "type": "message-start", "delta": {"message": {"role": "assistant", "content": []}}}, "message-start"),
                  sse({"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}, "content-start")]
        for piece in re.findall(r"\S+\s*", text):
            events.append(sse({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": piece}}}}, "content-delta"))
        events += [sse({"type": "content-end", "index": 0}, "content-end"),
                   sse({"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": {"billed_units": {"input_tokens": n_in, "output_tokens": n_out}}}}, "message-end")]
        return events

    @staticmethod
    def error(status):
        return {"message": "invalid api token" if status == 401 else "fake error"}


FORMATS = {"openai": OpenAIFormat, "anthropic": AnthropicFormat, "gemini": GeminiFormat,
           "ollama": OllamaFormat, "cohere": CohereFormat}


async def _read_request(reader: asyncio.StreamReader) -> Handler | None:
    """The next request on a keep-alive connection, or None when the client is done."""
    line = await reader.readline()
    if not line.strip():
        return None
    command, path, _version = line.decode("latin1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        header = await reader.readline()
        if header in (b"\r\n", b"\n", b""):
            break
        key, _, value = header.decode("latin1").partition(":")
        headers[key.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    raw = await reader.readexactly(length) if length else b""
    return Handler(command, path, headers, raw)


async def _serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            handler = await _read_request(reader)
            if handler is None:
                break
            if handler.command == "GET":
                handler.do_GET()
            elif handler.command == "POST":
                handler.do_POST()
            else:
                handler._send(405, {"error": "method not allowed"})
            if handler.delay:
                await asyncio.sleep(handler.delay)
            writer.write(b"".join(handler.out))
            await writer.drain()
            if handler.close_connection:
                break
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


async def _serve(args: argparse.Namespace) -> None:
    Handler.behaviour = Behaviour(args)
    # A deep listen backlog: with the default, a batch opening dozens of connections at once
    # gets some dropped, and the client's SYN retry then costs a second.
    server = await asyncio.start_server(_serve_connection, "127.0.0.1", args.port, backlog=256)
    sys.stdout.write(f"{server.sockets[0].getsockname()[1]}\n")
    sys.stdout.flush()
    async with server:
        try:
            await asyncio.wait_for(server.serve_forever(), args.lifetime)
        except asyncio.TimeoutError:
            pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--format", default="openai", choices=sorted(FORMATS))
    parser.add_argument("--mode", default="ok")
    parser.add_argument("--reply", default="fake answer to: {prompt}")
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lifetime", type=float, default=120.0)
    parser.add_argument("--log", default=None)
    parser.add_argument("--require-key", default=None)
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
