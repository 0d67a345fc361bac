"""Where each provider's API key comes from (SPEC §3): environment, then keyring, then key_cmd.

One `KeyStore` per invocation resolves keys in a documented order and remembers the answers, so
a slow `key_cmd` (`pass`, `op read ...`) runs at most once per provider per process. Nothing in
here ever prints, logs or returns a key inside a message: `KeyInfo.__repr__` hides the value,
and a failing `key_cmd` is reported by its exit status only, never by its output.

The keyring is optional in practice: headless Linux usually has no backend, and a locked or
broken one raises. Resolution treats any keyring failure as "no key there" and moves on;
only `set` insists on a working backend and then says how to use `key_env` instead.

`resolve` answers "where does this provider's key come from" (all three sources, for `keys
list` and for providers that need a key); `for_call` answers "which key do calls to it carry"
(SPEC §4: a key that is found is always sent, to loopback and private hosts too). They differ
only for a keyless local server at its own default address, whose keyring entry is not looked
up: see `consults_keyring`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .config.model import PROVIDER_TYPES, ProviderConfig
from .errors import KeyringUnavailable
from .catalog.presets import preset_for
from .providers.transport import needs_key
from .redact import mask_key

SERVICE = "llmroute"
KEY_CMD_TIMEOUT_S = 10.0

# Vendor-specific wire formats whose official SDKs read these variables. Only used when the
# provider talks to the vendor's own default host: a key for one service must never be sent
# to another server just because it speaks the same format. (`openai` is deliberately absent:
# countless unrelated servers speak it; OpenAI itself is covered by its preset.)
_TYPE_KEY_ENV: dict[str, tuple[str, ...]] = {
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "cohere": ("COHERE_API_KEY", "CO_API_KEY"),
}


@dataclass(frozen=True)
class KeyInfo:
    """A resolved key and where it came from: "env" | "keyring" | "cmd" | "none"."""

    value: str | None = field(repr=False)
    source: str

    @property
    def masked(self) -> str:
        return mask_key(self.value) if self.value else ""


NO_KEY = KeyInfo(None, "none")


class KeyCommandFailed(Exception):
    """A key_cmd did not produce a key. The message is safe to show: it never holds output."""


def key_env_for(config: ProviderConfig) -> str:
    """The environment variable holding this provider's key.

    `key_env` from the config, else the preset's variable, else the vendor's conventional
    variable for anthropic/gemini/cohere at their default host, else `<NAME>_API_KEY`."""
    return _env_candidates(config)[0]


def _env_candidates(config: ProviderConfig) -> tuple[str, ...]:
    """Variables to look at, in order. Alternates (GOOGLE_API_KEY, CO_API_KEY) only apply when
    the variable was not chosen explicitly."""
    if config.key_env:
        return (config.key_env,)
    preset = preset_for(config)
    if preset is not None and preset.key_env:
        return (preset.key_env,)
    if config.base_url is None and config.type in _TYPE_KEY_ENV:
        return _TYPE_KEY_ENV[config.type]
    return (config.name.upper().replace("-", "_") + "_API_KEY",)


def consults_keyring(config: ProviderConfig) -> bool:
    """Whether the key calls to this provider carry may come from the keyring.

    Yes for every provider that needs a key, and for a keyless one the user pointed somewhere
    with its own `base_url` (a LiteLLM proxy or company gateway on localhost, Ollama cloud): such
    a server may well check the key, and `llmroute keys set NAME` is how one stores it. No for
    a keyless local server at its format's or preset's own default address (Ollama at
    localhost:11434, the llamacpp/vllm/lmstudio/ollama-openai presets) and for the in-process
    `local` and `mock` types: they need no key, and asking the OS keyring is the slowest step
    of a local prompt (≈0.1 s just to find there is no backend; a D-Bus round trip, or an
    unlock prompt, with one), paid on every invocation of a local-only setup. Their key
    variable and `key_cmd` are still read — both cost nothing unless configured — so a local
    server started with `--api-key` gets its key from the environment or a command."""
    return needs_key(config) or bool(config.base_url and config.type not in ("local", "mock"))


def _default_run_cmd(command: str) -> str:
    """Run a key command through the shell; its stdout (stripped) is the key.

    stdin and stderr stay attached to the terminal so `pass`/`op` can ask for a passphrase."""
    import subprocess  # only for key_cmd; most lookups never run a command

    try:
        done = subprocess.run(
            command, shell=True, stdout=subprocess.PIPE, timeout=KEY_CMD_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise KeyCommandFailed(f"timed out after {KEY_CMD_TIMEOUT_S:g} s") from exc
    except OSError as exc:
        raise KeyCommandFailed(f"could not start ({type(exc).__name__})") from exc
    if done.returncode != 0:
        raise KeyCommandFailed(f"exit status {done.returncode}")
    try:
        return done.stdout.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise KeyCommandFailed("printed something that is not UTF-8 text") from exc


class KeyStore:
    """Resolves, stores and deletes provider keys for one invocation.

    `env` is the process environment (injected so tests and callers control it), `keyring` a
    module or backend with `get_password`/`set_password`/`delete_password` (default: the real
    `keyring` module, imported on first use), `run_cmd` runs a key_cmd and returns its
    stripped stdout or raises."""

    def __init__(
        self,
        env: Mapping[str, str],
        keyring: Any = None,
        run_cmd: Callable[[str], str] = _default_run_cmd,
    ):
        self._env = env
        self._keyring = keyring
        self._run_cmd = run_cmd
        self._memo: dict[tuple, KeyInfo] = {}
        self._commands: dict[tuple[str, str], KeyInfo] = {}  # (provider, key_cmd) → its answer
        self._warnings: list[str] = []

    @property
    def warnings(self) -> list[str]:
        """Problems met while resolving (failing key_cmd, broken keyring), safe to print."""
        return list(self._warnings)

    def resolve(self, config: ProviderConfig) -> KeyInfo:
        """The key for a provider: key_env (set and non-empty), then keyring, then key_cmd."""
        return self._resolve(config, keyring=True)

    def for_call(self, config: ProviderConfig) -> KeyInfo:
        """The key calls to this provider carry, whether or not it needs one (SPEC §4): what
        `resolve` finds, except that the keyring is skipped where `consults_keyring` says so.
        `models` and `health` show this, so their key column says what is actually sent."""
        return self._resolve(config, keyring=consults_keyring(config))

    def _resolve(self, config: ProviderConfig, keyring: bool) -> KeyInfo:
        memo_key = (config.name, _env_candidates(config), config.key_cmd, keyring)
        if memo_key not in self._memo:
            self._memo[memo_key] = self._lookup(config, keyring)
        return self._memo[memo_key]

    def known_values(self) -> tuple[str, ...]:
        """Every key resolved so far in this process: what must be redacted from anything a
        provider sends back (an answer echoing a key, SPEC §3). Every provider llmroute calls
        had its key resolved first, so this covers every key that was sent."""
        return tuple({info.value for info in self._memo.values() if info.value})

    def _lookup(self, config: ProviderConfig, keyring: bool) -> KeyInfo:
        for variable in _env_candidates(config):
            value = (self._env.get(variable) or "").strip()
            if value:
                return KeyInfo(value, "env")
        value = self._keyring_get(config.name) if keyring else None
        if value:
            return KeyInfo(value, "keyring")
        if config.key_cmd:
            # `resolve` and `for_call` may both reach the command: it runs once per process.
            command = (config.name, config.key_cmd)
            if command not in self._commands:
                self._commands[command] = self._from_command(config)
            return self._commands[command]
        return NO_KEY

    def _keyring_get(self, name: str) -> str | None:
        try:
            value = self._module().get_password(SERVICE, name)
        except Exception as exc:  # no backend, locked, D-Bus trouble: no key there
            if not _is_no_backend(exc):
                self._warnings.append(
                    f"keyring lookup for provider {name} failed ({type(exc).__name__}); trying other sources"
                )
            return None
        return value.strip() if isinstance(value, str) and value.strip() else None

    def _from_command(self, config: ProviderConfig) -> KeyInfo:
        try:
            output = self._run_cmd(config.key_cmd or "")
        except KeyCommandFailed as exc:
            self._warnings.append(f"key_cmd for provider {config.name} failed ({exc}); no key from it")
            return NO_KEY
        except Exception as exc:
            self._warnings.append(
                f"key_cmd for provider {config.name} failed ({type(exc).__name__}); no key from it"
            )
            return NO_KEY
        key = next((line.strip() for line in output.splitlines() if line.strip()), "")
        if not key:
            self._warnings.append(f"key_cmd for provider {config.name} printed nothing; no key from it")
            return NO_KEY
        return KeyInfo(key, "cmd")

    def set(self, name: str, value: str, config: ProviderConfig | None = None) -> None:
        """Store a key in the keyring. `config` (when the provider is configured) only makes the
        no-backend guidance name the right variable."""
        if not value:
            raise ValueError("refusing to store an empty key")
        if not self.backend_usable():
            raise _unavailable(name, config, "store")
        try:
            self._module().set_password(SERVICE, name, value)
        except Exception as exc:
            raise _unavailable(name, config, "store", reason=type(exc).__name__) from None
        self._forget(name)

    def delete(self, name: str, config: ProviderConfig | None = None) -> bool:
        """Remove a stored key. False when the keyring held none for this provider."""
        if not self.backend_usable():
            raise _unavailable(name, config, "delete")
        import keyring.errors

        module = self._module()
        try:
            if module.get_password(SERVICE, name) is None:
                return False
            module.delete_password(SERVICE, name)
        except keyring.errors.PasswordDeleteError:
            return False
        except Exception as exc:
            raise _unavailable(name, config, "delete", reason=type(exc).__name__) from None
        self._forget(name)
        return True

    def backend_usable(self) -> bool:
        """False in the "no recommended backend" situation, where storing would fail or be lost:
        the `fail` backend, the `null` backend, or a chainer with nothing to chain."""
        try:
            module = self._module()
            backend = module.get_keyring() if hasattr(module, "get_keyring") else module
            return _usable(backend)
        except Exception:
            return False

    def _module(self) -> Any:
        if self._keyring is None:
            import keyring

            self._keyring = keyring
        return self._keyring

    def _forget(self, name: str) -> None:
        for memo_key in [k for k in self._memo if k[0] == name]:
            del self._memo[memo_key]


def _usable(backend: Any) -> bool:
    from keyring.backends import chainer, fail, null

    if isinstance(backend, (fail.Keyring, null.Keyring)):
        return False
    if isinstance(backend, chainer.ChainerBackend):
        return len(backend.backends) > 0
    priority = getattr(backend, "priority", 1)
    return not (isinstance(priority, (int, float)) and priority < 0)


def _is_no_backend(exc: Exception) -> bool:
    try:
        from keyring.errors import NoKeyringError
    except ImportError:
        return False
    return isinstance(exc, NoKeyringError)


def _unavailable(
    name: str, config: ProviderConfig | None, action: str, reason: str | None = None
) -> KeyringUnavailable:
    """The exit-5 error, pointing at the environment variable that works without a keyring."""
    if config is None:
        config = ProviderConfig(name=name, type=name if name in PROVIDER_TYPES else "openai")
    variable = key_env_for(config)
    problem = (
        f"the keyring refused to {action} the key for {name} ({reason})"
        if reason
        else "no usable keyring backend on this machine (headless Linux has none by default)"
    )
    hint = (
        f"Set the key in the environment instead: export {variable}=..., "
        f"or set key_env/key_cmd for provider {name} in the config."
    )
    return KeyringUnavailable(problem + ".", hint)
