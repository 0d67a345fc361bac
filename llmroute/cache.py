"""The response cache: identical requests within `cache.ttl` are answered locally at zero cost.

Why SQLite, and how the file is shared by many processes and set aside when damaged:
`sqlite_file.SqliteFile`, which the conversations file shares.

The key is the SHA-256 of the canonical JSON of what makes two requests the same question:
the messages, the system prompt, the `-m`/`-r` choice, `max_tokens` and `temperature`. Hits and
misses are counted in a small table of the same database, so `cache stats` can report a hit rate
across every process that used it. Entries expire `ttl` seconds after they were stored; the
clock is injected so expiry is tested without waiting.

The cache is disposable, so damage never stops anything:
- A damaged database (random bytes, a truncated file: SQLite's "file is not a database" or
  "database disk image is malformed") is set aside as `cache.sqlite3.corrupt-<timestamp>` (its
  -wal/-shm files with it), with one warning, and the operation runs again on a fresh file.
  `cache stats` and `cache clear` therefore always work on a damaged cache.
- Any other failure while asking (read-only directory, disk full, a lock held too long) is one
  warning, and the prompt is answered without the cache (`CacheHook`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

from .sqlite_file import SqliteFile
from .state import stderr_warning
from .types import Request, Usage

T = TypeVar("T")

FILE_NAME = "cache.sqlite3"
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
    # Gateway-only fields join the key only when set, so keys of CLI requests stay as they were.
    if any(m.tool_calls or m.tool_call_id for m in request.messages):
        material["turns"] = [[[[c.id, c.name, c.arguments] for c in m.tool_calls], m.tool_call_id]
                             for m in request.messages]
    extra = {"top_p": request.top_p, "stop": list(request.stop) or None, "tool_choice": request.tool_choice,
             "tools": [[t.name, t.description, t.parameters] for t in request.tools] or None,
             # SPEC §14: -o options, --schema and -a images change the question too
             "options": [[k, v] for k, v in request.options] or None, "schema": request.schema,
             "images": [[a.media_type, hashlib.sha256(a.data).hexdigest()] for a in request.attachments] or None}
    material.update({k: v for k, v in extra.items() if v is not None})
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache(SqliteFile):
    """One SQLite cache file (`sqlite_file.SqliteFile`): safe to share between threads of a
    process and between processes. `warn` hears (once) that a damaged file was set aside."""

    description = "the response cache"
    schema = _SCHEMA

    def __init__(self, path: Path, *, ttl: float, clock: Callable[[], float] = time.time,
                 warn: Callable[[str], None] = stderr_warning):
        super().__init__(path, clock=clock, warn=warn)
        self.ttl = float(ttl)
        self.unusable: Exception | None = None  # why asking goes on without it (`CacheHook`)

    @classmethod
    def for_data_dir(cls, data_dir: Path, *, ttl: float, clock: Callable[[], float] = time.time,
                     warn: Callable[[str], None] = stderr_warning) -> "ResponseCache":
        return cls(Path(data_dir) / FILE_NAME, ttl=ttl, clock=clock, warn=warn)

    # --- lookups and stores -------------------------------------------------------------

    def get(self, key: str) -> CachedAnswer | None:
        """The live entry for `key`, counting a hit or a miss; an expired entry is removed."""
        return self._recovering(lambda: self._get(key))

    def _get(self, key: str) -> CachedAnswer | None:
        now = self.clock()
        with self._write() as db:
            row = db.execute(
                "SELECT created, target, route, text, input_tokens, output_tokens FROM entries WHERE key = ?",
                (key,),
            ).fetchone()
            if row is not None and (not _readable(row) or row[0] + self.ttl <= now):
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
        self._recovering(lambda: self._put(key, target, route, text, usage))

    def _put(self, key: str, target: str, route: str | None, text: str, usage: Usage | None) -> None:
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
        return self._recovering(self._stats)

    def _stats(self) -> CacheStats:
        if not self.path.exists():
            return CacheStats(0, 0, 0, 0, 0, self.path)
        now = self.clock()
        with self._lock:
            db = self._connect()
            total = db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
            expired = db.execute("SELECT COUNT(*) FROM entries WHERE created <= ?", (now - self.ttl,)).fetchone()[0]
            counters = {name: value for name, value in db.execute("SELECT name, value FROM counters")
                        if isinstance(value, int)}
        return CacheStats(entries=total - expired, expired=expired, hits=counters.get("hits", 0),
                          misses=counters.get("misses", 0), size_bytes=self.size_bytes(), path=self.path)

    def clear(self) -> int:
        """Remove every entry and reset the counters; returns how many entries there were.
        The file is compacted afterwards so `stats` shows the space coming back. A damaged
        file is set aside (see the module docstring), which leaves an empty cache."""
        return self._recovering(self._clear)

    def _clear(self) -> int:
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


def _readable(row: tuple) -> bool:
    """An entry with the types this module stores (SQLite itself does not enforce them)."""
    created, target, route, text, input_tokens, output_tokens = row
    return (isinstance(created, (int, float)) and isinstance(target, str) and isinstance(text, str)
            and (route is None or isinstance(route, str))
            and all(n is None or isinstance(n, int) for n in (input_tokens, output_tokens)))


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
        from .ledger.records import build_record
        from .types import Answer, Attempt, Target

        engine = self.engine
        started = engine.monotonic()
        if self.cache.unusable is not None:
            return None
        try:
            hit = self.cache.get(self.key(request))
        except (sqlite3.Error, OSError) as error:
            self._unusable(error)
            return None
        if hit is None:
            return None
        latency = int((engine.monotonic() - started) * 1000)
        attempt = Attempt(target=Target.parse(hit.target), attempt=1, status="ok", latency_ms=latency,
                          usage=None, cost_usd=0.0, price_source="cache")
        answer = Answer(request_id=_request_id(), text=hit.text, target=attempt.target, route=hit.route,
                        usage=hit.usage, cost_usd=0.0, latency_ms=latency, attempts=[attempt], cached=True)
        log_prompts = engine.config.ledger.log_prompts
        engine.record(build_record(
            ts=make_ts(engine.clock()), request_id=answer.request_id, kind=self.options.kind,
            attempt=attempt, route=hit.route, strategy="cache", tags=self.options.tags,
            prompt_hash=prompt_sha256(request.prompt_text), extra=self.options.extra_record,
            prompt=request.prompt_text if log_prompts else None,
            answer=hit.text if log_prompts else None, cached=True,
        ))
        return answer

    def store(self, request: Request, answer) -> None:
        if self.cache.unusable is not None or getattr(answer, "tool_calls", ()):
            return  # entries hold text only: a tool-call answer would come back without its calls
        try:
            self.cache.put(self.key(request), target=answer.target.id, route=answer.route,
                           text=answer.text, usage=answer.usage)
        except (sqlite3.Error, OSError) as error:
            self._unusable(error)

    def _unusable(self, error: Exception) -> None:
        """The cache cannot be used (not damage: that is repaired in `ResponseCache`). Say so
        once, then answer without it for the rest of the invocation."""
        self.cache.unusable = error
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        self.engine.warn(f"the response cache {self.cache.path} cannot be used ({reason}); "
                         "answering without it")


def cache_wanted(config, options) -> bool:
    """`--cache/--no-cache` wins; otherwise config `cache.enabled`, for `ask`, `batch` and
    `serve` (SPEC §13) only (compare and A/B runs exist to call the providers, so they never
    read the cache)."""
    if options.cache is not None:
        return options.cache
    return config.cache.enabled and options.kind in ("ask", "batch", "serve")


def _request_id() -> str:
    import uuid

    return uuid.uuid4().hex
