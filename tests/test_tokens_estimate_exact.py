"""The fast token estimate counts exactly what its definition counts.

`token_estimate.estimate_whole` takes its counts from byte-class strings and skips passes that cannot
match; the numbers it must give are defined here, as the straightforward set of regex passes
over the whole text that the estimate started as. Context-window, budget and cost checks are
decided on the estimate, so a faster estimate that changed a single count would change
decisions: these tests compare the two on many kinds of text, short and long.
"""

from __future__ import annotations

import itertools
import random
import re
from pathlib import Path

import pytest

from llmroute import token_estimate

# --- the definition ------------------------------------------------------------------------

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
ASCII_WORD = re.compile(r"[A-Za-z]+")
LONG_PART = re.compile(r"[A-Z]?[a-z]{11,}|[A-Z]{11,}")
CAMEL_BREAK = re.compile(r"[a-z](?=[A-Z])|[A-Z](?=[A-Z][a-z])")
NUMBER = re.compile(r"\d+")
NEWLINES = re.compile(r"\n+")
INDENT = re.compile(r"\n[ \t]{2,}")
INNER_SPACES = re.compile(r"(?<=\S)[ \t]{2,}| (?=\d)")
PUNCT = re.compile(r"[^\w\s]+|_+")
GLUED = re.compile(r"(?<![^\w\s])[^\w\s](?=[^\W\d_])|_(?=[A-Za-z])")
CJK_CHAR = re.compile(f"[{_CJK}]")
OTHER_WORD = re.compile(f"[^\\W\\dA-Za-z_{_CJK}]+")


