"""Sampled A/B inside ordinary use (SPEC §8): now and then, also ask the other target.

The CLI calls `decide_sample` BEFORE the routed call, so the routed answer's records carry the
`ab_id` too (through `AskOptions.extra_record`), then `start_sample` once it has the answer. A
prompt is sampled when `abtest.sample_rate` > 0, the pair is configured, the prompt has at least
`abtest.min_tokens` tokens, and a draw from the injected random source falls under the rate.
The second call also needs the routed answer to come from one of the pair and the budget to
accept a reservation for its worst case; a refused reservation means no call at all. It is the
identical request, a ledger record `kind: abtest` with the same `ab_id`. With `abtest.judge`
the pair is judged at once (both orders); otherwise it waits in `state/abtest_pending.json`
(question and both answers, kept in the private data dir) for `llmroute abtest judge`.

The user must not wait for the second call (`$(llmroute …)` returns when the answer is out), so
`start_sample` runs in the user's process only up to the reservation: it reserves the second
call's worst case, writes a job (a 0600 JSON file under `state/sampled/`: the request, the
routed answer, the target, the reservation, which config to use) and starts
`python -m llmroute.sampling_worker JOB` in a new session with its stdio on /dev/null, so it
holds neither the terminal nor the caller's pipes, then hands the reservation over to it
(`BudgetGuard.hand_over`). The worker (`resume_sample`) sends the call with that reservation,
records, judges or queues, and settles or releases it; if it is killed, the reservation expires
with it as every reservation of a dead process does. `run_sample` does the same in-process.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
import uuid
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

from .abtest import ABTestStore, ManualJudge, PairResult
from .calls import Call, CallSite
from .judging import judge_pair, manual_verdict
from .compare import Caller, CallResult, shared_client
from .quality import QualityStore
from .state import StateStore, sections
from .tokens import estimate_tokens
from .types import Answer, Message, Request, Target

if TYPE_CHECKING:
    import httpx

    from .config.model import Config
    from .engine import AskOptions, Engine
    from .paths import Paths

MAX_PENDING = 1000  # oldest pending pairs drop off first
TAGS = ("abtest:sampled",)
JOB_DIR = "sampled"  # under the state dir: jobs handed to background workers
JOB_VERSION = 1


def sampled_name(a: Target, b: Target) -> str:
    """The test name sampled pairs are stored under (one per configured pair)."""
    return f"sampled:{a.id}:{b.id}"


def decide_sample(config: "Config", request: Request, rng: random.Random) -> str | None:
    """An `ab_id` when this prompt should be sampled, else None. Draws from `rng` only when
    every other condition holds, so sampling off never consumes randomness."""
    ab = config.abtest
    if ab.sample_rate <= 0 or len(ab.targets) != 2 or ab.targets[0] == ab.targets[1]:
        return None
    if estimate_tokens(request.prompt_text) < ab.min_tokens:
        return None
    if rng.random() >= ab.sample_rate:
        return None
    return uuid.uuid4().hex


@dataclass
class SampleOutcome:
    ab_id: str
    other: CallResult
    outcome: str | None  # a | b | tie once judged; None = queued or not judged
    queued: bool


def other_target(config: "Config", answer: Answer) -> Target | None:
    """The target of the pair that did not answer; None when the answer is not from the pair."""
    pair = config.abtest.targets
    if len(pair) != 2 or answer.target not in pair:
        return None
    return pair[1] if answer.target == pair[0] else pair[0]


def run_sample(engine: "Engine", request: Request, answer: Answer, ab_id: str, *,
               aclient: "httpx.AsyncClient | None" = None) -> SampleOutcome | None:
    """Send the identical request to the other target of the pair and judge or queue the pair,
    in this process. None when nothing was sent (the answer is not from the pair, or the budget
    said no)."""
    other = other_target(engine.config, answer)
    if other is None:
        return None
    call = _prepare(engine, request, other, ab_id)
    if call is None:
        return None
    a, b = engine.config.abtest.targets
    return asyncio.run(_complete(engine, call, _routed(answer), (a, b), engine.config.abtest.judge, aclient))


def maybe_sample(engine: "Engine", request: Request, answer: Answer, options: "AskOptions",
                 config: "Config", rng: random.Random, *,
                 aclient: "httpx.AsyncClient | None" = None) -> str | None:
    """One call for callers that did not decide before the routed call: use the `ab_id` the
    options carry, else decide now (the routed answer's records then lack the id). Returns the
    `ab_id` when the second call ran."""
    ab_id = options.extra_record.get("ab_id") or decide_sample(config, request, rng)
    if not ab_id:
        return None
    outcome = run_sample(engine, request, answer, ab_id, aclient=aclient)
    return outcome.ab_id if outcome is not None and outcome.other.status != "skipped" else None


# --- the background second call ------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigFile:
    """Which config a worker loads: the file the user's process read (absolute; None = the
    built-in default config), and whether it is a project config, which the worker reads only
    while the trust record still matches it (SPEC §1.1)."""

    path: str | None
    project: bool = False

    @classmethod
    def of(cls, config: "Config", explicit: str | None, env: Mapping[str, str], cwd: Path,
           paths: "Paths") -> "ConfigFile":
        """For the config the CLI loaded with these discovery inputs (`--config`, environment,
        working directory)."""
        from .paths import find_config

        if config.source is None:
            return cls(None)
        source = os.path.abspath(config.source)
        choice = find_config(explicit, env, cwd, paths)
        project = (choice.origin == "project" and choice.path is not None
                   and os.path.abspath(choice.path) == source)
        return cls(source, project)


@dataclass(frozen=True)
class Started:
    """A second call handed to a background worker."""

    ab_id: str
    target: Target
    pid: int
    job: Path


Spawn = Callable[[Path, "Mapping[str, str] | None"], int]
_WORKERS: list = []  # the workers this process started (subprocess.Popen)


def spawn_worker(job: Path, env: Mapping[str, str] | None = None) -> int:
    """Start the worker for `job`, detached: a new session (no terminal, no signals from the
    user's Ctrl-C) and stdio on /dev/null, so it holds none of the caller's pipes open. Returns
    its process id."""
    import subprocess

    process = subprocess.Popen(
        [sys.executable, "-m", "llmroute.sampling_worker", str(job)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True, env=dict(env) if env is not None else None)
    # Never waited for; kept so that a long-lived process reaps the finished ones (a zombie
    # would look alive to the budget guard and hold its reservation until MAX_AGE_S).
    _WORKERS[:] = [p for p in _WORKERS if p.poll() is None] + [process]
    return process.pid


def start_sample(engine: "Engine", request: Request, answer: Answer, ab_id: str, *,
                 config_file: ConfigFile, env: Mapping[str, str] | None = None,
                 spawn: Spawn = spawn_worker) -> Started | None:
    """Reserve the second call here, then hand it to a background worker (module docstring).
    None when nothing is to be sent (the answer is not from the pair, or the budget said no)."""
    other = other_target(engine.config, answer)
    if other is None:
        return None
    call = _prepare(engine, request, other, ab_id)
    if call is None:
        return None
    a, b = engine.config.abtest.targets
    judge = engine.config.abtest.judge
    job = {
        "v": JOB_VERSION, "ab_id": ab_id,
        "paths": {"data": str(engine.paths.data_dir), "config": str(engine.paths.config_dir)},
        "config": {"path": config_file.path, "project": config_file.project},
        "request": _request_json(request), "other": other.id, "request_id": call.site.request_id,
        "extra": dict(call.site.extra), "pair": [a.id, b.id], "judge": judge.id if judge else None,
        "routed": _routed(answer).to_json(),
        "handle": asdict(call.handle) if is_dataclass(call.handle) else None,
        "tokens_reserved": call.tokens_reserved,
    }
    from .paths import write_private

    path = engine.paths.state_dir / JOB_DIR / f"{ab_id}.json"
    try:
        write_private(path, json.dumps(job, ensure_ascii=False))
        pid = spawn(path, env)
    except BaseException:
        engine.bookkeep(call.release)
        path.unlink(missing_ok=True)
        raise
    hand_over = getattr(engine.budget, "hand_over", None)
    if call.handle is not None and hand_over is not None:
        engine.bookkeep(lambda: hand_over(call.handle, pid))
    return Started(ab_id, other, pid, path)


def read_job(path: Path) -> dict:
    """A worker's job, removed from disk once read (it holds the prompt and an answer)."""
    try:
        job = json.loads(Path(path).read_text(encoding="utf-8"))
    finally:
        Path(path).unlink(missing_ok=True)
    if not isinstance(job, dict) or job.get("v") != JOB_VERSION:
        raise ValueError(f"{path}: not a sampled A/B job")
    return job


def resume_sample(engine: "Engine", job: dict, *,
                  aclient: "httpx.AsyncClient | None" = None) -> SampleOutcome | None:
    """The worker's part: send the job's call under the reservation the user's process made,
    then judge or queue the pair. None when the target is no longer in the config (the
    reservation is then released unsent)."""
    request = _request_from(job["request"])
    other = Target.parse(job["other"])
    site = CallSite(request, kind="abtest", tags=TAGS, extra=job["extra"], request_id=job["request_id"])
    call = Call(engine, site, other)
    call.handle = _handle_from(engine, job.get("handle"))
    call.tokens_reserved = int(job.get("tokens_reserved") or 0)
    if engine.config.providers.get(other.provider) is None or engine.config.model(other) is None:
        engine.bookkeep(call.release)
        return None
    a, b = (Target.parse(t) for t in job["pair"])
    judge = Target.parse(job["judge"]) if job.get("judge") else None
    return asyncio.run(_complete(engine, call, _result_from(job["routed"]), (a, b), judge, aclient))


def _handle_from(engine: "Engine", raw: object) -> object | None:
    if not isinstance(raw, dict) or engine.budget is None:
        return None  # nothing reserved, or no budget here: a stale reservation expires with us
    from .budget.guard import Handle

    return Handle(raw.get("id"), str(raw.get("target")), str(raw.get("provider")))


def _request_json(request: Request) -> dict:
    return {"messages": [[m.role, m.content] for m in request.messages], "system": request.system,
            "max_tokens": request.max_tokens, "temperature": request.temperature}


def _request_from(raw: dict) -> Request:
    return Request(messages=tuple(Message(role, content) for role, content in raw["messages"]),
                   system=raw.get("system"), max_tokens=int(raw["max_tokens"]),
                   temperature=raw.get("temperature"))


def _result_from(raw: dict) -> CallResult:
    return CallResult(Target.parse(raw["target"]), raw["status"], raw["request_id"], raw["text"],
                      int(raw["latency_ms"]), int(raw["input_tokens"]), int(raw["output_tokens"]),
                      raw.get("cost_usd"))


# --- the second call and its pair ------------------------------------------------------------------


def _prepare(engine: "Engine", request: Request, other: Target, ab_id: str) -> Call | None:
    """The second call, reserved; None when it may not go (no key, no price, budget)."""
    a, b = engine.config.abtest.targets
    extra = {"ab_id": ab_id, "abtest": sampled_name(a, b)}
    prepared = Caller(engine, None, tags=TAGS).prepare(other, request, kind="abtest", extra=extra)  # type: ignore[arg-type]
    return None if isinstance(prepared, CallResult) else prepared


def _routed(answer: Answer) -> CallResult:
    return CallResult(answer.target, "ok", answer.request_id, answer.text, answer.latency_ms,
                      answer.usage.input_tokens if answer.usage else 0,
                      answer.usage.output_tokens if answer.usage else 0, answer.cost_usd)


async def _complete(engine: "Engine", call: Call, routed: CallResult, pair: tuple[Target, Target],
                    judge: Target | None, aclient) -> SampleOutcome:
    """Send the reserved second call, then judge the pair (or queue it for a judge)."""
    a, b = pair
    ab_id = str(call.site.extra["ab_id"])
    request = call.site.request
    async with shared_client(aclient) as client:
        caller = Caller(engine, client, tags=TAGS)
        result = await caller.send(call)
        if not result.ok:
            return SampleOutcome(ab_id, result, None, False)
        results = (routed, result) if routed.target == a else (result, routed)
        pair_result = PairResult(ab_id, results[0], results[1], None)
        if judge is None:
            PendingStore(engine.paths.state_dir, clock=engine.clock).add(request, pair_result)
            return SampleOutcome(ab_id, result, None, True)
        verdict = await judge_pair(caller, judge, request, pair_result.a.text, pair_result.b.text,
                                   dict(call.site.extra))
    if verdict.outcome is None:  # the judge failed: keep the pair for `abtest judge`
        PendingStore(engine.paths.state_dir, clock=engine.clock).add(request, pair_result)
        return SampleOutcome(ab_id, result, None, True)
    pair_result.outcome = verdict.outcome
    _store(engine, a, b, [pair_result], request.prompt_text)
    return SampleOutcome(ab_id, result, pair_result.outcome, False)


def _store(engine: "Engine", a: Target, b: Target, pairs: list[PairResult], prompt: str | None) -> None:
    ABTestStore(engine.paths.state_dir, clock=engine.clock).add(sampled_name(a, b), a, b, pairs)
    quality = QualityStore(engine.paths.state_dir, clock=engine.clock, memory=engine.memory)
    for pair in pairs:
        if pair.outcome is not None:
            quality.record_pair(a.id, b.id, pair.outcome, prompt=prompt)


class PendingStore:
    """Sampled pairs waiting for a judge (`state/abtest_pending.json`)."""

    def __init__(self, state_dir: Path, *, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.store = StateStore(Path(state_dir) / "abtest_pending.json", clock=clock,
                                valid=sections(pairs=dict))

    def add(self, request: Request, pair: PairResult) -> None:
        entry = {
            "ts": self.clock(), "a": pair.a.target.id, "b": pair.b.target.id,
            "system": request.system, "prompt": "\n".join(m.content for m in request.messages if m.role == "user"),
            "max_tokens": request.max_tokens, "temperature": request.temperature,
            "text_a": pair.a.text, "text_b": pair.b.text,
            "la": pair.a.latency_ms, "lb": pair.b.latency_ms, "ca": pair.a.cost_usd, "cb": pair.b.cost_usd,
        }
        with self.store.update() as doc:
            pending = doc.setdefault("pairs", {})
            pending[pair.ab_id] = entry
            for stale in sorted(pending, key=lambda k: pending[k].get("ts", 0))[:-MAX_PENDING]:
                del pending[stale]

    def items(self) -> dict[str, dict]:
        pending = self.store.read().get("pairs") or {}
        return {k: v for k, v in pending.items() if isinstance(v, dict)
                and all(isinstance(v.get(f), str) for f in ("a", "b", "prompt", "text_a", "text_b"))}

    def remove(self, ab_ids: list[str]) -> None:
        with self.store.update() as doc:
            pending = doc.setdefault("pairs", {})
            for ab_id in ab_ids:
                pending.pop(ab_id, None)


def judge_pending(engine: "Engine", *, judge: Target | None = None, manual: ManualJudge | None = None,
                  aclient: "httpx.AsyncClient | None" = None) -> list[PairResult]:
    """Judge every pending sampled pair; judged ones leave the queue and join the results."""
    pending = PendingStore(engine.paths.state_dir, clock=engine.clock)
    items = pending.items()
    if not items:
        return []
    if manual is not None:
        verdicts = {k: manual_verdict(v["prompt"], v["text_a"], v["text_b"], ask=manual.ask,
                                      show=manual.show, rng=manual.rng) for k, v in items.items()}
    else:
        verdicts = asyncio.run(_judge_all(engine, judge, items, aclient))
    done: list[PairResult] = []
    for ab_id, outcome in verdicts.items():
        if outcome is None:
            continue
        v = items[ab_id]
        a, b = Target.parse(v["a"]), Target.parse(v["b"])
        pair = PairResult(ab_id, CallResult(a, "ok", "", v["text_a"], v.get("la") or 0, cost_usd=v.get("ca")),
                          CallResult(b, "ok", "", v["text_b"], v.get("lb") or 0, cost_usd=v.get("cb")), outcome)
        _store(engine, a, b, [pair], v.get("prompt"))
        done.append(pair)
    pending.remove([p.ab_id for p in done])
    return done


async def _judge_all(engine: "Engine", judge: Target, items: dict[str, dict], aclient) -> dict[str, str | None]:
    async with shared_client(aclient) as client:
        caller = Caller(engine, client, tags=("abtest:sampled",))

        async def one(ab_id: str, v: dict) -> str | None:
            a, b = Target.parse(v["a"]), Target.parse(v["b"])
            request = Request(messages=(Message("user", v["prompt"]),), system=v.get("system"))
            extra = {"ab_id": ab_id, "abtest": sampled_name(a, b)}
            return (await judge_pair(caller, judge, request, v["text_a"], v["text_b"], extra)).outcome

        outcomes = await asyncio.gather(*(one(k, v) for k, v in items.items()))
    return dict(zip(items, outcomes))
