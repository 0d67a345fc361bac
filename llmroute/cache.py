"""The response cache: identical requests within `cache.ttl` are answered locally at zero cost.

Why SQLite: several `llmroute` processes (a batch in one terminal, a script in another) read and
write the same cache at once. SQLite in WAL mode gives concurrent readers, one writer at a time
with `busy_timeout` waiting instead of failing, and crash safety, without a lock file of our own.
Write transactions start with `BEGIN IMMEDIATE` so a reader never has to upgrade its lock (the
one case where SQLite answers "database is locked" without honouring the busy timeout).

The key is the SHA-256 of the canonical JSON of what makes two requests the same question:
the messages, the system prompt, the `-m`/`-r` choice, `max_tokens` and `temperature`. Hits and
misses are counted in a small table of the same database, so `cache stats` can report a hit rate
across every process that used it. Entries expire `ttl` seconds after they were stored; the
clock is injected so expiry is tested without waiting.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .paths import ensure_private_dir
from .types import Request, Usage

FILE_NAME = "cache.sqlite3"
BUSY_TIMEOUT_MS = 30_000
_SUFFIXES = ("", "-wal", "-shm")  # the files one WAL database consists of

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, created REAL NOT NULL,"
    " target TEXT NOT NULL, route TEXT, text TEXT NOT NULL, input_tokens INTEGER,"
    " output_tokens INTEGER)",
    "CREATE INDEX IF NOT EXISTS entries_created ON entries (created)",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)


@dataclass(frozen=True)
class CachedAnswer:
    """What a cache hit gives back: the answer and the target that originally produced it."""

    target: str
    route: str | None
    text: str
    usage: Usage | None
    created: float


@dataclass(frozen=True)
class CacheStats:
    entries: int
    expired: int
    hits: int
    misses: int
    size_bytes: int
    path: Path

    @property
    def hit_rate(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None

    def to_json(self) -> dict:
        return {"path": str(self.path), "entries": self.entries, "expired": self.expired,
                "hits": self.hits, "misses": self.misses, "hit_rate": self.hit_rate,
                "size_bytes": self.size_bytes}


def cache_key(request: Request, model: str | None, route: str | None) -> str:
    """SHA-256 of the canonical JSON of everything that makes two requests the same question."""
    material = {
        "messages": [[m.role, m.content] for m in request.messages],
        "system": request.system,
        "model": model,
        "route": route,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
    }
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache:
    """One SQLite cache file. Safe to share between threads of a process and between processes.

    The connection is opened on first use, so building a cache object costs nothing."""

    def __init__(self, path: Path, *, ttl: float, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.ttl = float(ttl)
        self.clock = clock
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    @classmethod
    def for_data_dir(cls, data_dir: Path, *, ttl: float, clock: Callable[[], float] = time.time) -> "ResponseCache":
        return cls(Path(data_dir) / FILE_NAME, ttl=ttl, clock=clock)

    # --- lookups and stores -------------------------------------------------------------

    def get(self, key: str) -> CachedAnswer | None:
        """The live entry for `key`, counting a hit or a miss; an expired entry is removed."""
        now = self.clock()
        with self._write() as db:
            row = db.execute(
                "SELECT created, target, route, text, input_tokens, output_tokens FROM entries WHERE key = ?",
                (key,),
            ).fetchone()
            if row is not None and row[0] + self.ttl <= now:
                db.execute("DELETE FROM entries WHERE key = ?", (key,))
                row = None
            _bump(db, "hits" if row is not None else "misses")
        if row is None:
            return None
        created, target, route, text, input_tokens, output_tokens = row
        usage = Usage(input_tokens, output_tokens) if input_tokens is not None else None
        return CachedAnswer(target=target, route=route, text=text, usage=usage, created=created)

    def put(self, key: str, *, target: str, route: str | None, text: str, usage: Usage | None) -> None:
        """Store (or refresh) an answer; expired entries are swept in the same transaction so
        the file does not grow without bound."""
        now = self.clock()
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO entries (key, created, target, route, text, input_tokens, output_tokens)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, now, target, route, text,
                 usage.input_tokens if usage else None, usage.output_tokens if usage else None),
            )
            db.execute("DELETE FROM entries WHERE created <= ?", (now - self.ttl,))

    # --- maintenance ----------------------------------------------------------------------

    def stats(self) -> CacheStats:
        if not self.path.exists():
            return CacheStats(0, 0, 0, 0, 0, self.path)
        now = self.clock()
        with self._lock:
            db = self._connect()
            total = db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
            expired = db.execute("SELECT COUNT(*) FROM entries WHERE created <= ?", (now - self.ttl,)).fetchone()[0]
            counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
        return CacheStats(entries=total - expired, expired=expired, hits=counters.get("hits", 0),
                          misses=counters.get("misses", 0), size_bytes=self.size_bytes(), path=self.path)

    def clear(self) -> int:
        """Remove every entry and reset the counters; returns how many entries there were.
        The file is compacted afterwards so `stats` shows the space coming back."""
        if not self.path.exists():
            return 0
        with self._write() as db:
            count = db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
            db.execute("DELETE FROM entries")
            db.execute("DELETE FROM counters")
        with self._lock:
            db = self._connect()
            db.execute("VACUUM")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return count

    def size_bytes(self) -> int:
        total = 0
        for suffix in _SUFFIXES:
            try:
                total += os.stat(f"{self.path}{suffix}").st_size
            except FileNotFoundError:
                pass
        return total

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    # --- plumbing -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            ensure_private_dir(self.path.parent)
            # Create the file 0600 ourselves: SQLite would use the umask, and it gives the
            # -wal/-shm files the database file's permissions.
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600))
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                 check_same_thread=False)
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            for statement in _SCHEMA:
                db.execute(statement)
            self._connection = db
        return self._connection

    def _write(self) -> "_WriteTransaction":
        return _WriteTransaction(self)


class _WriteTransaction:
    """`with cache._write() as db:` = thread lock + `BEGIN IMMEDIATE` ... `COMMIT` (or rollback)."""

    def __init__(self, cache: ResponseCache):
        self.cache = cache

    def __enter__(self) -> sqlite3.Connection:
        self.cache._lock.acquire()
        try:
            self.db = self.cache._connect()
            self.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.cache._lock.release()
            raise
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        finally:
            self.cache._lock.release()


def _bump(db: sqlite3.Connection, name: str) -> None:
    db.execute("INSERT INTO counters (name, value) VALUES (?, 1)"
               " ON CONFLICT(name) DO UPDATE SET value = value + 1", (name,))


class CacheHook:
    """The engine's side of the cache for one request's options: `lookup` before planning,
    `store` after a successful answer. A hit is one ledger record (`cached: true`, status ok,
    cost 0, no tokens spent, target = the target that originally answered)."""

    def __init__(self, engine, options):
        self.engine = engine
        self.options = options
        self.cache = engine.response_cache()

    def key(self, request: Request) -> str:
        return cache_key(request, self.options.model, self.options.route)

    def lookup(self, request: Request):
        from .ledger import make_ts, prompt_sha256
        from .records import build_record
        from .types import Answer, Attempt, Target

        engine = self.engine
        started = engine.monotonic()
        hit = self.cache.get(self.key(request))
        if hit is None:
            return None
        latency = int((engine.monotonic() - started) * 1000)
        attempt = Attempt(target=Target.parse(hit.target), attempt=1, status="ok", latency_ms=latency,
                          usage=None, cost_usd=0.0, price_source="cache")
        answer = Answer(request_id=_request_id(), text=hit.text, target=attempt.target, route=hit.route,
                        usage=hit.usage, cost_usd=0.0, latency_ms=latency, attempts=[attempt], cached=True)
        log_prompts = engine.config.ledger.log_prompts
        engine.ledger.append(build_record(
            ts=make_ts(engine.clock()), request_id=answer.request_id, kind=self.options.kind,
            attempt=attempt, route=hit.route, strategy="cache", tags=self.options.tags,
            prompt_hash=prompt_sha256(request.prompt_text), extra=self.options.extra_record,
            prompt=request.prompt_text if log_prompts else None,
            answer=hit.text if log_prompts else None, cached=True,
        ))
        return answer

    def store(self, request: Request, answer) -> None:
        self.cache.put(self.key(request), target=answer.target.id, route=answer.route,
                       text=answer.text, usage=answer.usage)


def cache_wanted(config, options) -> bool:
    """`--cache/--no-cache` wins; otherwise config `cache.enabled`, for `ask` and `batch` only
    (compare and A/B runs exist to call the providers, so they never read the cache)."""
    if options.cache is not None:
        return options.cache
    return config.cache.enabled and options.kind in ("ask", "batch")


def _request_id() -> str:
    import uuid

    return uuid.uuid4().hex
