"""A private SQLite file shared by the threads of a process and by many processes: the response
cache and the conversations file are both one.

Why it is built this way: several `llmroute` processes (a batch in one terminal, a script in
another) read and write the same file at once. SQLite in WAL mode gives concurrent readers, one
writer at a time with `busy_timeout` waiting instead of failing, and crash safety, without a
lock file of our own. Write transactions start with `BEGIN IMMEDIATE` so a reader never has to
upgrade its lock (the one case where SQLite answers "database is locked" without honouring the
busy timeout). The file is created 0600 by us (SQLite would use the umask, and gives the
-wal/-shm files the database file's permissions). A damaged file is set aside with one warning
and a fresh one started: both stores are disposable or rebuildable, never worth failing a call.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, TypeVar

from .paths import ensure_private_dir
from .state import stderr_warning

T = TypeVar("T")

BUSY_TIMEOUT_MS = 30_000


class SqliteFile:
    """One SQLite file: `schema` is run on connect; `description` names it in the warning a
    damaged file gives. The connection is opened on first use, so building the object costs
    nothing."""

    description = "the file"
    schema: tuple[str, ...] = ()

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time,
                 warn: Callable[[str], None] = stderr_warning):
        self.path = Path(path)
        self.clock = clock
        self.warn = warn
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._inode: int | None = None  # of the file our connection opened

    def close(self) -> None:
        with self._lock:
            self._disconnect()

    # --- damage -----------------------------------------------------------------------------

    def _recovering(self, operation: Callable[[], T]) -> T:
        """Run `operation`; if it finds the database damaged, set the file aside and run it
        once more on a fresh one. Other errors are the caller's."""
        try:
            return operation()
        except sqlite3.DatabaseError as error:
            if not is_corruption(error):
                raise
            self._set_aside(error)
        return operation()

    def _set_aside(self, error: sqlite3.DatabaseError) -> None:
        """Move the damaged database (and its -wal/-shm) to `<name>.corrupt-<timestamp>`.

        Under a lock file, and only if the path still holds the file our connection opened:
        when several processes find the damage at once, the first moves it and the others
        just reconnect, rather than setting aside the fresh file the first one created."""
        from .locking import locked

        with self._lock:
            inode, self._inode = self._inode, None
            self._disconnect()
        with locked(self.path.with_name(self.path.name + ".lock")):
            try:
                current = os.stat(self.path).st_ino
            except FileNotFoundError:
                return
            if inode is not None and current != inode:
                return  # another process already set it aside
            stamp = datetime.fromtimestamp(self.clock(), tz=timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
            counter = 1
            while aside.exists():
                aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{counter}")
                counter += 1
            for suffix in ("-wal", "-shm", ""):  # the database last: its name is what we check
                try:
                    os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")
                except FileNotFoundError:
                    pass
        self.warn(f"{self.description} {self.path} was damaged ({error}); kept it as {aside.name} "
                  "and started an empty one")

    # --- plumbing -------------------------------------------------------------------------

    def _disconnect(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except sqlite3.Error:
                pass
            self._connection = None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            ensure_private_dir(self.path.parent)
            # Create the file 0600 ourselves: SQLite would use the umask, and it gives the
            # -wal/-shm files the database file's permissions.
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
            try:
                self._inode = os.fstat(fd).st_ino
            finally:
                os.close(fd)
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                 check_same_thread=False)
            try:
                db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")
                for statement in self.schema:
                    db.execute(statement)
            except BaseException:
                db.close()
                raise
            self._connection = db
        return self._connection

    def _write(self) -> "_WriteTransaction":
        return _WriteTransaction(self)


class _WriteTransaction:
    """`with store._write() as db:` = thread lock + `BEGIN IMMEDIATE` ... `COMMIT` (or rollback)."""

    def __init__(self, store: SqliteFile):
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        self.store._lock.acquire()
        try:
            self.db = self.store._connect()
            self.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.store._lock.release()
            raise
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.db.execute("COMMIT")
            else:
                try:
                    self.db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # keep the error that got us here (a damaged file may refuse this too)
        finally:
            self.store._lock.release()


def is_corruption(error: sqlite3.DatabaseError) -> bool:
    """SQLite says the file is not a database, or a damaged one (SQLITE_NOTADB, SQLITE_CORRUPT
    and its extended codes), as opposed to busy, read-only, full or missing."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
    text = str(error)
    return "not a database" in text or "malformed" in text
