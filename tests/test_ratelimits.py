"""Header hint parsers: Go durations, Retry-After forms, RFC 3339 and epoch instants."""

from __future__ import annotations

import httpx
import pytest

from llmroute.providers import ratelimits as rl

NOW = 1_735_689_600.0  # 2025-01-01T00:00:00Z


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("20ms", 0.02), ("1.2s", 1.2), ("6m0s", 360.0), ("2m59.56s", 179.56), ("1h2m3s", 3723.0),
        ("5.448s", 5.448), ("0", 0.0), ("7.66s", 7.66), ("1us", 1e-6), ("1µs", 1e-6), ("500ns", 5e-7),
        ("-1.5s", -1.5), ("+2s", 2.0), (".5s", 0.5),
    ],
)
def test_go_durations(text, seconds):
    assert rl.parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [None, "", "s", "1", "1x", "1s2", "abc", "1s 2m", "-", "1.2.3s"])
def test_go_durations_rejects_garbage(text):
    assert rl.parse_go_duration(text) is None


def test_reset_accepts_bare_seconds_and_clamps_negative():
    assert rl.parse_reset("60") == 60.0
    assert rl.parse_reset("1m") == 60.0
    assert rl.parse_reset("-3s") == 0.0
    assert rl.parse_reset("soon") is None


def test_parse_int():
    assert rl.parse_int("60") == 60
    assert rl.parse_int(" 149984 ") == 149984
    assert rl.parse_int("60.0") == 60
    assert rl.parse_int("6.5") is None
    assert rl.parse_int("many") is None
    assert rl.parse_int(None) is None


def test_retry_after_ms_wins():
    headers = httpx.Headers({"retry-after-ms": "1500", "retry-after": "20"})
    assert rl.retry_after(headers, NOW) == 1.5


@pytest.mark.parametrize("value, seconds", [("2", 2.0), ("0.5", 0.5), ("20", 20.0)])
def test_retry_after_seconds(value, seconds):
    assert rl.retry_after({"Retry-After": value}, NOW) == seconds


def test_retry_after_http_date_is_relative_to_now():
    assert rl.retry_after({"retry-after": "Wed, 01 Jan 2025 00:00:30 GMT"}, NOW) == 30.0
    assert rl.retry_after({"retry-after": "Tue, 31 Dec 2024 23:00:00 GMT"}, NOW) == 0.0


@pytest.mark.parametrize("headers", [{}, {"retry-after": "later"}, {"retry-after": "-5"},
                                     {"retry-after-ms": "nan"}, {"retry-after": "inf"}])
def test_retry_after_absent_or_bad(headers):
    assert rl.retry_after(headers, NOW) is None


def test_bad_retry_after_ms_falls_back_to_retry_after():
    assert rl.retry_after({"retry-after-ms": "x", "retry-after": "3"}, NOW) == 3.0


def test_rfc3339():
    assert rl.seconds_until_rfc3339("2025-01-01T00:00:30Z", NOW) == 30.0
    assert rl.seconds_until_rfc3339("2025-01-01T01:00:30+01:00", NOW) == 30.0
    assert rl.seconds_until_rfc3339("2025-01-01T00:00:00.250Z", NOW) == pytest.approx(0.25)
    assert rl.seconds_until_rfc3339("2024-12-31T00:00:00Z", NOW) == 0.0
    assert rl.seconds_until_rfc3339("yesterday", NOW) is None
    assert rl.seconds_until_rfc3339(None, NOW) is None


def test_epoch():
    assert rl.seconds_until_epoch("1735689660", NOW) == 60.0
    assert rl.seconds_until_epoch(NOW + 1.5, NOW) == 1.5
    assert rl.seconds_until_epoch("1", NOW) == 0.0
    assert rl.seconds_until_epoch("soon", NOW) is None
    assert rl.seconds_until_epoch(None, NOW) is None


def test_header_lookup_is_case_insensitive_for_dicts_and_httpx():
    assert rl.header({"X-RateLimit-Limit-Requests": " 60 "}, "x-ratelimit-limit-requests") == "60"
    assert rl.header(httpx.Headers({"X-A": "1"}), "x-a") == "1"
    assert rl.header({"x-a": "  "}, "x-a") is None
    assert rl.header({}, "x-a") is None
