"""`llmroute abtest run|report|judge` and `llmroute feedback` (SPEC §8)."""

from __future__ import annotations

import sys

import click

from .completers import complete_feedback, complete_target
from .context import AppContext


@click.group("abtest")
def abtest_group() -> None:
    """Run and report A/B tests between two targets."""


@abtest_group.command("run")
@click.option("-a", "target_a", required=True, metavar="TARGET", shell_complete=complete_target, help="Target A.")
@click.option("-b", "target_b", required=True, metavar="TARGET", shell_complete=complete_target, help="Target B.")
@click.option("--prompts", default="-", show_default=True, metavar="FILE|-", help="One prompt per line, or JSONL with `prompt`.")
@click.option("--judge", metavar="TARGET", shell_complete=complete_target,
              help="The target that judges each pair (default: abtest.judge).")
@click.option("--manual", is_flag=True, help="Judge each pair yourself at the terminal.")
@click.option("--name", default="default", show_default=True, help="Test name the results are kept under.")
@click.option("-P", "--concurrency", type=click.IntRange(1, 64), default=4, show_default=True, help="Prompts at a time.")
@click.option("-s", "--system", metavar="TEXT", help="System prompt for both targets.")
@click.option("--max-tokens", type=click.IntRange(min=1), help="Max output tokens per answer.")
@click.option("--temperature", type=click.FloatRange(0, 2))
@click.option("--timeout", type=click.FloatRange(min=0.1), metavar="S", help="Seconds per call.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--config", "config_path", metavar="PATH", help="Config file.")
@click.pass_context
def run_command(ctx, target_a, target_b, prompts, judge, manual, name, concurrency, system, max_tokens,
                temperature, timeout, as_json, config_path) -> None:
    """Both targets answer every prompt; each pair is judged in both orders."""
    from ..abtest import ABTestStore, run_abtest, summarize
    from ..errors import UsageError
    from ..types import Message, Request
    from .compare_cmd import resolve_or_fail

    app: AppContext = ctx.obj
    if config_path:
        app.config_path_option = config_path
    config = app.load_config()
    a, b = resolve_or_fail(config, target_a, "-a"), resolve_or_fail(config, target_b, "-b")
    if a == b:
        raise UsageError("-a and -b name the same target")
    if manual and prompts == "-":
        raise UsageError("--manual reads your verdicts from the terminal", "give the prompts with --prompts FILE")
    judge_target = None if manual else _judge_target(config, judge)
    texts = read_prompts(prompts)
    requests = [Request(messages=(Message("user", t),), system=system,
                        max_tokens=max_tokens or config.defaults.max_tokens,
                        temperature=temperature if temperature is not None else config.defaults.temperature)
                for t in texts]
    engine = app.engine(config)
    try:
        run_abtest(engine, a, b, requests, name=name, judge=judge_target,
                   manual=_manual(engine) if manual else None, concurrency=concurrency, timeout=timeout,
                   on_pair=_progress(len(requests)))
    finally:
        engine.close()
    test = ABTestStore(app.paths.state_dir).tests()[name]
    _print_reports(app, [summarize(name, test)], as_json)


def _judge_target(config, judge: str | None):
    from ..errors import UsageError
    from .compare_cmd import resolve_or_fail

    if judge:
        return resolve_or_fail(config, judge, "--judge")
    if config.abtest.judge is not None:
        return config.abtest.judge
    raise UsageError("no judge: give --judge TARGET or --manual", "or set abtest.judge in the config")


def _manual(engine):
    from ..abtest import ManualJudge

    return ManualJudge(ask=lambda q: click.prompt(q, err=True), show=lambda s: click.echo(s, err=True),
                       rng=engine.rng)


def _progress(total: int):
    done = [0]
    interactive = sys.stderr.isatty()

    def on_pair(pair) -> None:
        done[0] += 1
        if interactive:
            sys.stderr.write(f"\r{done[0]}/{total} pairs")
            if done[0] == total:
                sys.stderr.write("\n")
            sys.stderr.flush()

    return on_pair


def read_prompts(source: str) -> list[str]:
    """Prompts from a file or stdin: one per line, or JSONL objects with `prompt` (the shared
    prompt-file reader; `id`, `system` and `model` are accepted and not used here)."""
    from ..prompt_input import parse_prompt_lines, read_prompt_source

    return [line.prompt for line in parse_prompt_lines(read_prompt_source(source, getattr(sys.stdin, "buffer", None)))]


