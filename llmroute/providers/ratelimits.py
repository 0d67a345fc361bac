"""Parsing of the rate-limit and retry hints providers put in response headers.

Every wire format expresses "wait this long" differently — OpenAI and Groq send Go duration
strings (`6m0s`, `2m59.56s`), Anthropic RFC 3339 instants, Cohere epoch seconds, and everyone
may send `Retry-After` (seconds or an HTTP-date) or `retry-after-ms`. These helpers turn each
form into plain seconds from the moment the response arrived, so adapters fill
`RateLimitInfo` / `ProviderError.retry_after_s` the same way. They are pure functions: the
current time is always passed in, never read here, so tests need no clock tricks.

Every parser returns None for a value it cannot read: a malformed hint must never turn a
successful answer into an error.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Mapping

_GO_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 micro sign
    "μs": 1e-6,  # U+03BC greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
# One `<number><unit>` term; longer unit names first so `ms` wins over `m`.
_GO_TERM = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that works for `httpx.Headers` and plain dicts."""
    value = headers.get(name)
    if value is None and not hasattr(headers, "multi_items"):
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def parse_go_duration(text: str | None) -> float | None:
    """Seconds in a Go `time.Duration` string (`20ms`, `1.2s`, `6m0s`, `1h2m3s`).

    A sign is allowed as in Go; a bare `0` means zero. Anything else that is not a sequence of
    number+unit terms is rejected (None) rather than half-read."""
    if text is None:
        return None
    text = text.strip()
    sign = 1.0
    if text[:1] in "+-" and text:
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    if not text:
        return None
    total, position = 0.0, 0
    for match in _GO_TERM.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        position = match.end()
    if position != len(text):
        return None
    return sign * total


def parse_seconds(text: str | None) -> float | None:
    """A plain non-negative, finite number of seconds (`2`, `0.5`)."""
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return value


def parse_reset(text: str | None) -> float | None:
    """A reset hint that is a Go duration, or — from some compatible servers — bare seconds."""
    value = parse_go_duration(text)
    if value is None:
        value = parse_seconds(text)
    return None if value is None else max(0.0, value)


def parse_int(text: str | None) -> int | None:
    """An integer header value (`60`, `149984`); tolerates `60.0`, rejects the rest."""
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        seconds = parse_seconds(text)
        return int(seconds) if seconds is not None and seconds.is_integer() else None


def seconds_until_http_date(text: str | None, now: float) -> float | None:
    """Seconds from `now` (epoch seconds) until an HTTP-date (`Wed, 21 Oct 2015 07:28:00 GMT`)."""
    if not text:
        return None
    try:
        when = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


def seconds_until_rfc3339(text: str | None, now: float) -> float | None:
    """Seconds from `now` until an RFC 3339 instant (`2026-01-01T00:00:30Z`), never negative."""
    if not text:
        return None
    value = text.strip()
    if value[-1:] in "zZ":
        value = value[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


def seconds_until_epoch(value: str | float | None, now: float) -> float | None:
    """Seconds from `now` until an epoch-seconds instant (Cohere `x-ratelimit-reset`)."""
    if value is None:
        return None
    seconds = parse_seconds(str(value))
    if seconds is None:
        return None
    return max(0.0, seconds - now)


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """The server's wait hint in seconds: `retry-after-ms` wins over `Retry-After`, which is
    either seconds (`2`, `1.5`) or an HTTP-date resolved against `now` (epoch seconds).
    This mirrors the OpenAI/Anthropic SDKs' precedence."""
    milliseconds = parse_seconds(header(headers, "retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000.0
    raw = header(headers, "retry-after")
    if raw is None:
        return None
    seconds = parse_seconds(raw)
    if seconds is not None:
        return seconds
    return seconds_until_http_date(raw, now)
