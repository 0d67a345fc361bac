"""One ledger record per provider call, built the same way by every caller.

`ask` (the engine), `compare`, `abtest` and sampled A/B all write SPEC §5 records. Building them
in one function keeps the field set and its order identical, so `report` and `budget` never
meet two dialects of the same record.
"""

from __future__ import annotations

import socket
from typing import Mapping, Sequence

from ..types import Attempt

HOST = socket.gethostname()  # which machine wrote a record: a team's ledgers stay per machine


def build_record(
    *,
    ts: str,
    request_id: str,
    kind: str,
    attempt: Attempt,
    route: str | None,
    strategy: str | None,
    tags: Sequence[str],
    prompt_hash: str,
    extra: Mapping[str, object] = {},
    prompt: str | None = None,
    answer: str | None = None,
    cached: bool = False,
) -> dict:
    """The ledger record of one call. `prompt`/`answer` are only passed when the config says
    `ledger.log_prompts: true`; `extra` adds fields such as `compare_id` or `ab_id`."""
    usage = attempt.usage
    record = {
        "v": 1,
        "ts": ts,
        "request_id": request_id,
        "kind": kind,
        "target": attempt.target.id,
        "provider": attempt.target.provider,
        "model": attempt.target.model,
        "route": route,
        "strategy": strategy,
        "attempt": attempt.attempt,
        "status": attempt.status,
        "error": attempt.error,
        "http_status": attempt.http_status,
        "latency_ms": attempt.latency_ms,
        "ttft_ms": attempt.ttft_ms,
        "input_tokens": usage.input_tokens if usage else 0,
        "output_tokens": usage.output_tokens if usage else 0,
        "tokens_source": usage.source if usage else None,
        "cached_input_tokens": usage.cached_input_tokens if usage else 0,
        "cache_write_tokens": usage.cache_write_tokens if usage else 0,
        "reasoning_tokens": usage.reasoning_tokens if usage else 0,
        # A failed attempt costs nothing unless the provider answered and billed it (`empty`,
        # `invalid_output`): then its charge is recorded like any answer's.
        "cost_usd": attempt.cost_usd if attempt.status == "ok" else (attempt.cost_usd or 0.0),
        "price_source": attempt.price_source,
        "cached": cached,
        "tags": list(tags),
        "prompt_sha256": prompt_hash,
        "host": HOST,
        **extra,
    }
    if prompt is not None:
        record["prompt"] = prompt
        if answer is not None:
            record["answer"] = answer
    return record
