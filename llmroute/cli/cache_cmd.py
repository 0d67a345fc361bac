"""`llmroute cache stats|clear`: what the response cache holds and how often it answers.

The cache lives in `<data dir>/cache.sqlite3` whether or not it is enabled, so `stats` and
`clear` work on it either way; neither creates the file when it does not exist. A damaged file
is set aside with a warning (`cache.ResponseCache`), so both work on it too; a cache that cannot
be opened at all (read-only directory, disk full) is one plain error naming the file.
"""

from __future__ import annotations

from typing import Callable

import click

from .context import AppContext


@click.group("cache")
def cache_group() -> None:
    """Response cache statistics and clearing."""


def _run(app: AppContext, operation: Callable):
    """`operation(cache)` on the data dir's cache, closed afterwards; a cache that cannot be
    used is an error that says which file and what to do (exit 1)."""
    import sqlite3

    from ..errors import LLMRouteError

    cache = _cache(app)
    try:
        return operation(cache)
    except (sqlite3.Error, OSError) as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise LLMRouteError(f"cannot use the response cache {cache.path}: {reason}",
                            f"make {cache.path.parent} writable; the cache is disposable, so deleting "
                            f"{cache.path.name} loses nothing else") from None
    finally:
        cache.close()


def _cache(app: AppContext):
    from ..cache import ResponseCache

    try:
        ttl = app.load_config().cache.ttl
    except Exception:  # stats/clear must work even when the config is broken
        ttl = 3600.0
    return ResponseCache.for_data_dir(app.paths.data_dir, ttl=ttl)


@cache_group.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def stats_command(app: AppContext, as_json: bool) -> None:
    """Entries, hit rate and size on disk."""
    stats = _run(app, lambda cache: cache.stats())
    if as_json:
        import json

        click.echo(json.dumps(stats.to_json()))
        return
    rate = f"{stats.hit_rate * 100:.1f}%" if stats.hit_rate is not None else "n/a"
    click.echo(f"path:     {stats.path}")
    click.echo(f"entries:  {stats.entries}" + (f" (+{stats.expired} expired)" if stats.expired else ""))
    click.echo(f"hits:     {stats.hits}")
    click.echo(f"misses:   {stats.misses}")
    click.echo(f"hit rate: {rate}")
    click.echo(f"size:     {_size(stats.size_bytes)}")


@cache_group.command("clear")
@click.pass_obj
def clear_command(app: AppContext) -> None:
    """Remove every cached answer and reset the hit/miss counters."""
    removed = _run(app, lambda cache: cache.clear())
    click.echo(f"removed {removed} cached answer{'s' if removed != 1 else ''}")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
