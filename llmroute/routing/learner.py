"""Routing that learns from the user's own verdicts (issue 19): per target pair, a logistic model
of P(this target's answer beats that one's | prompt).

Features (`features`) are hashed words and adjacent word pairs of the prompt (its first
`MAX_WORDS` words), the difficulty features (`difficulty.score_difficulty`, by name and
strength) and a length bucket, plus a bias; each lands in one of `DIM` = 2^14 slots by CRC-32,
which is stable across processes (Python's `hash` is salted). Values are scaled by
1/sqrt(number of features) so a long prompt does not make a larger step than a short one.

Each unordered pair `first<TAB>second` (sorted ids) has its own sparse weight vector; the label
is 1 when `first` won. A thumbs verdict is a game against the virtual opponent `BASELINE`.
Updates are plain SGD steps on the L2-regularised log loss; the regulariser and the evidence
blend (`expected_quality`) keep a few verdicts from moving routing much. Ties — which is what an
order disagreement between the judge's two orderings becomes (`judging.py`) — carry no
direction and are not learned from.

Storage: `state/learner.json` through `StateStore`: every update is a read-modify-write under an
exclusive lock with an atomic replace, so concurrent updaters lose nothing and a crash never
leaves a torn file. A corrupt file is moved aside by the store and `rebuild` learns it again
from the verdict journal `state/learner_verdicts.jsonl` (hashed features, never prompt text).
"""

from __future__ import annotations

import math
import os
import re
import time
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

from ..locking import locked
from ..state import StateStore
from ..stats import logit, sigmoid

if TYPE_CHECKING:
    from .difficulty import Difficulty
    from .memory import RoutingMemory

DIM = 1 << 14
MAX_WORDS = 96  # a prompt's head carries its topic; more words cost planning time
LEARNING_RATE = 0.5
L2 = 0.01  # per-step shrink of the touched weights toward 0
PRIOR_WEIGHT = 20.0  # the prior counts as this many verdicts in the blend
BASELINE = "*baseline*"
NAME = "learner"
FILE = NAME + ".json"
JOURNAL = "learner_verdicts.jsonl"

_WORD = re.compile(r"[a-z0-9][a-z0-9'+#-]*")
_crc = zlib.crc32


@lru_cache(maxsize=1 << 16)
def _slot(name: str) -> int:
    """The feature's slot; memoised, as a user's prompts reuse most of their words."""
    return _crc(name.encode()) & (DIM - 1)


# `features` looks words and word pairs up here first, keyed by the words themselves (no "w:…"
# or "p:…" string is built), so a prompt's head is hashed by C-level `map`s over dict lookups;
# only words not seen before reach CRC-32. Cleared when full, like any memo of a vocabulary.
_WORD_SLOTS: dict[str, int] = {}
_PAIR_SLOTS: dict[tuple[str, str], int] = {}
_SLOTS_MAX = 1 << 16
_HEAD = 8 * 1024  # characters the word scan reads at most
# The first scan reads this far only: a prompt's first MAX_WORDS words nearly always lie within
# eight characters a word, and finding (and listing) every word of a long prompt's 8 KB head to
# keep its first MAX_WORDS was most of `features`' work.
_FIRST_SCAN = 8 * MAX_WORDS


def _word_slots(words: list[str]) -> list[int]:
    slots = list(map(_WORD_SLOTS.get, words))
    if None in slots:
        if len(_WORD_SLOTS) > _SLOTS_MAX:
            _WORD_SLOTS.clear()
        for i, slot in enumerate(slots):
            if slot is None:
                slots[i] = _WORD_SLOTS[words[i]] = _crc(f"w:{words[i]}".encode()) & (DIM - 1)
    return slots


def _pair_slots(words: list[str]) -> list[int]:
    slots = list(map(_PAIR_SLOTS.get, zip(words, words[1:])))  # zip reuses its tuple
    if None in slots:
        if len(_PAIR_SLOTS) > _SLOTS_MAX:
            _PAIR_SLOTS.clear()
        for i, slot in enumerate(slots):
            if slot is None:
                pair = words[i], words[i + 1]
                slots[i] = _PAIR_SLOTS[pair] = _crc(f"p:{pair[0]} {pair[1]}".encode()) & (DIM - 1)
    return slots


