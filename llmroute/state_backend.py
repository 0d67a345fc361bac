"""Where shared state lives and how it answers (SPEC §15), for `llmroute health`: the backend,
its URL without credentials, the namespace and one round trip. The local default shows nothing,
so `health`'s output is unchanged without a team backend.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .engine import Engine


def state_backend(engine: "Engine") -> dict | None:
    """Where shared state lives and its round-trip time (SPEC §15), or None for the local
    default (whose output stays as it was): `{"backend": "redis", "url": <without
    credentials>, "namespace": ..., "rtt_ms": <one PING> | None, "error": None | <why not>}`."""
    state = engine.config.state
    if state.backend != "redis":
        return None
    from .budget.redis_store import safe_url

    memory = getattr(engine.memory, "inner", engine.memory)  # a BufferedMemory's own memory
    client = getattr(memory, "client", None) or getattr(engine.budget, "client", None)
    url = getattr(memory, "url", None) or getattr(engine.budget, "url", None) or ""
    row = {"backend": "redis", "url": safe_url(url) if url else None, "namespace": state.namespace,
           "rtt_ms": None, "error": None}
    if client is None:
        row["error"] = "unreachable: the routing memory is this machine's own"
        return row
    try:
        start = time.perf_counter()
        client.ping()
        row["rtt_ms"] = round((time.perf_counter() - start) * 1000, 2)
    except Exception as exc:  # redis.RedisError, OSError: shown, not raised
        row["error"] = f"unreachable ({type(exc).__name__})"
    return row


def state_line(row: dict | None) -> str | None:
    """The health table's state backend line; None for the local default."""
    if row is None:
        return None
    where = f"redis {row['url'] or ''} namespace {row['namespace']}".replace("  ", " ")
    if row["rtt_ms"] is not None:
        return f"state: {where}, round trip {row['rtt_ms']:.2f} ms"
    return f"state: {where}, {row['error']}"
