"""One JSON document on Redis with `StateStore`'s `read()` / `update()` (SPEC §15).

Every change is one read-modify-write under a Redis lock (`SET NX` with a 10 s expiry, so a
process killed while holding it cannot block the others), written back only when it changed.
A document of the wrong shape reads as empty, as a damaged local file would after being set
aside. Any Redis error switches the store, for good, to its local `fallback` after one warning:
a call with no budget goes on with this machine's state (a budget fails closed long before).

Users: the routing memory (`routing/redis_memory.py`: a cache of recent history, so it expires a
day after its last change) and the evidence the team learns from — quality pairs and votes, the
per-prompt learner — which never expire.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Callable, Iterator

from .state import StateStore

LOCK_TTL_S = 10.0
LOCK_WAIT_S = 5.0


class RedisDocumentStore:
    """The document at `<prefix>doc`, locked by `<prefix>lock`, its writes counted by
    `<prefix>version`; `ttl` seconds after the last change it expires (None: never). `what`
    names it in the fallback warning."""

    def __init__(self, client, prefix: str, fallback: StateStore, warn: Callable[[str], None],
                 url: str = "", *, valid: Callable[[dict], bool] | None = None, ttl: int | None = None,
                 what: str = "the routing memory"):
        self.client, self.prefix, self.fallback, self.warn, self.url = client, prefix, fallback, warn, url
        self.key = prefix + "doc"
        self.valid, self.ttl, self.what = valid, ttl, what
        self.failed = False

    def fail(self, exc: BaseException) -> None:
        if not self.failed:
            self.failed = True
            from .budget.redis_store import safe_url

            self.warn(f"Redis at {safe_url(self.url)} is unreachable ({type(exc).__name__}); "
                      f"{self.what} is this machine's own for the rest of this run")

    def read(self) -> dict:
        if not self.failed:
            try:
                return self._decode(self.client.get(self.key))
            except redis_errors() as exc:
                self.fail(exc)
        try:
            return self.fallback.read()
        except OSError:
            return {}

    def version(self) -> bytes | None:
        """A counter bumped by every write: a reader holding a copy re-reads only when it
        changed. None when nothing was written yet (or Redis failed: see `failed`)."""
        if self.failed:
            return None
        try:
            return self.client.get(self.prefix + "version")
        except redis_errors() as exc:
            self.fail(exc)
            return None

    @contextmanager
    def update(self) -> Iterator[dict]:
        lock = None
        if not self.failed:
            try:
                lock = self.client.lock(self.prefix + "lock", timeout=LOCK_TTL_S,
                                        blocking_timeout=LOCK_WAIT_S)
                if not lock.acquire():
                    raise TimeoutError(f"the lock of {self.what} was not free within {LOCK_WAIT_S:g} s")
                raw = self.client.get(self.key)
            except redis_errors() as exc:
                self.fail(exc)
                lock = None
        if lock is None:
            with self.fallback.update() as document:
                yield document
            return
        try:
            document = self._decode(raw)
            original = encode(document)
            yield document
            data = encode(document)
            if data != original:
                try:
                    pipe = self.client.pipeline(transaction=True)
                    pipe.set(self.key, data, ex=self.ttl)
                    pipe.incr(self.prefix + "version")
                    pipe.execute()
                except redis_errors() as exc:
                    self.fail(exc)
        finally:
            try:
                lock.release()
            except Exception:  # expired or Redis gone: the lock frees itself
                pass

    def _decode(self, raw: bytes | None) -> dict:
        """The stored document; anything missing or damaged is an empty one."""
        if not raw:
            return {}
        try:
            document = json.loads(raw)
        except ValueError:
            return {}
        if not isinstance(document, dict) or (self.valid is not None and not self.valid(document)):
            return {}
        return document


def redis_errors() -> tuple[type[BaseException], ...]:
    import redis

    return (redis.RedisError, OSError, TimeoutError)


def encode(document: dict) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
