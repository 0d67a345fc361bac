"""How well do the cold-start prior and the per-prompt learner send the prompts that need the
large model to it? Run: `python bench/route_eval.py [--quick]`.

Two labelled sets, both written for this evaluation (not drawn from any public benchmark), in
four categories — knowledge questions (common vs obscure facts), maths (one-step arithmetic vs
multi-step word problems and short competition-style questions), chat/prose (chit-chat, short
rewrites and light creative work vs long, constrained or nuanced writing and advice) and code
(one-liners and textbook snippets vs systems, debugging and design). Each prompt is labelled
`needs: large` when a small (~7-8B) model would likely answer it wrongly or poorly and the large
model well, `small` when a small model suffices. Both sets hold long easy prompts (padded
anecdotes, one-step word problems) and short hard ones, so length alone is not the label.

- `route_eval.jsonl` (206 prompts, `tune`/`test` halves): the development set. The prior's rules
  were chosen while looking at it — the test half too, so its figures are not a fair judge.
- `route_eval_fresh.jsonl` (240 prompts, 30 small / 30 large per category): the sealed set,
  written afterwards by a second author who never saw the scorer, the learner or the first set,
  and committed before any score ran on it. Its figures are the ones that count.

APGR (after RouteLLM's "average performance gap recovered", with a binary oracle): rank prompts
by a score, send the top fraction f to the large model and the rest to the small one. A
`needs: large` prompt is answered well only if it went to the large model, a `small` one either
way, so the performance gap recovered at f is PGR(f) = (needs-large prompts sent to large) /
(all needs-large prompts). APGR is the area under PGR(f) for f from 0 to 1 (trapezoids over
k = 0..n prompts; ties in the score broken pessimistically, small-first). Random routing scores
about 0.5 (the exact expectation over random orders is printed); a perfect ranking scores
1 − p/2 where p is the share of needs-large prompts (0.75 on the sealed set).

Scores compared: random; length (words); the prior — `auto`'s per-prompt prior
(`strategies.auto_priors`, which moves a small-tier target's expected quality with the prompt's
difficulty), so at zero evidence it ranks prompts exactly as `difficulty.score_difficulty` does;
and the learner (`routing/learner.py`) after N synthetic judged verdicts for a small/large pair:
on a needs-large prompt the large model wins; otherwise the small one wins or it is a tie (half
each; ties teach nothing) — and, in a second row, with 15% of the decided verdicts flipped, as a
noisy judge would. It ranks the unseen prompts by the expected-quality gap (large − small), the
prior blended with the learned estimate exactly as the planner does. Learner rows come two ways:
trained on the development set and ranked on the sealed one (another author's prompts: does
what it learned transfer?), and "own prompts", two-fold on the sealed set (trained on one half's
prompts, ranked on the other's, both ways, averaged: a user's verdicts come from prompts like the
ones they route next). Means over 5 seeds.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.difficulty import apgr, recovered_curve  # noqa: E402
from bench.figures import emit  # noqa: E402
from llmroute.routing.difficulty import score_difficulty  # noqa: E402
from llmroute.routing.learner import LearnerView, expected_quality, features, learn_step, pair_key  # noqa: E402
from llmroute.routing.strategies import auto_priors  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
DEVELOPMENT, SEALED = DATA / "route_eval.jsonl", DATA / "route_eval_fresh.jsonl"
CATEGORIES = ("knowledge", "maths", "chat", "code")
SMALL, LARGE = "local/small", "cloud/large"
BASES, TIERS = [0.6, 0.8], ["small", "large"]  # configured quality / 10 and tier of each side
THRESHOLD = 0.5  # the default auto.threshold
SIZES = (100, 300, 1000)


def load(path: Path = DEVELOPMENT) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def score_apgr(scores: list[float], hard: list[bool]) -> float:
    return apgr(recovered_curve(scores, hard))


def random_apgr(hard: list[bool], rounds: int = 400, seed: int = 0) -> float:
    rng = random.Random(seed)
    return sum(score_apgr([rng.random() for _ in hard], hard) for _ in range(rounds)) / rounds


def length_score(prompt: str) -> float:
    return float(len(prompt.split()))


def difficulty_score(prompt: str) -> float:
    return score_difficulty(prompt).score


def train_view(rows: list[dict], n: int, seed: int, noise: float = 0.0) -> LearnerView:
    """The learner after `n` synthetic judged pairs on `rows` (drawn with replacement), in memory
    with the learner's own features and update step."""
    rng = random.Random(seed)
    weights: dict = {}
    decided = 0
    cache: dict[str, list] = {}
    key, large_first = pair_key(LARGE, SMALL)
    for _ in range(n):
        row = rng.choice(rows)
        if row["needs"] == "large":
            large_won = True
        elif rng.random() < 0.5:
            large_won = False
        else:
            continue  # a tie: no direction, not learned (as in the learner)
        if noise and rng.random() < noise:
            large_won = not large_won
        x = cache.get(row["prompt"])
        if x is None:
            x = cache[row["prompt"]] = [(i, round(v, 5)) for i, v in features(row["prompt"])]
        learn_step(weights, x, 1.0 if large_won == large_first else 0.0)
        decided += 1
    return LearnerView.from_doc({"pairs": {key: {"n": decided, "w": weights}}})


