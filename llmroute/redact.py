"""Keep secrets out of everything llmroute prints or writes.

Provider error bodies sometimes echo part of the key ("Incorrect API key provided: sk-ab***yz")
and sometimes all of it; anything taken from a provider goes through `redact` before it reaches
a terminal, the ledger or state.
"""

from __future__ import annotations

from typing import Iterable

MASK = "[REDACTED]"


def redact(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    return text


def mask_key(key: str) -> str:
    """A form safe to show in `keys list`: enough to recognise, never enough to use."""
    if len(key) <= 8:
        return "*" * len(key)
    return f"{key[:3]}…{key[-2:]}"
