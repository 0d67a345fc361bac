"""Wire formats, one module each. `create_provider` imports only the module a config uses,
so an invocation that talks to one provider never pays for loading the others."""

from __future__ import annotations

import importlib
import time
from typing import TYPE_CHECKING, Callable

from ..config.model import ProviderConfig

if TYPE_CHECKING:  # httpx costs ~70 ms to import: commands that only read config (`report`,
    # which validates against the presets) must not pay it for a type annotation.
    import httpx

    from .base import Provider


def provider_class(type_name: str) -> type[Provider]:
    module = importlib.import_module(f"{__name__}.{type_name}")
    return module.PROVIDER


def create_provider(
    config: ProviderConfig,
    *,
    key: str | None = None,
    client: httpx.Client | None = None,
    aclient: httpx.AsyncClient | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Provider:
    return provider_class(config.type)(config, key=key, client=client, aclient=aclient, sleep=sleep)


_KEYLESS_TYPES = frozenset({"ollama", "local", "mock"})


def needs_key(config: ProviderConfig) -> bool:
    """Whether a provider cannot be called without a key. Ollama, local and mock never need one;
    an OpenAI-compatible local server (a keyless preset such as llamacpp, or a base_url on a
    loopback/private host with no key variable named) does not either; an explicit `key_env` or
    `key_cmd` always means the user expects one."""
    if config.type in _KEYLESS_TYPES:
        return False
    if config.key_env or config.key_cmd:
        return True
    if config.type == "openai":
        from .transport import key_transport_allowed
        from .presets import preset_for

        preset = preset_for(config)
        if preset is not None and preset.key_env is None and not config.base_url:
            return False
        if config.base_url and config.base_url.startswith("http://") and key_transport_allowed(config.base_url):
            return False
    return True
