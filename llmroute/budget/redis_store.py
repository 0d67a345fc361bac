"""The budget on Redis (SPEC §15 `state.backend: redis`): one budget for every machine of a team.

`RedisBudgetGuard` is the local `BudgetGuard` with its storage moved: spend and open reservations
live in Redis under `<namespace>:budget:`, so N machines × M processes share them; the limit
arithmetic (`limits.py`), refusal messages and alerts are the local guard's.

Keys (all prefixed `<namespace>:budget:`):

* `day:<YYYY-MM-DD>` — a hash per local day of the budget's time zone: `u` picodollars, `t`
  metered tokens, `pu:<provider>`/`pt:<provider>` the same per provider. Expires after 40 days
  (a monthly window needs at most 31).
* `host:<host>:<day>` — the same, counting only what this host settled or seeded (for
  `budget --seed-from-ledger`).
* `res` (hash id -> JSON of its increments), `exp` (sorted set id -> expiry, server clock),
  `open` (hash: the sum of every open reservation, same fields as a day) — reservations.
* `done:<id>` — set when a reservation is settled, so a repeated settle counts nothing.

Every change is one Lua script, atomic on the server:

* reserve: drop reservations whose expiry passed (a killed process's frees itself after
  `ttl` seconds, whichever machine it ran on), then admit the call only if, for every limit
  that applies, the window's day totals + open reservations + this worst case stay within it;
  admitted -> stored with its expiry, and added to `open`.
* settle: once per id (`done:<id>`, SET NX): remove the reservation if still open, add the real
  cost to today's bucket. A call whose reservation expired still counts what it cost.
* release: remove the reservation.
* seed: add, per day and field, what this machine's local ledger holds beyond what this host
  already counted in Redis — so seeding twice, or after calls settled here, counts nothing twice.

Persistence: settled spend survives a Redis restart only as far as Redis persists it; run Redis
with `appendonly yes` (`appendfsync everysec` loses at most a second of writes, `always` none).
Alerts fire once per window per machine (their marks stay in the local `budget.json`).
"""

from __future__ import annotations

import json
import socket
import time
from typing import Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

from ..config.model import Config, ProviderConfig
from ..errors import BudgetError
from ..paths import Paths
from ..types import Target
from . import spend
from .alerts import any_alert_reached, due_alerts
from .guard import BudgetGuard, Handle, Warn
from .limits import Reserved, Snapshot
from .windows import earliest_day, windows_at

RESERVATION_TTL_S = 600.0  # like the local guard's MAX_AGE_S: no call outlives it
DAY_TTL_S = 40 * 86400
DONE_TTL_S = 2 * 86400
SLACK_PICO = 1000  # limits.EPSILON ($1e-9) in picodollars
CONNECT_TIMEOUT_S = 2.0


class RedisUnavailable(BudgetError):
    """Redis could not be reached: a budget-governed call fails closed (exit 4)."""


def redis_url(config: Config, env: Mapping[str, str], keyring_get: Callable[[str], str | None] | None = None) -> str:
    """The URL to use: `state.url_env`'s variable, else `state.url`, else the keyring's
    `redis_url`, else the local default."""
    state = config.state
    if state.url_env and env.get(state.url_env):
        return env[state.url_env]
    if state.url:
        return state.url
    if keyring_get is not None:
        found = keyring_get("redis_url")
        if found:
            return found
    return "redis://127.0.0.1:6379/0"


