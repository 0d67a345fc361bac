"""`llmroute keys set|list|delete` (SPEC §3): a thin click layer over `llmroute.keys.KeyStore`.

The key itself is read from a pipe or a no-echo prompt and handed straight to the keyring; it
is never echoed, and `list` only shows masked forms. `ctx.obj` is the main CLI's context object:
it provides `env`, `paths` and `load_config()`, and may provide `keystore()`.
"""

from __future__ import annotations

import sys

import click

from ..errors import UsageError
from .completers import complete_provider


def _store(obj):
    """The invocation's KeyStore: the context's own (`obj.keystore()`) when it offers one, so
    keys resolved here are the ones the rest of the invocation uses; else one over `obj.env`."""
    if hasattr(obj, "keystore"):
        return obj.keystore()
    from ..keys import KeyStore

    return KeyStore(obj.env)


def _config_or_none(obj):
    """The config in use, or None when it does not load: `set`/`delete` must work before any
    config exists, so a broken one only costs precision in the guidance, never the command."""
    from ..errors import LLMRouteError

    try:
        return obj.load_config()
    except LLMRouteError:
        return None


def _configured(obj, name: str):
    """The provider's config when the config names it, for exact variable names in messages."""
    config = _config_or_none(obj)
    return config.providers.get(name) if config is not None else None


def _warn_if_unknown(obj, name: str) -> None:
    """A name no provider of the config has (a typo, or a provider not added yet): say so and
    which names it does have, once, on stderr. The key is still stored (SPEC §3)."""
    config = _config_or_none(obj)
    if config is None or name in config.providers:
        return
    known = list(config.providers)
    if config.source is None:
        # The built-in default config sets up these providers from a key alone.
        from ..config.defaults import KNOWN_PROVIDERS

        known += [p.name for p in KNOWN_PROVIDERS if p.name not in known]
        where = "llmroute knows without a config file"
    else:
        where = f"configured in {config.source}"
    if name in known:
        return
    from .commands import close_names

    near = close_names(name, known, limit=2)
    guess = f"; did you mean {' or '.join(near)}?" if near else ""
    names = ", ".join(known) if known else "none"
    click.echo(f"llmroute: warning: no provider is named {name}{guess} (providers {where}: {names}); "
               f"storing the key anyway, for when one is", err=True)


def _stdin_is_tty() -> bool:
    return sys.stdin.isatty()


def _read_piped_key() -> str:
    """The key from piped stdin: one line, surrounding whitespace and newline stripped."""
    raw = sys.stdin.buffer.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError("the key on stdin is not valid UTF-8 text") from None
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if len(lines) > 1:
        raise UsageError("expected one key on stdin, got several lines", "pipe exactly one line, e.g. `pass show openai | llmroute keys set openai`")
    return lines[0].strip() if lines else ""


@click.group("keys")
def keys_group() -> None:
    """Store, list and delete provider API keys (kept in the OS keyring)."""


@keys_group.command("set")
@click.argument("name", shell_complete=complete_provider)
@click.pass_obj
def set_command(obj, name: str) -> None:
    """Store the API key for provider NAME in the keyring.

    The key is read from stdin when piped, else prompted for without echo."""
    if not name.strip() or "/" in name:
        raise UsageError(f"invalid provider name {name!r}", "use the provider's name from the config, e.g. openai")
    _warn_if_unknown(obj, name)
    if _stdin_is_tty():
        value = click.prompt(f"API key for {name}", hide_input=True, err=True).strip()
    else:
        value = _read_piped_key()
    if not value:
        raise UsageError("empty key: nothing stored", f"pipe the key in, e.g. `printf %s \"$KEY\" | llmroute keys set {name}`")
    _store(obj).set(name, value, config=_configured(obj, name))
    click.echo(f"stored key for {name} in the keyring", err=True)


@keys_group.command("list")
@click.pass_obj
def list_command(obj) -> None:
    """Show where each configured provider's key comes from, masked."""
    from tabulate import tabulate

    from ..keys import key_env_for
    from ..providers import needs_key

    config = obj.load_config()
    store = _store(obj)
    rows = []
    for provider in config.providers.values():
        info = store.resolve(provider)
        shown = info.masked or ("-" if needs_key(provider) else "(not needed)")
        if info.value and store.for_call(provider).value != info.value:
            shown += f" (not sent to a local server at its default address; use {key_env_for(provider)})"
        rows.append([provider.name, key_env_for(provider), info.source, shown])
    for warning in store.warnings:
        click.echo(f"warning: {warning}", err=True)
    if not rows:
        click.echo("no providers in the config", err=True)
        return
    click.echo(tabulate(rows, headers=["provider", "variable", "source", "key"], tablefmt="simple"))


@keys_group.command("delete")
@click.argument("name", shell_complete=complete_provider)
@click.pass_obj
def delete_command(obj, name: str) -> None:
    """Delete the stored key of provider NAME from the keyring."""
    if not _store(obj).delete(name, config=_configured(obj, name)):
        raise UsageError(
            f"no key for {name} in the keyring: nothing deleted",
            "`llmroute keys list` shows where each provider's key comes from",
        )
    click.echo(f"deleted key for {name} from the keyring", err=True)
