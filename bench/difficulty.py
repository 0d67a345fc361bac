"""Benchmark the difficulty scorer: speed and ranking quality on a labeled prompt set.

Run: `python bench/difficulty.py [labeled.jsonl]` (default: bench/data/prompts_labeled.jsonl,
one `{"prompt": ..., "label": "easy"|"hard"}` per line).

Ranking quality is what the `auto` strategy needs: send the highest-scoring prompts to the strong
model. Printed:
- ROC-AUC of score vs label (probability a random hard prompt outscores a random easy one);
- APGR-like: the area under "quality recovered vs fraction sent to strong", where a hard prompt
  is answered well only by the strong model and an easy one by either, normalized so that random
  routing scores 0.5 and perfect routing approaches 1 (RouteLLM's APGR, with a binary oracle);
- the recovered quality at 20/50/80% sent to strong, and at the default 0.5 threshold.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.figures import emit  # noqa: E402
from llmroute.routing.difficulty import score_difficulty  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parent / "data" / "prompts_labeled.jsonl"


def load(path: Path) -> list[tuple[str, bool]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            rows.append((item["prompt"], item["label"] == "hard"))
    return rows


def roc_auc(scores: list[float], hard: list[bool]) -> float:
    """Mann-Whitney AUC with ties counted as half."""
    pos = [s for s, h in zip(scores, hard) if h]
    neg = [s for s, h in zip(scores, hard) if not h]
    if not pos or not neg:
        raise ValueError("need both easy and hard prompts")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def recovered_curve(scores: list[float], hard: list[bool]) -> list[float]:
    """PGR after sending the top-k prompts (k = 0..n) to the strong model.

    Quality of a routing = fraction of prompts answered well; weak-only answers the easy ones,
    strong-only answers all. PGR = (quality - weak) / (strong - weak) = hard prompts covered /
    all hard prompts. Ties are broken pessimistically (easy first) so the figure is not inflated
    by a constant scorer."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], hard[i]))
    total_hard = sum(hard)
    curve, covered = [0.0], 0
    for i in order:
        covered += hard[i]
        curve.append(covered / total_hard)
    return curve


def apgr(curve: list[float]) -> float:
    """Trapezoidal area under the PGR curve over the fraction sent to strong (0..1)."""
    n = len(curve) - 1
    return sum((curve[k] + curve[k + 1]) / 2 for k in range(n)) / n


def timing_us(prompts: list[str], repeat: int = 20) -> list[float]:
    samples = []
    for _ in range(repeat):
        for prompt in prompts:
            start = time.perf_counter_ns()
            score_difficulty(prompt)
            samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def main(argv: list[str]) -> int:
    argv = [a for a in argv if a != "--quick"]  # already small: same work in CI smoke mode
    path = Path(argv[1]) if len(argv) > 1 else DEFAULT_DATA
    rows = load(path)
    prompts = [p for p, _ in rows]
    hard = [h for _, h in rows]
    results = [score_difficulty(p) for p in prompts]
    scores = [r.score for r in results]

    times = sorted(timing_us(prompts))
    p50 = statistics.median(times)
    p95 = times[int(0.95 * (len(times) - 1))]
    print(f"prompts: {len(rows)} ({sum(hard)} hard, {len(rows) - sum(hard)} easy) from {path}")
    print(f"time per prompt: p50 {p50:.1f} us  p95 {p95:.1f} us  max {times[-1]:.1f} us")
    long_prompt = "\n".join(prompts * 4)[:20000]  # realistic mixed text, past the scan cap
    long_times = sorted(timing_us([long_prompt], repeat=20))
    print(f"long prompt ({len(long_prompt)} chars): p50 {statistics.median(long_times):.1f} us")

    curve = recovered_curve(scores, hard)
    n = len(scores)
    print(f"ROC-AUC: {roc_auc(scores, hard):.3f}")
    emit("difficulty scoring time, p95", p95, "us", "well under 1000")
    emit("difficulty ROC-AUC on bench/data labels", roc_auc(scores, hard), "", "own labels: a regression guard")
    print(f"APGR-like (area under recovered-vs-sent curve): {apgr(curve):.3f} "
          f"(random ~0.5, perfect {apgr(recovered_curve([float(h) for h in hard], hard)):.3f})")
    for frac in (0.2, 0.5, 0.8):
        print(f"  send {frac:.0%} to strong -> recovers {curve[round(frac * n)]:.0%} of the gap")
    sent = [s >= 0.5 for s in scores]
    covered = sum(1 for s, h in zip(sent, hard) if s and h) / sum(hard)
    print(f"  threshold 0.5: sends {sum(sent) / n:.0%} to strong, recovers {covered:.0%}")
    worst_easy = sorted((s, p) for s, p, h in zip(scores, prompts, hard) if not h)[-3:]
    worst_hard = sorted((s, p) for s, p, h in zip(scores, prompts, hard) if h)[:3]
    print("highest-scored easy prompts:")
    for s, p in reversed(worst_easy):
        print(f"  {s:.2f}  {p[:70]!r}")
    print("lowest-scored hard prompts:")
    for s, p in worst_hard:
        print(f"  {s:.2f}  {p[:70]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
