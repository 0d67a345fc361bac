"""The fast token estimate (`estimate_tokens`): a pre-tokenizer-shaped heuristic, microseconds
and no data, typically within ~15% of o200k/cl100k. `tokens.py` owns counting (it re-exports
this, and counts exactly with tiktoken where a count decides something); this module owns only
the arithmetic of the estimate, which the planner runs on every prompt.
"""

from __future__ import annotations

import functools
import re

# The estimate counts a few kinds of tiktoken pre-tokenizer piece (see `estimate_whole`). For
# ASCII text every count is taken on a "class string": the text's bytes translated so that each
# byte names its character class (letter, digit, blank, ...), where `bytes.count` of a two- or
# three-byte pattern counts word starts, camelCase breaks or punctuation runs in one C-level
# scan. A regex pass walks its pattern at every character, several times slower per pass, and
# the planner estimates every prompt. Other scripts still need the Unicode-aware regexes below.
_CJK_CLASS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_LONG_PART = re.compile(r"[A-Z]?[a-z]{11,}|[A-Z]{11,}")
_NUMBER = re.compile(r"\d+")
_DIGIT = re.compile(r"\d")
# `(?<=\S)[ \t]{2,}| (?=\d)` (blanks after a word, a space before a number), written to begin with
# the blank it needs, so the regex engine skips ahead to blanks instead of trying every character.
_INNER_SPACES = re.compile(r"[ \t](?:(?<=\S[ \t])[ \t]+|(?<= )(?=\d))")
_PUNCT = re.compile(r"[^\w\s]+|_+")
_GLUED = re.compile(r"(?<![^\w\s])[^\w\s](?=[^\W\d_])|_(?=[A-Za-z])")


@functools.cache
def _non_ascii_patterns() -> tuple[re.Pattern, re.Pattern]:
    """CJK characters and other scripts' words. Compiled on first non-ASCII text: the large
    character ranges are slow to compile, which an English prompt never needs to pay."""
    return re.compile(f"[{_CJK_CLASS}]"), re.compile(f"[^\\W\\dA-Za-z_{_CJK_CLASS}]+")


# The ASCII characters of each kind the passes tell apart; every other byte is "other". Kinds
# follow the regex classes of the estimate's definition: `other_space` is the rest of what
# `\s` (`str.isspace`) matches in ASCII.
_ASCII_KINDS = {
    "lower": "abcdefghijklmnopqrstuvwxyz", "upper": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "digit": "0123456789", "underscore": "_", "space": " ", "tab": "\t", "newline": "\n",
    "other_space": "\r\x0b\x0c\x1c\x1d\x1e\x1f",
}


def _byte_classes(other: str, **kinds: str) -> bytes:
    """A `bytes.translate` table mapping each byte to the class letter of its kind (keyword
    arguments named as in `_ASCII_KINDS`; unnamed kinds map to `other`). Non-ASCII characters
    are encoded as `?` before translating, and `?` is "other"."""
    table = bytearray(other.encode() * 256)
    for kind, letter in kinds.items():
        for char in _ASCII_KINDS[kind]:
            table[ord(char)] = ord(letter)
    return bytes(table)


# Word letters by case: words are runs of letters, camelCase breaks are case changes.
_LETTERS = _byte_classes(" ", lower="a", upper="A")
# Newlines and the blanks that indent a line.
_LINES = _byte_classes(".", newline="n", space="b", tab="b")
# Blanks and what precedes or follows them: non-space characters (`x`, digits `0`), other space.
_GAPS = _byte_classes("x", space=" ", tab="t", digit="0", newline="n", other_space="n")
_DIGITS = _byte_classes(" ", digit="0")
# Punctuation runs (`.`), underscore runs and the letters (`x`) that can absorb them.
_MARKS = _byte_classes(".", underscore="_", lower="x", upper="x", digit=" ", space=" ", tab=" ",
                       newline=" ", other_space=" ")
_ELEVEN_LETTERS = b"a" * 11
# Two blanks after a non-space character: the start of a run `(?<=\S)[ \t]{2,}` matches.
_WIDE_GAPS = tuple(x + b1 + b2 for x in (b"x", b"0") for b1 in (b" ", b"t") for b2 in (b" ", b"t"))

_SAMPLE_ABOVE = 1536  # chars; longer texts are estimated from evenly spaced samples
_SAMPLE_CHUNKS = 8
_SAMPLE_CHUNK = 192


def estimate_tokens(text: str) -> int:
    """Fast offline token estimate; texts over 1.5K characters are estimated from 8 evenly spaced
    192-character samples (joined, one pass) scaled by length, so the cost stays flat however
    long the prompt (the tokens-per-character ratio of one document is stable enough for budgets
    and routing; words cut at sample edges err towards more tokens, the safe side for a budget)."""
    if len(text) <= _SAMPLE_ABOVE:
        return estimate_whole(text)
    step = (len(text) - _SAMPLE_CHUNK) // (_SAMPLE_CHUNKS - 1)
    # One pass over the joined samples instead of one per sample.
    sample = " ".join(text[i * step : i * step + _SAMPLE_CHUNK] for i in range(_SAMPLE_CHUNKS))
    return max(1, round(estimate_whole(sample) * len(text) / len(sample)))


