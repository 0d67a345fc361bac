"""Shared test fixtures.

Every test runs with `LLMROUTE_HOME` in its own temporary directory, an in-memory keyring
backend (headless Linux has no keyring daemon), no provider key variables from the developer's
shell, and a socket guard that fails any connection that is not to loopback: tests are offline.
"""

from __future__ import annotations

import socket

import keyring
import keyring.backend
import pytest

KEY_VARIABLES = (
    "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "MISTRAL_API_KEY",
    "GROQ_API_KEY", "COHERE_API_KEY", "CO_API_KEY", "OPENROUTER_API_KEY", "DEEPSEEK_API_KEY",
    "TOGETHER_API_KEY", "FIREWORKS_API_KEY", "LLMROUTE_CONFIG", "NO_COLOR", "LLMROUTE_DEBUG",
)


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring that lives in a dict, for tests."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.store.get((service, username))

    def set_password(self, service, username, password):
        self.store[(service, username)] = password

    def delete_password(self, service, username):
        import keyring.errors

        if (service, username) not in self.store:
            raise keyring.errors.PasswordDeleteError("not found")
        del self.store[(service, username)]


_real_connect = socket.socket.connect


def _guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (host.startswith("127.") or host in ("localhost", "::1")) or self.family == socket.AF_UNIX:
        return _real_connect(self, address)
    raise OSError(f"tests are offline: connection to {address!r} blocked")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    home = tmp_path / "llmroute-home"
    monkeypatch.setenv("LLMROUTE_HOME", str(home))
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    return home


@pytest.fixture(autouse=True)
def memory_keyring(monkeypatch):
    backend = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)
