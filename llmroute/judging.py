"""Judging two answers to one request: the judge's prompt, its verdict, and a person's blind
verdict at the terminal (SPEC §8).

`abtest`, sampled A/B and `compare --judge` all judge pairs the same way: the judge sees both
answers twice, once in each order, and a pair is a win only when both orders agree (else a
tie), which cancels the position bias judges are known for.
"""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from .types import Message, Request, Target

if TYPE_CHECKING:
    from .compare import Caller

JUDGE_MAX_TOKENS = 16

JUDGE_TEMPLATE = """You are an impartial judge. Compare two answers to the same request and decide which one is better: more correct, more helpful, clearer. Ignore the order in which they are shown and their length unless length matters to the request.

[Request]
{question}

[Answer A]
{first}

[Answer B]
{second}
[End]

Answer with exactly one word: A, B or TIE."""

_VERDICT = re.compile(r"^[\s\"'*`_(\[]*(TIE|A|B)\b", re.I)


def judge_prompt(question: str, first: str, second: str) -> str:
    return JUDGE_TEMPLATE.format(question=question.strip(), first=first.strip(), second=second.strip())


def parse_verdict(text: str) -> str | None:
    """`A`, `B` or `TIE` from a judge's reply (tolerating quotes, markdown and a trailing
    explanation); None when the reply is not a verdict."""
    match = _VERDICT.match(text or "")
    return match.group(1).upper() if match else None


def combine(first_order: str | None, swapped: str | None) -> str:
    """The pair's outcome ("a", "b" or "tie") from the verdict with a shown first and the
    verdict with b shown first. Only agreement makes a winner."""
    one = {"A": "a", "B": "b"}.get(first_order or "")
    two = {"A": "b", "B": "a"}.get(swapped or "")
    return one if one is not None and one == two else "tie"


@dataclass
class Verdict:
    outcome: str | None  # a | b | tie; None when a judge call failed
    raw: tuple[str | None, str | None] = (None, None)


def judge_request(question: Request, first: str, second: str) -> Request:
    text = judge_prompt(question.prompt_text, first, second)
    return Request(messages=(Message("user", text),), max_tokens=JUDGE_MAX_TOKENS, temperature=0.0)


async def judge_pair(caller: Caller, judge: Target, question: Request, text_a: str, text_b: str,
                     extra: dict) -> Verdict:
    """Ask the judge in both orders at once and combine the two verdicts."""
    calls = await asyncio.gather(
        caller.call(judge, judge_request(question, text_a, text_b), kind="judge", extra=extra),
        caller.call(judge, judge_request(question, text_b, text_a), kind="judge", extra=extra),
    )
    if not all(c.ok for c in calls):
        return Verdict(None)
    raw = (parse_verdict(calls[0].text), parse_verdict(calls[1].text))
    return Verdict(combine(*raw), raw)


def manual_verdict(question: str, text_a: str, text_b: str, *, ask: Callable[[str], str],
                   show: Callable[[str], None], rng: random.Random) -> str | None:
    """A person judges blind: the two answers in a random order as [1] and [2]. Returns a, b,
    tie, or None to skip."""
    flipped = rng.random() < 0.5
    first, second = (text_b, text_a) if flipped else (text_a, text_b)
    show(f"\n=== Request ===\n{question.strip()}\n\n=== [1] ===\n{first.strip()}\n\n=== [2] ===\n{second.strip()}\n")
    while True:
        reply = ask("Which is better? 1, 2, t (tie) or s (skip)").strip().lower()
        if reply in ("1", "2"):
            picked_first = reply == "1"
            return "a" if picked_first != flipped else "b"
        if reply in ("t", "tie"):
            return "tie"
        if reply in ("s", "skip"):
            return None
        show("please type 1, 2, t or s")


# --- running ---------------------------------------------------------------------------------
