"""Whether a provider needs a key, and where a key may be sent (SPEC §3): HTTPS anywhere, plain
HTTP only to loopback or private addresses, anything else only with the provider's
`allow_insecure: true`.

Kept apart from `base` (which imports httpx) so the planner can refuse such a target while
planning, with the reason in `--explain`, without loading the HTTP stack. The provider layer
checks every call's URL too, so a key never leaves over plain HTTP whatever the plan said.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from ..config.model import ProviderConfig
from ..catalog import LOCAL_TYPES
from ..catalog.presets import preset_for


def key_transport_allowed(url: str) -> bool:
    """HTTPS anywhere; plain HTTP only to loopback or private addresses (SPEC §3)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    host = (parts.hostname or "").lower()
    if host in ("localhost",) or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


def configured_base_url(config: ProviderConfig) -> str | None:
    """The base URL a provider's calls go to when it is not its format's own default: the
    config's `base_url`, else an OpenAI-compatible preset's. Every format's default base URL is
    HTTPS or on this machine, so only these can send a key somewhere it must not go."""
    if config.base_url:
        return config.base_url
    if config.type == "openai":
        preset = preset_for(config)
        return preset.base_url if preset is not None else None
    return None


def refused_key_host(config: ProviderConfig) -> str | None:
    """The host a key would be refused for (plain HTTP to a public address, no
    `allow_insecure`), or None when the provider's key may be sent where its calls go."""
    url = configured_base_url(config)
    if config.allow_insecure or not url or key_transport_allowed(url):
        return None
    return urlsplit(url).hostname or url


def sends_key(config: ProviderConfig) -> bool:
    """Whether the config alone says calls to this provider carry a key once it may be called:
    one that needs a key has one by then (else it is filtered as "no key"), and one whose
    config names a key source needs it. A keyless provider may still find a key at run time
    (its default variable; the keyring when it has its own base_url) and then sends it too
    (SPEC §4, `keys.KeyStore.for_call`); where that one must not go, the provider layer
    refuses the call (`base.HttpProvider._check_transport`), so it never leaks either."""
    return needs_key(config) or bool(config.key_env or config.key_cmd)


def insecure_key_reason(config: ProviderConfig) -> str | None:
    """Why this provider must not be called, when its key would go over plain HTTP to a public
    host (the planner's exclusion reason; anything that calls providers without planning can
    ask too), or None."""
    host = refused_key_host(config) if sends_key(config) else None
    if host is None:
        return None
    return (f"key not sent over plain HTTP to public host {host}; use https, "
            f"or set allow_insecure: true for provider {config.name}")




def needs_key(config: ProviderConfig) -> bool:
    """Whether a provider cannot be called without a key: only whether a *missing* key filters
    the target ("no key"). A key that is found is sent either way (SPEC §4).

    Ollama, local and mock never need one; an OpenAI-compatible local server (a keyless preset
    such as llamacpp, or a base_url on a loopback/private host with no key variable named) does
    not either; an explicit `key_env` or `key_cmd` always means the user expects one."""
    if config.type in LOCAL_TYPES:
        return False
    if config.key_env or config.key_cmd:
        return True
    if config.type == "openai":
        preset = preset_for(config)
        if preset is not None and preset.key_env is None and not config.base_url:
            return False
        if config.base_url and config.base_url.startswith("http://") and key_transport_allowed(config.base_url):
            return False
    return True
