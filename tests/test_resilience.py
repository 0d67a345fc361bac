"""The retry/fallback loop: every rule of SPEC §4.1 with an injected sleep and random source."""

from __future__ import annotations

import random

import pytest

from llmroute.errors import ErrorClass, ProviderError
from llmroute.resilience import RetryPolicy, run_with_fallback
from llmroute.routing.plan import Candidate
from llmroute.types import Target


def candidates(*names: str, contexts: dict | None = None) -> list[Candidate]:
    contexts = contexts or {}
    return [Candidate(Target.parse(n), "test", context=contexts.get(n)) for n in names]


class Script:
    """Answers per target from a list of outcomes: an ErrorClass raises, a string answers."""

    def __init__(self, **outcomes):
        self.outcomes = {k.replace("_", "/"): list(v) for k, v in outcomes.items()}
        self.calls: list[str] = []

    def __call__(self, candidate: Candidate, number: int):
        name = candidate.target.id
        self.calls.append(name)
        outcome = self.outcomes[name].pop(0)
        if isinstance(outcome, ProviderError):
            raise outcome
        if isinstance(outcome, ErrorClass):
            raise ProviderError(outcome, outcome.value)
        return outcome


def run(script, cands, policy=RetryPolicy(retries=1, max_attempts=4), **kwargs):
    sleeps: list[float] = []
    outcome = run_with_fallback(cands, script, policy, sleep=sleeps.append, rng=random.Random(1), **kwargs)
    return outcome, sleeps


def test_first_target_answers():
    script = Script(a_m=["hello"])
    outcome, sleeps = run(script, candidates("a/m", "b/m"))
    assert outcome.value == "hello" and outcome.candidate.target.id == "a/m"
    assert script.calls == ["a/m"] and sleeps == []


def test_transient_error_is_retried_on_same_target_with_backoff():
    script = Script(a_m=[ErrorClass.SERVER_ERROR, "ok"])
    outcome, sleeps = run(script, candidates("a/m", "b/m"))
    assert outcome.value == "ok" and script.calls == ["a/m", "a/m"]
    assert len(sleeps) == 1 and 0.375 <= sleeps[0] <= 0.5


def test_retries_exhausted_then_falls_back():
    script = Script(a_m=[ErrorClass.TIMEOUT, ErrorClass.TIMEOUT], b_m=["from b"])
    outcome, _ = run(script, candidates("a/m", "b/m"))
    assert outcome.value == "from b" and script.calls == ["a/m", "a/m", "b/m"]
    assert [f.error.error_class for f in outcome.failures] == [ErrorClass.TIMEOUT, ErrorClass.TIMEOUT]


@pytest.mark.parametrize("error_class", [ErrorClass.AUTH, ErrorClass.NOT_FOUND])
def test_auth_and_not_found_move_on_at_once(error_class):
    script = Script(a_m=[error_class], b_m=["b"])
    outcome, sleeps = run(script, candidates("a/m", "b/m"))
    assert outcome.value == "b" and script.calls == ["a/m", "b/m"] and sleeps == []


def test_bad_request_stops_without_fallback():
    script = Script(a_m=[ErrorClass.BAD_REQUEST], b_m=["never"])
    outcome, _ = run(script, candidates("a/m", "b/m"))
    assert outcome.value is None and outcome.stopped and script.calls == ["a/m"]


def test_short_retry_after_is_honoured():
    error = ProviderError(ErrorClass.RATE_LIMITED, "slow down", http_status=429, retry_after_s=2.0)
    script = Script(a_m=[error, "ok"])
    outcome, sleeps = run(script, candidates("a/m"))
    assert outcome.value == "ok" and sleeps == [2.0]


def test_long_retry_after_moves_on_without_waiting():
    error = ProviderError(ErrorClass.RATE_LIMITED, "slow down", http_status=429, retry_after_s=30.0)
    script = Script(a_m=[error], b_m=["b"])
    outcome, sleeps = run(script, candidates("a/m", "b/m"))
    assert outcome.value == "b" and sleeps == [] and script.calls == ["a/m", "b/m"]


