"""`llmroute logs` (SPEC §14): the most recent requests, newest first, from the ledger's end.

The ledger is read backwards through its one reader (`ledger.reader.reverse_calls`, into
`LogCall`), so the last few requests cost a block read however long the ledger is. The attempts
of one request (its `request_id`) become one entry: where it was answered (or the last target
tried), its tokens, its cost over every attempt, the time its attempts took, and its text — the
turn kept in the conversations file, else the prompt and answer `ledger.log_prompts` stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .ledger.reader import LogCall, reverse_calls

BATCH = 256  # requests looked up in the conversations file at a time


@dataclass
class LogEntry:
    request_id: str | None
    ts: str
    kind: str | None = None
    target: str | None = None
    status: str = "error"
    error: str | None = None
    attempts: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    latency_ms: float = 0
    cached: bool = False
    conversation_id: str | None = None
    prompt: str | None = None
    answer: str | None = None
    _answered: bool = field(default=False, repr=False)

    def add(self, call: LogCall) -> None:
        """One more attempt, older than those already added."""
        self.attempts += 1
        self.kind = self.kind or call.kind
        self.conversation_id = self.conversation_id or call.conversation_id
        if call.cost_usd is not None:
            self.cost_usd = (self.cost_usd or 0.0) + call.cost_usd
        self.latency_ms += call.latency_ms or 0
        if call.status == "ok" and not self._answered:
            self._answered = True
            self.status, self.error, self.target = "ok", None, call.target
            self.input_tokens, self.output_tokens = call.input_tokens, call.output_tokens
            self.cached = bool(call.cached)
        elif self.attempts == 1:  # the latest attempt speaks for a request nothing answered
            self.status, self.error, self.target = call.status or "error", call.error, call.target
        if self.prompt is None and call.prompt is not None:
            self.prompt, self.answer = call.prompt, call.answer

    def text(self) -> str:
        return "\n".join(t for t in (self.prompt, self.answer) if t)

    def to_json(self) -> dict:
        return {"request_id": self.request_id, "ts": self.ts, "kind": self.kind, "target": self.target,
                "status": self.status, "error": self.error, "attempts": self.attempts,
                "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens},
                "cost_usd": self.cost_usd, "latency_ms": int(self.latency_ms), "cached": self.cached,
                "conversation_id": self.conversation_id, "prompt": self.prompt, "answer": self.answer}


@dataclass(frozen=True)
class LogFilter:
    cid: str | None = None
    query: str | None = None  # case-insensitive, in the prompt or the answer
    target: str | None = None  # `provider/model`, or a provider name

    def __call__(self, entry: LogEntry) -> bool:
        if self.cid is not None and entry.conversation_id != self.cid:
            return False
        if self.target is not None:
            target = entry.target or ""
            if target != self.target and not target.startswith(self.target + "/"):
                return False
        if self.query is not None and self.query.casefold() not in entry.text().casefold():
            return False
        return True


def recent_requests(ledger: Path, store, *, limit: int, keep: LogFilter = LogFilter()) -> list[LogEntry]:
    """Up to `limit` requests that pass `keep`, newest first. `store` (a ConversationStore or
    None) supplies the text of conversation turns."""
    entries: dict[str, LogEntry] = {}
    order: list[LogEntry] = []
    found: list[LogEntry] = []
    looked = 0  # entries of `order` already completed with the store and filtered

    def settle(upto: int) -> None:
        nonlocal looked
        batch = order[looked:upto]
        looked = upto
        turns = store.by_request(e.request_id for e in batch if e.request_id) if store is not None else {}
        for entry in batch:
            turn = turns.get(entry.request_id)
            if turn is not None:  # the turn's own prompt, not the whole conversation sent with it
                entry.prompt, entry.answer = turn.prompt, turn.answer
                entry.conversation_id = entry.conversation_id or turn.conversation
            if keep(entry):
                found.append(entry)

    for number, call in enumerate(reverse_calls(ledger, kind=LogCall)):
        key = call.request_id or f"#{number}"
        entry = entries.get(key)
        if entry is None:
            # A request's attempts are written together: once BATCH newer requests have
            # started after one, its attempts are all in.
            if len(order) - looked > BATCH:
                settle(len(order) - 1)
                if len(found) >= limit:
                    return found[:limit]
            entry = entries[key] = LogEntry(request_id=call.request_id, ts=call.ts)
            order.append(entry)
        entry.add(call)
    settle(len(order))
    return found[:limit]