def head_words(prompt: str) -> list[str]:
    """The prompt's first `MAX_WORDS` words (lower-cased) within its first 8 KB: the words
    `features` hashes."""
    # ASCII lower-casing maps character to character, so lower-casing only the head is exact;
    # other scripts can change length or depend on context (final sigma), so they lower it all.
    lowered = (prompt[:_HEAD] if prompt.isascii() else prompt).lower()
    words = _WORD.findall(lowered, 0, _FIRST_SCAN)
    # More than MAX_WORDS words in the first scan: the first MAX_WORDS ended before its end,
    # so they are exactly the full scan's first MAX_WORDS.
    if len(words) <= MAX_WORDS and len(lowered) > _FIRST_SCAN:
        words = _WORD.findall(lowered, 0, _HEAD)
    del words[MAX_WORDS:]
    return words


def features(prompt: str, difficulty: "Difficulty | None" = None) -> list[tuple[int, float]]:
    """The prompt's hashed features as (slot, value): words, word pairs, the difficulty
    features and a length bucket scaled to unit length, then the difficulty score itself.
    `difficulty` is the prompt's `score_difficulty(...)` when the caller already has it.

    The score is added unscaled, centred on 0.5: it is the one feature every prompt has and that
    says which way it leans, so a pair's model learns "the harder, the more the larger model
    wins" from its first verdicts and carries it to prompts whose words it never saw; the words
    then correct it where the user's verdicts disagree with the prior."""
    if difficulty is None:
        from .difficulty import score_difficulty

        difficulty = score_difficulty(prompt)
    words = head_words(prompt)
    # Slot 0 is the bias (a collision with it is harmless); then each word, and from the second
    # word on, the pair it ends — the order a word-by-word loop would insert them in.
    order = [0] * (2 * len(words) or 1)
    if words:
        word_slots = _word_slots(words)
        order[1] = word_slots[0]
        order[2::2] = word_slots[1:]
        order[3::2] = _pair_slots(words)
    raw = dict.fromkeys(order, 1.0)
    for name, value in difficulty.features:
        slot = _slot("d:" + name)
        raw[slot] = raw.get(slot, 0.0) + 2.0 * abs(value)
    raw[_slot(f"len:{min(len(words).bit_length(), 10)}")] = 1.0
    scale = 1.0 / math.sqrt(len(raw))
    out = list(zip(raw, map(scale.__mul__, raw.values())))
    out.append((_SCORE_SLOT, SCORE_SCALE * (difficulty.score - 0.5)))
    return out


SCORE_SCALE = 2.0  # the difficulty score's feature value spans [-1, 1]
_SCORE_SLOT = _slot("d:score")


def pair_key(a: str, b: str) -> tuple[str, bool]:
    """(the stored key of the unordered pair, whether `a` is its first side)."""
    return (f"{a}\t{b}", True) if a <= b else (f"{b}\t{a}", False)


def _valid(doc: dict) -> bool:
    pairs = doc.get("pairs")
    return pairs is None or (isinstance(pairs, dict) and all(
        isinstance(p, dict) and isinstance(p.get("n"), int) and isinstance(p.get("w"), dict)
        for p in pairs.values()))


