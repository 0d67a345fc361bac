"""`llmroute models [--json]`: every target with prices, context, tier, quality, key source and
circuit state (SPEC §11) — the facts the planner uses, in one place a user can check."""

from __future__ import annotations

import click

from .context import AppContext


def model_rows(app: AppContext) -> list[dict]:
    from ..catalog.costs import facts_for
    from ..providers import needs_key
    from ..routing.memory import RoutingMemory

    config = app.load_config()
    keys = app.keystore()
    snapshot = RoutingMemory(app.paths.state_dir).snapshot()
    rows = []
    key_sources: dict[str, str] = {}
    for target in config.all_targets():
        provider = config.providers[target.provider]
        model = provider.models[target.model]
        if target.provider not in key_sources:
            key_sources[target.provider] = key_column(keys.for_call(provider), needs_key(provider))
        facts = facts_for(config, target)
        breaker = snapshot.breaker(target.id)
        learned = snapshot.quality.get(target.id)
        rows.append({
            "target": target.id,
            "type": provider.type,
            "mode": model.mode,
            "input_per_1m": facts.price.input if facts.price else None,
            "output_per_1m": facts.price.output if facts.price else None,
            "price_source": facts.price.source if facts.price else "unknown",
            "context": facts.context,
            "max_output": model.max_output,
            "tier": model.tier,
            "quality": learned[0] if learned else model.quality,
            "quality_evidence": learned[1] if learned else 0,
            "free": facts.free,
            "enabled": provider.enabled,
            "key": key_sources[target.provider],
            "circuit": breaker.state,
        })
    return rows


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per target, one per line.")
@click.option("--wide", is_flag=True, help="Every column on a terminal too (piped output has them all).")
@click.pass_obj
def models_command(app: AppContext, as_json: bool, wide: bool) -> None:
    """List every target with prices (USD per 1M tokens), context, tier, quality, key source and
    circuit state. Quality shows the A/B score and its evidence count once there is any, else the
    config prior."""
    import json

    rows = model_rows(app)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    if not rows:
        click.echo("no targets configured (see `llmroute config init`)")
        return
    from ..render import table, table_width

    body = [[
        r["target"], _price(r["input_per_1m"]), _price(r["output_per_1m"]), r["context"] or "?",
        r["tier"] or "-", _quality(r), r["key"], r["circuit"] + ("" if r["enabled"] else " (disabled)"),
    ] for r in rows]
    click.echo(table(_columns(), body, table_width(app.env, wide=wide)))


def _columns():
    """The table's columns; on a narrow terminal the least useful go first (SPEC §11,
    `render.fit_table`)."""
    from ..render import Column

    return [Column("target", 100, elide=24), Column("in $/1M", 90, "right", "in"),
            Column("out $/1M", 89, "right", "out"), Column("context", 70, "right", "ctx"),
            Column("tier", 40), Column("quality", 50, "right", "qual"), Column("key", 60),
            Column("circuit", 55)]


def key_column(key, required: bool) -> str:
    """Where the key calls to a provider carry comes from (env | keyring | cmd), so a key that
    is found and sent is never shown as "not needed" (SPEC §4); with none: "none" when one is
    needed (the target is filtered), "not needed" when the provider does without."""
    if key.value:
        return key.source
    return "none" if required else "not needed"


def _price(value: float | None) -> str:
    from ..render import money

    return "?" if value is None else money(value)


def _quality(row: dict) -> str:
    if row["quality"] is None:
        return "-"
    if row["quality_evidence"]:
        return f"{row['quality']:.1f} (n={row['quality_evidence']})"
    return f"{row['quality']:g} (prior)"