def safe_url(url: str) -> str:
    """`url` without its credentials, for messages."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    except ValueError:
        return "(an unparsable URL)"


def connect(url: str):
    """A client with short timeouts, checked by one PING; `RedisUnavailable` naming Redis and
    the URL (without credentials) when it cannot be reached."""
    try:
        import redis
    except ImportError:
        raise RedisUnavailable("state.backend is redis but the redis client is not installed",
                               "install the team extra: pip install 'llmroute[team]'") from None
    try:
        client = redis.Redis.from_url(url, socket_timeout=CONNECT_TIMEOUT_S,
                                      socket_connect_timeout=CONNECT_TIMEOUT_S)
        client.ping()
    except (redis.RedisError, OSError, ValueError) as exc:
        raise unavailable(url, exc) from None
    return client


def unavailable(url: str, exc: BaseException) -> RedisUnavailable:
    detail = type(exc).__name__
    return RedisUnavailable(
        f"Redis at {safe_url(url)} is unreachable ({detail}); the budget is shared there, so no "
        f"call is made (fail closed)",
        "start Redis or fix state.url / state.url_env; `llmroute health` shows the state backend")


_EXPIRE = """
local function drop(rid)
  local payload = redis.call('HGET', KEYS[1], rid)
  if payload then
    for field, amount in pairs(cjson.decode(payload)) do
      redis.call('HINCRBY', KEYS[3], field, '-' .. amount)
    end
    redis.call('HDEL', KEYS[1], rid)
  end
  redis.call('ZREM', KEYS[2], rid)
  return payload
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for _, rid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do drop(rid) end
"""

# KEYS: res, exp, open, day keys...; ARGV: rid, ttl, payload JSON, n checks, then per check:
# field, limit, amount, number of days, then that many indexes into KEYS.
_RESERVE = _EXPIRE + """
local i = 5
for c = 1, tonumber(ARGV[4]) do
  local field, limit, amount, ndays = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local total = tonumber(redis.call('HGET', KEYS[3], field) or '0') + amount
  for d = 1, ndays do
    total = total + tonumber(redis.call('HGET', KEYS[tonumber(ARGV[i + 3 + d])], field) or '0')
  end
  if total > limit then return c end
  i = i + 4 + ndays
end
for field, amount in pairs(cjson.decode(ARGV[3])) do
  redis.call('HINCRBY', KEYS[3], field, amount)
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
return 0
"""

# KEYS: res, exp, open, day, host day, done; ARGV: rid, increments JSON, day ttl, done ttl
_SETTLE = _EXPIRE + """
if not redis.call('SET', KEYS[6], '1', 'NX', 'EX', tonumber(ARGV[4])) then return 0 end
drop(ARGV[1])
for field, amount in pairs(cjson.decode(ARGV[2])) do
  redis.call('HINCRBY', KEYS[4], field, amount)
  redis.call('HINCRBY', KEYS[5], field, amount)
end
redis.call('EXPIRE', KEYS[4], tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[5], tonumber(ARGV[3]))
return 1
"""

_DROP_EXPIRED = _EXPIRE + "return 0"

_RELEASE = _EXPIRE + """
if drop(ARGV[1]) then return 1 end
return 0
"""

# KEYS: pairs of (day, host day); ARGV: day ttl, then per day a JSON of local totals.
_SEED = """
local added = 0
for k = 1, #KEYS, 2 do
  for field, wanted in pairs(cjson.decode(ARGV[(k + 1) / 2 + 1])) do
    local have = tonumber(redis.call('HGET', KEYS[k + 1], field) or '0')
    local delta = tonumber(wanted) - have
    if delta > 0 then
      local text = string.format('%.0f', delta)
      redis.call('HINCRBY', KEYS[k], field, text)
      redis.call('HINCRBY', KEYS[k + 1], field, text)
      added = added + 1
    end
  end
  redis.call('EXPIRE', KEYS[k], tonumber(ARGV[1]))
  redis.call('EXPIRE', KEYS[k + 1], tonumber(ARGV[1]))