class Learner:
    """The learner of one data directory (`state/learner.json`), or of the team when `memory`
    (the engine's routing memory) keeps its state on Redis (`RoutingMemory.document_store`)."""

    def __init__(self, state_dir: Path, *, clock: Callable[[], float] = time.time,
                 memory: "RoutingMemory | None" = None):
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / FILE
        self.store = memory.document_store(NAME, _valid) if memory is not None \
            else StateStore(self.path, clock=clock, valid=_valid)
        self.shared = not isinstance(self.store, StateStore)

    def record(self, winner: str, loser: str, prompt: str) -> None:
        """One decided verdict: `winner`'s answer to `prompt` beat `loser`'s."""
        self.record_many([(winner, loser, prompt)])

    def record_many(self, verdicts: Iterable[tuple[str, str, str]]) -> None:
        """Several (winner, loser, prompt) verdicts in one locked write."""
        # Rounded as the journal stores them, so a rebuild replays exactly the same steps.
        verdicts = [(w, l, [(i, round(v, 5)) for i, v in features(p)]) for w, l, p in verdicts if w != l]
        if not verdicts:
            return
        self._ensure()
        import json

        lines = "".join(json.dumps([w, l, x], separators=(",", ":")) + "\n"
                        for w, l, x in verdicts)
        with locked(_lock(self.state_dir)):
            with open(self.state_dir / JOURNAL, "a", encoding="utf-8") as journal:
                journal.write(lines)
            with self.store.update() as doc:
                pairs = doc.setdefault("pairs", {})
                for winner, loser, x in verdicts:
                    key, first_won = pair_key(winner, loser)
                    entry = pairs.setdefault(key, {"n": 0, "w": {}})
                    learn_step(entry["w"], x, 1.0 if first_won else 0.0)
                    entry["n"] += 1

    def record_feedback(self, target: str, vote: str, prompt: str) -> None:
        """A thumbs verdict: a win (up) or loss (down) against `BASELINE`."""
        if vote == "up":
            self.record(target, BASELINE, prompt)
        elif vote == "down":
            self.record(BASELINE, target, prompt)

    def view(self) -> "LearnerView":
        self._ensure()
        return LearnerView.from_doc(self.store.read())

    def _ensure(self) -> None:
        """A damaged file is moved aside by the store on first touch; when that happens (the
        file exists but did not parse), rebuild from the judged pairs before learning more.
        (The team's document on Redis is written whole by one SET under its lock.)"""
        if self.shared or not self.path.exists():
            return
        try:
            import json

            doc = json.loads(self.path.read_bytes() or b"{}")
            ok = isinstance(doc, dict) and _valid(doc)
        except (ValueError, UnicodeDecodeError, OSError):
            ok = False
        if not ok:
            rebuild(self.state_dir, self.store)


def learn_step(weights: dict, x: list[tuple[int, float]], y: float) -> None:
    """One SGD step on the L2-regularised log loss (weights keyed by str(slot) in JSON)."""
    z = sum(weights.get(str(i), 0.0) * v for i, v in x)
    g = sigmoid(z) - y
    for i, v in x:
        k = str(i)
        w = weights.get(k, 0.0)
        w -= LEARNING_RATE * (g * v + L2 * w)
        if abs(w) < 1e-6:
            weights.pop(k, None)
        else:
            weights[k] = round(w, 6)


def rebuild(state_dir: Path, store: StateStore | None = None) -> int:
    """Replace the learner's document by one learned again from the verdict journal, and return
    how many verdicts it replayed.

    Why a journal: the judged pairs' outcomes live in `state/abtest.json` and the ledger's
    `ab_id` records, but neither keeps the prompt (the ledger only with `ledger.log_prompts`),
    and without the prompt there is nothing per-prompt to learn. So every verdict the learner
    takes is also appended to `state/learner_verdicts.jsonl` as (winner, loser, hashed features)
    — never the prompt text — under the same lock, and a rebuild replays it in order."""
    import json

    state_dir = Path(state_dir)
    store = store or StateStore(state_dir / FILE, valid=_valid)
    pairs: dict = {}
    count = 0
    with locked(_lock(state_dir)):
        try:
            lines = (state_dir / JOURNAL).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            lines = []
        for line in lines:
            try:
                winner, loser, x = json.loads(line)
                x = [(int(i), float(v)) for i, v in x]
            except (ValueError, TypeError):
                continue  # a torn last line after a crash
            key, first_won = pair_key(str(winner), str(loser))
            entry = pairs.setdefault(key, {"n": 0, "w": {}})
            learn_step(entry["w"], x, 1.0 if first_won else 0.0)
            entry["n"] += 1
            count += 1
        with store.update() as doc:
            doc.clear()
            doc["pairs"] = pairs
    return count


def _lock(state_dir: Path) -> Path:
    return Path(state_dir) / (JOURNAL + ".lock")


# --- reading, for the planner -------------------------------------------------------------------


