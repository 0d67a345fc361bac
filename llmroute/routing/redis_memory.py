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
* `lock` — the mutual exclusion for that read-modify-write (`redis_document.py`).
* `trial:<target>:<open_until>` — the half-open trial (SPEC §4.1: one trial across all
  machines). Claiming it is one atomic `SET NX` with a `TRIAL_TIMEOUT_S` expiry: exactly one
  process of the whole team gets it per opening, and a process killed mid-trial frees it when the
  key expires. A re-opening has a new `open_until`, so a new key.

Beside it, `document_store` keeps the evidence the team learns from — `<namespace>:quality:`,
`:feedback:` and `:learner:` documents, which never expire — so a verdict given on one machine
moves routing on all of them.

Instants are each machine's own clock (keep the machines on NTP, as the ledger's windows need).

Redis unreachable (at start or mid-run) without a budget: the memory falls back to this
machine's local `routing.json` for the rest of the process, with one stderr warning. (With a
budget, the budget guard has already failed closed before any call, exit 4.)
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from ..redis_document import RedisDocumentStore, redis_errors
from ..state import StateStore
from ..types import Target
from .memory import SHAPE, RoutingMemory, _num, _trial_running, breaker_state

DOC_TTL_S = 24 * 3600
TRIAL_TIMEOUT_S = 60


@dataclass
class RedisRoutingMemory(RoutingMemory):
    """The routing memory shared on Redis; see the module docstring."""

    client: Any = field(default=None, kw_only=True)
    namespace: str = field(default="llmroute", kw_only=True)
    url: str = field(default="", kw_only=True)
    warn: Callable[[str], None] = field(default=lambda message: None, kw_only=True)
    shares_state: ClassVar[bool] = True

    def __post_init__(self) -> None:
        local = StateStore(Path(self.state_dir) / "routing.json", clock=self.clock, valid=SHAPE)
        self.prefix = f"{self.namespace}:routing:"
        self.store = RedisDocumentStore(self.client, self.prefix, local, self.warn, self.url,
                                        valid=SHAPE, ttl=DOC_TTL_S)
        self.host = socket.gethostname()

    def document_store(self, name: str, valid=None):
        """The team's `<namespace>:<name>:doc` on this memory's Redis, never expiring (evidence
        is learned from for good); `<state_dir>/<name>.json` once Redis has failed."""
        local = super().document_store(name, valid)
        if not isinstance(self.store, RedisDocumentStore) or self.store.failed:
            return local
        return RedisDocumentStore(self.client, f"{self.namespace}:{name}:", local, self.warn, self.url,
                                  valid=valid, what=f"the {name} state")

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
        except redis_errors() as exc:
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
