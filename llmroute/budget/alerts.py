"""Alerts: budget thresholds crossed, and a generic delivery shared with `health` (SPEC §6, §9).

`fire_alert` delivers one alert: `alerts.command` runs through the shell with
`LLMROUTE_ALERT_KIND`, `LLMROUTE_ALERT_MESSAGE` and `LLMROUTE_ALERT_<FIELD>` for each field,
and `alerts.webhook` receives `{"kind", "message", **fields}` as a JSON POST. Both are bounded
by a timeout and every failure becomes a warning: an alert hook can never fail a prompt.

`due_alerts` decides which budget alerts fire. Each `alert_at` fraction of each limit fires
once per window; the "fired" marks live in the budget state document and are set under its
exclusive lock, so two processes crossing 80% at once fire it once between them. When one call
crosses several fractions (40% -> 85%), one alert names the highest.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from typing import Callable, Mapping

from ..config.model import AlertsConfig
from .limits import LimitState, Snapshot

COMMAND_TIMEOUT_S = 10.0
WEBHOOK_TIMEOUT_S = 5.0

Warn = Callable[[str], None]


@dataclass(frozen=True)
class DueAlert:
    """A budget alert to deliver once the lock is released."""

    message: str
    fields: dict


def fire_alert(alerts: AlertsConfig, kind: str, message: str, fields: Mapping[str, object],
               warn: Warn, *, env: Mapping[str, str] | None = None, run=subprocess.run,
               post=None) -> None:
    """Deliver one alert through the configured command and/or webhook; never raises."""
    if alerts.command:
        _run_command(alerts.command, kind, message, fields, warn, env, run)
    if alerts.webhook:
        _post_webhook(alerts.webhook, kind, message, fields, warn, post)


def _run_command(command: str, kind: str, message: str, fields: Mapping[str, object], warn: Warn,
                 env: Mapping[str, str] | None, run) -> None:
    full_env = dict(os.environ if env is None else env)
    full_env.update({"LLMROUTE_ALERT_KIND": kind, "LLMROUTE_ALERT_MESSAGE": message})
    full_env.update({f"LLMROUTE_ALERT_{name.upper()}": str(value) for name, value in fields.items()})
    try:
        done = run(command, shell=True, env=full_env, timeout=COMMAND_TIMEOUT_S,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        warn(f"alert command timed out after {COMMAND_TIMEOUT_S:g} s")
    except (OSError, subprocess.SubprocessError) as exc:
        warn(f"alert command failed: {type(exc).__name__}")
    else:
        if done.returncode != 0:
            warn(f"alert command exited {done.returncode}")


def _post_webhook(url: str, kind: str, message: str, fields: Mapping[str, object], warn: Warn,
                  post) -> None:
    body = json.dumps({"kind": kind, "message": message, **fields})
    try:
        if post is None:
            import httpx

            post = httpx.post
        response = post(url, content=body, headers={"content-type": "application/json"},
                        timeout=WEBHOOK_TIMEOUT_S)
        if response.status_code >= 400:
            warn(f"alert webhook answered {response.status_code}")
    except Exception as exc:  # any transport problem (refused, DNS, timeout): warn, carry on
        warn(f"alert webhook failed: {type(exc).__name__}")


def any_alert_reached(snapshot: Snapshot, alert_at: tuple[float, ...]) -> bool:
    """Whether any limit has reached an alert fraction: when none has, no alert can be due and
    the alert marks need not be read (a lock and a file write saved per call)."""
    return bool(alert_at) and any(state.fraction >= min(alert_at) - 1e-12 for state in snapshot.states)


def due_alerts(doc: dict, snapshot: Snapshot, alert_at: tuple[float, ...]) -> list[DueAlert]:
    """Mark and return the alerts `snapshot` calls for; call under the budget store's lock.

    Marks of windows that have ended are dropped, so the document stays small."""
    fired = doc.setdefault("alerts", {})
    current = {w.key for w in snapshot.windows.values()}
    for key in [k for k in fired if k.split("|")[2] not in current]:
        del fired[key]
    due = []
    for state in snapshot.states:
        crossed = [a for a in sorted(alert_at) if state.fraction >= a - 1e-12
                   and _key(state, a) not in fired]
        for fraction in crossed:
            fired[_key(state, fraction)] = snapshot.now
        if crossed:
            due.append(_alert(state, crossed[-1], snapshot))
    return due


def _key(state: LimitState, fraction: float) -> str:
    return f"{state.spec.scope or '*'}|{state.spec.field}|{state.window.key}|{fraction:g}"


def _alert(state: LimitState, fraction: float, snapshot: Snapshot) -> DueAlert:
    spec = state.spec
    message = (f"budget: {round(fraction * 100)}% of the {spec.describe()} limit used "
               f"({state.amount(state.spent)} spent; resets {snapshot.reset_text(state)})")
    spent = round(state.spent, 6) if spec.unit == "usd" else int(state.spent)
    fields = {"limit": spec.describe(), "fraction": f"{fraction:g}", "spent": spent,
              "window": state.window.key}
    return DueAlert(message, fields)


def deliver(due: list[DueAlert], alerts: AlertsConfig, warn: Warn,
            env: Mapping[str, str] | None = None, *, run=subprocess.run, post=None) -> None:
    """Warn on stderr and fire the hooks for each due budget alert."""
    for alert in due:
        warn(alert.message)
        fire_alert(alerts, "budget", alert.message, alert.fields, warn, env=env, run=run, post=post)

