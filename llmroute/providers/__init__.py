"""Wire formats, one module each. `create_provider` imports only the module a config uses,
so an invocation that talks to one provider never pays for loading the others."""

from __future__ import annotations

import importlib
import time
from typing import Callable

import httpx

from ..config.model import ProviderConfig
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