def estimate_whole(text: str) -> int:
    """The estimate over the whole of `text` (`estimate_tokens` samples long texts), typically
    within ~20% of cl100k/o200k on English and code.

    Mirrors tiktoken's pre-tokenizer: an ASCII word (with its leading space) is one token, with
    extra tokens for camelCase parts and for words over 10 letters (~1 per 6); CJK characters
    ~1 each; other scripts' words ~1 per 3 letters; digits group by 3; a punctuation run ~1 per 2
    characters, except one character glued to a following word, which the word absorbs; a run
    of newlines is 1, plus 1 for indentation; blanks after a word or before a number 1 each.

    The definition is the regex set in `tests/test_tokens_estimate_exact.py`; this computes the
    same numbers with fewer, cheaper passes."""
    if not text:
        return 0
    # One byte per character (code point), so byte offsets are string offsets. The ASCII-only
    # counts (letters, newlines, blanks) treat `?` like any other non-ASCII character.
    data = text.encode("ascii", "replace")
    letters = data.translate(_LETTERS)
    total = 0
    if b"A" in letters:
        # `[a-z](?=[A-Z])|[A-Z](?=[A-Z][a-z])`: neither pattern can overlap itself.
        total += letters.count(b"aA") + letters.count(b"AAa")
        letters = letters.replace(b"A", b"a")
    total += letters.count(b" a") + letters.startswith(b"a")  # `[A-Za-z]+`: one per run
    # Long parts lie inside words of 11+ letters; only those (rare) are looked at one by one.
    start = letters.find(_ELEVEN_LETTERS)
    while start >= 0:  # `find` from outside a word lands on the start of the next long word
        end = letters.find(b" ", start)
        end = len(letters) if end < 0 else end
        total += sum((len(w) + 5) // 6 - 1 for w in _LONG_PART.findall(text[start:end]))
        start = letters.find(_ELEVEN_LETTERS, end)
    if b"\n" in data:
        lines = data.translate(_LINES)
        total += lines.count(b".n") + lines.count(b"bn") + lines.startswith(b"n")  # `\n+`
        total += lines.count(b"nbb")  # `\n[ \t]{2,}`
    if text.isascii():
        return max(1, total + _ascii_rest(text, data))
    cjk, other_word = _non_ascii_patterns()
    total += len(cjk.findall(text))
    total += sum((len(w) + 2) // 3 for w in other_word.findall(text))
    has_digit = _DIGIT.search(text) is not None
    if has_digit:
        total += sum((len(n) + 2) // 3 for n in _NUMBER.findall(text))
    if has_digit or "  " in text or "\t" in text:
        total += len(_INNER_SPACES.findall(text))
    total += sum((len(p) + 1) // 2 for p in _PUNCT.findall(text))
    total -= len(_GLUED.findall(text))
    return max(1, total)


def _ascii_rest(text: str, data: bytes) -> int:
    """Numbers, blanks inside a line and punctuation of ASCII text, from class strings.

    A run's token count comes from pattern counts: `bytes.count` does not overlap its matches,
    so in a run of n marks `count(".")` is n and `count("..")` is n // 2, leaving ceil(n / 2)."""
    total = 0
    gaps = data.translate(_GAPS)
    has_digit = b"0" in gaps
    if has_digit:
        # `\d+`, ceil(n / 3) per run: two more digits at each run's start make it (n + 2) // 3.
        digits = (b" " + data).translate(_DIGITS).replace(b" 0", b" 000")
        total += digits.count(b"000")
    # `(?<=\S)[ \t]{2,}| (?=\d)`: one per run of 2+ blanks after a non-space character, one per
    # single space before a digit. A run of 2+ blanks ending in a space before a digit counts
    # once or not at all depending on what precedes it: that rare case takes the regex.
    if has_digit and (b"  0" in gaps or b"t 0" in gaps):
        total += len(_INNER_SPACES.findall(text))
    else:
        if has_digit:
            total += gaps.count(b" 0")
        if b"\t" in data:
            total += sum(gaps.count(p) for p in _WIDE_GAPS)
        else:
            total += gaps.count(b"x  ") + (gaps.count(b"0  ") if has_digit else 0)
    # `[^\w\s]+|_+`, ceil(n / 2) per run, minus one per underscore run or lone mark before a
    # letter (the word absorbs it).
    marks = data.translate(_MARKS)
    total += marks.count(b".") - marks.count(b"..") - marks.count(b".x") + marks.count(b"..x")
    if b"_" in data:
        total += marks.count(b"_") - marks.count(b"__") - marks.count(b"_x")
    return total
