"""Who may use the gateway: anyone on a loopback bind; with a token (`serve.token_env`), only a
client presenting it as `Authorization: Bearer` (OpenAI SDKs) or `x-api-key` (Anthropic SDKs),
compared in constant time. The token is never logged or echoed."""

from __future__ import annotations

import hmac
import ipaddress

from ..errors import UsageError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def required_token(host: str, token_env: str | None, env) -> str | None:
    """The token requests must carry: None on loopback without `serve.token_env`; a
    non-loopback host without a token set is refused (SPEC §13)."""
    token = env.get(token_env) if token_env else None
    if token_env and not token:
        raise UsageError(f"serve.token_env names {token_env}, which is not set or empty",
                         f"export {token_env}=<a long random token>")
    if token is None and not is_loopback(host):
        raise UsageError(f"refusing to serve on non-loopback host {host} without a token",
                         "set serve.token_env in the config to a variable holding a long random token")
    return token


def presented(headers) -> str:
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return headers.get("x-api-key", "")


def allowed(token: str | None, headers) -> bool:
    if token is None:
        return True
    return hmac.compare_digest(presented(headers).encode(), token.encode())
