"""Keep secrets out of everything llmroute prints or writes.

Provider error bodies sometimes echo part of the key ("Incorrect API key provided: sk-ab***yz")
and sometimes all of it; anything taken from a provider goes through `redact` before it reaches
a terminal, the ledger or state.
"""

from __future__ import annotations

from typing import Iterable

MASK = "[REDACTED]"
MIN_SECRET = 4  # shorter values would garble ordinary text and protect nothing


def redact(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET:
            text = text.replace(secret, MASK)
    return text


class StreamRedactor:
    """`redact` for text that arrives in pieces (a streamed answer), where a secret may be split
    across two or more pieces.

    Approach: the text seen so far is redacted as a whole, and its end is held back while it
    could still be the start of a secret — exactly the longest suffix that is a proper prefix of
    some secret, so never more than `len(longest secret) - 1` characters, and usually nothing.
    Everything before that suffix is final: a secret it contains is complete, so it was
    replaced, and no secret can start there and continue into text not yet seen. `feed` returns
    the text that is safe to show now; `flush`, at the end of the stream, the held-back rest
    (which then cannot be a whole secret). So every complete secret in the concatenated input
    is replaced in the concatenated output, wherever the pieces were cut. With no secrets, text
    passes through unchanged and nothing is held."""

    def __init__(self, secrets: Iterable[str | None]):
        self.secrets = tuple(sorted({s for s in secrets if s and len(s) >= MIN_SECRET},
                                    key=len, reverse=True))
        self._firsts = frozenset(s[0] for s in self.secrets)
        self._longest = len(self.secrets[0]) if self.secrets else 0
        self._pending = ""

    def feed(self, text: str) -> str:
        if not self.secrets:
            return text
        buffer = redact(self._pending + text, self.secrets)
        start = self._held_from(buffer)
        self._pending = buffer[start:]
        return buffer[:start]

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return rest

    def _held_from(self, buffer: str) -> int:
        """Where the longest suffix of `buffer` that begins some secret starts (len(buffer) when
        there is none). Only positions holding a secret's first character are tried."""
        end = len(buffer)
        for position in range(max(0, end - self._longest + 1), end):
            if buffer[position] in self._firsts:
                tail = buffer[position:]
                if any(secret.startswith(tail) for secret in self.secrets):
                    return position
        return end


def mask_key(key: str) -> str:
    """A form safe to show in `keys list`: enough to recognise, never enough to use."""
    if len(key) <= 8:
        return "*" * len(key)
    return f"{key[:3]}…{key[-2:]}"
