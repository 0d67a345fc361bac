"""Write a realistic N-record llmroute ledger quickly, for benchmarks and demos.

Usage: python bench/gen_ledger.py N PATH [--days 60] [--seed 1]

Records follow SPEC §5 and are spread over the last `--days` days (in time order, as a real
ledger is), across several providers and models, with ~4% errors, fallbacks (an error on attempt
1 followed by an ok attempt 2 on another target), cached answers and tags. Lines are built from
a string template rather than `json.dumps` so a million records take a couple of seconds.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from datetime import datetime, timezone
from pathlib import Path

TARGETS = (
    ("openai", "gpt-4o-mini", 0.15, 0.60, 900),
    ("openai", "gpt-4o", 2.50, 10.00, 1800),
    ("anthropic", "claude-haiku-4-5", 1.00, 5.00, 1100),
    ("anthropic", "claude-sonnet-4-5", 3.00, 15.00, 2600),
    ("gemini", "gemini-2.5-flash", 0.30, 2.50, 800),
    ("groq", "llama-3.3-70b-versatile", 0.59, 0.79, 350),
    ("ollama", "llama3.2", 0.0, 0.0, 2200),
)
ROUTES = ("default", "default", "default", "strong", "cheap")
KINDS = ("ask",) * 12 + ("batch", "batch", "compare", "abtest", "judge", "health")
TAGS = ('[]', '[]', '[]', '["work"]', '["personal"]', '["work","ci"]')
ERRORS = (("rate_limited", 429), ("server_error", 500), ("timeout", "null"), ("overloaded", 529))

TEMPLATE = (
    '{{"v":1,"ts":"{ts}","request_id":"{rid}","kind":"{kind}","target":"{prov}/{model}",'
    '"provider":"{prov}","model":"{model}","route":"{route}","strategy":"auto","attempt":{attempt},'
    '"status":"{status}","error":{error},"http_status":{http},"latency_ms":{lat},"ttft_ms":{ttft},'
    '"input_tokens":{tin},"output_tokens":{tout},"tokens_source":"provider","cost_usd":{cost},'
    '"price_source":"builtin:2026-01-01","cached":{cached},"tags":{tags},"ab_id":null,'
    '"compare_id":null,"prompt_sha256":"{sha}"}}\n'
)


def _iso(epoch: float) -> str:
    dt = datetime.fromtimestamp(epoch, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(epoch * 1000) % 1000:03d}Z"


def _record(rng: random.Random, ts: str, rid: int, attempt: int, target: tuple, error: tuple | None,
            cached: bool, kind: str, route: str, tags: str) -> str:
    prov, model, pin, pout, base_latency = target
    tin = rng.randint(20, 4000)
    tout = 0 if error else rng.randint(5, 1200)
    lat = 1 if cached else int(rng.lognormvariate(0, 0.6) * base_latency)
    cost = 0.0 if (error or cached) else round((tin * pin + tout * pout) / 1e6, 8)
    return TEMPLATE.format(
        ts=ts, rid=f"r{rid:08x}", kind=kind, prov=prov, model=model, route=route, attempt=attempt,
        status="error" if error else "ok", error=f'"{error[0]}"' if error else "null",
        http=error[1] if error else 200, lat=lat, ttft=lat // 3 if not error else "null",
        tin=tin, tout=tout, cost=cost, cached="true" if cached else "false", tags=tags,
        sha=f"{rng.getrandbits(64):016x}" * 4,
    )


def generate(n: int, path: Path, *, days: int = 60, seed: int = 1, now: float | None = None) -> int:
    """Write about `n` records (a fallback writes two) to `path`; returns the count written."""
    rng = random.Random(seed)
    end = time.time() if now is None else now
    start = end - days * 86400
    written = 0
    ts_cache: dict[int, str] = {}
    with open(path, "w", encoding="utf-8") as out:
        buf: list[str] = []
        for i in range(n):
            if written >= n:
                break
            t = start + (end - start) * written / max(n, 1)
            second = int(t)
            prefix = ts_cache.get(second)
            if prefix is None:
                ts_cache.clear()
                prefix = ts_cache[second] = _iso(second)[:-4]
            ts = f"{prefix}{int(t * 1000) % 1000:03d}Z"
            kind, route, tags = rng.choice(KINDS), rng.choice(ROUTES), rng.choice(TAGS)
            roll = rng.random()
            first = rng.choice(TARGETS)
            if roll < 0.03:  # fallback: error then ok elsewhere
                second_target = rng.choice([t for t in TARGETS if t is not first])
                buf.append(_record(rng, ts, i, 1, first, rng.choice(ERRORS), False, kind, route, tags))
                buf.append(_record(rng, ts, i, 2, second_target, None, False, kind, route, tags))
                written += 2
            else:
                error = rng.choice(ERRORS) if roll < 0.045 else None
                cached = error is None and roll > 0.95
                buf.append(_record(rng, ts, i, 1, first, error, cached, kind, route, tags))
                written += 1
            if len(buf) >= 10000:
                out.write("".join(buf))
                buf.clear()
        out.write("".join(buf))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int)
    parser.add_argument("path", type=Path)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    began = time.perf_counter()
    count = generate(args.n, args.path, days=args.days, seed=args.seed)
    took = time.perf_counter() - began
    print(json.dumps({"records": count, "path": str(args.path), "seconds": round(took, 2)}))


if __name__ == "__main__":
    main()
