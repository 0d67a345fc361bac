"""Where llmroute keeps things (SPEC §1).

`Paths` is computed once per invocation from the environment and passed down, so tests point
everything at a temporary directory with one variable (`LLMROUTE_HOME`). Directories are made
0700 and files 0600 because the data dir holds spend records and prompts' hashes.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, Mapping

APP = "llmroute"


@dataclass(frozen=True)
class Paths:
    data_dir: Path
    config_dir: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Paths":
        home = env.get("LLMROUTE_HOME")
        if home:
            root = Path(home).expanduser()
            return cls(data_dir=root, config_dir=root)
        import platformdirs

        return cls(
            data_dir=Path(platformdirs.user_data_dir(APP, appauthor=False)),
            config_dir=Path(platformdirs.user_config_dir(APP, appauthor=False)),
        )

    @property
    def default_config(self) -> Path:
        return self.config_dir / "config.yaml"

    @property
    def ledger(self) -> Path:
        return self.data_dir / "ledger.jsonl"

    @property
    def state_dir(self) -> Path:
        return self.data_dir / "state"

    def ensure_data_dir(self) -> Path:
        ensure_private_dir(self.data_dir)
        return self.data_dir


def open_private(path: Path | str, mode: str = "w") -> IO[str]:
    """Open a file for writing (`"w"`, truncating) or appending (`"a"`) as UTF-8 text, created
    0600 whatever the umask: files llmroute writes where the user says (`config init`,
    `report --html`, `batch --out`) hold prompts, answers or spend. An existing regular file is
    made 0600 too; a device such as /dev/stdout is written to and left alone."""
    if mode not in ("w", "a"):
        raise ValueError(f"open_private mode must be 'w' or 'a', not {mode!r}")
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, 0o600)
        return os.fdopen(fd, mode, encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` as a 0600 file, creating missing directories 0700."""
    ensure_private_dir(path.parent)
    with open_private(path) as handle:
        handle.write(text)


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) with mode 0700 if it does not exist.

    Parents are made one by one: `mkdir(parents=True)` would give them the umask's mode."""
    if not path.is_dir():
        if path.parent != path and not path.parent.is_dir():
            ensure_private_dir(path.parent)
        path.mkdir(mode=0o700, exist_ok=True)
    return path


PROJECT_CONFIG = "llmroute.yaml"

ConfigOrigin = Literal["option", "env", "project", "user", "builtin"]


@dataclass(frozen=True)
class ConfigChoice:
    """Which config file discovery picked and how: `--config` (option), `LLMROUTE_CONFIG` (env),
    `./llmroute.yaml` (project: read only once trusted, SPEC §1.1), the user config dir (user),
    or none (builtin, SPEC §2.6)."""

    path: Path | None
    origin: ConfigOrigin


def find_config(explicit: str | None, env: Mapping[str, str], cwd: Path, paths: Paths) -> ConfigChoice:
    """The config file discovery picks: `--config`, `LLMROUTE_CONFIG`, `./llmroute.yaml`, then
    the user config dir. An explicitly named file is returned even when missing, so the loader
    can say it is missing. A project file is only a candidate: the caller checks its trust."""
    if explicit:
        return ConfigChoice(Path(explicit).expanduser(), "option")
    if env.get("LLMROUTE_CONFIG"):
        return ConfigChoice(Path(env["LLMROUTE_CONFIG"]).expanduser(), "env")
    local = cwd / PROJECT_CONFIG
    if local.is_file():
        return ConfigChoice(local, "project")
    return user_config(paths)


def user_config(paths: Paths) -> ConfigChoice:
    """The user config when it exists, else the built-in default config."""
    if paths.default_config.is_file():
        return ConfigChoice(paths.default_config, "user")
    return ConfigChoice(None, "builtin")
