"""`llmroute [OPTIONS] [PROMPT]` / `llmroute ask` and `llmroute route` (the plan only).

Parse, build a `Request`, hand it to the engine, render. stdout carries only the answer (or
JSON); everything else goes to stderr.
"""

from __future__ import annotations

import functools
import sys

import click

from .completers import complete_model, complete_route, complete_strategy
from .context import AppContext
from .commands import COMMAND_WORD
from .request_inputs import request_input_options, request_inputs, structured_answer


def prompt_options(command):
    """Options shared by `ask` and `route`: what to ask and how to route it."""
    decorators = [
        click.argument("prompt", nargs=-1),
        click.option("-m", "--model", metavar="TARGET|ROUTE", shell_complete=complete_model, help="Pin a target (its route's fallbacks still apply) or name a route."),
        click.option("-r", "--route", metavar="NAME", shell_complete=complete_route, help="Use a route."),
        click.option("-s", "--system", metavar="TEXT", help="System prompt."),
        click.option("--context", "context_files", multiple=True, metavar="FILE", help="Extra context file placed before the prompt (repeatable)."),
        click.option("--strategy", metavar="NAME", shell_complete=complete_strategy, help="Override the strategy (priority, cost, latency, round-robin, weighted, quality, auto)."),
        click.option("--max-tokens", type=click.IntRange(min=1), help="Max output tokens for this call."),
        click.option("--temperature", type=click.FloatRange(0, 2), help="Sampling temperature."),
        click.option("--timeout", type=click.FloatRange(min=0.1), metavar="S", help="Seconds per attempt."),
        click.option("--max-cost", type=click.FloatRange(min=0), metavar="USD", help="Refuse targets whose worst-case cost exceeds this."),
        click.option("--no-fallback", is_flag=True, help="One target only."),
        click.option("--tag", "tags", multiple=True, help="Label for the ledger and rules (repeatable)."),
        click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the text."),
        click.option("--config", "config_path", metavar="PATH", help="Config file."),
        click.option("--no-color", is_flag=True, help="Never use colour."),
        click.option("--each-line", is_flag=True, hidden=True),
        click.option("--cache/--no-cache", default=None, help="Answer a repeated request from the response cache (default: config cache.enabled)."),
        *request_input_options(),  # -o, --schema, -a (SPEC §14)
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


@click.command("ask")
@prompt_options
@click.option("--stream/--no-stream", default=None, help="Stream the answer (default: on a terminal only).")
@click.option("--explain", "--dry-run", "explain", is_flag=True, help="Print the plan and spend nothing.")
@click.option("-v", "--verbose", is_flag=True, help="Attempts, fallbacks, retries and cost on stderr.")
@click.option("-q", "--quiet", is_flag=True, help="Nothing on stderr but errors.")
@click.option("-c", "--continue", "continue_", is_flag=True,
              help="Continue the most recent conversation: its earlier turns are sent too. "
                   "E.g. llmroute -c \"and in Rust?\"")
@click.option("--cid", metavar="ID", help="Continue the conversation with this id (see `llmroute logs`).")
@click.pass_context
def ask_command(ctx: click.Context, stream: bool | None, explain: bool, verbose: bool, quiet: bool, **options) -> None:
    """Ask a prompt. PROMPT and piped stdin are joined (PROMPT, blank line, STDIN)."""
    options["command_word"] = ctx.meta.get(COMMAND_WORD)
    if explain:
        return _explain(ctx.obj, options)
    _ask(ctx.obj, options, stream=stream, verbose=verbose and not quiet, quiet=quiet)


@click.command("route")
@prompt_options
@click.pass_context
def route_command(ctx: click.Context, **options) -> None:
    """Show the routing plan for a prompt: difficulty, rule, strategy, candidates with their
    worst-case cost, and every excluded target with its reason. No network call, no spend.
    With --each-line, plans every line of stdin and prints one JSON line per prompt."""
    _explain(ctx.obj, options)


def _check_text_options(options: dict) -> None:
    """Invalid UTF-8 in the prompt or another text option exits 2 (SPEC §4). File names
    (`--context`, `--config`) may be any bytes the file system allows, so they are not checked."""
    from ..prompt_input import check_arguments

    check_arguments([("the prompt argument", " ".join(options["prompt"])), ("--system", options["system"]),
                     ("--model", options["model"]), ("--route", options["route"]),
                     ("--strategy", options["strategy"]), ("--tag", options["tags"])])


def _apply_common(app: AppContext, options: dict) -> None:
    """`--config` and `--no-color` given after the command (or among prompt options)."""
    if options["config_path"]:
        app.config_path_option = options["config_path"]
    if options["no_color"]:
        app.no_color = True


def _refuse_mistaken_command(options: dict, prompt_text: str) -> None:
    """`llmroute modles`, `llmroute logs`: a one-word prompt standing where a command goes, with
    nothing piped in, was meant as a command (SPEC §4); `llmroute ask WORD` sends it."""
    word = options.get("command_word")
    if word is None or options["prompt"] != (word,) or prompt_text != word:
        return
    from ..errors import UsageError
    from .commands import mistaken_command

    lines = mistaken_command(word)
    if lines is not None:
        raise UsageError(*lines)


def _build(app: AppContext, options: dict, prompt_text: str):
    from ..engine import AskOptions
    from ..types import Message, Request

    config = app.load_config()
    turns = _conversation(app, config, options)
    request = Request(
        messages=(*_history(turns), Message("user", prompt_text)),
        system=_system(turns, options["system"]),
        max_tokens=options["max_tokens"] or config.defaults.max_tokens,
        temperature=options["temperature"] if options["temperature"] is not None else config.defaults.temperature,
        **request_inputs(options),
    )
    ask_options = AskOptions(
        model=options["model"], route=options["route"], strategy=options["strategy"],
        no_fallback=options["no_fallback"], tags=tuple(options["tags"]), timeout=options["timeout"],
        max_cost_usd=options["max_cost"], cache=options.get("cache"),
    )
    if options.get("conversation_id"):  # the ledger's records name their conversation
        ask_options.extra_record = {**ask_options.extra_record, "conversation_id": options["conversation_id"]}
    return config, request, ask_options


def _conversation(app: AppContext, config, options: dict) -> list:
    """`-c`/`--cid`: the conversation's earlier turns (SPEC §14); a new conversation otherwise.
    Sets `options["conversation_id"]` (None when conversations are not stored) for `ask`."""
    if "cid" not in options:  # `route`: a plan for one prompt
        return []
    from ..conversations import resolve, store_for

    store = options["conversation_store"] = store_for(config, app.paths)
    cid, turns = resolve(store, cid=options["cid"], continue_latest=options["continue_"])
    options["conversation_id"] = cid if store.keep > 0 else None
    return turns


def _history(turns: list) -> tuple:
    from ..conversations import history

    return history(turns) if turns else ()


def _system(turns: list, system: str | None) -> str | None:
    from ..conversations import system_for

    return system_for(turns, system) if turns else system


def _prompt_from(options: dict) -> str:
    from ..prompt_input import assemble_prompt, read_stdin

    stdin = getattr(sys.stdin, "buffer", None)
    is_tty = stdin is not None and stdin.isatty()
    argument = " ".join(options["prompt"]) if options["prompt"] else None
    return assemble_prompt(argument, read_stdin(stdin, is_tty), is_tty, options["context_files"])


def _ask(app: AppContext, options: dict, *, stream: bool | None, verbose: bool, quiet: bool) -> None:
    _check_text_options(options)
    _apply_common(app, options)
    prompt_text = _prompt_from(options)
    _refuse_mistaken_command(options, prompt_text)
    config, request, ask_options = _build(app, options, prompt_text)
    if verbose:
        _warn_config(config)
    as_json = options["as_json"]
    stdout = sys.stdout
    ask_options.stream = (stdout.isatty() if stream is None else stream) and not as_json
    err = functools.partial(click.echo, err=True)
    engine = app.engine(config, quiet=quiet)
    written: list[str] = []

    def on_text(text: str) -> None:
        written.append(text)
        stdout.write(text)
        stdout.flush()

    ab_id = _decide_sample(config, request, ask_options)
    try:
        answer = engine.ask(
            request, ask_options, on_text=on_text,
            on_event=(lambda m: err(click.style(m, dim=True) if app.color(sys.stderr) else m)) if verbose else (lambda m: None),
            on_notice=(lambda m: None) if quiet else err,
            on_hop=(lambda m: None) if quiet else (lambda m: err(f"llmroute: {m}")),
        )
        if request.schema is not None:  # --json nests the parsed answer as "data" (SPEC §14)
            answer = structured_answer(answer)
        if ab_id and not answer.cached:  # reserved before the answer is out, sent in the background
            _run_sample(app, engine, request, answer, ab_id, err if verbose else None)
        _write_answer(stdout, answer, written, as_json, options.get("conversation_id"))
        _store_turn(app, options, request, prompt_text, answer)
        if verbose:
            _say_summary(err, answer)
        engine.check_ledger()  # ledger.required: an unrecorded call fails, answer shown (SPEC §5)
    finally:
        engine.close()


def _write_answer(stdout, answer, written: list[str], as_json: bool, conversation_id: str | None = None) -> None:
    if as_json:
        import json

        data = {**answer.to_json(), "conversation_id": conversation_id}
        stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    elif written:
        if not "".join(written).endswith("\n"):
            stdout.write("\n")
    else:
        stdout.write(answer.text if answer.text.endswith("\n") else answer.text + "\n")
    stdout.flush()


def _store_turn(app: AppContext, options: dict, request, prompt_text: str, answer) -> None:
    """Keep the turn for `-c`/`--cid` once the answer is out; a store that cannot be written
    costs a warning, never the answer."""
    store, cid = options.get("conversation_store"), options.get("conversation_id")
    if store is None or cid is None:
        return
    import sqlite3

    try:
        store.add_turn(cid, prompt=prompt_text, answer=answer.text, system=request.system,
                       target=answer.target.id, request_id=answer.request_id)
    except (sqlite3.Error, OSError) as error:
        app.warn(f"could not keep this turn of conversation {cid} in {store.path} ({error})")
    finally:
        store.close()


def _say_summary(err, answer) -> None:
    usage = answer.usage
    from ..render import money

    cost = money(answer.cost_usd) if answer.cost_usd is not None else "cost unknown"
    tokens = f"{usage.input_tokens}+{usage.output_tokens} tokens" if usage else "tokens unknown"
    err(f"answered by {answer.target} in {answer.latency_ms} ms, {tokens}, {cost} "
        f"({len(answer.attempts)} attempt{'s' if len(answer.attempts) != 1 else ''})")


def _decide_sample(config, request, ask_options) -> str | None:
    """Sampled A/B (SPEC §8): decided before the routed call so its records carry the `ab_id`."""
    if config.abtest.sample_rate <= 0:
        return None
    import random

    from ..sampling import decide_sample

    ab_id = decide_sample(config, request, random.Random())
    if ab_id:
        ask_options.extra_record = {**ask_options.extra_record, "ab_id": ab_id}
    return ab_id


def _run_sample(app, engine, request, answer, ab_id: str, say) -> None:
    """The second call of a sampled pair: reserved here, sent by a detached background process
    (`sampling.start_sample`), so this one exits with its answer. It never fails the prompt: a
    problem here is reported with -v and otherwise only lands in the ledger."""
    from ..sampling import ConfigFile, start_sample

    try:
        config_file = ConfigFile.of(engine.config, app.config_path_option, app.env, app.cwd, app.paths)
        started = start_sample(engine, request, answer, ab_id, config_file=config_file, env=app.env)
    except Exception as error:  # the user's answer is delivered; the sample is best effort
        if say:
            say(f"sampled A/B skipped: {type(error).__name__}: {error}")
        return
    if say and started is not None:
        say(f"sampled A/B {ab_id}: {started.target} runs in the background (pid {started.pid})")


def _explain(app: AppContext, options: dict) -> None:
    import json

    from ..render import render_plan

    _check_text_options(options)
    _apply_common(app, options)
    if options["each_line"]:
        return _explain_each_line(app, options)
    prompt_text = _prompt_from(options)
    _refuse_mistaken_command(options, prompt_text)
    config, request, ask_options = _build(app, options, prompt_text)
    ask_options.explain = True
    plan = app.engine(config).plan(request, ask_options)
    count, estimate, target = _input_tokens(request, plan)
    if options["as_json"]:
        click.echo(json.dumps({**plan.to_json(), "input_tokens": _input_tokens_json(count, estimate, target)},
                              ensure_ascii=False))
    else:
        click.echo(render_plan(plan, count, estimate, target))


def _input_tokens(request, plan):
    """The exact input count `--explain` shows: for the target that would be tried first
    (o200k_base when there is none), with the fast estimate beside it."""
    from ..tokens import count_tokens, estimate_tokens

    target = plan.candidates[0].target if plan.candidates else None
    text = request.prompt_text
    return count_tokens(text, target.model if target else None), estimate_tokens(text), target


def _input_tokens_json(count, estimate: int, target) -> dict:
    return {**count.to_json(), "target": target.id if target else None, "estimate": estimate}


def _explain_each_line(app: AppContext, options: dict) -> None:
    """Plan every prompt of stdin (a prompt file: text lines or JSONL, as `batch` reads it):
    one JSON line out per prompt, for studying routing."""
    import json

    from ..prompt_input import parse_prompt_lines, read_stdin

    stdin = getattr(sys.stdin, "buffer", None)
    text = read_stdin(stdin, stdin is None or stdin.isatty())
    if text is None:
        from ..errors import UsageError

        raise UsageError("--each-line reads prompts from stdin, one per line", "e.g. llmroute route --each-line < prompts.txt")
    engine = None
    for item in parse_prompt_lines(text):
        config, request, ask_options = _build(app, options, item.prompt)
        ask_options.explain = True
        engine = engine or app.engine(config)
        plan = engine.plan(request, ask_options)
        tokens = _input_tokens_json(*_input_tokens(request, plan))
        click.echo(json.dumps({"id": item.id, "prompt": item.prompt, **plan.to_json(), "input_tokens": tokens},
                              ensure_ascii=False))


def _warn_config(config) -> None:
    """Config warnings (e.g. a paid model with no known price) are for `-v` and `config check`,
    not for every answer."""
    for warning in config.warnings:
        click.echo(f"llmroute: warning: {warning}", err=True)
