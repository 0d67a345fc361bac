"""Token counting that never blocks and never touches the network.

Budgets, `min_tokens` rules and cost estimates need a token count *before* a call. tiktoken gives
exact counts for OpenAI-style tokenizers, but `tiktoken.get_encoding` downloads its vocabulary on
first use; an offline or firewalled machine would then hang or crash on every prompt. So
`TokenCounter` only uses tiktoken when the vocabulary file is already in tiktoken's own cache
(same directory and file name tiktoken's `load.read_file_cached` uses, with the same sha256 check),
and otherwise falls back to `estimate_tokens`, a fast pre-tokenizer-shaped heuristic.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Protocol


@dataclass(frozen=True)
class EncodingFile:
    """Where tiktoken fetches one encoding's vocabulary from, and its expected sha256."""

    name: str
    url: str
    sha256: str


# Preferred first: o200k_base (GPT-4o family), then cl100k_base (GPT-4/3.5). Values mirror
# tiktoken_ext/openai_public.py; the cache file name is sha1(url).
ENCODINGS: tuple[EncodingFile, ...] = (
    EncodingFile(
        "o200k_base",
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    EncodingFile(
        "cl100k_base",
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
)


class _Encoder(Protocol):
    def encode(self, text: str, *, disallowed_special: object = ...) -> list[int]: ...


def tiktoken_cache_dir(env: Mapping[str, str]) -> Path | None:
    """tiktoken's cache directory, resolved exactly as tiktoken does; None when caching is off.

    An empty `TIKTOKEN_CACHE_DIR` disables tiktoken's cache, which means every load downloads:
    for us that is "no cached vocabulary"."""
    if "TIKTOKEN_CACHE_DIR" in env:
        value = env["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in env:
        value = env["DATA_GYM_CACHE_DIR"]
    else:
        import tempfile  # only when no cache variable is set: it imports shutil, random

        value = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    return Path(value) if value else None


def cached_encoding(
    env: Mapping[str, str], encodings: tuple[EncodingFile, ...] = ENCODINGS
) -> EncodingFile | None:
    """The first encoding whose vocabulary sits in the cache with the right hash, else None.

    The hash is checked here because tiktoken deletes a mismatching cache file and re-downloads."""
    cache_dir = tiktoken_cache_dir(env)
    if cache_dir is None:
        return None
    for enc in encodings:
        path = cache_dir / hashlib.sha1(enc.url.encode()).hexdigest()
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if hashlib.sha256(data).hexdigest() == enc.sha256:
            return enc
    return None


def _tiktoken_loader(name: str) -> _Encoder:
    import tiktoken  # lazy: heavy import, only when a cached vocabulary exists

    return tiktoken.get_encoding(name)


class TokenCounter:
    """Counts tokens with tiktoken when its vocabulary is cached locally, else estimates.

    The tiktoken decision and load happen on the first `count` and are memoized per instance, so
    constructing a counter is free and a CLI that never counts never imports tiktoken.
    `env` and `loader` are injectable for tests."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        encodings: tuple[EncodingFile, ...] = ENCODINGS,
        loader: Callable[[str], _Encoder] = _tiktoken_loader,
    ) -> None:
        self._env = env
        self._encodings = encodings
        self._loader = loader
        self._resolved = False
        self._encoder: _Encoder | None = None

    def _get_encoder(self) -> _Encoder | None:
        if not self._resolved:
            self._resolved = True
            env = os.environ if self._env is None else self._env
            try:
                enc = cached_encoding(env, self._encodings)
                self._encoder = self._loader(enc.name) if enc else None
            except Exception:  # any tiktoken failure degrades to the estimate, never crashes
                self._encoder = None
        return self._encoder

    @property
    def source(self) -> str:
        """"tiktoken" when exact counts are available, else "estimate"."""
        return "tiktoken" if self._get_encoder() is not None else "estimate"

    def count(self, text: str) -> int:
        """Tokens in `text` (special-token markers are counted as plain text, never refused)."""
        if not text:
            return 0
        encoder = self._get_encoder()
        if encoder is not None:
            try:
                return len(encoder.encode(text, disallowed_special=()))
            except Exception:
                return estimate_tokens(text)
        return estimate_tokens(text)


# Each pattern counts one kind of tiktoken pre-tokenizer piece. Separate C-level scans (instead of
# one alternation walked in Python) keep a 1 MB prompt at a few tens of milliseconds.
_CJK_CLASS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_ASCII_WORD = re.compile(r"[A-Za-z]+")
_LONG_PART = re.compile(r"[A-Z]?[a-z]{11,}|[A-Z]{11,}")
_CAMEL_BREAK = re.compile(r"[a-z](?=[A-Z])|[A-Z](?=[A-Z][a-z])")
_NUMBER = re.compile(r"\d+")
_DIGIT = re.compile(r"\d")
_PUNCT_RUN = re.compile(r"([^\w\s]+|_+)(?=(.?))", re.S)  # a run and the character after it
_NEWLINES = re.compile(r"\n+")
_INDENT = re.compile(r"\n[ \t]{2,}")
_INNER_SPACES = re.compile(r"(?<=\S)[ \t]{2,}| (?=\d)")
_PUNCT = re.compile(r"[^\w\s]+|_+")
_GLUED = re.compile(r"(?<![^\w\s])[^\w\s](?=[^\W\d_])|_(?=[A-Za-z])")


@functools.cache
def _non_ascii_patterns() -> tuple[re.Pattern, re.Pattern]:
    """CJK characters and other scripts' words. Compiled on first non-ASCII text: the large
    character ranges take ~10 ms to compile, which an English prompt never needs to pay."""
    return re.compile(f"[{_CJK_CLASS}]"), re.compile(f"[^\\W\\dA-Za-z_{_CJK_CLASS}]+")


_SAMPLE_ABOVE = 1536  # chars; longer texts are estimated from evenly spaced samples
_SAMPLE_CHUNKS = 8
_SAMPLE_CHUNK = 192


def estimate_tokens(text: str) -> int:
    """Fast offline token estimate; texts over 1.5K characters are estimated from 8 evenly spaced
    192-character samples (joined, one pass) scaled by length, so the cost stays flat however
    long the prompt (the tokens-per-character ratio of one document is stable enough for budgets
    and routing; words cut at sample edges err towards more tokens, the safe side for a budget)."""
    if len(text) <= _SAMPLE_ABOVE:
        return _estimate_exact(text)
    step = (len(text) - _SAMPLE_CHUNK) // (_SAMPLE_CHUNKS - 1)
    # One pass over the joined samples: nine regex calls instead of nine per sample.
    sample = " ".join(text[i * step : i * step + _SAMPLE_CHUNK] for i in range(_SAMPLE_CHUNKS))
    return max(1, round(_estimate_exact(sample) * len(text) / len(sample)))


def _ascii_punctuation(text: str) -> int:
    """`_PUNCT` minus `_GLUED` in one pass, for ASCII text: each punctuation run costs ~1 token
    per 2 characters, except that a lone mark glued to a following letter (or underscores before
    a letter) is absorbed by the word. Exactly the two-regex result, at about half the cost."""
    total = 0
    for run, following in _PUNCT_RUN.findall(text):
        total += (len(run) + 1) // 2
        if following.isalpha() and (run[0] == "_" or len(run) == 1):
            total -= 1
    return total


def _estimate_exact(text: str) -> int:
    """Fast offline token estimate, typically within ~20% of cl100k/o200k on English and code.

    Mirrors tiktoken's pre-tokenizer: an ASCII word (with its leading space) is one token, with
    extra tokens for camelCase parts and for words over 10 letters (~1 per 6); CJK characters
    ~1 each; other scripts' words ~1 per 3 letters; digits group by 3; a punctuation run ~1 per 2
    characters, except one character glued to a following word, which the word absorbs; a run
    of newlines is 1, plus 1 for indentation."""
    if not text:
        return 0
    words = _ASCII_WORD.findall(text)
    total = len(words) + len(_CAMEL_BREAK.findall(text))
    # Long parts lie inside ASCII words, so only words of 11+ letters need looking at.
    total += sum((len(w) + 5) // 6 - 1 for word in words if len(word) > 10 for w in _LONG_PART.findall(word))
    if not text.isascii():
        cjk, other_word = _non_ascii_patterns()
        total += len(cjk.findall(text))
        total += sum((len(w) + 2) // 3 for w in other_word.findall(text))
    # The remaining passes are skipped when the characters they need are absent (cheap checks).
    has_digit = _DIGIT.search(text) is not None
    if has_digit:
        total += sum((len(n) + 2) // 3 for n in _NUMBER.findall(text))
    if "\n" in text:
        total += len(_NEWLINES.findall(text)) + len(_INDENT.findall(text))
    if has_digit or "  " in text or "\t" in text:
        total += len(_INNER_SPACES.findall(text))
    if text.isascii():
        total += _ascii_punctuation(text)
    else:
        total += sum((len(p) + 1) // 2 for p in _PUNCT.findall(text))
        total -= len(_GLUED.findall(text))
    return max(1, total)
