"""The one object every command receives in `ctx.obj` (the httpie `Environment` idea).

It carries the environment variables, working directory and paths, and builds the expensive
things (config, key store, engine) only when a command asks for them, so `--help` and
`--version` never load YAML, httpx or keyring.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from ..paths import Paths

if TYPE_CHECKING:
    from ..config.model import Config
    from ..engine import Engine
    from ..keys import KeyStore


@dataclass
class AppContext:
    env: Mapping[str, str]
    cwd: Path
    paths: Paths
    config_path_option: str | None = None
    no_color: bool = False
    notices: bool = True  # False for shell completion: nothing may reach the user's prompt
    _config: "Config | None" = field(default=None, repr=False)
    _keys: "KeyStore | None" = field(default=None, repr=False)

    @classmethod
    def from_process(cls, config_path: str | None = None, no_color: bool = False) -> "AppContext":
        env = dict(os.environ)
        return cls(env=env, cwd=Path.cwd(), paths=Paths.from_env(env),
                   config_path_option=config_path, no_color=no_color)

    def load_config(self) -> "Config":
        if self._config is None:
            from ..config.defaults import discover_and_load

            self._config = discover_and_load(self.config_path_option, self.env, self.cwd, self.paths,
                                             keyring_has=self._keyring_has, warn=self.warn)
        return self._config

    def warn(self, message: str) -> None:
        """One notice line on stderr, in the form every llmroute message takes."""
        if self.notices:
            sys.stderr.write(f"llmroute: {message}\n")

    def keystore(self) -> "KeyStore":
        if self._keys is None:
            from ..keys import KeyStore

            self._keys = KeyStore(self.env)
        return self._keys

    def _keyring_has(self, name: str) -> bool:
        try:
            import keyring

            return keyring.get_password("llmroute", name) is not None
        except Exception:  # no backend, a locked keyring: the default config goes on without it
            return False

    def engine(self, config: "Config | None" = None, *, quiet: bool = False) -> "Engine":
        from ..engine import Engine

        config = config or self.load_config()
        budget = self.budget_guard(config, quiet=quiet)  # first: unreachable Redis + budget = exit 4
        return Engine(config, paths=self.paths, keys=self.keystore(), budget=budget,
                      memory=self.shared_memory(config))

    def shared_memory(self, config: "Config"):
        """The team's routing memory for `state.backend: redis`, else None (this machine's)."""
        return self.redis_memory(config) if config.state.backend == "redis" else None

    def redis_memory(self, config: "Config"):
        """The routing memory shared on Redis (SPEC §15); unreachable, this machine's local
        memory after one stderr warning."""
        from ..routing.redis_memory import routing_memory_for

        return routing_memory_for(config, self.paths, url=self.redis_url(config), warn=self.warn)

    def redis_url(self, config: "Config") -> str:
        from ..budget.redis_store import redis_url

        return redis_url(config, self.env, _keyring_get)

    def budget_guard(self, config: "Config", *, quiet: bool = False):
        """The budget guard when the config sets limits; with `quiet`, budget alert warnings stay
        off stderr (`-q`: nothing but errors) while alert commands and webhooks still fire."""
        budget = config.budget
        if budget.limits.is_empty and all(limits.is_empty for limits in budget.per_provider.values()):
            return None  # no limits: the budget package is not even imported
        warn = (lambda message: None) if quiet else None
        if config.state.backend == "redis":
            return self.redis_budget_guard(config, warn=warn)
        from ..budget.guard import guard_for

        return guard_for(config, self.paths, env=self.env, warn=warn)

    def redis_budget_guard(self, config: "Config", *, warn=None):
        """The budget shared on Redis (SPEC §15); unreachable Redis raises `RedisUnavailable`
        (exit 4) before any provider call: a budget-governed call fails closed."""
        from ..budget.redis_store import RedisBudgetGuard

        return RedisBudgetGuard(config, self.paths, url=self.redis_url(config), env=self.env, warn=warn)

    def color(self, stream=None) -> bool:
        """Colour only on a terminal, and never with NO_COLOR, TERM=dumb or --no-color (SPEC §4)."""
        stream = stream or sys.stdout
        return (not self.no_color and "NO_COLOR" not in self.env and self.env.get("TERM") != "dumb"
                and stream.isatty())


def _keyring_get(name: str) -> str | None:
    try:
        import keyring

        return keyring.get_password("llmroute", name)
    except Exception:  # no backend: the URL comes from the config or the environment
        return None