end
return added
"""


def _increments(provider: str, pico: int, tokens: int) -> dict[str, str]:
    """The hash fields one amount adds to (integers as strings: exact in Lua and Redis)."""
    out: dict[str, str] = {}
    if pico:
        out["u"] = out[f"pu:{provider}"] = str(int(pico))
    if tokens:
        out["t"] = out[f"pt:{provider}"] = str(int(tokens))
    return out


class RedisBudgetGuard(BudgetGuard):
    """The engine's `BudgetGuard` with spend and reservations in Redis (see the module doc)."""

    def __init__(self, config: Config, paths: Paths, *, client=None, url: str | None = None,
                 env: Mapping[str, str] | None = None, clock: Callable[[], float] = time.time,
                 warn: Warn | None = None, ttl: float = RESERVATION_TTL_S, host: str | None = None,
                 run=None, post=None):
        super().__init__(config, paths, env=env, clock=clock, warn=warn, run=run, post=post)
        self.url = url or "redis://"
        self.client = client if client is not None else connect(self.url)
        self.prefix = f"{config.state.namespace}:budget:"
        self.ttl = ttl
        self.host = host or socket.gethostname()
        self._scripts = {name: self.client.register_script(body) for name, body in
                         (("reserve", _RESERVE), ("settle", _SETTLE), ("expire", _DROP_EXPIRED), ("release", _RELEASE), ("seed", _SEED))}
        self._res_keys = [self.prefix + "res", self.prefix + "exp", self.prefix + "open"]

    # --- the protocol -------------------------------------------------------------------------

    def reserve(self, target: Target, provider: ProviderConfig, worst_case_usd: float,
                worst_case_tokens: int) -> Handle | None:
        free = self._is_free(target, provider)
        if free and self.budget.on_exhaust != "block":
            return Handle(None, target.id, provider.name)
        self._snapshot = None
        snapshot = self._fresh_snapshot()
        state = self._refusal(snapshot, target, provider, worst_case_usd, worst_case_tokens)
        if state is not None:
            self._last_block = (state, snapshot)
            return None
        if free:
            return Handle(None, target.id, provider.name)
        import secrets

        rid = secrets.token_hex(8)
        pico = round(float(worst_case_usd) * spend.PICO)
        keys, args = list(self._res_keys), []
        applicable = snapshot.applicable(provider.name)
        for state in applicable:
            field = ("u" if state.spec.unit == "usd" else "t") if state.spec.scope is None else \
                (f"pu:{provider.name}" if state.spec.unit == "usd" else f"pt:{provider.name}")
            if state.spec.unit == "usd":
                limit, amount = round(state.spec.value * spend.PICO) + SLACK_PICO, pico
            else:
                limit, amount = int(state.spec.value), int(worst_case_tokens)
            days = _days(state.window)
            indexes = []
            for day in days:
                keys.append(self.prefix + "day:" + day)
                indexes.append(str(len(keys)))
            args += [field, str(limit), str(amount), str(len(days)), *indexes]
        payload = json.dumps(_increments(provider.name, pico, int(worst_case_tokens)))
        refused = self._call("reserve", keys, [rid, str(self.ttl), payload, str(len(applicable)), *args])
        if refused:
            # Another machine reserved first: refuse with the limit as it stands now.
            snapshot = self._fresh_snapshot()
            state = (self._refusal(snapshot, target, provider, worst_case_usd, worst_case_tokens)
                     or next(s for s in snapshot.states if s.spec == applicable[int(refused) - 1].spec))
            self._last_block = (state, snapshot)
            return None
        return Handle(rid, target.id, provider.name)

    def settle(self, handle: Handle, cost_usd: float, tokens: int) -> None:
        if handle.id is None:
            return
        self._snapshot = None
        day = self.zone.day_key(self.clock())
        increments = _increments(handle.provider, round(float(cost_usd) * spend.PICO), int(tokens))
        try:
            self._call("settle", [*self._res_keys, self.prefix + "day:" + day,
                                  f"{self.prefix}host:{self.host}:{day}", self.prefix + "done:" + handle.id],
                       [handle.id, json.dumps(increments), str(DAY_TTL_S), str(DONE_TTL_S)])
            snapshot = self._fresh_snapshot()
        except RedisUnavailable as exc:
            self.warn(f"{exc.message}: this call's cost could not be added to the shared budget")
            return
        if not any_alert_reached(snapshot, self.budget.alert_at):
            return  # the common case: far from every alert, no local file to lock and write
        with self.store.update() as doc:
            due = due_alerts(doc, snapshot, self.budget.alert_at)
        self._deliver(due)

    def release(self, handle: Handle) -> None:
        if handle.id is None:
            return
        self._snapshot = None
        try:
            self._call("release", self._res_keys, [handle.id])
        except RedisUnavailable as exc:
            self.warn(f"{exc.message}: the reservation expires by itself")

    def hand_over(self, handle: Handle, pid: int) -> None:
        """Reservations in Redis expire by time, not by owner: nothing to hand over."""

    # --- seeding ------------------------------------------------------------------------------

    def seed_from_ledger(self) -> int:
        """Add this machine's current-window ledger spend that Redis does not hold yet; the
        number of day fields changed (0 when already seeded)."""
        now = self.clock()
        index, _ = spend.catch_up(None, self.ledger, self.zone, earliest_day(now, self.zone),
                                  lambda target, ts: 0, self.warn)
        keys, args = [], [str(DAY_TTL_S)]
        for day, bucket in sorted(index["days"].items()):
            fields = {"u": str(int(bucket["u"])), "t": str(int(bucket["t"]))}
            for provider, (usd, tok) in bucket["p"].items():
                fields[f"pu:{provider}"], fields[f"pt:{provider}"] = str(int(usd)), str(int(tok))
            keys += [self.prefix + "day:" + day, f"{self.prefix}host:{self.host}:{day}"]
            args.append(json.dumps({k: v for k, v in fields.items() if v != "0"}))
        if not keys:
            return 0
        return int(self._call("seed", keys, args))

    def round_trip_ms(self) -> float:
        started = time.perf_counter()
        self._wrap(self.client.ping)
        return (time.perf_counter() - started) * 1000

    # --- internals ----------------------------------------------------------------------------

    def _fresh_snapshot(self) -> Snapshot:
        now = self.clock()
        windows = windows_at(now, self.zone)
        days = sorted({d for w in windows.values() for d in _days(w)})

        def read():
            pipe = self.client.pipeline(transaction=True)
            self._scripts["expire"](keys=self._res_keys, args=[], client=pipe)
            for day in days:
                pipe.hgetall(self.prefix + "day:" + day)
            pipe.hgetall(self.prefix + "open")
            pipe.hlen(self.prefix + "res")
            return pipe.execute()

        _, *buckets, open_fields, count = self._wrap(read)
        index = {"days": {day: _bucket(raw) for day, raw in zip(days, buckets) if raw}}
        totals = spend.totals_by_window(index, windows)
        reserved = Reserved()
        opened = _bucket(open_fields)
        reserved.usd, reserved.tokens, reserved.count = opened["u"] / spend.PICO, int(opened["t"]), int(count)
        reserved.providers = {name: [u / spend.PICO, int(t)] for name, (u, t) in opened["p"].items()}
        snapshot = Snapshot(now, self.zone, windows, totals, reserved)
        snapshot.build_states(self.specs)
        self._snapshot = snapshot
        return snapshot

    def _call(self, name: str, keys: list[str], args: list[str]):
        return self._wrap(lambda: self._scripts[name](keys=keys, args=args))

    def _wrap(self, operation):
        import redis

        try:
            return operation()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise unavailable(self.url, exc) from None


def _days(window) -> list[str]:
    from datetime import date, timedelta

    first, end = date.fromisoformat(window.first_day), date.fromisoformat(window.end_day)
    return [(first + timedelta(days=n)).isoformat() for n in range((end - first).days)]


def _bucket(raw: Mapping) -> dict:
    """A Redis day hash as a spend-index bucket (`spend.totals_by_window` reads these)."""
    bucket: dict = {"u": 0, "t": 0, "ab": 0, "p": {}}
    for key, value in raw.items():
        key = key.decode() if isinstance(key, bytes) else key
        amount = int(value)
        if key in ("u", "t"):
            bucket[key] += amount
        elif key[:3] in ("pu:", "pt:"):
            per = bucket["p"].setdefault(key[3:], [0, 0])
            per[0 if key[1] == "u" else 1] += amount
    return bucket

