"""The gateway's streamed answers are closed however the client leaves.

tests/test_serve_more.py's disconnect test covers a client that leaves mid-stream: Starlette
cancels the body and the cancellation reaches the provider call, which records `interrupted`.
A client that is gone before the answer's first byte is sent is different: the body is never
started, so nothing inside it can close the answer stream; only `_ClosingStream` does, at once
rather than whenever the abandoned generators are collected."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("starlette")

from llmroute.serve.app import _ClosingStream  # noqa: E402


class RecordingAnswer:
    """The closing side of an `AnswerStream`: what `_ClosingStream` must call."""

    def __init__(self, log: list[str]):
        self.log = log

    async def aclose(self) -> None:
        self.log.append("answer closed")


def test_answer_stream_is_closed_when_the_client_left_before_the_first_byte():
    log: list[str] = []

    async def body():
        log.append("body started")
        yield b"data: never sent\n\n"

    async def receive():
        await asyncio.sleep(0)  # the server reads the socket and finds the client gone
        return {"type": "http.disconnect"}

    async def send(message):
        log.append(message["type"])
        await asyncio.sleep(0)  # a write to the socket

    response = _ClosingStream(body(), RecordingAnswer(log), media_type="text/event-stream")
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}}  # as uvicorn says
    asyncio.run(response(scope, receive, send))
    assert "body started" not in log  # the case under test: nothing of the answer was sent
    assert log[-1] == "answer closed"
