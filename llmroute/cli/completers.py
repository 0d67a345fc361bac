"""Dynamic shell-completion values from the config: targets, routes, providers, strategies.

Options in several command modules point their `shell_complete=` here. A completion runs in the
user's shell on every Tab press, so each function must never raise: a missing or broken config
simply completes nothing. The config is found the same way commands find it (`--config` on the
command line being completed, then `LLMROUTE_CONFIG`, ./llmroute.yaml only when trusted, the user
config dir). Completion only reads the config: it never resolves a key, so no `key_cmd` runs.
"""

from __future__ import annotations

from typing import Callable, Iterable

import click

STRATEGY_NAMES = ("priority", "cost", "latency", "round-robin", "weighted", "quality", "auto")


def _config_path(ctx: click.Context) -> str | None:
    """The `--config` given anywhere on the command line being completed."""
    current: click.Context | None = ctx
    while current is not None:
        value = (current.params or {}).get("config_path")
        if value:
            return value
        current = current.parent
    return None


def _quiet_app(ctx: click.Context):
    """The AppContext the completed command would get, printing nothing."""
    from .context import AppContext

    app = AppContext.from_process(_config_path(ctx))
    app.notices = False
    return app


def load_config_quietly(ctx: click.Context):
    """The config the completed command would use, or None when it cannot be loaded."""
    try:
        return _quiet_app(ctx).load_config()
    except BaseException:  # a completion must never break the user's shell
        return None


def _safe(names: Callable[[object], Iterable[str]]):
    """Wrap a function of the config into a click `shell_complete` callback."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
        try:
            config = load_config_quietly(ctx)
            if config is None:
                return []
            seen: dict[str, None] = {}
            for name in names(config):
                if name.startswith(incomplete):
                    seen.setdefault(name, None)
            return list(seen)
        except BaseException:
            return []

    return complete


def _targets(config) -> Iterable[str]:
    for provider in config.providers.values():
        for model in provider.models:
            yield f"{provider.name}/{model}"


def _routes(config) -> Iterable[str]:
    return list(config.routes)


def _providers(config) -> Iterable[str]:
    return list(config.providers)


def _transcription(config) -> Iterable[str]:
    """What `transcribe -m` takes: transcription targets, their providers (`-m PROVIDER` picks
    the provider's transcription model) and the routes that hold one."""
    from ..transcribe import is_transcription, transcription_targets

    targets = transcription_targets(config, None)
    routes = [name for name, members in config.routes.items()
              if any(is_transcription(config, t) for t in members)]
    return [*(t.id for t in targets), *dict.fromkeys(t.provider for t in targets), *routes]


complete_target = _safe(_targets)
complete_route = _safe(_routes)
complete_provider = _safe(_providers)
complete_model = _safe(lambda config: [*_routes(config), *_targets(config)])
complete_target_or_provider = _safe(lambda config: [*_providers(config), *_targets(config)])
complete_transcription = _safe(_transcription)

VERDICTS = ("up", "down")
RECENT_IDS = 10  # request ids offered by `feedback` completion, newest first
RECENT_SCAN = 500  # ledger records looked at, from the end, to find them


def complete_feedback(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """`llmroute feedback [REQUEST_ID|last] up|down`: first `last`, the verdicts and the ids of
    the latest answers in the ledger; after an id (or `last`), the verdicts."""
    try:
        given = list((ctx.params or {}).get(param.name) or ())
        if not given:
            words = ["last", *VERDICTS, *_recent_request_ids(ctx)]
        elif len(given) == 1 and given[0] not in VERDICTS:
            words = list(VERDICTS)
        else:
            words = []
        return [word for word in words if word.startswith(incomplete)]
    except BaseException:
        return []


def _recent_request_ids(ctx: click.Context) -> list[str]:
    """Request ids of the latest answered records, newest first (a few blocks from the ledger's
    end, however long it is)."""
    from ..ledger import ledger_path
    from ..ledger.reader import reverse_calls

    app = _quiet_app(ctx)
    ids: dict[str, None] = {}
    for seen, call in enumerate(reverse_calls(ledger_path(app.load_config(), app.paths))):
        if seen >= RECENT_SCAN or len(ids) >= RECENT_IDS:
            break
        if call.status == "ok" and call.request_id:
            ids.setdefault(call.request_id, None)
    return list(ids)


def complete_strategy(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return [name for name in STRATEGY_NAMES if name.startswith(incomplete)]