@abtest_group.command("report")
@click.option("--name", help="Only this test (default: all).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def report_command(ctx, name, as_json) -> None:
    """All results so far: wins, win rate with 95% CI, latency, cost, verdict."""
    from ..abtest import ABTestStore, summarize
    from ..errors import UsageError

    app: AppContext = ctx.obj
    tests = ABTestStore(app.paths.state_dir).tests()
    if name is not None:
        if name not in tests:
            raise UsageError(f"no A/B test named {name!r}", f"tests: {', '.join(tests) or '(none yet)'}")
        tests = {name: tests[name]}
    _print_reports(app, [summarize(n, t) for n, t in tests.items()], as_json)


def _print_reports(app: AppContext, reports, as_json: bool) -> None:
    import json

    from ..abtest import render_report
    from ..quality import QualityStore

    config = app.load_config()
    memory = app.shared_memory(config)  # on Redis: the team's verdicts, not this machine's
    quality = QualityStore(app.paths.state_dir, memory=memory)
    feedback = quality.feedback_counts()
    learned = _learned(app, memory)
    if as_json:
        click.echo(json.dumps({"tests": [r.to_json() for r in reports],
                               "feedback": {t: {"up": u, "down": d} for t, (u, d) in feedback.items()},
                               "quality": {t: {"score": s, "evidence": n} for t, (s, n) in quality.scores().items()},
                               "learner": [p.to_json() for p in learned]}))
        return
    if not reports and not feedback and not learned:
        click.echo("no A/B results yet (run `llmroute abtest run`, or set abtest.sample_rate)")
        return
    click.echo("\n\n".join(render_report(r, feedback) for r in reports))
    shown = {side for r in reports for side in (r.a.target, r.b.target)}
    others = {t: v for t, v in feedback.items() if t not in shown}
    if others:
        click.echo(("\n" if reports else "") + "feedback:")
        for target, (up, down) in sorted(others.items()):
            click.echo(f"  {target}: {up} up, {down} down")
    if learned:
        from ..abtest import render_learned

        click.echo("\n" + render_learned(learned))


LEDGER_PROMPTS = 2000  # recent logged prompts whose words can name the learner's weights


def _learned(app: AppContext, memory=None):
    """The learner's pairs with their top words (`abtest.learned_pairs`); the words come from the
    difficulty lexicon and the ledger's recent prompts when `ledger.log_prompts` keeps them."""
    from ..abtest import learned_pairs, report_vocabulary
    from ..routing.learner import load_view

    view = load_view(app.paths.state_dir, memory)
    if not view.pairs:
        return []
    prompts: list[str] = []
    try:
        from ..ledger import ledger_path
        from ..ledger.reader import LogCall, reverse_calls

        for call in reverse_calls(ledger_path(app.load_config(), app.paths), kind=LogCall):
            if call.prompt:
                prompts.append(call.prompt)
                if len(prompts) >= LEDGER_PROMPTS:
                    break
    except Exception:  # no config or an unreadable ledger: the lexicon alone names the weights
        prompts = []
    return learned_pairs(view, report_vocabulary(prompts))


@abtest_group.command("judge")
@click.option("--judge", metavar="TARGET", shell_complete=complete_target, help="The judge (default: abtest.judge).")
@click.option("--manual", is_flag=True, help="Judge the pending pairs yourself.")
@click.option("--config", "config_path", metavar="PATH", help="Config file.")
@click.pass_context
def judge_command(ctx, judge, manual, config_path) -> None:
    """Judge the sampled pairs collected during ordinary use."""
    from ..sampling import judge_pending

    app: AppContext = ctx.obj
    if config_path:
        app.config_path_option = config_path
    config = app.load_config()
    judge_target = None if manual else _judge_target(config, judge)
    engine = app.engine(config)
    try:
        done = judge_pending(engine, judge=judge_target, manual=_manual(engine) if manual else None)
    finally:
        engine.close()
    click.echo(f"judged {len(done)} pending pair(s)")


@click.command("feedback")
@click.argument("args", nargs=-1, required=True, metavar="[REQUEST_ID|last] up|down",
                shell_complete=complete_feedback)
@click.pass_context
def feedback_command(ctx, args) -> None:
    """Record a person's verdict on an answer ("last" = the latest answer)."""
    from ..errors import UsageError
    from ..quality import QualityStore, find_answer, find_prompt

    app: AppContext = ctx.obj
    if len(args) not in (1, 2) or args[-1] not in ("up", "down"):
        raise UsageError("usage: llmroute feedback [REQUEST_ID|last] up|down")
    wanted = args[0] if len(args) == 2 and args[0] != "last" else None
    config = app.load_config()
    from ..ledger import ledger_path

    found = find_answer(ledger_path(config, app.paths), wanted)
    if found is None:
        raise UsageError(f"no answer with request id {wanted}" if wanted else "no answer in the ledger yet",
                         "see `llmroute ask --json` for request ids")
    request_id, target = found
    prompt = find_prompt(ledger_path(config, app.paths), request_id)  # None unless log_prompts
    QualityStore(app.paths.state_dir, memory=app.shared_memory(config)).record_feedback(
        request_id, target, args[-1], prompt=prompt)
    click.echo(f"recorded {args[-1]} for {target} (request {request_id})", err=True)
