"""File locks and atomic replacement for files shared by concurrent llmroute processes.

Users run llmroute from `xargs -P 8` and cron jobs at once, so every shared file (state stores,
budget reservations) is read and written under an `fcntl.flock` lock. flock locks belong to the
open file description, so the kernel drops them when the process dies: a `kill -9` can never
leave a stale lock behind, unlike lock files that hold a PID.

Replacement is atomic (`os.replace` of a fsynced temporary file in the same directory), so a
reader never sees a half-written file and a crash mid-write leaves the previous version intact.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .paths import ensure_private_dir

FILE_MODE = 0o600


@contextmanager
def locked(path: Path, shared: bool = False) -> Iterator[None]:
    """Hold an flock on the lock file `path` (created 0600, parents 0700) for the block.

    `shared=True` takes a read lock that many holders may share; otherwise the lock is
    exclusive. The lock file itself stays empty; it only names the lock."""
    ensure_private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        # Closing the descriptor releases the lock; an explicit unlock first keeps the
        # release immediate even if another descriptor to the same file lingers.
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def atomic_write(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Replace `path` with `data` so readers see either the old or the new file, never a mix.

    The temporary file is made in the same directory (so `os.replace` is a rename on one file
    system), created 0600, and removed if anything fails. The rename alone is what makes a
    `kill -9` at any moment harmless. `durable` adds fsyncs of the file and its directory so the
    new content also survives a power loss; that is a disk round trip per write, so state files
    — caches that are rebuilt from the ledger when lost — do without it."""
    import tempfile

    ensure_private_dir(path.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp_name)
        raise
    os.close(fd)
    try:
        os.replace(tmp_name, path)
    except BaseException:
        _unlink_quietly(tmp_name)
        raise
    if durable:
        _fsync_dir(path.parent)


def _unlink_quietly(name: str) -> None:
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable; some file systems refuse fsync on a directory."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
