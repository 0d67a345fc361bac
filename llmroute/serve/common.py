"""What both client formats share: reading fields, the `model` → `AskOptions` rule, finish reasons."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..config.model import Config
from ..engine import AskOptions
from ..types import Request
from .errors import GatewayError

KIND = "serve"


@dataclass
class Parsed:
    """A client request in llmroute's terms."""

    request: Request
    options: AskOptions
    stream: bool = False
    include_usage: bool = False  # OpenAI `stream_options.include_usage`


def bad(message: str) -> GatewayError:
    return GatewayError(400, "invalid_request_error", message)


def options_for(config: Config, model: object) -> AskOptions:
    """`model` names a route, a target (`provider/model`) or `auto` (the default route with the
    auto strategy); anything else is 404."""
    if not isinstance(model, str) or not model:
        raise bad("`model` is required: a route, a target (provider/model) or auto")
    if model == "auto":
        return AskOptions(strategy="auto", kind=KIND)
    if model in config.routes:
        return AskOptions(route=model, kind=KIND)
    if "/" in model and config.resolve_target(model) is not None:
        return AskOptions(model=model, kind=KIND)
    raise GatewayError(404, "not_found_error",
                       f"unknown model {model!r}: use a route, a target (provider/model) or auto; "
                       "GET /v1/models lists them")


def number(body: dict, key: str, lo: float, hi: float | None = None) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < lo or (hi is not None and value > hi):
        raise bad(f"`{key}` must be a number from {lo:g}" + (f" to {hi:g}" if hi is not None else ""))
    return float(value)


def integer(body: dict, key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad(f"`{key}` must be a positive integer")
    return value


def stops(value: object, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise bad(f"`{key}` must be a string or a list of strings")


def arguments_object(text: str) -> dict:
    """A tool call's JSON arguments as an object (Anthropic's `input`); `{}` when unreadable."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def finish(reason: str | None, has_tools: bool) -> str:
    """A target's finish reason as one of: stop, length, tool_calls, content_filter."""
    if has_tools:
        return "tool_calls"
    low = (reason or "").lower()
    if low in ("length", "max_tokens"):
        return "length"
    if "filter" in low or low == "safety":
        return "content_filter"
    return "stop"
