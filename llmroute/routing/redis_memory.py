"""The routing memory on Redis (SPEC §15 `state.backend: redis`): one memory for a team's machines.

`RedisRoutingMemory` is the local `RoutingMemory` (same breaker, rate-limit, latency, quality
and round-robin rules, same `snapshot()` / `record_*` / `claim_trial` / `trip` /
`advance_round_robin` API, and `BufferedMemory` fronts it unchanged) with its document moved
from `<state_dir>/routing.json` to Redis, so a provider that one machine found down is skipped
by every other machine.

Keys (all prefixed `<namespace>:routing:`):

* `doc` — the routing document (the JSON `routing.json` would hold). Every change is one
  read-modify-write under `lock`; the key expires `DOC_TTL_S` after the last change (it is only a
  cache of recent history: breakers close within 15 minutes, rate-limit windows are a minute).
* `lock` — the mutual exclusion for that read-modify-write (`SET NX` with a 10 s expiry, so a
  process killed while holding it cannot block the others).
* `trial:<target>:<open_until>` — the half-open trial (SPEC §4.1: one trial across all
  machines). Claiming it is one atomic `SET NX` with a `TRIAL_TIMEOUT_S` expiry: exactly one
  process of the whole team gets it per opening, and a process killed mid-trial frees it when the
  key expires. A re-opening has a new `open_until`, so a new key.

Instants are each machine's own clock (keep the machines on NTP, as the ledger's windows need).

Redis unreachable (at start or mid-run) without a budget: the memory falls back to this
machine's local `routing.json` for the rest of the process, with one stderr warning. (With a
budget, the budget guard has already failed closed before any call, exit 4.)
"""

from __future__ import annotations

import json
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ..state import StateStore
from ..types import Target
from .memory import SHAPE, RoutingMemory, _num, _safe_read, _trial_running, breaker_state

DOC_TTL_S = 24 * 3600
LOCK_TTL_S = 10.0
LOCK_WAIT_S = 5.0
TRIAL_TIMEOUT_S = 60


class RedisDocumentStore:
    """`StateStore`'s `read()` / `update()` on one Redis key; any Redis error switches it, for
    good, to the local `fallback` store after one warning."""

    def __init__(self, client, prefix: str, fallback: StateStore, warn: Callable[[str], None],
                 url: str = ""):
        self.client, self.prefix, self.fallback, self.warn, self.url = client, prefix, fallback, warn, url
        self.key = prefix + "doc"
        self.failed = False

    def fail(self, exc: BaseException) -> None:
        if not self.failed:
            self.failed = True
            from ..budget.redis_store import safe_url

            self.warn(f"Redis at {safe_url(self.url)} is unreachable ({type(exc).__name__}); "
                      f"the routing memory is this machine's own for the rest of this run")

    def read(self) -> dict:
        if not self.failed:
            try:
                return _decode(self.client.get(self.key))
            except _errors() as exc:
                self.fail(exc)
        return _safe_read(self.fallback)

    @contextmanager
    def update(self) -> Iterator[dict]:
        lock = None
        if not self.failed:
            try:
                lock = self.client.lock(self.prefix + "lock", timeout=LOCK_TTL_S,
                                        blocking_timeout=LOCK_WAIT_S)
                if not lock.acquire():
                    raise TimeoutError("the routing memory lock was not free within 5 s")
                raw = self.client.get(self.key)
            except _errors() as exc:
                self.fail(exc)
                lock = None
        if lock is None:
            with self.fallback.update() as document:
                yield document
            return
        try:
            document = _decode(raw)
            original = _encode(document)
            yield document
            data = _encode(document)
            if data != original:
                try:
                    self.client.set(self.key, data, ex=DOC_TTL_S)
                except _errors() as exc:
                    self.fail(exc)
        finally:
            try:
                lock.release()
            except Exception:  # expired or Redis gone: the lock frees itself
                pass


@dataclass
class RedisRoutingMemory(RoutingMemory):
    """The routing memory shared on Redis; see the module docstring."""

    client: Any = field(default=None, kw_only=True)
    namespace: str = field(default="llmroute", kw_only=True)
    url: str = field(default="", kw_only=True)
    warn: Callable[[str], None] = field(default=lambda message: None, kw_only=True)

    def __post_init__(self) -> None:
        local = StateStore(Path(self.state_dir) / "routing.json", clock=self.clock, valid=SHAPE)
        self.prefix = f"{self.namespace}:routing:"
        self.store = RedisDocumentStore(self.client, self.prefix, local, self.warn, self.url)
        self.host = socket.gethostname()

    def claim_trial(self, target: Target) -> bool:
        """True when closed, or half-open and this process just won the team's single trial
        (`SET NX` with expiry); False when open or anyone (any machine) holds the trial."""
        store = self.store
        if not isinstance(store, RedisDocumentStore) or store.failed:
            return super().claim_trial(target)
        now = self.clock()
        b = store.read().get("breakers", {})
        b = b.get(target.id) if isinstance(b, dict) else None
        if store.failed:
            return super().claim_trial(target)
        if not isinstance(b, dict):
            return True
        state = breaker_state(b, now)
        if state == "closed":
            return True
        if state == "open" or _trial_running(b, now):
            return False
        key = f"{self.prefix}trial:{target.id}:{_num(b.get('open_until'))!r}"
        try:
            won = self.client.set(key, f"{self.host}:{now}", nx=True, ex=TRIAL_TIMEOUT_S)
        except _errors() as exc:
            store.fail(exc)
            return super().claim_trial(target)
        if not won:
            return False
        with store.update() as doc:  # so every machine's snapshot shows the trial running
            breakers = doc.get("breakers")
            entry = breakers.get(target.id) if isinstance(breakers, dict) else None
            if isinstance(entry, dict) and entry.get("open_until") == b.get("open_until"):
                entry["trial_started_at"] = now
        return True

    def ping_ms(self) -> float:
        """One PING's round trip in milliseconds (raises the client's error when unreachable)."""
        start = time.perf_counter()
        self.client.ping()
        return (time.perf_counter() - start) * 1000


def _errors() -> tuple[type[BaseException], ...]:
    import redis

    return (redis.RedisError, OSError, TimeoutError)


def _decode(raw: bytes | None) -> dict:
    """The stored document; anything missing or damaged is an empty memory."""
    if not raw:
        return {}
    try:
        document = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(document, dict):
        return {}
    return document if SHAPE(document) else {}


def _encode(document: dict) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def routing_memory_for(config, paths, *, url: str, clock: Callable[[], float] = time.time,
                       warn: Callable[[str], None], client=None) -> RoutingMemory:
    """The routing memory for `state.backend: redis`: on Redis when it answers; otherwise (no
    budget governs the call, or the caller would have failed closed already) this machine's
    local memory, after one warning."""
    windowed = frozenset(p.name for p in config.providers.values() if p.rpm or p.tpm)
    if client is None:
        from ..budget.redis_store import RedisUnavailable, connect

        try:
            client = connect(url)
        except RedisUnavailable as exc:
            from ..budget.redis_store import safe_url

            text = str(exc)
            why = (f"Redis at {safe_url(url)} is unreachable ({text.split('(', 1)[1].split(')', 1)[0]})"
                   if "unreachable (" in text else text)
            warn(f"{why}; the routing memory is this machine's own for this run")
            return RoutingMemory(paths.state_dir, clock=clock, windowed=windowed)
    return RedisRoutingMemory(paths.state_dir, clock=clock, windowed=windowed, client=client,
                              namespace=config.state.namespace, url=url, warn=warn)
