"""Token counting: offline fallback, cache detection, estimate accuracy."""

from __future__ import annotations

import hashlib
import os
import tempfile

import pytest

from llmroute.tokens import (
    ENCODINGS,
    EncodingFile,
    TokenCounter,
    cached_encoding,
    estimate_tokens,
    tiktoken_cache_dir,
)

# Hand-counted with cl100k_base's pre-tokenizer rules (word + leading space = 1 token, etc.).
HAND_COUNTED = [
    ("The quick brown fox jumps over the lazy dog.", 10),
    ("Hello, world! How are you doing today?", 10),
    (
        "Large language models are trained on vast amounts of text data. They can answer "
        "questions, summarize documents, and write code in many programming languages.",
        29,
    ),
    (
        "def fibonacci(n):\n    if n < 2:\n        return n\n"
        "    return fibonacci(n - 1) + fibonacci(n - 2)",
        34,
    ),
    ('{"name": "Alice", "age": 30, "tags": ["admin", "dev"]}', 22),
]


class FakeEncoder:
    def __init__(self) -> None:
        self.calls = 0

    def encode(self, text, *, disallowed_special=()):
        self.calls += 1
        assert disallowed_special == ()
        return text.split()


def _fake_encoding(tmp_path, content: bytes = b"vocab") -> tuple[EncodingFile, dict]:
    enc = EncodingFile("fake_base", "https://example.invalid/fake.tiktoken",
                       hashlib.sha256(content).hexdigest())
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / hashlib.sha1(enc.url.encode()).hexdigest()).write_bytes(content)
    return enc, {"TIKTOKEN_CACHE_DIR": str(cache)}


@pytest.mark.parametrize("text,expected", HAND_COUNTED)
def test_estimate_within_30_percent_of_hand_counts(text, expected):
    assert abs(estimate_tokens(text) - expected) <= 0.3 * expected


def test_estimate_edge_cases():
    assert estimate_tokens("") == 0
    assert estimate_tokens("   ") >= 1
    assert estimate_tokens("我喜欢学习人工智能") == 9  # CJK ~1 token per character
    assert estimate_tokens("1234567") == 3  # digits group by three
    assert estimate_tokens("internationalization") > 1  # long words split


def test_estimate_long_text_is_sampled_and_scaled():
    unit = "The cat sat on the mat. "
    text = unit * 20000  # ~480K chars, over the sampling threshold
    exact_per_unit = estimate_tokens(unit * 10) / 10
    assert abs(estimate_tokens(text) - exact_per_unit * 20000) <= 0.05 * exact_per_unit * 20000


def test_empty_cache_dir_uses_estimate_without_network(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    counter = TokenCounter()
    assert counter.count("Hello, world! How are you doing today?") == 10
    assert counter.source == "estimate"


def test_real_tiktoken_path_never_downloads(tmp_path):
    # Default loader (real tiktoken) + no cached files: never reaches get_encoding (the socket
    # guard would fail a download, and the result must still be a number).
    counter = TokenCounter(env={"TIKTOKEN_CACHE_DIR": str(tmp_path)})
    assert counter.count("some text here") == 3
    assert counter.source == "estimate"


def test_cache_dir_resolution():
    assert str(tiktoken_cache_dir({"TIKTOKEN_CACHE_DIR": "/a", "DATA_GYM_CACHE_DIR": "/b"})) == "/a"
    assert str(tiktoken_cache_dir({"DATA_GYM_CACHE_DIR": "/b"})) == "/b"
    assert tiktoken_cache_dir({}) == tiktoken_cache_dir({}).parent / "data-gym-cache"
    assert str(tiktoken_cache_dir({})) == os.path.join(tempfile.gettempdir(), "data-gym-cache")
    assert tiktoken_cache_dir({"TIKTOKEN_CACHE_DIR": ""}) is None  # caching disabled


def test_cached_file_name_matches_tiktoken(tmp_path):
    # tiktoken's read_file_cached names the file sha1(url); a file with the right hash is found.
    enc, env = _fake_encoding(tmp_path)
    assert cached_encoding(env, (enc,)) == enc
    assert cached_encoding({"TIKTOKEN_CACHE_DIR": ""}, (enc,)) is None
    assert ENCODINGS[0].name == "o200k_base" and ENCODINGS[1].name == "cl100k_base"


def test_cached_file_with_wrong_hash_is_ignored(tmp_path):
    enc, env = _fake_encoding(tmp_path)
    bad = EncodingFile(enc.name, enc.url, "0" * 64)
    loads = []
    counter = TokenCounter(env=env, encodings=(bad,), loader=lambda n: loads.append(n))
    assert counter.source == "estimate"
    assert loads == []  # tiktoken would delete and re-download: we never call it


def test_uses_tiktoken_when_cached_and_memoizes(tmp_path):
    enc, env = _fake_encoding(tmp_path)
    fake = FakeEncoder()
    loads = []

    def loader(name):
        loads.append(name)
        return fake

    counter = TokenCounter(env=env, encodings=(enc,), loader=loader)
    assert loads == []  # lazy: nothing loaded at construction
    assert counter.count("a b c d e") == 5
    assert counter.count("a b") == 2
    assert counter.source == "tiktoken"
    assert loads == ["fake_base"]  # loaded once per instance
    assert counter.count("") == 0


def test_loader_failure_falls_back_to_estimate(tmp_path):
    enc, env = _fake_encoding(tmp_path)

    def loader(name):
        raise RuntimeError("broken tiktoken")

    counter = TokenCounter(env=env, encodings=(enc,), loader=loader)
    assert counter.count("hello world") == 2
    assert counter.source == "estimate"


def test_encode_failure_falls_back_to_estimate(tmp_path):
    enc, env = _fake_encoding(tmp_path)

    class Broken:
        def encode(self, text, *, disallowed_special=()):
            raise ValueError("bad text")

    counter = TokenCounter(env=env, encodings=(enc,), loader=lambda n: Broken())
    assert counter.count("hello world") == 2


def test_fast_paths_count_exactly_what_the_full_regex_set_counts():
    """The skipped passes and the one-pass punctuation count are optimisations only: on random
    text they must give the same estimate as running every pattern over the whole text."""
    import random

    from llmroute import tokens

    def reference(text: str) -> int:
        if not text:
            return 0
        cjk, other = tokens._non_ascii_patterns()
        total = len(tokens._ASCII_WORD.findall(text)) + len(tokens._CAMEL_BREAK.findall(text))
        total += sum((len(w) + 5) // 6 - 1 for w in tokens._LONG_PART.findall(text))
        total += len(cjk.findall(text)) + sum((len(w) + 2) // 3 for w in other.findall(text))
        total += sum((len(n) + 2) // 3 for n in tokens._NUMBER.findall(text))
        total += len(tokens._NEWLINES.findall(text)) + len(tokens._INDENT.findall(text))
        total += len(tokens._INNER_SPACES.findall(text))
        total += sum((len(p) + 1) // 2 for p in tokens._PUNCT.findall(text))
        total -= len(tokens._GLUED.findall(text))
        return max(1, total)

    rng = random.Random(5)
    ascii_chars = "abcdefghijXYZQ0123456789  \t\n___.,;:!?()[]{}<>=+-*/\\\"'`#@$%^&|~"
    all_chars = ascii_chars + "éü漢字日本語한국어Ωπ"
    for _ in range(5000):
        pool = ascii_chars if rng.random() < 0.6 else all_chars
        text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 120)))
        if rng.random() < 0.2:
            text += " internationalizationParser"
        assert tokens._estimate_exact(text) == reference(text), repr(text)
