"""Whether llmroute's files can be written, and what to tell the user when they cannot.

The engine checks before the first provider call (nothing is spent that could not be
recorded) and words every failure by its cause: a file in the way, a read-only file system, a
full disk, missing permissions — each with the way out.
"""

from __future__ import annotations

import os

from .errors import LLMRouteError


def not_a_directory(error: OSError) -> OSError:
    """Making a directory where a file already is says "File exists"; what the user needs to
    hear is that the file is in the way: "Not a directory: <that file>"."""
    if isinstance(error, FileExistsError) and error.filename and not os.path.isdir(error.filename):
        import errno

        return NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), error.filename)
    return error


def reason(error: OSError | None) -> str:
    """The plain words of an OSError ("No space left on device"), without the errno noise."""
    if error is None:
        return "unknown error"
    return error.strerror or str(error) or type(error).__name__


def require_access(directory) -> None:
    """Raise the OSError that creating a file in `directory` would meet (read-only file system,
    no permission), without creating anything."""
    if not os.access(directory, os.W_OK | os.X_OK):
        import errno

        code = errno.EROFS if read_only_fs(directory) else errno.EACCES
        raise OSError(code, os.strerror(code), str(directory))


def read_only_fs(directory) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def unwritable(what: str, path, error: OSError, setting: str) -> LLMRouteError:
    """The refusal of `check_writable`: what cannot be written and why, then what to do about
    that cause (`setting` names the other way out: LLMROUTE_HOME or ledger.path)."""
    import errno

    error = not_a_directory(error)
    where = f" ({error.filename})" if error.filename and str(error.filename) != str(path) else ""
    if error.errno == errno.ENOTDIR:
        todo = f"{error.filename or path} is a file, not a directory: move it, or {setting} to another place"
    elif error.errno == errno.EROFS:
        todo = f"the file system is read-only: remount it read-write, or {setting} to a writable place"
    elif error.errno in (errno.ENOSPC, errno.EDQUOT):
        todo = f"free some disk space, or {setting} to another disk"
    else:
        todo = f"make it writable (check its permissions), or {setting} to a writable place"
    return LLMRouteError(f"cannot write {what} {path}: {reason(error)}{where}; nothing was sent", todo)
