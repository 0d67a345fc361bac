"""Rules engine (SPEC §2.4): every condition, first-match-wins, all-conditions-must-hold."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from llmroute.config.model import Rule, RuleThen, RuleWhen
from llmroute.routing.rules import (
    RuleContext,
    describe_rule,
    hour_in_range,
    match_rule,
    parse_hours,
    rule_matches,
)

TZ = timezone(timedelta(hours=2))
MONDAY_10 = datetime(2024, 6, 3, 10, 30, tzinfo=TZ)  # 2024-06-03 was a Monday


def ctx(prompt="hello", tokens=10, tags=(), now=MONDAY_10, budget_used=None) -> RuleContext:
    return RuleContext(prompt=prompt, tokens=tokens, tags=frozenset(tags), now=now,
                       budget_used=budget_used)


def rule(index=0, **when) -> Rule:
    return Rule(when=RuleWhen(**when), then=RuleThen(tier="large"), index=index)


def at(hour: int, day_offset: int = 0, minute: int = 0) -> datetime:
    return MONDAY_10.replace(hour=hour, minute=minute) + timedelta(days=day_offset)


def test_min_and_max_tokens_are_inclusive():
    assert rule_matches(rule(min_tokens=100), ctx(tokens=100))
    assert not rule_matches(rule(min_tokens=100), ctx(tokens=99))
    assert rule_matches(rule(max_tokens=50), ctx(tokens=50))
    assert not rule_matches(rule(max_tokens=50), ctx(tokens=51))


def test_regex_searches_anywhere_and_honours_flags():
    r = rule(regex=r"(?i)\bprove\b")
    assert rule_matches(r, ctx("Please PROVE this lemma"))
    assert not rule_matches(r, ctx("improve my essay"))


def test_has_code_true_and_false():
    code = "Why does this fail?\n```python\nprint(x)\n```"
    assert rule_matches(rule(has_code=True), ctx(code))
    assert not rule_matches(rule(has_code=True), ctx("write me a poem"))
    assert rule_matches(rule(has_code=False), ctx("write me a poem"))
    assert not rule_matches(rule(has_code=False), ctx(code))


def test_tag():
    assert rule_matches(rule(tag="work"), ctx(tags={"work", "x"}))
    assert not rule_matches(rule(tag="work"), ctx(tags={"home"}))
    assert not rule_matches(rule(tag="work"), ctx())


@pytest.mark.parametrize("hour,minute,expected", [
    (8, 59, False), (9, 0, True), (16, 59, True), (17, 0, False), (12, 0, True),
])
def test_hours_daytime_range(hour, minute, expected):
    assert rule_matches(rule(hours="9-17"), ctx(now=at(hour, minute=minute))) is expected


@pytest.mark.parametrize("hour,expected", [
    (21, False), (22, True), (23, True), (0, True), (6, True), (7, False), (12, False),
])
def test_hours_wrap_past_midnight(hour, expected):
    assert rule_matches(rule(hours="22-07"), ctx(now=at(hour))) is expected


def test_hours_equal_start_end_is_all_day_and_24_is_midnight():
    assert all(hour_in_range(h, "9-9") for h in range(24))
    assert hour_in_range(23, "18-24") and not hour_in_range(0, "18-24")
    assert hour_in_range(0, "0-24")  # 0 == 24 % 24: all day


def test_hours_use_the_context_timezone():
    # 10:30 at UTC+2 is 08:30 UTC: the rule sees the clock it is given (budget timezone).
    assert rule_matches(rule(hours="10-11"), ctx(now=MONDAY_10))
    assert not rule_matches(rule(hours="10-11"), ctx(now=MONDAY_10.astimezone(timezone.utc)))


@pytest.mark.parametrize("spec", ["9", "a-b", "9-25", "-3-4", "", "9to17"])
def test_bad_hours_raise(spec):
    with pytest.raises(ValueError):
        parse_hours(spec)


def test_weekdays_boundaries():
    weekend = rule(weekdays=("sat", "sun"))
    sunday_late = at(23, day_offset=6, minute=59)
    monday_midnight = at(0, day_offset=7)
    saturday_early = at(0, day_offset=5)
    assert rule_matches(weekend, ctx(now=sunday_late))
    assert rule_matches(weekend, ctx(now=saturday_early))
    assert not rule_matches(weekend, ctx(now=monday_midnight))
    assert not rule_matches(weekend, ctx(now=at(23, day_offset=4, minute=59)))  # Friday night
    assert rule_matches(rule(weekdays=("Mon",)), ctx(now=MONDAY_10))  # case-insensitive


def test_budget_used_over_is_strict_and_needs_a_budget():
    r = rule(budget_used_over=0.8)
    assert rule_matches(r, ctx(budget_used=0.81))
    assert not rule_matches(r, ctx(budget_used=0.8))
    assert not rule_matches(r, ctx(budget_used=None))


def test_all_conditions_must_hold():
    r = rule(min_tokens=5, tag="work", hours="9-17", regex="sql")
    assert rule_matches(r, ctx("write sql", tokens=6, tags={"work"}))
    assert not rule_matches(r, ctx("write sql", tokens=4, tags={"work"}))
    assert not rule_matches(r, ctx("write sql", tokens=6, tags=()))
    assert not rule_matches(r, ctx("write sql", tokens=6, tags={"work"}, now=at(18)))
    assert not rule_matches(r, ctx("write css", tokens=6, tags={"work"}))


def test_empty_when_always_matches():
    assert rule_matches(rule(), ctx())


def test_first_match_wins_and_none_when_nothing_matches():
    rules = [rule(0, tag="a"), rule(1, min_tokens=5), rule(2)]
    assert match_rule(rules, ctx(tokens=10)).index == 1
    assert match_rule(rules, ctx(tokens=10, tags={"a"})).index == 0
    assert match_rule(rules[:2], ctx(tokens=1)) is None
    assert match_rule([], ctx()) is None


def test_describe_rule():
    r = Rule(RuleWhen(regex=r"(?i)\b(prove)\b"), RuleThen(tier="large"), index=1)
    assert describe_rule(r) == 'rule #2 (regex "(?i)\\b(prove)\\b") → tier large'
    r = Rule(RuleWhen(min_tokens=8000, has_code=False, weekdays=("sat", "sun"),
                      budget_used_over=0.9, hours="22-07", tag="x", max_tokens=9000),
             RuleThen(route="cheap", strategy="cost", model="openai/gpt-4o"), index=0)
    text = describe_rule(r)
    assert text.startswith("rule #1 (min_tokens 8000, max_tokens 9000, has_code false, tag x, ")
    assert "hours 22-07, weekdays sat,sun, budget_used_over 0.9" in text
    assert text.endswith("→ route cheap, strategy cost, model openai/gpt-4o")
    assert describe_rule(Rule(RuleWhen(), RuleThen())) == "rule #1 (always) → no change"
