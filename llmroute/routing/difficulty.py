"""Prompt difficulty for the `auto` strategy (SPEC §1: easy → small models, hard → large).

A pure, offline heuristic scorer. What makes a prompt hard for a small model — and therefore
worth a large one — is fairly predictable: multi-step math word problems, code generation and
debugging, expert-domain knowledge, and long instructions with many constraints. What small
models do about as well as large ones: chit-chat, simple facts, short rewrites and translations.
Each of those signals is one *feature* with a raw strength in [0, 1] and a weight; the score is
a base plus the weighted sum, clipped to [0, 1]. Features are returned with their contributions
so `--explain` can say *why* a prompt went where it did.

Speed matters (this runs on every request): keyword features use one word-split of the
lowercased text and frozen-set lookups instead of one regex per keyword, and very long prompts
are scanned only at their head and tail. Ordinary prompts (≤ 2,000 characters) score in well
under a millisecond.

Knowledge questions: a common fact and an obscure one read alike to the lexicon ("What is the
capital of …?"), so the `specific` feature counts what obscure questions carry — names inside a
sentence, years, a second question — and nothing prompts of other kinds lose by. Judged on the
held-out half of `bench/data/route_eval.jsonl` by `bench/route_eval.py` (APGR).

Within maths and code, what separates hard from easy is how much the prompt asks, not that it is
maths or code: a word problem's difficulty grows with its quantities (spelled-out ones count),
one operator between two numbers is arithmetic, a language name says only that code is wanted
(the concepts it names — concurrency, interpreters, consensus — say how hard), and a technical
prompt's length counts for more than chat's (its words are requirements, chat's often padding).
Those rules were chosen on `route_eval.jsonl` and judged on `route_eval_fresh.jsonl`, a set
written afterwards without sight of this file.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from types import MappingProxyType

_SCAN_EDGE = 1024  # very long prompts: scan only the first and last 1 KB (both ends
# carry the signal: instructions usually come first or last around pasted material)
_BASE = 0.2  # a prompt with no signal at all
_GAIN = 1.45  # scales feature weights so the default threshold 0.5 splits easy from hard

# Structural signals. Plain substring counts (str.count runs in C) where a literal suffices;
# regexes are written to start on a rare character so the scan skips most positions.
_FENCES = ("```", "~~~")
_STACK_MARKERS = (
    "Traceback (most recent call last)", '", line ', "Error: ", "Exception: ", ".java:",
    "segmentation fault", "Segmentation fault", "panicked at", "undefined reference to",
)
_CODE_PREFIXES = (
    "def ", "class ", "import ", "from ", "#include", "function ", "function(", "public ",
    "private ", "static ", "const ", "let ", "var ", "fn ", "func ", "package ", "return ",
    "return;", "if (", "if(", "for (", "for(", "while (", "} ", "}", "SELECT ", "INSERT ",
    "UPDATE ", "CREATE TABLE", "@", "#!/",
)
_CODE_SUFFIXES = (";", "{", "}", "):", "=>", "*/")
_CODE_INFIX = ("=>", "->", "::", "!=", "==", "&&", "||")
_LATEX = re.compile(r"\\(?:frac|int|sum|sqrt|lim|prod|alpha|beta|theta|pi|infty|partial|cdot|"
                    r"mathbb|begin|le|ge|neq)\b|\$[^$\n]{1,200}\$")
# Anchored on the operator (rare) rather than on digits/letters (common), so the scan seldom
# starts a match attempt (bench/difficulty.py measures the score).
_EQUATION = re.compile(r"[-+*/^×÷=] ?\(?-?\d")
_MATH_SYMBOL = re.compile(r"[∫∑√π≤≥≠∞±∂∆]")
# Numbered/bulleted items and multiple-choice options ("A." / "(b)") mark multi-part tasks.
_LIST_ITEM = re.compile(r"^[ \t]*(?:\d{1,2}[.)]|[-*•]|\(?[A-Da-d][.)]|\(\w\))[ \t]+\S", re.MULTILINE)
_WORD_OR_NUMBER = re.compile(r"[a-z][a-z0-9+#'-]*|\d+(?:[.,]\d+)*")
_LIMIT_UNITS = ("words", "sentences", "paragraphs", "bullet", "lines", "characters", "items")
_WORD_LIMIT = re.compile(r"\d+ (?:%s)" % "|".join(_LIMIT_UNITS))
_NON_ASCII_LETTER = re.compile(r"[^\x00-\x7f\W\d_]")
# A second question inside one ("…, and who refined it?"): asks for two specific facts.
_SECOND_QUESTION = re.compile(r"\band (?:in |on |of |by |at )?(?:who|whom|whose|which|what|when|where|how)\b")
# Quantities spelled out count as numbers in a word problem ("five numbers", "a third of the rest").
_NUMBER_WORDS = frozenset("""two three four five six seven eight nine ten eleven twelve twenty
    hundred thousand twice double triple half third quarter""".split())
_YEAR = re.compile(r"\b(?:1[0-9]|20)\d\d\b")
_SPECIFIC_SCAN = 60  # head tokens checked: a question names its subject early (and it is cheap)
_SPECIFIC_CHARS = 480  # likewise for years and second questions
_CALENDAR = frozenset("""monday tuesday wednesday thursday friday saturday sunday mondays tuesdays
    wednesdays thursdays fridays saturdays sundays january february march april may june july
    august september october november december""".split())  # capitalised, but not specific

# Lexicon: word -> feature. Space-separated strings keep the lists readable; built once into
# read-only mappings so scoring is one dict lookup per word (and per adjacent word pair).
_LEXICON_WORDS = {
    "language": """python javascript typescript java rust golang c++ c# kotlin swift php ruby
        scala sql bash shell powershell haskell""",
    "code": """regex regexp function functions method api endpoint
        compile compiler bug bugs debug refactor algorithm algorithms implement implementation
        script program code recursion recursive dataframe pandas numpy react django flask docker
        kubernetes unittest pytest async await thread threads mutex deadlock segfault exception
        array arrays hashmap struct pointer pointers runtime null linter backend frontend
        query queries schema database parse parser json yaml csv http websocket git cli""",
    "math": """prove proof integral integrate derivative differentiate derive equation equations
        solve probability theorem lemma matrix matrices eigenvalue eigenvalues eigenvector
        polynomial logarithm primes modulo factorial combinatorics permutations combinations
        inequality converge converges convergence series vector vectors variance deviation
        remainder divisible gcd lcm integer integers irrational rational calculus geometry
        triangle hypotenuse radius circumference probability odds expected bayes quadratic
        ways digits divisors consecutive arrangements arrange sequence ratio""",
    "quantity": """how many much total each per percent percentage twice half cost costs costing
        earns paid pays buys sells spends remaining left average rate speed hours minutes
        altogether more fewer""",
    "reasoning": """therefore assume suppose implications consequences justify hypothesis paradox
        puzzle riddle logic logically deduce infer counterargument tradeoffs trade-offs
        reasoning scenario scenarios hypothetical dilemma nuanced""",
    "hard_task": """why design analyze analyse optimize optimise debug implement prove evaluate
        critique architect diagnose refactor derive compare assess investigate formalize
        troubleshoot explain plan""",
    "constraints": """must should exactly least most format json table bullet bullets markdown
        include exclude avoid without don't only ensure every within limit constraint
        constraints requirements requirement tone style audience specify sections""",
    "domain": """contract liability tort statute jurisdiction plaintiff defendant litigation gdpr
        compliance regulatory diagnosis symptoms dosage clinical patient pathophysiology
        pharmacology contraindications syndrome prognosis portfolio amortization valuation dcf
        ebitda hedge arbitrage bonds securities fiduciary quantum thermodynamics entropy
        relativity enzyme molecule protein genome mitochondria asymptotic np-hard dijkstra
        heuristic stochastic bayesian regression econometrics elasticity monetary fiscal
        epistemology ontology cryptography latency throughput scalability distributed
        concurrency concurrent lock-free atomic interpreter compiler kernel gpu cuda jit
        caching eviction consensus sharding replication partitions multi-tenant coroutine
        coroutines generics memoization allocator""",
    "trivial": """hi hello hey thanks thank bye goodbye lol ok okay yo sup cheers morning""",
    "simple_edit": """translate translation paraphrase rephrase rewrite summarize summarise
        synonym synonyms antonym spell spelling grammar capitalize uppercase lowercase
        proofread shorten""",
    "creative": """poem haiku story limerick song lyrics slogan tagline joke jokes sonnet""",
}
_LEXICON_BIGRAMS = {
    "code": "unit tests|time complexity|binary search|linked list|big o|stack trace|pull request"
            "|a script|a program|data structure",
    "math": "such that|trailing zeros|at random",
    "reasoning": "step by|by step|compare and|and contrast|pros and|and cons|explain why"
                 "|walk me|think through|reason about|what if|trade offs|edge cases",
    "domain": "dynamic programming|machine learning|neural network|interest rate"
              "|supreme court|side effects|due diligence|game theory",
    "constraints": "do not|no more|at least|at most|less than|fewer than",
}
_OPENERS_TEXT = {
    "factoid": "what is|what's|who is|who was|who wrote|who invented|when did|when was|where is"
               "|what does|what year|define|how tall|how old|how far|which country",
    "trivial": "how are you|good morning|good night|what's up|tell me a joke",
    "howto": "how do i|how can i|how to|how do you",
}

WORDS = MappingProxyType(
    {word: feature for feature, text in _LEXICON_WORDS.items() for word in text.split()}
)
BIGRAMS = MappingProxyType(
    {tuple(p.split()): feature for feature, text in _LEXICON_BIGRAMS.items()
     for p in text.split("|")}
)
_VOCAB = frozenset(WORDS)
_BIGRAM_FIRST = frozenset(first for first, _ in BIGRAMS)
OPENERS = MappingProxyType(
    {tuple(p.split()): feature for feature, text in _OPENERS_TEXT.items() for p in text.split("|")}
)


@dataclass(frozen=True)
class Difficulty:
    """A difficulty score in [0, 1] and the features behind it, largest contribution first."""

    score: float
    features: tuple[tuple[str, float], ...] = ()

    def explain(self) -> str:
        """One line for `--explain`, e.g. `difficulty 0.71 (code +0.30, math +0.18, length +0.05)`."""
        if not self.features:
            return f"difficulty {self.score:.2f}"
        parts = ", ".join(f"{name} {value:+.2f}" for name, value in self.features)
        return f"difficulty {self.score:.2f} ({parts})"


@dataclass(frozen=True)
class _Signals:
    """Raw counts gathered from one scan of the prompt."""

    n_words: int
    hits: dict[str, float]
    code_struct: float
    math_struct: float
    numbers: int
    list_items: int
    questions: int
    non_ascii_ratio: float
    specific: int = 0  # named entities, years and second questions: specific-knowledge signals


def _scan_text(text: str) -> str:
    if len(text) <= 2 * _SCAN_EDGE:
        return text
    return text[:_SCAN_EDGE] + "\n" + text[-_SCAN_EDGE:]


def has_code(text: str) -> bool:
    """True when the text *contains* code: a fence, a stack trace, or at least two code-like
    lines. (Asking for code in prose is not "has code"; it still raises the difficulty.)"""
    text = _scan_text(text)
    if _code_markers(text):
        return True
    return _code_lines(text) >= 2


def _code_markers(text: str) -> int:
    """Fences and stack-trace markers: each is near-certain evidence of code in the prompt."""
    return sum(text.count(m) for m in _FENCES) + sum(text.count(m) for m in _STACK_MARKERS)


def _code_lines(text: str) -> int:
    """Lines that look like source code: a keyword/brace start, a `;`/`{` end, or an operator
    like `=>`/`::` that prose rarely uses. Prose lines starting with "from " or "import " in
    a sentence are excluded by requiring no sentence-final period."""
    count = 0
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.endswith((".", "?", "!")) and not stripped.endswith("..."):
            continue
        if (stripped.startswith(_CODE_PREFIXES) or stripped.endswith(_CODE_SUFFIXES)
                or any(op in stripped for op in _CODE_INFIX)):
            count += 1
    return count


def _keyword_hits(words: list[str]) -> dict[str, float]:
    """Counts of lexicon hits per feature over words and adjacent word pairs."""
    hits: dict[str, float] = {}
    for word in [w for w in words if w in _VOCAB]:
        feature = WORDS[word]
        hits[feature] = hits.get(feature, 0.0) + 1.0
    starts = [i for i, w in enumerate(words[:-1]) if w in _BIGRAM_FIRST]
    for i in starts:
        feature = BIGRAMS.get((words[i], words[i + 1]))
        if feature is not None:
            hits[feature] = hits.get(feature, 0.0) + 1.0
    return hits


def _signals(text: str) -> _Signals:
    lowered = text.lower()
    found = _WORD_OR_NUMBER.findall(lowered)
    words = [w for w in found if w[0] >= "a"]
    hits = _keyword_hits(words)
    opening = tuple(words[:3])
    for n in (3, 2, 1):
        feature = OPENERS.get(opening[:n])
        if feature is not None:
            hits[feature] = hits.get(feature, 0.0) + 1.0
            break
    if any(unit in lowered for unit in _LIMIT_UNITS):
        limits = len(_WORD_LIMIT.findall(lowered))
        hits["constraints"] = hits.get("constraints", 0.0) + 2 * limits
    money_or_share = ("$" in text) + ("%" in text)  # quantities without a quantity word
    if money_or_share:
        hits["quantity"] = hits.get("quantity", 0.0) + money_or_share
    code_struct = 3.0 * _code_markers(text) + _code_lines(text)
    latex = len(_LATEX.findall(text)) if "\\" in text or "$" in text else 0
    math_struct = 2.0 * latex + len(_EQUATION.findall(text)) + len(_MATH_SYMBOL.findall(text))
    tokens = text.split()
    numbers = len(found) - len(words) + sum(1 for w in words if w in _NUMBER_WORDS)
    specific = _specificity(tokens, lowered)
    non_ascii = len(_NON_ASCII_LETTER.findall(text))
    letters = non_ascii + len("".join(words)) or 1
    return _Signals(
        n_words=len(tokens), hits=hits,
        code_struct=code_struct, math_struct=math_struct,
        numbers=numbers, list_items=len(_LIST_ITEM.findall(text)),
        questions=text.count("?"),
        non_ascii_ratio=non_ascii / letters, specific=specific,
    )


def _plain(token: str) -> str:
    return token.strip(",.?!;:'\"()").lower()


def _specificity(tokens: list[str], lowered: str) -> int:
    """Capitalised words inside a sentence that are not lexicon words (names of people, places,
    works, events), years, and second questions: what distinguishes an obscure-knowledge
    question ("Which treaty ended the War of the Spanish Succession?") from a common one."""
    count = 0
    previous = "."
    for token in tokens[:_SPECIFIC_SCAN]:
        if (token[0].isupper() and previous[-1] not in ".!?:\"'(" and len(token) > 1
                and not token.isupper() and _plain(token) not in _VOCAB and _plain(token) not in _CALENDAR):
            count += 1
        previous = token
    head = lowered[:_SPECIFIC_CHARS]
    if "and " in head:
        count += len(_SECOND_QUESTION.findall(head))
    return count + len(_YEAR.findall(head))


def _sat(x: float, full: float) -> float:
    """Saturating strength: 0 at 0, 1 at `full` and beyond."""
    return min(1.0, max(0.0, x) / full)


def _length_strength(n_words: int, n_chars: int) -> float:
    tokens = max(n_words * 1.3, n_chars / 4.0)
    if tokens <= 12:
        return 0.0
    return min(1.0, math.log(tokens / 12) / math.log(1500 / 12))


SPECIFIC_WEIGHT = 0.16


def _features(s: _Signals, n_chars: int) -> list[tuple[str, float]]:
    h = s.hits.get
    short = s.n_words <= 12
    technical = h("code", 0) + h("language", 0) + h("math", 0) + s.code_struct + s.math_struct
    # Multi-step word problems carry more numbers than one-step ones: graded, not a switch.
    word_problem = _sat(s.numbers - 1, 5) * _sat(h("quantity", 0), 1)
    # "What is 15 + 27?": an operator between two numbers is arithmetic, not mathematics.
    arithmetic = short and not h("math", 0) and s.math_struct <= 2 and s.numbers <= 3
    math_struct = 0.0 if arithmetic else s.math_struct
    out = [
        ("length", (0.22 + 0.3 * bool(technical)) * _length_strength(s.n_words, n_chars)),
        ("code", 0.36 * _sat(h("code", 0) + 0.7 * s.code_struct, 3)
         + 0.08 * _sat(h("language", 0), 1)),
        ("math", 0.36 * max(_sat(h("math", 0) + math_struct, 3), word_problem)),
        ("reasoning", 0.22 * _sat(h("reasoning", 0) + max(0, s.questions - 1)
                                  + 0.5 * s.list_items, 3)),
        ("task", 0.16 * _sat(h("hard_task", 0), 1.5)),
        ("constraints", 0.16 * _sat(h("constraints", 0), 5)),
        ("domain", 0.18 * _sat(h("domain", 0), 2)),
        ("multilingual", 0.06 * _sat(s.non_ascii_ratio, 0.5)),
        ("specific", SPECIFIC_WEIGHT * _sat(s.specific, 3)),
    ]
    if h("factoid", 0) and s.n_words <= 25 and technical == 0:
        out.append(("factoid", -0.12))
    if h("howto", 0) and short and s.code_struct == 0:
        out.append(("how-to", -0.06))
    if h("trivial", 0) and short and technical == 0:
        out.append(("trivial", -0.3))
    if h("simple_edit", 0) and not h("hard_task", 0):
        out.append(("simple edit", -0.1 * _sat(h("simple_edit", 0), 1)))
    if h("creative", 0) and technical == 0:
        out.append(("creative", -0.04))
    return out


def score_difficulty(prompt: str, system: str | None = None) -> Difficulty:
    """Difficulty of answering `prompt` (with an optional system prompt) in [0, 1].

    Deterministic and pure. A system prompt is prepended: its instructions and length are part of
    what the model must honour."""
    text = f"{system}\n\n{prompt}" if system else prompt
    if not text.strip():
        return Difficulty(0.0, ())
    scanned = _scan_text(text)
    features = _features(_signals(scanned), len(text))
    features = [(name, _GAIN * value) for name, value in features]
    kept = [(name, round(value, 3)) for name, value in features if abs(value) >= 0.005]
    kept.sort(key=lambda item: -abs(item[1]))
    score = min(1.0, max(0.0, _BASE + sum(value for _, value in features)))
    return Difficulty(round(score, 4), tuple(kept))