@dataclass(frozen=True)
class LearnerView:
    """A frozen copy of every pair's weights (int slots) and verdict count."""

    pairs: Mapping[str, tuple[int, Mapping[int, float]]]
    # slot → every pair's weight for it (a tuple in `keys` order): one pass over a prompt's
    # features scores every pair at once, with the per-pair sums done by C (`margins`)
    keys: tuple[str, ...] = ()
    dense: Mapping[int, tuple[float, ...]] = field(default_factory=dict)
    # candidate ids → their `_Blend`: which pairs shift which candidate, and how much. A plan's
    # candidates come from the config and the routing memory, not the prompt, so every plan
    # against this view after the first reuses it.
    _blends: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_doc(cls, doc: Mapping) -> "LearnerView":
        pairs = {}
        for key, entry in (doc.get("pairs") or {}).items():
            if isinstance(entry, dict) and isinstance(entry.get("n"), int) and isinstance(entry.get("w"), dict):
                weights = {int(k): float(v) for k, v in entry["w"].items()
                           if k.isdigit() and isinstance(v, (int, float))}
                pairs[key] = (entry["n"], weights)
        keys = tuple(pairs)
        dense: dict[int, list[float]] = {}
        for number, key in enumerate(keys):
            for slot, w in pairs[key][1].items():
                dense.setdefault(slot, [0.0] * len(keys))[number] = w
        return cls(pairs, keys, {k: tuple(v) for k, v in dense.items()})

    def margins(self, x: list[tuple[int, float]]) -> list[float]:
        """Every pair's logit (first side winning) for features `x`, in `keys` order. Most
        features share one value (the unit scale), so their weight rows are summed column-wise
        by `zip`/`sum`; the few others are added one by one."""
        z = [0.0] * len(self.keys)
        if not x:
            return z
        dense = self.dense
        common = x[0][1]
        rows = []
        for slot, value in x:
            row = dense.get(slot)
            if row is None:
                continue
            if value == common:
                rows.append(row)
            else:
                z = [a + w * value for a, w in zip(z, row)]
        if rows:
            z = [a + common * b for a, b in zip(z, map(sum, zip(*rows)))]
        return z

    def blend(self, ids: list[str]) -> "_Blend":
        """The prompt-independent part of `expected_quality` for these candidates."""
        key = tuple(ids)
        found = self._blends.get(key)
        if found is None:
            if len(self._blends) >= _BLENDS_MAX:
                self._blends.clear()
            found = self._blends[key] = _Blend(self, ids)
        return found

    def evidence(self, a: str, b: str) -> int:
        found = self.pairs.get(pair_key(a, b)[0])
        return found[0] if found else 0

    def p_beats(self, a: str, b: str, x: list[tuple[int, float]]) -> float:
        """P(`a`'s answer beats `b`'s) for a prompt with features `x`; 0.5 without evidence."""
        key, a_first = pair_key(a, b)
        found = self.pairs.get(key)
        if not found:
            return 0.5
        w = found[1]
        p = sigmoid(sum(w.get(i, 0.0) * v for i, v in x))
        return p if a_first else 1.0 - p


_BLENDS_MAX = 64
# Which side of a pair's model a candidate is on: the first side of a judged pair or a thumbs
# model (the model's logit is its own), the second side of a judged pair, or the second side of a
# thumbs model whose first side is `BASELINE` (the logit is the baseline's; the target's is −it).
_FIRST, _SECOND, _THUMBS_SECOND = 0, 1, 2


class _Blend:
    """For one list of candidates: the pairs with evidence that involve them, each as (pair
    number in `keys`, i, j) — i, j their candidates' positions, j = -1 for a thumbs model of
    candidate i; per candidate, its terms (position in `pairs`, side, r) in `keys` order; and
    the verdicts behind each. The prior logits depend on the priors as well: the last priors'
    are kept, as consecutive plans often share them."""

    def __init__(self, view: LearnerView, ids: list[str]) -> None:
        index = {t: i for i, t in enumerate(ids)}
        pairs: list[tuple[int, int, int]] = []
        terms: list[list[tuple[int, int, float]]] = [[] for _ in ids]
        evidence = [0] * len(ids)
        for number, key in enumerate(view.keys):
            n = view.pairs[key][0]
            a, _, b = key.partition("\t")
            i, j = index.get(a), index.get(b)
            if i is None and j is None or not n:
                continue
            r = n / (n + PRIOR_WEIGHT)
            if i is not None and j is not None:
                terms[i].append((len(pairs), _FIRST, r))
                terms[j].append((len(pairs), _SECOND, r))
                pairs.append((number, i, j))
                evidence[i] += n
                evidence[j] += n
            elif BASELINE in (a, b):  # a thumbs model: the baseline's prior is 0.5 (logit 0)
                k = i if i is not None else j
                terms[k].append((len(pairs), _FIRST if i is not None else _THUMBS_SECOND, r))
                pairs.append((number, k, -1))
                evidence[k] += n
        self.pairs = tuple(pairs)
        self.terms = tuple(map(tuple, terms))
        self.evidence = tuple(evidence)
        self._last: tuple[tuple[float, ...], list[float]] | None = None

    def logits(self, priors: list[float]) -> list[float]:
        """Each candidate's prior as a logit."""
        key = tuple(priors)
        last = self._last
        if last is not None and last[0] == key:
            return last[1]
        logits = [logit(p) for p in priors]
        self._last = (key, logits)
        return logits


