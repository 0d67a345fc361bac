"""Difficulty scorer: ordering sanity, bounds, determinism, explanations, labeled-set AUC."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmroute.routing.difficulty import Difficulty, has_code, score_difficulty

LABELED = Path(__file__).resolve().parent.parent / "bench" / "data" / "prompts_labeled.jsonl"

LONG_CONSTRAINED = (
    "Write a product launch announcement for our new project-management app. It must be exactly "
    "300 words, use a friendly but professional tone, include three bullet points on features, "
    "avoid jargon, mention the pricing of $12 per user per month, and end with a call to action. "
    "Format it in markdown with a title and do not use exclamation marks."
)
CODE_REQUEST = "Write a Python function that parses a CSV file and returns a list of dicts."
CODE_IN_PROMPT = "Why does this crash?\n```python\nfor i in range(10)\n    print(i)\n```"


def test_empty_and_blank_score_zero():
    assert score_difficulty("") == Difficulty(0.0, ())
    assert score_difficulty("   \n").score == 0.0


@pytest.mark.parametrize("hard,easy", [
    ("Prove that the square root of 2 is irrational.", "hi"),
    (CODE_REQUEST, "Hello! How are you?"),
    (LONG_CONSTRAINED, "What is the capital of France?"),
    ("Debug this:\n" + CODE_IN_PROMPT, "Thanks!"),
    ("A shop sells 3 pens for $2. How many pens can Sam buy with $14 if he keeps $2?",
     "Translate 'cat' into Spanish."),
])
def test_ordering_sanity(hard, easy):
    assert score_difficulty(hard).score > score_difficulty(easy).score


def test_default_threshold_separates_clear_cases():
    assert score_difficulty("hi").score < 0.2
    assert score_difficulty("What is the capital of France?").score < 0.5
    assert score_difficulty(
        "Implement a thread-safe LRU cache in Java and prove its operations are O(1)."
    ).score >= 0.5


@pytest.mark.parametrize("prompt", [
    "hi", CODE_REQUEST, LONG_CONSTRAINED, CODE_IN_PROMPT, "x" * 50000,
    "step by step " * 500, "prove integral derivative theorem " * 200, "¿Qué hora es?",
    "证明存在无穷多个素数。", "1 + 1 = 2 " * 300,
])
def test_score_within_bounds_and_deterministic(prompt):
    first = score_difficulty(prompt)
    assert 0.0 <= first.score <= 1.0
    assert score_difficulty(prompt) == first


def test_features_explain_why():
    result = score_difficulty(CODE_REQUEST)
    names = [name for name, _ in result.features]
    assert "code" in names
    assert result.features == tuple(sorted(result.features, key=lambda f: -abs(f[1])))
    line = result.explain()
    assert line.startswith(f"difficulty {result.score:.2f} (") and "code +" in line
    math = dict(score_difficulty("Evaluate the integral of x^2 * e^x dx.").features)
    assert math["math"] > 0
    assert Difficulty(0.0).explain() == "difficulty 0.00"


def test_trivial_and_factoid_features_lower_the_score():
    assert dict(score_difficulty("hi").features)["trivial"] < 0
    assert dict(score_difficulty("Who wrote Hamlet?").features)["factoid"] < 0


def test_system_prompt_counts():
    base = score_difficulty("Answer the question.")
    with_system = score_difficulty("Answer the question.", system=LONG_CONSTRAINED)
    assert with_system.score > base.score


def test_long_prompts_are_capped_but_see_head_and_tail():
    filler = "lorem ipsum dolor sit amet " * 4000
    tail_code = score_difficulty(filler + "\n" + CODE_IN_PROMPT)
    assert "code" in dict(tail_code.features)
    middle_code = score_difficulty(filler + CODE_IN_PROMPT + filler)
    assert "code" not in dict(middle_code.features)  # middle of a huge prompt is not scanned


def test_has_code():
    assert has_code(CODE_IN_PROMPT)
    assert has_code("Traceback (most recent call last):\n  File \"a.py\", line 3, in <module>")
    assert has_code("int main() {\n  return 0;\n}")
    assert not has_code(CODE_REQUEST)  # asking for code is not containing code
    assert not has_code("From now on, import more coffee.\nReturn the books by Friday.")
    assert not has_code("")


def _auc(scores: list[float], labels: list[bool]) -> float:
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_auc_on_labeled_prompts_regression_guard():
    rows = [json.loads(line) for line in LABELED.read_text(encoding="utf-8").splitlines() if line]
    assert len(rows) >= 100
    scores = [score_difficulty(r["prompt"]).score for r in rows]
    labels = [r["label"] == "hard" for r in rows]
    assert _auc(scores, labels) > 0.85


def test_specific_knowledge_outranks_common_knowledge():
    obscure = "Which Habsburg archduke founded the University of Vienna, and in what year?"
    common = "What is the capital of France?"
    assert score_difficulty(obscure).score > score_difficulty(common).score
    assert dict(score_difficulty(obscure).features)["specific"] > \
        dict(score_difficulty(common).features).get("specific", 0.0)  # "France" is a name too


def test_weekdays_months_and_sentence_starts_are_not_names():
    assert "specific" not in dict(score_difficulty(
        "Can you move our meeting from Monday to Friday? We planned it in March.").features)
    assert "specific" not in dict(score_difficulty("Thanks. Good night! See you soon.").features)


def test_route_eval_set_is_split_and_labelled():
    rows = [json.loads(line) for line in (LABELED.parent / "route_eval.jsonl").read_text(encoding="utf-8").splitlines() if line]
    assert len(rows) >= 150
    assert {r["split"] for r in rows} == {"tune", "test"} and {r["needs"] for r in rows} == {"small", "large"}
    assert {r["category"] for r in rows} == {"knowledge", "maths", "chat", "code"}


def test_one_operator_arithmetic_is_not_mathematics():
    assert "math" not in dict(score_difficulty("What is 15 + 27?").features)
    assert score_difficulty("What is 15 + 27?").score < \
        score_difficulty("What is the remainder when 2^100 is divided by 7?").score


def test_word_problems_grow_harder_with_their_quantities():
    one_step = "Sam has 5 candies and gets 4 more. How many does he have?"
    multi_step = ("A baker makes 3 batches of 24 muffins. She sells 5/8 of them in the morning and "
                  "a third of the rest after lunch. How many muffins are left?")
    spelled = "The average of five numbers is 18. Removing one leaves an average of 16. What was it?"
    one, multi = (dict(score_difficulty(p).features).get("math", 0.0) for p in (one_step, multi_step))
    assert multi > one > 0
    assert dict(score_difficulty(spelled).features).get("math", 0.0) >= one  # "five" is a quantity
    assert "math" in dict(score_difficulty(
        "A jacket is discounted 20%, then 8% tax is added. What is the final price of a $50 jacket?").features)


def test_a_school_class_is_not_code_and_a_language_name_alone_is_a_small_signal():
    assert "code" not in dict(score_difficulty(
        "In a class of 30 pupils, how many are left if 12 go home?").features)
    textbook = dict(score_difficulty("How do I print hello world in Java?").features)
    systems = dict(score_difficulty(
        "Implement a lock-free ring buffer in C++ with atomic head and tail indices for one "
        "producer and one consumer.").features)
    assert 0 < textbook["code"] < 0.36 * 1.45 / 2
    assert textbook["how-to"] < 0
    assert systems["domain"] > 0  # lock-free, atomic: expert programming concepts
    assert score_difficulty("How do I print hello world in Java?").score < 0.5 <= \
        score_difficulty("Implement a lock-free ring buffer in C++ with atomic head and tail "
                         "indices for one producer and one consumer.").score


def test_technical_length_counts_more_than_chat_length():
    chat = "Write a thank-you note to my aunt for the lovely sweater she knitted for my birthday."
    code = "Write a Python function that retries a request with exponential backoff and jitter."
    assert dict(score_difficulty(code).features)["length"] > dict(score_difficulty(chat).features)["length"]
