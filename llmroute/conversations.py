"""Conversations (SPEC §14): the turns behind `-c/--continue`, `--cid ID` and `llmroute chat`.

A conversation is an id and its turns in order; a turn is what was asked (prompt and system
prompt), what came back, which target answered and the request id its ledger records carry.
Earlier turns are sent as messages with the next prompt, to whichever target the router picks,
so a conversation may move between providers.

Stored in `<data>/conversations.sqlite3` (0600) the way the response cache is (`cache.py`):
WAL, a busy timeout, write transactions opened with `BEGIN IMMEDIATE`. A turn's number is
taken inside its write transaction, so processes continuing one conversation at once each
append a whole turn, in the order they committed. Only the `conversations.keep` most recently
used conversations are kept (0: nothing is stored). A damaged file is set aside as
`conversations.sqlite3.corrupt-<timestamp>` with one warning and a fresh one is started.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, TypeVar

from .sqlite_file import SqliteFile
from .state import stderr_warning
from .types import Message

T = TypeVar("T")

FILE_NAME = "conversations.sqlite3"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS conversations (id TEXT PRIMARY KEY, created REAL NOT NULL,"
    " updated REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS conversations_updated ON conversations (updated)",
    "CREATE TABLE IF NOT EXISTS turns (conversation TEXT NOT NULL, seq INTEGER NOT NULL,"
    " created REAL NOT NULL, prompt TEXT NOT NULL, system TEXT, answer TEXT NOT NULL,"
    " target TEXT, request_id TEXT, PRIMARY KEY (conversation, seq))",
    "CREATE INDEX IF NOT EXISTS turns_request ON turns (request_id)",
)


@dataclass(frozen=True)
class Turn:
    prompt: str
    answer: str
    system: str | None = None
    target: str | None = None
    request_id: str | None = None
    created: float = 0.0
    conversation: str = ""


@dataclass(frozen=True)
class Summary:
    """One conversation in a listing: its id, when it was last used, turns, first prompt."""

    id: str
    updated: float
    turns: int
    first_prompt: str


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def history(turns: Iterable[Turn]) -> tuple[Message, ...]:
    """The earlier turns as user/assistant messages, oldest first."""
    out: list[Message] = []
    for turn in turns:
        out += [Message("user", turn.prompt), Message("assistant", turn.answer)]
    return tuple(out)


def messages_for(turns: Iterable[Turn], prompt: str) -> tuple[Message, ...]:
    """The earlier turns, then the new prompt."""
    return (*history(turns), Message("user", prompt))


def system_for(turns: list[Turn], system: str | None) -> str | None:
    """`-s` when given, else the system prompt the conversation last used."""
    if system is not None:
        return system
    return next((t.system for t in reversed(turns) if t.system), None)


class ConversationStore(SqliteFile):
    """One conversations file (`sqlite_file.SqliteFile`): opened on first use; safe across
    threads and processes."""

    description = "the conversations file"
    schema = _SCHEMA

    def __init__(self, path: Path, *, keep: int = 100, clock: Callable[[], float] = time.time,
                 warn: Callable[[str], None] = stderr_warning):
        super().__init__(path, clock=clock, warn=warn)
        self.keep = keep

    @classmethod
    def for_data_dir(cls, data_dir: Path, **kwargs) -> "ConversationStore":
        return cls(Path(data_dir) / FILE_NAME, **kwargs)

    # --- reads ---------------------------------------------------------------------------

    def latest(self) -> str | None:
        """The most recently used conversation's id, if any."""
        return self._read(lambda db: (db.execute(
            "SELECT id FROM conversations ORDER BY updated DESC, rowid DESC LIMIT 1").fetchone() or (None,))[0])

    def exists(self, cid: str) -> bool:
        return self._read(lambda db: db.execute(
            "SELECT 1 FROM conversations WHERE id = ?", (cid,)).fetchone() is not None, default=False)

    def turns(self, cid: str) -> list[Turn]:
        rows = self._read(lambda db: db.execute(
            "SELECT prompt, answer, system, target, request_id, created FROM turns"
            " WHERE conversation = ? ORDER BY seq", (cid,)).fetchall(), default=[])
        return [Turn(*row, conversation=cid) for row in rows]

    def recent(self, limit: int = 10) -> list[Summary]:
        rows = self._read(lambda db: db.execute(
            "SELECT c.id, c.updated, (SELECT COUNT(*) FROM turns t WHERE t.conversation = c.id),"
            " (SELECT prompt FROM turns t WHERE t.conversation = c.id ORDER BY seq LIMIT 1)"
            " FROM conversations c ORDER BY c.updated DESC, c.rowid DESC LIMIT ?", (limit,)).fetchall(), default=[])
        return [Summary(cid, updated, count, first or "") for cid, updated, count, first in rows]

    def by_request(self, request_ids: Iterable[str]) -> dict[str, Turn]:
        """The stored turn of each of these request ids (those that have one)."""
        ids = list(dict.fromkeys(request_ids))
        if not ids or not self.path.exists():
            return {}
        out: dict[str, Turn] = {}

        def read(db):
            for start in range(0, len(ids), 500):
                part = ids[start:start + 500]
                marks = ",".join("?" * len(part))
                for row in db.execute(
                        "SELECT prompt, answer, system, target, request_id, created, conversation FROM turns"
                        f" WHERE request_id IN ({marks})", part):
                    out[row[4]] = Turn(*row)
            return out

        return self._read(read, default={})

    # --- writes --------------------------------------------------------------------------

    def add_turn(self, cid: str, *, prompt: str, answer: str, system: str | None = None,
                 target: str | None = None, request_id: str | None = None) -> None:
        """Append a turn to `cid` (creating the conversation), then forget all but the `keep`
        most recently used conversations. With `keep` 0 nothing is stored."""
        if self.keep <= 0:
            return
        self._recovering(lambda: self._add(cid, prompt, answer, system, target, request_id))

    def _add(self, cid, prompt, answer, system, target, request_id) -> None:
        now = self.clock()
        with self._write() as db:
            db.execute("INSERT INTO conversations (id, created, updated) VALUES (?, ?, ?)"
                       " ON CONFLICT(id) DO UPDATE SET updated = MAX(updated, excluded.updated)",
                       (cid, now, now))
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM turns WHERE conversation = ?",
                             (cid,)).fetchone()[0]
            db.execute("INSERT INTO turns (conversation, seq, created, prompt, system, answer, target, request_id)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (cid, seq, now, prompt, system, answer, target, request_id))
            old = [row[0] for row in db.execute(
                "SELECT id FROM conversations ORDER BY updated DESC, rowid DESC LIMIT -1 OFFSET ?", (self.keep,))]
            for gone in old:
                db.execute("DELETE FROM turns WHERE conversation = ?", (gone,))
                db.execute("DELETE FROM conversations WHERE id = ?", (gone,))

    # --- plumbing ------------------------------------------------------------------------

    def _read(self, query: Callable[[sqlite3.Connection], T], default: T = None) -> T:
        """A read; a file that does not exist yet is an empty store (reading creates nothing)."""
        if not self.path.exists():
            return default

        def run() -> T:
            with self._lock:
                return query(self._connect())

        return self._recovering(run)


def store_for(config, paths, warn: Callable[[str], None] = stderr_warning) -> ConversationStore:
    return ConversationStore.for_data_dir(paths.data_dir, keep=config.conversations.keep, warn=warn)


def resolve(store: ConversationStore, *, cid: str | None, continue_latest: bool) -> tuple[str, list[Turn]]:
    """The conversation a prompt belongs to and its earlier turns: `--cid ID`, `-c` (the most
    recent), else a new one. Raises UsageError (exit 2) for an unknown id, listing recent ones."""
    from .errors import UsageError

    if store.keep <= 0 and (cid or continue_latest):
        raise UsageError("conversations are not stored (conversations.keep: 0)",
                         "set conversations.keep in the config to continue conversations")
    if cid:
        if not store.exists(cid):
            raise UsageError(f"no conversation {cid!r}", *_recent_lines(store))
        return cid, store.turns(cid)
    if continue_latest:
        latest = store.latest()
        if latest is None:
            raise UsageError("there is no conversation to continue yet", "ask without -c to start one")
        return latest, store.turns(latest)
    return new_id(), []


def _recent_lines(store: ConversationStore) -> list[str]:
    recent = store.recent(10)
    if not recent:
        return ["there are no conversations yet"]
    return ["recent conversations: " + ", ".join(s.id for s in recent)]
