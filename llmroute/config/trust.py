"""Trust for project configs (SPEC §1.1), the way direnv `allow` and mise `trust` work.

A `./llmroute.yaml` may come from a cloned repository, and a config names hosts, key variables
and shell commands, so llmroute reads a project config only after the user has trusted that
exact file: `<data>/trust.json` maps the file's real path to the SHA-256 of the content that
was trusted. An edit changes the hash and the file is untrusted again. A file that others can
write (group/world-writable, or owned by another user) is refused even when trusted, since its
content could change under the user's feet after `trust`.

The check reads the file once and hands back those same bytes, so what is parsed is exactly
what was hashed (no window between checking and reading). `--config` and `LLMROUTE_CONFIG` are
the user's explicit choice and never come here.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..locking import atomic_write, locked

TRUST_FILE = "trust.json"

TrustState = Literal["trusted", "untrusted", "changed", "unsafe"]


@dataclass(frozen=True)
class TrustCheck:
    """What `check` found for one project config: its state, the bytes it read (only when
    trusted), and why it is not usable otherwise."""

    path: Path
    state: TrustState
    reason: str = ""
    content: bytes | None = None

    @property
    def trusted(self) -> bool:
        return self.state == "trusted"

    def describe(self) -> str:
        """One line for `config path` and the stderr notice."""
        if self.trusted:
            return "trusted"
        return f"{self.state}: {self.reason}"


class TrustStore:
    """`<data>/trust.json`: `{"version": 1, "files": {real path: sha256}}`, written atomically
    under a lock so two `config trust` runs at once do not lose each other's entry."""

    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / TRUST_FILE
        self._lock = Path(data_dir) / "state" / "trust.lock"

    def entries(self) -> dict[str, str]:
        try:
            document = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return {}  # missing or damaged: nothing is trusted, which is the safe reading
        files = document.get("files") if isinstance(document, dict) else None
        if not isinstance(files, dict):
            return {}
        return {k: v for k, v in files.items() if isinstance(k, str) and isinstance(v, str)}

    def trust(self, path: Path) -> TrustCheck:
        """Record the file's current hash. Refuses (returns the unsafe check) a file that others
        can write, since trusting it would trust whatever they put there next."""
        real = _real(path)
        content = real.read_bytes()
        unsafe = unsafe_reason(real)
        if unsafe:
            return TrustCheck(real, "unsafe", unsafe)
        with locked(self._lock):
            files = self.entries()
            files[str(real)] = _digest(content)
            self._save(files)
        return TrustCheck(real, "trusted", content=content)

    def untrust(self, path: Path) -> bool:
        """Forget the file; False when it was not trusted."""
        real = _real(path)
        with locked(self._lock):
            files = self.entries()
            if files.pop(str(real), None) is None:
                return False
            self._save(files)
        return True

    def check(self, path: Path) -> TrustCheck:
        """Whether the project config at `path` may be read, with its bytes when it may."""
        real = _real(path)
        recorded = self.entries().get(str(real))
        if recorded is None:
            return TrustCheck(real, "untrusted", "not trusted yet")
        unsafe = unsafe_reason(real)
        if unsafe:
            return TrustCheck(real, "unsafe", unsafe)
        try:
            content = real.read_bytes()
        except OSError as exc:
            return TrustCheck(real, "untrusted", f"cannot read it: {exc.strerror or exc}")
        if _digest(content) != recorded:
            return TrustCheck(real, "changed", "changed since it was trusted")
        return TrustCheck(real, "trusted", content=content)

    def _save(self, files: dict[str, str]) -> None:
        from ..paths import ensure_private_dir

        ensure_private_dir(self.path.parent)
        data = json.dumps({"version": 1, "files": files}, indent=1, sort_keys=True).encode()
        atomic_write(self.path, data + b"\n")


def unsafe_reason(path: Path) -> str:
    """Why a file cannot be trusted whatever the record says, or "" when it can."""
    try:
        info = os.stat(path)
    except OSError as exc:
        return f"cannot read it: {exc.strerror or exc}"
    if info.st_uid != os.getuid():
        return "owned by another user"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "writable by group or others (chmod go-w it)"
    return ""


def _real(path: Path) -> Path:
    """The absolute path with symlinks resolved: a link cannot borrow another file's trust."""
    return Path(os.path.realpath(Path(path).expanduser()))


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
