"""Where a key may be sent (SPEC §3): HTTPS anywhere, plain HTTP only to loopback or private
addresses, anything else only with the provider's `allow_insecure: true`.

Kept apart from `base` (which imports httpx) so code that only reads config can ask without
loading the HTTP stack.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


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