def gap_scores(view: LearnerView | None, prompts: list[str]) -> list[float]:
    """Expected quality of the large side minus the small side's, per prompt, as auto plans it."""
    out = []
    for prompt in prompts:
        found = score_difficulty(prompt)
        priors = auto_priors(BASES, TIERS, found.score, THRESHOLD)
        x = features(prompt, found) if view is not None else None
        (qs, _), (ql, _) = expected_quality([SMALL, LARGE], priors, x, view)
        out.append(ql - qs)
    return out


def groups(rows: list[dict]) -> dict[str, list[dict]]:
    return {"all": rows} | {c: [r for r in rows if r["category"] == c] for c in CATEGORIES}


def row_line(name: str, cells: list[float]) -> str:
    return f"  {name:<30} {cells[0]:>6.3f} " + " ".join(f"{v:>9.3f}" for v in cells[1:])


def header() -> str:
    return f"  {'score':<30} {'all':>6} " + " ".join(f"{c:>9}" for c in CATEGORIES)


def cold_rows(rows: list[dict]) -> dict[str, list[float]]:
    scorers = {
        "random (expected)": lambda g, h: random_apgr(h),
        "length (words)": lambda g, h: score_apgr([length_score(r["prompt"]) for r in g], h),
        "prior (difficulty)": lambda g, h: score_apgr(gap_scores(None, [r["prompt"] for r in g]), h),
        "perfect": lambda g, h: score_apgr([float(x) for x in h], h),
    }
    out = {}
    for name, fn in scorers.items():
        out[name] = [fn(g, [r["needs"] == "large" for r in g]) for g in groups(rows).values()]
    return out


def learned_cells(folds: list[tuple[list[dict], list[dict]]], n: int, noise: float, seeds) -> list[float]:
    """Mean APGR over seeds and folds of the learner trained on each fold's first half and ranked
    on its second, per group of the ranked half."""
    sums = [0.0] * (1 + len(CATEGORIES))
    count = 0
    for train, ranked in folds:
        for seed in seeds:
            view = train_view(train, n, seed, noise)
            for k, g in enumerate(groups(ranked).values()):
                sums[k] += score_apgr(gap_scores(view, [r["prompt"] for r in g]), [r["needs"] == "large" for r in g])
            count += 1
    return [s / count for s in sums]


def halves(rows: list[dict], seed: int = 19) -> tuple[list[dict], list[dict]]:
    """Each (category, label) group split in two at random, as the development set was."""
    rng = random.Random(seed)
    first, second = [], []
    for c in CATEGORIES:
        for needs in ("small", "large"):
            group = [r for r in rows if r["category"] == c and r["needs"] == needs]
            rng.shuffle(group)
            first += group[: len(group) // 2]
            second += group[len(group) // 2:]
    return first, second


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    development, sealed = load(DEVELOPMENT), load(SEALED)
    test = [r for r in development if r["split"] == "test"]
    print(f"development set {len(development)} prompts; sealed set {len(sealed)} prompts, "
          f"{sum(r['needs'] == 'large' for r in sealed)} need the large model")
    for title, rows in (("development set, test half (looked at while tuning)", test),
                        ("sealed set (never tuned on)", sealed)):
        print(f"\ncold start, {title} (APGR):\n{header()}")
        for name, cells in cold_rows(rows).items():
            print(row_line(name, cells))
            if rows is sealed and name in ("length (words)", "prior (difficulty)"):
                for label, value in zip(("all",) + CATEGORIES, cells):
                    emit(f"route APGR sealed set, {name}, {label}", value, "", "prior > length")
    seeds = range(2 if quick else 5)
    first, second = halves(sealed)
    setups = (("trained on development, ranked on sealed", [(development, sealed)]),
              ("own prompts: two-fold on sealed", [(first, second), (second, first)]))
    for title, folds in setups:
        print(f"\nlearner, {title} (APGR):\n{header()}")
        for n in SIZES:
            for noise in (0.0, 0.15):
                cells = learned_cells(folds, n, noise, seeds)
                name = f"learner {n}" + (f" noise {noise:.0%}" if noise else "")
                print(row_line(name, cells))
                if not noise:
                    emit(f"route APGR sealed set, learner {n} verdicts, {title}", cells[0], "", "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
