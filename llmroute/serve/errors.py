"""llmroute's errors as HTTP statuses and each client's own error body.

| what happened | status | OpenAI `type` / Anthropic `error.type` |
|---|---|---|
| malformed JSON, a missing or invalid field | 400 | `invalid_request_error` |
| a target refused the request as invalid (every target would) | 400 | `invalid_request_error` |
| missing or wrong token | 401 | `authentication_error` |
| unknown `model` (not a route, a target or `auto`) | 404 | `not_found_error` |
| body over the size limit | 413 | `request_too_large` |
| the budget refuses (names the limit and when it resets) | 429 | `budget_exceeded` |
| no target usable now (no key, circuits open, filtered) | 503 | `no_target_available` |
| every attempt failed | 502 | `upstream_error` |
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import AllAttemptsFailed, BudgetError, ErrorClass, LLMRouteError, NoProviderError, ProviderError


@dataclass
class GatewayError(Exception):
    status: int
    type: str
    message: str


def gateway_error(error: BaseException) -> GatewayError:
    """The status and type for an error the engine raised."""
    if isinstance(error, GatewayError):
        return error
    text = str(error)
    if isinstance(error, BudgetError):
        return GatewayError(429, "budget_exceeded", _text(error))
    if isinstance(error, NoProviderError):
        return GatewayError(503, "no_target_available", text)
    if isinstance(error, AllAttemptsFailed):
        last = error.attempts[-1].error if getattr(error, "attempts", None) else None
        if last in (ErrorClass.BAD_REQUEST.value, ErrorClass.CONTEXT_LENGTH.value):
            return GatewayError(400, "invalid_request_error", text)
        return GatewayError(502, "upstream_error", text)
    if isinstance(error, ProviderError):
        return GatewayError(502, "upstream_error", f"{error.error_class.value}: {error.message}")
    if isinstance(error, LLMRouteError):
        return GatewayError(400, "invalid_request_error", text)
    return GatewayError(500, "internal_error", "internal error")


def _text(error: BaseException) -> str:
    hint = getattr(error, "hint", None)
    message = str(error)
    return f"{message} ({hint})" if hint else message


def openai_body(error: GatewayError) -> dict:
    return {"error": {"message": error.message, "type": error.type, "param": None, "code": error.type}}


def anthropic_body(error: GatewayError) -> dict:
    return {"type": "error", "error": {"type": error.type, "message": error.message}}
