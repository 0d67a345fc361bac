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
@click.option("--seed-from-ledger", "seed", is_flag=True,
              help="With state.backend redis: add this machine's current-window spend to the shared budget (once).")
@click.pass_context
def budget_command(ctx: click.Context, as_json: bool, config_path: str | None, seed: bool) -> None:
    """Show spend against the budget limits: windows, tokens, top providers, A/B samples."""
    app: AppContext = ctx.obj
    if config_path:
        app.config_path_option = config_path
    if seed:
        from ..errors import UsageError

        config = app.load_config()
        if config.state.backend != "redis":
            raise UsageError("--seed-from-ledger needs a shared budget (state.backend: redis)",
                             "set state.backend: redis in the config; a local budget already reads this ledger")
        added = app.redis_budget_guard(config).seed_from_ledger()
        click.echo(f"seeded the shared budget from this machine's ledger ({added} amount(s) added)"
                   if added else "nothing to seed: the shared budget already holds this machine's spend", err=True)
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
    if config.state.backend == "redis":
        guard = app.redis_budget_guard(config)
        from ..budget.redis_store import safe_url

        shared = {"backend": "redis", "url": safe_url(guard.url), "namespace": config.state.namespace}
    else:
        guard = BudgetGuard(config, app.paths, env=app.env, clock=clock or time.time)
        shared = None
    snapshot = guard.snapshot()
    window = _top_window(snapshot)
    providers = sorted(snapshot.totals[window].providers.items(), key=lambda kv: -kv[1][0])
    return {
        "timezone": snapshot.zone.label(snapshot.now),
        "spent": {kind: {"usd": round(t.usd, 10), "tokens": t.tokens} for kind, t in snapshot.totals.items()},
        "limits": [
            {"scope": s.spec.scope or "global", "limit": s.spec.field, "unit": s.spec.unit,
             "value": s.spec.value, "spent": round(s.spent, 10), "reserved": round(s.reserved, 10),
             "fraction": round(s.fraction, 4), "window": s.window.key,
             "resets": snapshot.reset_text(s)}
            for s in snapshot.states
        ],
        "top_window": window,
        "top_providers": [{"provider": name, "usd": round(v[0], 10), "tokens": int(v[1])}
                          for name, v in providers if v[0] > 0 or v[1] > 0],
        "ab_sampled_today": snapshot.totals["daily"].ab,
        "open_reservations": snapshot.reserved.count,
        "on_exhaust": config.budget.on_exhaust,
        **({"shared": shared} if shared else {}),
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
    """The SPEC §6 box: one bar row per limit, then top providers and A/B samples. The label,
    amount and percent columns are as wide as their widest entry, so the bars line up whatever
    the amounts (`$1,000.00` or `$0.002`) and the right border stays straight."""
    from ..render import money

    rows = _limit_rows(status["limits"])
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
    if status.get("shared"):
        rows.append(f"Shared: Redis {status['shared']['url']} ({status['shared']['namespace']})")
    return _box("Budget", rows)


def _limit_rows(limits: list[dict]) -> list[str]:
    """`Daily:   $2.34 / $5.00   [█████▒▒▒▒▒]  47%`, one per limit, in aligned columns."""
    from ..render import bar, display_width, money, tokens

    cells = []
    for limit in limits:
        if limit["unit"] == "usd":
            label = LABELS[limit["limit"]]
            amounts = f"{money(limit['spent'])} / {money(limit['value'])}"
        else:
            label = TOKEN_LABELS[limit["limit"]]
            amounts = f"{tokens(limit['spent'])} / {tokens(limit['value'])}"
        if limit["scope"] != "global":
            label = f"{limit['scope']} {label.lower()}"
        cells.append((label + ":", amounts, f"[{bar(limit['fraction'], BAR)}]",
                      f"{round(limit['fraction'] * 100)}%"))
    if not cells:
        return []
    label_w = max(9, *(display_width(c[0]) + 1 for c in cells))
    amount_w = max(16, *(display_width(c[1]) + 2 for c in cells))
    pct_w = max(4, *(display_width(c[3]) for c in cells))
    return [_pad(label, label_w) + _pad(amounts, amount_w) + bars + " " + _pad(pct, pct_w, right=True)
            for label, amounts, bars, pct in cells]


def _pad(text: str, width: int, right: bool = False) -> str:
    from ..render import display_width

    gap = " " * max(0, width - display_width(text))
    return gap + text if right else text + gap


def _box(title: str, rows: list[str]) -> str:
    from ..render import display_width

    width = max([WIDTH, display_width(title) + 5] + [display_width(r) + 2 for r in rows])
    top = f"┌─ {title} " + "─" * (width - display_width(title) - 3) + "┐"
    body = [f"│ {_pad(row, width - 2)} │" for row in rows]
    return "\n".join([top, *body, "└" + "─" * width + "┘"])
