"""The learner's planning-time shortcuts compute exactly what the plain definitions do, so stored
`state/learner.json` weights keep their meaning: `features` (a short first word scan, memoised
word and pair slots) and `expected_quality` (the per-view blend of candidates and priors)."""

from __future__ import annotations

import math
import random
import zlib

import pytest

from llmroute.routing import learner as L
from llmroute.routing.difficulty import Difficulty, score_difficulty
from llmroute.stats import sigmoid
from llmroute.routing.learner import (
    BASELINE, DIM, MAX_WORDS, PRIOR_WEIGHT, LearnerView, expected_quality, features, pair_key,
)


def plain_slot(name: str) -> int:
    return zlib.crc32(name.encode()) & (DIM - 1)


def plain_features(prompt: str, difficulty: Difficulty) -> list[tuple[int, float]]:
    """The definition: the first MAX_WORDS words of the lower-cased prompt's first 8 KB, word by
    word, then the difficulty features, the length bucket and the unit scale; then the score."""
    words = L._WORD.findall(prompt.lower(), 0, 8 * 1024)[:MAX_WORDS]
    raw = {0: 1.0}
    for i, word in enumerate(words):
        raw[plain_slot("w:" + word)] = 1.0
        if i:
            raw[plain_slot(f"p:{words[i - 1]} {word}")] = 1.0
    for name, value in difficulty.features:
        slot = plain_slot("d:" + name)
        raw[slot] = raw.get(slot, 0.0) + 2.0 * abs(value)
    raw[plain_slot(f"len:{min(len(words).bit_length(), 10)}")] = 1.0
    scale = 1.0 / math.sqrt(len(raw))
    return [(slot, value * scale) for slot, value in raw.items()] + \
        [(plain_slot("d:score"), 2.0 * (difficulty.score - 0.5))]


def words(n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    vocabulary = "the a prove lemma code don't c++ c# x-ray 42 3.14 fox async why step".split()
    return " ".join(rng.choice(vocabulary) for _ in range(n))


PROMPTS = [
    "", "   ", "Hello", "Hello, World!", words(5), words(95), words(96), words(97), words(200),
    words(3000),
    "!!! ??? ... " * 300 + words(300),  # the first scan holds too few words: the full scan decides
    "abcdefg " * 96 + words(50),  # exactly MAX_WORDS words fill the first scan
    "abcdefg " * 95 + "abcdefghijklmnop " + words(50),  # the last of MAX_WORDS words crosses its edge
    "abcdef " * 96 + "x" * 200,  # a word after MAX_WORDS others crosses its edge
    "x" * 760 + " " + words(200),  # a word that ends just before the first scan's edge
    "y" * 20_000 + " after",  # one word longer than the whole head
    "Straße ÄÖÜ ΣΑΣ ΟΔΟΣ İstanbul İİ " * 400,  # lower-casing that changes length or context
    "Σ" * 767 + "Σa " + words(300),  # final sigma at the first scan's edge
    "中文 テスト 한국어 mixed words " * 500,
    "```python\ndef f(x):\n    return x * 2\n```\n" * 200,
    "word\n" * 5000,
]


@pytest.mark.parametrize("prompt", PROMPTS, ids=range(len(PROMPTS)))
def test_features_are_the_plain_definition(prompt):
    for difficulty in (Difficulty(0.0), Difficulty(0.7, (("code", 0.25), ("length", 0.1), ("code", 0.05))),
                       score_difficulty(prompt)):
        assert features(prompt, difficulty) == plain_features(prompt, difficulty)
    assert features(prompt) == plain_features(prompt, score_difficulty(prompt))


def test_features_stay_exact_when_the_slot_memos_fill_up(monkeypatch):
    monkeypatch.setattr(L, "_SLOTS_MAX", 8)
    rng = random.Random(4)
    for _ in range(30):
        prompt = " ".join(f"w{rng.randrange(500)}" for _ in range(rng.randrange(1, 150)))
        assert features(prompt, Difficulty(0.2)) == plain_features(prompt, Difficulty(0.2))


def plain_expected_quality(ids, priors, x, view):
    """The definition: every pair the candidates are in moves their prior logits toward the
    pair's model by r, half each (a thumbs model moves its target alone); a candidate moves by
    the mean of its moves."""
    if not view or not view.pairs or x is None:
        return [(p, 0) for p in priors]
    logits = [math.log(min(1 - 1e-6, max(1e-6, p)) / (1 - min(1 - 1e-6, max(1e-6, p)))) for p in priors]
    index = {t: i for i, t in enumerate(ids)}
    moves = [[] for _ in ids]
    evidence = [0] * len(ids)
    margins = view.margins(x)
    for number, key in enumerate(view.keys):
        n = view.pairs[key][0]
        a, _, b = key.partition("\t")
        i, j = index.get(a), index.get(b)
        if i is None and j is None or not n:
            continue
        r = n / (n + PRIOR_WEIGHT)
        if i is not None and j is not None:
            half = r * (margins[number] - (logits[i] - logits[j])) / 2
            moves[i].append(half)
            moves[j].append(-half)
            evidence[i] += n
            evidence[j] += n
        elif BASELINE in (a, b):
            k, target = (i, a) if i is not None else (j, b)
            own = margins[number] if target == a else -margins[number]
            moves[k].append(r * (own - logits[k]))
            evidence[k] += n
    return [(sigmoid(t + sum(m) / len(m)) if m else p, e)
            for p, t, m, e in zip(priors, logits, moves, evidence)]


def random_view(rng: random.Random, targets: list[str]) -> LearnerView:
    pairs = {}
    for a in targets:
        for b in [*targets, BASELINE]:
            if a != b and rng.random() < 0.5:
                weights = {str(rng.randrange(DIM)): rng.uniform(-2, 2) for _ in range(200)}
                weights.update({str(plain_slot("w:" + w)): rng.uniform(-2, 2) for w in ("prove", "code", "the")})
                pairs[pair_key(a, b)[0]] = {"n": rng.choice((0, 1, 7, 40)), "w": weights}
    return LearnerView.from_doc({"pairs": pairs})


def test_expected_quality_is_the_plain_definition_for_any_candidates_and_priors():
    rng = random.Random(11)
    targets = [f"p/m{i}" for i in range(8)]
    for _ in range(20):
        view = random_view(rng, targets)
        for _ in range(6):  # several candidate sets against one view (and its blends)
            ids = rng.sample(targets + ["q/unknown"], rng.randrange(1, 9))
            first, second = ([rng.choice((0.0, 0.5, 1.0, rng.random())) for _ in ids] for _ in range(2))
            for priors in (first, second, first, first):  # priors that change from plan to plan
                for prompt in ("prove the lemma", words(150, rng.randrange(99)), ""):
                    x = features(prompt)
                    assert expected_quality(ids, priors, x, view) == plain_expected_quality(ids, priors, x, view)


def test_expected_quality_without_evidence_is_the_prior():
    view = LearnerView.from_doc({"pairs": {pair_key("p/a", "p/b")[0]: {"n": 0, "w": {"5": 1.0}}}})
    assert expected_quality(["p/a", "p/b"], [0.3, 0.8], features("hi"), view) == [(0.3, 0), (0.8, 0)]
    assert expected_quality(["p/a"], [0.3], None, view) == [(0.3, 0)]
    assert expected_quality(["p/a"], [0.3], features("hi"), L.EMPTY) == [(0.3, 0)]