EMPTY = LearnerView({})
_cache: dict[Path | str, tuple[object, LearnerView]] = {}


def load_view(state_dir: Path, memory: "RoutingMemory | None" = None) -> LearnerView:
    """The learner's view, re-read only when the file changed (one stat per plan otherwise);
    on the team's Redis (`memory`), only when its version changed (one small GET per plan)."""
    if memory is not None and memory.shares_state:
        store = memory.document_store(NAME, _valid)
        if not isinstance(store, StateStore):
            stamp = store.version()
            if not store.failed:
                cached = _cache.get(store.key)
                if cached is not None and cached[0] == stamp:
                    return cached[1]
                view = LearnerView.from_doc(store.read())
                _cache[store.key] = (stamp, view)
                return view
    path = Path(state_dir) / FILE
    try:
        st = os.stat(path)
    except OSError:
        return EMPTY
    stamp = (st.st_mtime_ns, st.st_size)
    cached = _cache.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        view = Learner(state_dir).view()
    except OSError:
        return EMPTY
    _cache[path] = (stamp, view)
    return view


def expected_quality(ids: list[str], priors: list[float], prompt_features: list[tuple[int, float]] | None,
                     view: LearnerView | None) -> list[tuple[float, int]]:
    """Each candidate's (expected quality in [0, 1], verdicts behind it) for this prompt.

    In logits: a pair's prior says candidate i beats j with logit θi − θj (θ = logit of the
    prior), its model says m. With evidence n, r = n / (n + PRIOR_WEIGHT), the pair's blended
    logit is (1 − r)(θi − θj) + r·m, reached by moving θi up and θj down by r(m − (θi − θj))/2;
    against `BASELINE` (logit 0) the target alone moves, by r(m − θi). A candidate in several
    pairs moves by the mean of its moves, and its expected quality is the logistic of where it
    lands. Why logits and not a shift of probabilities: a convex blend of logits keeps the
    prior's order of prompts while the model is still flat (after a few verdicts it mostly knows
    a bias), instead of subtracting a prior chance that is steeper than the prior's own gap.
    Without evidence the result is exactly the prior."""
    if not view or not view.pairs or prompt_features is None:
        return [(p, 0) for p in priors]
    blend = view.blend(ids)
    logits = blend.logits(priors)
    margins = view.margins(prompt_features)  # each trained pair once, however many candidates
    pairs = blend.pairs
    out = []
    for p, theta, terms, n in zip(priors, logits, blend.terms, blend.evidence):
        if not terms:
            out.append((p, n))
            continue
        move = 0.0
        for k, side, r in terms:
            number, i, j = pairs[k]
            m = margins[number]
            if j < 0:  # a thumbs model: the target against the baseline's logit 0
                move += r * ((m if side == _FIRST else -m) - theta)
            else:
                half = r * (m - (logits[i] - logits[j])) / 2
                move += half if side == _FIRST else -half
        out.append((sigmoid(theta + move / len(terms)), n))
    return out


def top_words(view: LearnerView, a: str, b: str, vocabulary: Iterable[str], k: int = 5) -> tuple[list, list]:
    """The words (from `vocabulary`, e.g. the stored prompts' words) with the largest weights
    for each side of the pair: ([(word, weight) favouring a], [... favouring b])."""
    key, a_first = pair_key(a, b)
    found = view.pairs.get(key)
    if not found:
        return [], []
    w = found[1]
    scored = {word: w.get(_slot("w:" + word), 0.0) * (1 if a_first else -1) for word in set(vocabulary)}
    ranked = sorted(scored.items(), key=lambda kv: kv[1])
    return ([(x, round(v, 3)) for x, v in reversed(ranked[-k:]) if v > 0],
            [(x, round(-v, 3)) for x, v in ranked[:k] if v < 0])
