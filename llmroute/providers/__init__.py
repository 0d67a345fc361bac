"""Wire formats, one module each. `create_provider` imports only the module a config uses,
so an invocation that talks to one provider never pays for loading the others."""

from __future__ import annotations

import importlib
import time
from typing import TYPE_CHECKING, Callable

from ..config.model import ProviderConfig
from .transport import needs_key

__all__ = ["create_provider", "needs_key", "provider_class"]

if TYPE_CHECKING:  # httpx is a heavy import: commands that only read config (`report`, which
    # validates against the presets) must not pay for it for a type annotation.
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