def reference_exact(text: str) -> int:
    """Every pass over the whole text: ASCII words, camelCase breaks, long word parts, CJK
    characters, other scripts' words, digit groups, newline runs, indentation, inner blanks,
    punctuation runs less glued marks."""
    if not text:
        return 0
    total = len(ASCII_WORD.findall(text)) + len(CAMEL_BREAK.findall(text))
    total += sum((len(w) + 5) // 6 - 1 for w in LONG_PART.findall(text))
    total += len(CJK_CHAR.findall(text)) + sum((len(w) + 2) // 3 for w in OTHER_WORD.findall(text))
    total += sum((len(n) + 2) // 3 for n in NUMBER.findall(text))
    total += len(NEWLINES.findall(text)) + len(INDENT.findall(text))
    total += len(INNER_SPACES.findall(text))
    total += sum((len(p) + 1) // 2 for p in PUNCT.findall(text))
    total -= len(GLUED.findall(text))
    return max(1, total)


def reference_estimate(text: str) -> int:
    """Long texts: eight evenly spaced 192-character samples, joined by spaces, scaled."""
    if len(text) <= 1536:
        return reference_exact(text)
    step = (len(text) - 192) // 7
    sample = " ".join(text[i * step : i * step + 192] for i in range(8))
    return max(1, round(reference_exact(sample) * len(text) / len(sample)))


def check(text: str) -> None:
    assert token_estimate.estimate_whole(text) == reference_exact(text), repr(text)


# --- inputs --------------------------------------------------------------------------------

ASCII = "".join(map(chr, range(128)))
# One of each character kind the passes tell apart, ASCII and not: letters by case, digits
# (ASCII and Arabic-Indic), underscore, punctuation, the blanks, newline and other whitespace
# (ASCII and Unicode), a letter with an accent, a CJK character, an emoji and "?" (which the
# estimate also uses to stand for any non-ASCII character).
KINDS = "aZ0_. \t\n\r\x0b\x1céك\u0663\xa0\u3000漢🙂?"
NON_ASCII = ("éèüßçñøåÉÜ漢字日本語ひらがなカタカナ한국어中文Ωπλ🙂😀👍🏽🇫🇷‍❤️"
             "مرحبا بالعالم ١٢٣٤ שלום עולם \u200f\u200e\u00a0\u2009\u3000\u2028\x85"
             "０１２３ＡＢＣａｂｃ\u0301\u0308“”‘’—–…•€£¥©®™\ud800\udfff")
SNIPPETS = (
    "def parseHTTPResponse(rawBytes):\n    return rawBytes.decode('utf-8')\n",
    "\tif (x > 10) {\n\t\treturn y_value;  // 2 spaces\n\t}\n",
    "SELECT id, user_name FROM accounts WHERE created_at > '2024-01-01';",
    "The quick brown fox — jumps over the lazy dog. It's 3.14159 o'clock!",
    "internationalizationParser XMLHttpRequest getHTTPStatusCode ABCDEFGHIJKLMNOP",
    "total:    42\nprice\t\t 7\n  \t 0 items  \n\n\n    indented\r\n\r\n",
    "__init__ __dunder__ _private snake_case_name CONSTANT_VALUE a_1 _9",
    "..., !!! ?!?! ((())) [[x]] {'k': [1, 2, 3]} <a href=\"#\">link</a> --flag=value",
    "```python\nfor i in range(10):\n    print(f\"{i:>4}\")\n```\n",
    "1 22 333 4444 55555 666666 1234567890 3.5e-10 0x1F 1,000,000",
)


def random_text(rng: random.Random, length: int) -> str:
    """Characters drawn from one of several pools: prose-like, code-like, whitespace-heavy,
    any ASCII, mixed scripts."""
    pools = (
        "abcdefghijklmnopqrstuvwxyz" * 4 + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + " " * 20 + ".,;:!?'\"-\n",
        "abcdefXYZ0123456789_ (){}[]<>=+-*/\\.,;:\"'`#@$%^&|~\t\n" + "    ",
        " \t\n\r0123456789ab",
        ASCII,
        "abcXYZ 0123_.,\n" + NON_ASCII,
        KINDS,
    )
    pool = rng.choice(pools)
    return "".join(rng.choice(pool) for _ in range(length))


def spliced_text(rng: random.Random) -> str:
    """Pieces of code, prose, numbers and other scripts run together, with runs of blanks."""
    parts = []
    for _ in range(rng.randint(1, 12)):
        roll = rng.random()
        if roll < 0.4:
            snippet = rng.choice(SNIPPETS)
            start = rng.randrange(len(snippet))
            parts.append(snippet[start : start + rng.randint(1, len(snippet))])
        elif roll < 0.6:
            parts.append(rng.choice([" ", "  ", "\t", " \t", "\n", "\n    ", ""]) * rng.randint(1, 4))
        elif roll < 0.8:
            parts.append(random_text(rng, rng.randint(1, 40)))
        else:
            parts.append("".join(rng.choice(NON_ASCII) for _ in range(rng.randint(1, 20))))
    return "".join(parts)


# --- tests ---------------------------------------------------------------------------------


def test_empty_and_single_characters():
    assert token_estimate.estimate_whole("") == 0 == token_estimate.estimate_tokens("")
    for char in ASCII + NON_ASCII:
        check(char)


def test_every_pair_of_ascii_characters():
    for a, b in itertools.product(ASCII, repeat=2):
        check(a + b)


def test_every_short_string_of_character_kinds():
    for length in range(1, 5):
        for chars in itertools.product(KINDS, repeat=length):
            check("".join(chars))


def test_random_texts():
    rng = random.Random(20240611)
    for _ in range(6000):
        check(random_text(rng, rng.randint(1, 200)))


def test_spliced_code_prose_and_other_scripts():
    rng = random.Random(7)
    for _ in range(4000):
        text = spliced_text(rng)
        check(text)
        check(text.upper())
        check(text.encode("ascii", "replace").decode())


def test_snippets_and_their_variants():
    for snippet in SNIPPETS:
        for text in (snippet, snippet * 3, snippet.replace(" ", "  "), snippet.replace("\n", "\n\t  "),
                     snippet.replace(" ", "\t"), " " + snippet, snippet.strip(), snippet.swapcase()):
            check(text)


@pytest.mark.parametrize("run", [1, 2, 3, 10, 11, 12, 17, 100])
def test_runs_of_one_kind(run):
    """Run lengths around each pass's thresholds: digit groups of 3, mark pairs, long words
    (over 10 letters), blanks of 2+, capitals before a lower-case letter."""
    for unit in ("a", "A", "0", "_", ".", " ", "\t", "\n", "\r", "é", "漢", "\u0663", "\xa0", "?"):
        for before, after in itertools.product(["", "x", "X", " ", "\n", "7", ".", "_", "é"], repeat=2):
            check(before + unit * run + after)
    check("Ab" * run + "CDe" * run)
    check("x" + " " * run + "1" + "\t" * run + " 2")


def test_real_files_of_this_repository():
    """Source, docs and config as prompts: slices of every text file in the project."""
    root = Path(__file__).resolve().parent.parent
    rng = random.Random(3)
    paths = sorted(p for pattern in ("llmroute/**/*.py", "tests/*.py", "*.md", "docs/**/*.md", "*.toml")
                   for p in root.glob(pattern))
    assert paths
    for path in paths:
        text = path.read_text(encoding="utf-8", errors="replace")
        check(text[:1536])
        for _ in range(5):
            start = rng.randrange(len(text) + 1)
            check(text[start : start + rng.randint(0, 1536)])
        assert token_estimate.estimate_tokens(text) == reference_estimate(text), path


def test_long_prompts_are_sampled_the_same_way():
    rng = random.Random(11)
    for length in (1536, 1537, 1543, 2000, 10_000, 250_000):
        for _ in range(5):
            text = "".join(spliced_text(rng) for _ in range(length // 40 + 1))[:length]
            text = text.ljust(length, rng.choice("a .\n"))
            assert token_estimate.estimate_tokens(text) == reference_estimate(text), (length, text[:80])
    for text in ("The cat sat on the mat. " * 20_000, "x" * 1_000_000, " " * 50_000, "\n" * 50_000,
                 "漢字" * 100_000, "getHTTPResponseCode(0x1F, 42)  \n\t" * 30_000):
        assert token_estimate.estimate_tokens(text) == reference_estimate(text)
