"""Budget windows: where today, this week and this month start and when they reset (SPEC §6).

Windows follow the wall clock of `budget.timezone`: a day starts at local midnight, a week on
Monday at midnight, a month on the 1st at midnight. "local" means the machine's own zone; any
other value is an IANA name (`Europe/Berlin`). Arithmetic is done on calendar dates and only
then turned into instants, so DST days of 23 or 25 hours are still exactly one day.

A naive `datetime` stands for the machine's local time (Python's `timestamp()`/`fromtimestamp()`
use the C library's local zone for naive values), which is what "local" needs, DST included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from ..errors import ConfigError

KINDS = ("daily", "weekly", "monthly")


@dataclass(frozen=True)
class Zone:
    """The budget's time zone: `tz` is None for the machine's local zone."""

    name: str
    tz: tzinfo | None

    def to_local(self, epoch: float) -> datetime:
        return datetime.fromtimestamp(epoch, self.tz)

    def midnight(self, day: date) -> float:
        """The instant local `day` starts."""
        return datetime.combine(day, time(0), tzinfo=self.tz).timestamp()

    def day_key(self, epoch: float) -> str:
        """The local calendar day of an instant, `YYYY-MM-DD` (sorts like the days do)."""
        return self.to_local(epoch).date().isoformat()

    def label(self, epoch: float) -> str:
        """How the zone is named to a user: the IANA name, or the local abbreviation."""
        if self.tz is not None:
            return self.name
        return self.to_local(epoch).astimezone().tzname() or "local time"


def zone_for(name: str | None) -> Zone:
    """`local` (or empty) -> the machine's zone; else an IANA zone. Unknown names are a config
    error naming the setting, since every window depends on it."""
    if not name or name == "local":
        return Zone("local", None)
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return Zone(name, ZoneInfo(name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError([f"budget.timezone: unknown time zone '{name}'"],
                          "use 'local' or an IANA name such as Europe/Berlin") from exc


@dataclass(frozen=True)
class Window:
    """One budget window. `first_day`/`end_day` are local `YYYY-MM-DD` keys (end exclusive);
    `start`/`reset` the instants it began and next resets."""

    kind: str  # daily | weekly | monthly
    key: str  # identifies this particular window, e.g. "daily:2025-01-31"
    first_day: str
    end_day: str
    start: float
    reset: float

    def contains_day(self, day: str) -> bool:
        return self.first_day <= day < self.end_day


def window_bounds(kind: str, today: date) -> tuple[date, date]:
    """First day and the day after the last of the `kind` window holding `today`."""
    if kind == "daily":
        return today, today + timedelta(days=1)
    if kind == "weekly":
        monday = today - timedelta(days=today.weekday())
        return monday, monday + timedelta(days=7)
    if kind == "monthly":
        first = today.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return first, following
    raise ValueError(f"unknown window kind {kind!r}")


def window_at(kind: str, epoch: float, zone: Zone) -> Window:
    """The `kind` window containing the instant `epoch`."""
    first, end = window_bounds(kind, zone.to_local(epoch).date())
    return Window(kind, f"{kind}:{first.isoformat()}", first.isoformat(), end.isoformat(),
                  zone.midnight(first), zone.midnight(end))


def windows_at(epoch: float, zone: Zone) -> dict[str, Window]:
    """The daily, weekly and monthly windows containing `epoch`."""
    return {kind: window_at(kind, epoch, zone) for kind in KINDS}


def earliest_day(epoch: float, zone: Zone) -> str:
    """The first local day any current window needs (a week may start in the previous month)."""
    return min(w.first_day for w in windows_at(epoch, zone).values())


def describe_reset(window: Window, now: float, zone: Zone) -> str:
    """`00:00 Europe/Berlin` for today's window, else `Mon 2025-02-03 00:00 Europe/Berlin`,
    followed by how long that is from now."""
    local = zone.to_local(window.reset)
    when = local.strftime("%H:%M") if window.kind == "daily" else local.strftime("%a %Y-%m-%d %H:%M")
    return f"{when} {zone.label(window.reset)}, in {_duration(window.reset - now)}"


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m"
