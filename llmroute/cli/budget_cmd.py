"""`llmroute budget [--json]`: spend against the limits, as the box of SPEC §6.

Reads the same caught-up ledger index the guard uses, so it is as fast on a million-record
ledger as on an empty one. With no limits configured it still shows what was spent today, this
week and this month, and says that no limits are set.
"""

from __future__ import annotations

import json

import click

from .context import AppContext

WIDTH = 46  # inner width of the box
BAR = 10


@click.command("budget")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--config", "config_path", metavar="PATH", help="Config file.")
@click.pass_context
def budget_command(ctx: click.Context, as_json: bool, config_path: str | None) -> None:
    """Show spend against the budget limits: windows, tokens, top providers, A/B samples."""
    app: AppContext = ctx.obj
    if config_path:
        app.config_path_option = config_path
    status = budget_status(app)
    if as_json:
        click.echo(json.dumps(status, ensure_ascii=False))
    else:
        click.echo(render_box(status))


def budget_status(app: AppContext, clock=None) -> dict:
    """Everything the box shows, as plain data (also the `--json` output)."""
    import time

    from ..budget.guard import BudgetGuard

    config = app.load_config()
    guard = BudgetGuard(config, app.paths, env=app.env, clock=clock or time.time)
    snapshot = guard.snapshot()
    window = _top_window(snapshot)
    providers = sorted(snapshot.totals[window].providers.items(), key=lambda kv: -kv[1][0])
    return {
        "timezone": snapshot.zone.label(snapshot.now),
        "spent": {kind: {"usd": round(t.usd, 6), "tokens": t.tokens} for kind, t in snapshot.totals.items()},
        "limits": [
            {"scope": s.spec.scope or "global", "limit": s.spec.field, "unit": s.spec.unit,
             "value": s.spec.value, "spent": round(s.spent, 6), "reserved": round(s.reserved, 6),
             "fraction": round(s.fraction, 4), "window": s.window.key,
             "resets": snapshot.reset_text(s)}
            for s in snapshot.states
        ],
        "top_window": window,
        "top_providers": [{"provider": name, "usd": round(v[0], 6), "tokens": int(v[1])}
                          for name, v in providers if v[0] > 0 or v[1] > 0],
        "ab_sampled_today": snapshot.totals["daily"].ab,
        "open_reservations": snapshot.reserved.count,
        "on_exhaust": config.budget.on_exhaust,
    }


def _top_window(snapshot) -> str:
    """The window "Top" ranks providers over: the shortest one that has a dollar limit."""
    kinds = [s.spec.kind for s in snapshot.states if s.spec.unit == "usd"]
    for kind in ("daily", "weekly", "monthly"):
        if kind in kinds:
            return kind
    return "daily"


LABELS = {"daily": "Daily", "weekly": "Weekly", "monthly": "Monthly"}
TOKEN_LABELS = {"tokens_daily": "Tokens", "tokens_weekly": "Tokens/wk", "tokens_monthly": "Tokens/mo"}
WINDOW_NAMES = {"daily": "today", "weekly": "this week", "monthly": "this month"}


def render_box(status: dict) -> str:
    """The SPEC §6 box: one bar row per limit, then top providers and A/B samples."""
    from ..render import money

    rows = [_limit_row(limit) for limit in status["limits"]]
    if not status["limits"]:
        spent = status["spent"]
        rows.append("No limits set (budget: in the config).")
        for kind in ("daily", "weekly", "monthly"):
            rows.append(f"{LABELS[kind] + ':':<9}{money(spent[kind]['usd'])} spent {WINDOW_NAMES[kind]}")
    top = " · ".join(f"{p['provider']} {money(p['usd'])}" for p in status["top_providers"][:3])
    rows.append(f"Top {WINDOW_NAMES[status['top_window']]}: {top or 'no spend'}")
    rows.append(f"A/B: {status['ab_sampled_today']} sampled today")
    if status["open_reservations"]:
        rows.append(f"In flight: {status['open_reservations']} reserved call(s)")
    return _box("Budget", rows)


def _limit_row(limit: dict) -> str:
    from ..render import bar, money, tokens

    if limit["unit"] == "usd":
        label = LABELS[limit["limit"]]
        amounts = f"{money(limit['spent'])} / {money(limit['value'])}"
    else:
        label = TOKEN_LABELS[limit["limit"]]
        amounts = f"{tokens(limit['spent'])} / {tokens(limit['value'])}"
    if limit["scope"] != "global":
        label = f"{limit['scope']} {label.lower()}"
    percent = f"{round(limit['fraction'] * 100)}%"
    return f"{label + ':':<9}{amounts:<16}[{bar(limit['fraction'], BAR)}] {percent:>4}"


def _box(title: str, rows: list[str]) -> str:
    width = max([WIDTH] + [len(r) + 2 for r in rows])
    top = f"┌─ {title} " + "─" * (width - len(title) - 3) + "┐"
    body = [f"│ {row:<{width - 2}} │" for row in rows]
    return "\n".join([top, *body, "└" + "─" * width + "┘"])
