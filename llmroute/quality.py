"""Quality scores from A/B verdicts and people's feedback (SPEC §8, §2.3 `quality`/`auto`).

Evidence comes in two shapes and both are pairwise games:
- a judged pair (abtest run, sampled A/B, compare --judge): target a against target b, scored
  1 / 0.5 / 0 for a win / tie / loss;
- a thumbs up or down (`llmroute feedback`): a win or a loss against a virtual baseline (the
  same baseline `stats.bradley_terry` shrinks everyone toward), so one person's verdicts move a
  score without a second target.

Scores are Bradley–Terry strengths mapped to 0–10 (`stats.strength_to_score`; the baseline is
5). The evidence count is the number of real games a target took part in; the strategies use
the score in place of the config prior once it reaches `ENOUGH_EVIDENCE`.

Storage: `state/quality.json` holds aggregated pair counts (one entry per unordered pair, so it
stays small however many pairs are judged); `state/feedback.json` holds one vote per request
id, so changing one's mind replaces a vote instead of counting twice. After every change the
scores are recomputed and published to the routing memory (`state/routing.json`, section
`quality`), which is where the `quality` and `auto` strategies and `llmroute models` read them.
With `state.backend: redis` all three live on the team's Redis instead (`document_store`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from .routing.strategies import MIN_QUALITY_EVIDENCE
from .state import sections
from .stats import BASELINE, Game, bradley_terry, strength_to_score

if TYPE_CHECKING:
    from .routing.learner import Learner
    from .routing.memory import RoutingMemory

ENOUGH_EVIDENCE = MIN_QUALITY_EVIDENCE
OUTCOMES = ("a", "b", "tie")
VOTES = ("up", "down")


class QualityStore:
    """Pairwise outcomes and feedback votes, and the per-target scores they imply."""

    def __init__(self, state_dir: Path, *, clock: Callable[[], float] = time.time,
                 memory: "RoutingMemory | None" = None):
        """`memory` is the routing memory the scores are published to (the engine's: on Redis
        for `state.backend: redis`); the evidence lives beside it (`document_store`), so on Redis
        every machine learns from every machine's verdicts."""
        from .routing.memory import RoutingMemory

        self.clock = clock
        self.state_dir = Path(state_dir)
        self.memory = memory if memory is not None else RoutingMemory(self.state_dir, clock=clock)
        # Sections of the wrong type mean a damaged file (moved aside, started afresh); damaged
        # entries inside a section are skipped one by one (`_is_counts`, `_votes`).
        self.pairs = self.memory.document_store("quality", sections(pairs=dict))
        self.votes = self.memory.document_store("feedback", sections(votes=dict))

    def record_pair(self, a: str, b: str, outcome: str, prompt: str | None = None) -> None:
        """One judged pair: `outcome` is "a" (a won), "b" (b won) or "tie". With the `prompt`,
        a decided pair also teaches the per-prompt learner (`routing/learner.py`); a tie (which
        is also what an order disagreement becomes) teaches it nothing."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
        if a == b:
            return
        if prompt is not None and outcome != "tie":
            winner, loser = (a, b) if outcome == "a" else (b, a)
            self._learner().record(winner, loser, prompt)
        first, second = sorted((a, b))
        if first != a:
            outcome = {"a": "b", "b": "a", "tie": "tie"}[outcome]
        with self.pairs.update() as doc:
            pairs = doc.setdefault("pairs", {})
            counts = pairs.get(f"{first}\t{second}")
            counts = counts if _is_counts(counts) else [0, 0, 0]
            counts[OUTCOMES.index(outcome)] += 1
            pairs[f"{first}\t{second}"] = counts
        self.publish()

    def record_feedback(self, request_id: str, target: str, vote: str, prompt: str | None = None) -> None:
        """A person's thumbs up/down on one answer; a later vote on the same request replaces it.
        With the answer's `prompt` (stored in the ledger under `ledger.log_prompts`) the vote
        also teaches the per-prompt learner, as a game against its baseline."""
        if vote not in VOTES:
            raise ValueError(f"vote must be up or down, got {vote!r}")
        if prompt is not None:
            self._learner().record_feedback(target, vote, prompt)
        with self.votes.update() as doc:
            doc.setdefault("votes", {})[request_id] = {"target": target, "vote": vote, "ts": self.clock()}
        self.publish()

    def _learner(self) -> "Learner":
        from .routing.learner import Learner

        return Learner(self.state_dir, clock=self.clock, memory=self.memory)

    def publish(self) -> None:
        """Recompute every score and hand them to the routing memory, which the planner
        already reads once per prompt: planning never pays for Bradley–Terry."""
        self.memory.replace_quality(self.scores())

    def feedback_counts(self) -> dict[str, tuple[int, int]]:
        """{target: (ups, downs)}."""
        counts: dict[str, list[int]] = {}
        for vote in _votes(self.votes.read()):
            entry = counts.setdefault(vote["target"], [0, 0])
            entry[0 if vote["vote"] == "up" else 1] += 1
        return {target: (up, down) for target, (up, down) in counts.items()}

    def games(self) -> list[Game]:
        """Every piece of evidence as (player, opponent, score of player)."""
        games: list[Game] = []
        for key, counts in (self.pairs.read().get("pairs") or {}).items():
            a, _, b = key.partition("\t")
            if not b or not _is_counts(counts):
                continue
            games += [(a, b, 1.0)] * counts[0] + [(a, b, 0.0)] * counts[1] + [(a, b, 0.5)] * counts[2]
        for vote in _votes(self.votes.read()):
            games.append((vote["target"], BASELINE, 1.0 if vote["vote"] == "up" else 0.0))
        return games

    def scores(self) -> dict[str, tuple[float, int]]:
        """{target_id: (score 0–10, evidence count)} for every target with any evidence."""
        games = self.games()
        evidence: dict[str, int] = {}
        for player, opponent, _ in games:
            for who in (player, opponent):
                if who != BASELINE:
                    evidence[who] = evidence.get(who, 0) + 1
        strengths = bradley_terry(games)
        return {t: (round(strength_to_score(s), 3), evidence[t]) for t, s in strengths.items()}


def has_enough_evidence(count: int) -> bool:
    return count >= ENOUGH_EVIDENCE


def _is_counts(value: object) -> bool:
    return (isinstance(value, list) and len(value) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value))


def _votes(doc: dict) -> Iterator[dict]:
    for vote in (doc.get("votes") or {}).values():
        if isinstance(vote, dict) and isinstance(vote.get("target"), str) and vote.get("vote") in VOTES:
            yield vote


# --- finding the answer a vote is about -------------------------------------------------------

def find_answer(ledger_path: Path, request_id: str | None) -> tuple[str, str] | None:
    """(request_id, target) of the answer a `feedback` vote is about, searching the ledger from
    its end (`ledger.reader.reverse_calls`).

    `request_id` None means the most recent successful `kind: ask` record; otherwise the
    successful record of that request (its answering target). None when not found."""
    from .ledger.reader import reverse_calls

    for call in reverse_calls(Path(ledger_path)):
        if call.status != "ok" or not call.target:
            continue
        if request_id is None and call.kind == "ask":
            return str(call.request_id), call.target
        if request_id is not None and call.request_id == request_id:
            return request_id, call.target
    return None


def find_prompt(ledger_path: Path, request_id: str) -> str | None:
    """The prompt text of a request's successful answer, when `ledger.log_prompts` stored it."""
    from .ledger.reader import LogCall, reverse_calls

    for call in reverse_calls(Path(ledger_path), kind=LogCall):
        if call.request_id == request_id and call.status == "ok":
            return call.prompt
    return None
