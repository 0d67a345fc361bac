"""`llmroute config init|path|check|show|trust|untrust` (SPEC §11, §1.1): write, locate,
validate, show and trust the config.

A thin click layer over `llmroute.config`. `ctx.obj` is the main CLI's context object with `env`,
`cwd`, `paths` and `config_path_option`; when it also offers `load_config()` that is used, so the
config is loaded once per invocation. Errors are raised as `ConfigError`/`UsageError` and the
main wrapper turns them into messages and exit codes. `show` never prints secrets: `key_cmd`,
header values and the alert webhook URL (which is itself a credential) are masked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import ConfigError, UsageError
from ..redact import MASK


def _load(obj: Any):
    if hasattr(obj, "load_config"):
        return obj.load_config()
    from ..config.defaults import discover_and_load

    return discover_and_load(obj.config_path_option, obj.env, obj.cwd, obj.paths)


@click.group("config")
def config_group() -> None:
    """Write, locate, validate, show or trust the config file."""


@config_group.command("init")
@click.option("--path", "target", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write it (default: the user config file).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_obj
def init_command(obj: Any, target: Path | None, force: bool) -> None:
    """Write a commented starter config to edit: a small and a large model of every provider
    whose key is set (environment or keyring), so `auto` has both to choose from."""
    from ..config import defaults
    from ..config.starter import providers_with_keys, render_starter
    from ..paths import write_private

    path = (target or obj.paths.default_config).expanduser()
    if path.exists() and not force:
        raise UsageError(f"config file already exists: {path}", "use --force to overwrite it")
    keyed = providers_with_keys(obj.env, defaults.keyring_has_key)
    write_private(path, render_starter(keyed, ollama=defaults.probe_ollama()))
    click.echo(f"wrote {path}")
    if keyed:
        click.echo(f"with {', '.join(known.name for known, _ in keyed)} (keys found); "
                   "next: `llmroute config check`", err=True)
    else:
        click.echo("next: store a key with `llmroute keys set openai`, then `llmroute config check`", err=True)


@config_group.command("path")
@click.pass_obj
def path_command(obj: Any) -> None:
    """Print the path of the config file in use (stdout) and how it was chosen: trusted or not
    (stderr, so `$(llmroute config path)` stays a plain path)."""
    from ..config.defaults import project_trust, untrusted_notice
    from ..paths import find_config, user_config

    choice = find_config(obj.config_path_option, obj.env, obj.cwd, obj.paths)
    note = {"option": "chosen with --config: no trust needed",
            "env": "chosen with LLMROUTE_CONFIG: no trust needed", "user": "user config"}
    if choice.origin == "project":
        check = project_trust(choice.path, obj.paths)
        if check.trusted:
            note["project"] = "project config: trusted"
        else:
            click.echo(f"llmroute: {untrusted_notice(choice.path, check)}", err=True)
            choice = user_config(obj.paths)
    if choice.path is None:
        click.echo("(built-in default config)")
        return
    click.echo(str(choice.path))
    click.echo(note[choice.origin], err=True)


@config_group.command("trust")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def trust_command(obj: Any, path: Path | None) -> None:
    """Trust a project config (default ./llmroute.yaml) so llmroute reads it."""
    from ..config.trust import TrustStore
    from ..paths import PROJECT_CONFIG

    path = _existing(path or obj.cwd / PROJECT_CONFIG)
    check = TrustStore(obj.paths.data_dir).trust(path)
    if not check.trusted:
        raise ConfigError([f"not trusted: {check.path}: {check.reason}"],
                          hint="make it yours and not writable by others, then trust it again")
    click.echo(f"trusted {check.path}")
    click.echo("llmroute will read it until it changes; `llmroute config untrust` forgets it", err=True)


@config_group.command("untrust")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def untrust_command(obj: Any, path: Path | None) -> None:
    """Stop trusting a project config (default ./llmroute.yaml)."""
    from ..config.trust import TrustStore
    from ..paths import PROJECT_CONFIG

    path = (path or obj.cwd / PROJECT_CONFIG).expanduser()
    if TrustStore(obj.paths.data_dir).untrust(path):
        click.echo(f"untrusted {path.resolve()}")
    else:
        click.echo(f"{path.resolve()} was not trusted", err=True)


def _existing(path: Path) -> Path:
    path = path.expanduser()
    if not path.is_file():
        raise UsageError(f"no config file at {path}", "name the file: `llmroute config trust PATH`")
    return path


@config_group.command("check")
@click.pass_obj
def check_command(obj: Any) -> None:
    """Validate the config: every problem with its line (exit 3), warnings on stderr."""
    config = _load(obj)
    for warning in config.warnings:
        click.echo(f"warning: {warning}", err=True)
    missing = _keys_missing(obj, config)
    if missing is not None:
        click.echo(f"warning: {missing}", err=True)
    click.echo(f"ok: {len(config.providers)} providers, {len(config.routes)} routes")


def _keys_missing(obj: Any, config: Any) -> str | None:
    """SPEC §11: warn when no provider has a key, i.e. every provider that needs one lacks it
    (none at all counts too). A `key_cmd` counts as a key source without being run: checking
    a config must not ask `pass` or `op` for a secret."""
    from ..keys import key_env_for
    from ..providers import needs_key

    if not config.providers:
        return ("no providers are configured and no key was found: set one, e.g. "
                "`export OPENAI_API_KEY=...` or `llmroute keys set openai`")
    needing = [p for p in config.providers.values() if needs_key(p)]
    if not needing:
        return None
    store = obj.keystore() if hasattr(obj, "keystore") else _keystore(obj.env)
    if any(p.key_cmd or store.resolve(p).value is not None for p in needing):
        return None
    first = needing[0]
    return (f"no key found for any provider that needs one ({', '.join(p.name for p in needing)}): "
            f"`llmroute keys set {first.name}` or `export {key_env_for(first)}=...`")


def _keystore(env: Any):
    from ..keys import KeyStore

    return KeyStore(env)


@config_group.command("show")
@click.pass_obj
def show_command(obj: Any) -> None:
    """Print the effective config as YAML (defaults filled in, secrets redacted)."""
    import yaml

    config = _load(obj)
    source = str(config.source) if config.source else "built-in default config"
    click.echo(f"# effective config from {source}")
    click.echo(yaml.safe_dump(effective_config(config), sort_keys=False, allow_unicode=True).rstrip())


def effective_config(config: Any) -> dict[str, Any]:
    """The config as plain data in SPEC §2 layout, with secrets replaced by `[REDACTED]`."""
    from dataclasses import fields

    def plain(obj: Any) -> dict[str, Any]:
        return {f.name: getattr(obj, f.name) for f in fields(obj) if f.name not in ("line", "index", "name")}

    providers = {}
    for provider in config.providers.values():
        entry = plain(provider)
        entry.update(dict(entry.pop("options")))
        entry["key_cmd"] = MASK if provider.key_cmd else None
        entry["headers"] = {name: MASK for name in provider.headers}
        entry["models"] = {name: {k: v for k, v in plain(m).items() if v is not None}
                           for name, m in provider.models.items()}
        providers[provider.name] = entry
    budget = config.budget
    return {
        "version": config.version,
        "defaults": plain(config.defaults),
        "providers": providers,
        "routes": {name: [t.id for t in targets] for name, targets in config.routes.items()},
        "rules": [{"when": {k: list(v) if isinstance(v, tuple) else v for k, v in plain(rule.when).items() if v is not None},
                   "then": {k: v for k, v in plain(rule.then).items() if v is not None}} for rule in config.rules],
        "budget": {**plain(budget.limits),
                   "per_provider": {name: {k: v for k, v in plain(lim).items() if v is not None}
                                    for name, lim in budget.per_provider.items()},
                   "on_exhaust": budget.on_exhaust, "alert_at": list(budget.alert_at),
                   "timezone": budget.timezone},
        "abtest": {"sample_rate": config.abtest.sample_rate, "min_tokens": config.abtest.min_tokens,
                   "targets": [t.id for t in config.abtest.targets],
                   "judge": config.abtest.judge.id if config.abtest.judge else None},
        "cache": plain(config.cache),
        "alerts": {"command": config.alerts.command,
                   "webhook": MASK if config.alerts.webhook else None},
        "ledger": plain(config.ledger),
    }