def test_max_attempts_bounds_all_calls():
    script = Script(a_m=[ErrorClass.SERVER_ERROR] * 2, b_m=[ErrorClass.SERVER_ERROR] * 2,
                    c_m=[ErrorClass.SERVER_ERROR] * 2)
    outcome, _ = run(script, candidates("a/m", "b/m", "c/m"), RetryPolicy(retries=1, max_attempts=3))
    assert outcome.value is None and len(script.calls) == 3 and outcome.exhausted


def test_context_length_moves_only_to_larger_context():
    contexts = {"a/m": 8000, "b/m": 4000, "c/m": 128000}
    script = Script(a_m=[ErrorClass.CONTEXT_LENGTH], b_m=["too small"], c_m=["big"])
    outcome, _ = run(script, candidates("a/m", "b/m", "c/m", contexts=contexts))
    assert outcome.value == "big" and script.calls == ["a/m", "c/m"]


def test_may_try_false_skips_candidate():
    script = Script(a_m=["a"], b_m=["b"])
    outcome, _ = run(script, candidates("a/m", "b/m"), may_try=lambda c: c.target.id != "a/m")
    assert outcome.value == "b" and script.calls == ["b/m"]


def test_on_failure_reports_next_step():
    steps = []
    script = Script(a_m=[ErrorClass.SERVER_ERROR, ErrorClass.SERVER_ERROR], b_m=[ErrorClass.BAD_REQUEST])
    run(script, candidates("a/m", "b/m"), on_failure=lambda f, step: steps.append(step))
    assert steps[0].startswith("retry in") and steps[1:] == ["next target", "stop"]


def test_backoff_grows_and_is_capped():
    policy = RetryPolicy(retries=10, base_delay_s=0.5, max_delay_s=8.0)
    rng = random.Random(0)
    delays = [policy.backoff(n, rng) for n in range(1, 8)]
    assert delays[0] <= 0.5 and delays[1] > 0.5 * 0.75 and max(delays) <= 8.0
    assert delays[-1] >= 8.0 * 0.75


# --- empty, invalid_output, interrupted (SPEC §4.1) ----------------------------------------------


def test_empty_answer_is_retried_on_the_same_target_then_moves_on():
    script = Script(a_m=[ErrorClass.EMPTY, ErrorClass.EMPTY], b_m=["from b"])
    outcome, sleeps = run(script, candidates("a/m", "b/m"))
    assert outcome.value == "from b" and outcome.candidate.target.id == "b/m"
    assert script.calls == ["a/m", "a/m", "b/m"] and len(sleeps) == 1
    assert [f.error.error_class for f in outcome.failures] == [ErrorClass.EMPTY, ErrorClass.EMPTY]
    assert not outcome.stopped


def test_empty_answer_then_text_on_retry_answers_from_the_same_target():
    script = Script(a_m=[ErrorClass.EMPTY, "second try"])
    outcome, _ = run(script, candidates("a/m", "b/m"))
    assert outcome.value == "second try" and script.calls == ["a/m", "a/m"]


def test_invalid_output_moves_on_at_once():
    script = Script(a_m=[ErrorClass.INVALID_OUTPUT], b_m=["from b"])
    outcome, sleeps = run(script, candidates("a/m", "b/m"))
    assert outcome.value == "from b" and script.calls == ["a/m", "b/m"] and sleeps == []


def test_interrupted_stops_without_trying_others_and_says_so():
    script = Script(a_m=[ErrorClass.INTERRUPTED], b_m=["never"])
    outcome, sleeps = run(script, candidates("a/m", "b/m"))
    assert outcome.value is None and script.calls == ["a/m"] and sleeps == []
    assert outcome.stopped and outcome.interrupted


def test_a_bad_request_stop_is_not_an_interruption():
    outcome, _ = run(Script(a_m=[ErrorClass.BAD_REQUEST]), candidates("a/m", "b/m"))
    assert outcome.stopped and not outcome.interrupted
