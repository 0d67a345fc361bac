"""How the OpenAI wire format (and every OpenAI-compatible service) reports what went wrong:
the error body's fields, the SPEC §4.1 class of a status or an in-stream error, and the
`x-ratelimit-*` headers. Kept apart from the request and stream translation in `openai.py`.
"""

from __future__ import annotations

from typing import Any

from ..errors import ErrorClass
from ..types import RateLimitInfo
from . import ratelimits

MESSAGE_LIMIT = 300  # characters of an error body kept in a message
_RATE_LIMIT_CODES = frozenset({"rate_limit_exceeded", "rate_limited", "requests", "tokens", "1300"})


def error_fields(payload: Any, body: str) -> tuple[str, Any, str | None]:
    """(message, code, type) from any of the error shapes: OpenAI/Groq/OpenRouter
    `{"error":{...}}`, Mistral `{"message":...}` or `{"detail": str | [{"msg":...}]}`."""
    message: Any = None
    code: Any = None
    kind: str | None = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            message, code, kind = error.get("message"), error.get("code"), error.get("type")
            if message is None and code is not None:
                message = f"error code {code}"
        elif isinstance(error, str):
            message = error
        if message is None and payload.get("message") is not None:
            message, code, kind = payload["message"], payload.get("code"), payload.get("type")
        detail = payload.get("detail")
        if message is None and isinstance(detail, str):
            message = detail
        elif message is None and isinstance(detail, list):
            message = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
    if message is None:
        message = body.strip() or "(empty body)"
    message = " ".join(str(message).split())
    if len(message) > MESSAGE_LIMIT:
        message = message[: MESSAGE_LIMIT - 1] + "…"
    return message, code, kind if isinstance(kind, str) else None


def _mentions_context(code: Any, message: str) -> bool:
    return code == "context_length_exceeded" or "context length" in message.lower()


_UNKNOWN_MODEL_CODES = frozenset({"invalid_model", "model_not_found"})
_UNKNOWN_MODEL_MARKERS = ("not a valid model", "invalid model:", "invalid model name", "invalid model id")


def _names_unknown_model(code: Any, kind: str | None, message: str) -> bool:
    """A 400 that means "no such model": OpenRouter's `X is not a valid model ID`, Mistral's
    `{"message":"Invalid model: X","type":"invalid_model","code":"1500"}`. It is `not_found`,
    so fallback moves on instead of stopping as if the request itself were wrong."""
    if code in _UNKNOWN_MODEL_CODES or kind in _UNKNOWN_MODEL_CODES:
        return True
    lowered = message.lower()
    return any(marker in lowered for marker in _UNKNOWN_MODEL_MARKERS)


def classify_status(status: int, code: Any, kind: str | None, message: str) -> tuple[ErrorClass, str]:
    """SPEC §4.1 for an HTTP error status, refined by the body's code/type/message."""
    if status == 429:
        if code == "insufficient_quota" or kind == "insufficient_quota":
            return ErrorClass.RATE_LIMITED, f"quota exhausted: {message}"
        return ErrorClass.RATE_LIMITED, message
    if status == 413:
        if code in _RATE_LIMIT_CODES:
            return ErrorClass.RATE_LIMITED, message  # Groq: request exceeds the TPM limit
        return ErrorClass.CONTEXT_LENGTH, message
    if status in (400, 422):
        if _mentions_context(code, message):
            return ErrorClass.CONTEXT_LENGTH, message
        if _names_unknown_model(code, kind, message):
            return ErrorClass.NOT_FOUND, message
        return ErrorClass.BAD_REQUEST, message
    simple = {
        401: ErrorClass.AUTH, 403: ErrorClass.AUTH, 404: ErrorClass.NOT_FOUND,
        408: ErrorClass.TIMEOUT, 409: ErrorClass.SERVER_ERROR,
        503: ErrorClass.OVERLOADED, 529: ErrorClass.OVERLOADED,
    }
    if status == 402:
        return ErrorClass.AUTH, f"insufficient credits or billing problem: {message}"
    if status in simple:
        return simple[status], message
    if status >= 500:
        return ErrorClass.SERVER_ERROR, message
    return ErrorClass.BAD_REQUEST, message


def classify_payload(code: Any, kind: str | None, message: str) -> tuple[ErrorClass, str]:
    """An error object without an HTTP error status (stream event, 200 body): OpenRouter puts
    the status in a numeric `code`; OpenAI/Groq give string codes/types."""
    if isinstance(code, int) and 400 <= code <= 599:
        return classify_status(code, None, kind, message)
    if code in _RATE_LIMIT_CODES or kind in _RATE_LIMIT_CODES:
        return ErrorClass.RATE_LIMITED, message
    if _mentions_context(code, message):
        return ErrorClass.CONTEXT_LENGTH, message
    if code == "invalid_api_key" or kind == "authentication_error":
        return ErrorClass.AUTH, message
    if kind in ("overloaded_error", "overloaded"):
        return ErrorClass.OVERLOADED, message
    return ErrorClass.SERVER_ERROR, message


def openai_rate_limits(headers: Any) -> RateLimitInfo | None:
    """`x-ratelimit-{limit,remaining,reset}-{requests,tokens}` (Go durations; OpenAI, Groq) or
    Mistral's `x-ratelimit-{limit,remaining}-{req,tokens}-minute` (no reset given)."""
    get = lambda name: ratelimits.header(headers, name)  # noqa: E731
    info = RateLimitInfo(
        limit_requests=ratelimits.parse_int(get("x-ratelimit-limit-requests") or get("x-ratelimit-limit-req-minute")),
        remaining_requests=ratelimits.parse_int(
            get("x-ratelimit-remaining-requests") or get("x-ratelimit-remaining-req-minute")
        ),
        reset_requests_s=ratelimits.parse_reset(get("x-ratelimit-reset-requests")),
        limit_tokens=ratelimits.parse_int(get("x-ratelimit-limit-tokens") or get("x-ratelimit-limit-tokens-minute")),
        remaining_tokens=ratelimits.parse_int(
            get("x-ratelimit-remaining-tokens") or get("x-ratelimit-remaining-tokens-minute")
        ),
        reset_tokens_s=ratelimits.parse_reset(get("x-ratelimit-reset-tokens")),
    )
    return None if info.is_empty else info
