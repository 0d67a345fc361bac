"""Incremental decoders for the two stream framings providers use: SSE and NDJSON.

They are push-based (`feed(bytes)` returns whatever complete events the bytes finished) so the
same decoder serves a sync `httpx` stream, an async one and a test that feeds a cassette body
in odd-sized pieces. SSE follows the WHATWG rules that matter here: `\\n`, `\\r\\n` or `\\r` line
ends (Gemini may use `\\r\\n\\r\\n`), `:` comment lines (OpenRouter keep-alives), multi-line
`data:` joined with `\\n`, and a blank line ending an event.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SSEEvent:
    event: str  # "message" when the server sent no `event:` line
    data: str


class _LineSplitter:
    """Splits a byte stream into text lines, keeping an incomplete tail between feeds."""

    def __init__(self) -> None:
        self._buffer = ""
        self._pending_cr = False
        self._decoder_tail = b""

    def feed(self, data: bytes) -> list[str]:
        raw = self._decoder_tail + data
        try:
            text = raw.decode("utf-8")
            self._decoder_tail = b""
        except UnicodeDecodeError as exc:
            # A multi-byte character split across two network reads: keep its head.
            if exc.start >= len(raw) - 3 and exc.reason == "unexpected end of data":
                text = raw[: exc.start].decode("utf-8")
                self._decoder_tail = raw[exc.start :]
            else:
                text = raw.decode("utf-8", errors="replace")
                self._decoder_tail = b""
        if self._pending_cr and text.startswith("\n"):
            text = text[1:]
        self._pending_cr = text.endswith("\r")
        text = self._buffer + text
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        *lines, self._buffer = text.split("\n")
        return lines

    def close(self) -> list[str]:
        rest, self._buffer = self._buffer, ""
        return [rest] if rest else []


class SSEDecoder:
    def __init__(self) -> None:
        self._lines = _LineSplitter()
        self._event = ""
        self._data: list[str] = []

    def feed(self, data: bytes) -> list[SSEEvent]:
        return self._consume(self._lines.feed(data))

    def close(self) -> list[SSEEvent]:
        """End of body: an event not followed by a blank line still counts."""
        events = self._consume(self._lines.close())
        if self._data:
            events.append(SSEEvent(self._event or "message", "\n".join(self._data)))
            self._event, self._data = "", []
        return events

    def _consume(self, lines: list[str]) -> list[SSEEvent]:
        events = []
        for line in lines:
            if line == "":
                if self._data:
                    events.append(SSEEvent(self._event or "message", "\n".join(self._data)))
                self._event, self._data = "", []
            elif line.startswith(":"):
                continue  # comment / keep-alive
            else:
                name, _, value = line.partition(":")
                if value.startswith(" "):
                    value = value[1:]
                if name == "data":
                    self._data.append(value)
                elif name == "event":
                    self._event = value
        return events


class NDJSONDecoder:
    """One JSON document per line (Ollama). Returns the non-blank lines as text."""

    def __init__(self) -> None:
        self._lines = _LineSplitter()

    def feed(self, data: bytes) -> list[str]:
        return [line for line in self._lines.feed(data) if line.strip()]

    def close(self) -> list[str]:
        return [line for line in self._lines.close() if line.strip()]
