"""Typed reads from YAML nodes that record problems instead of raising.

The loader walks the `yaml.compose` node tree (not plain Python values) because nodes carry
their line numbers: every problem becomes `path:line: message`. A `Reader` collects every
problem of the whole file so one `config check` shows all of them at once, rather than making the
user fix and re-run one error at a time. It never echoes a value that looks like an API key.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

BAD = object()  # returned by `Reader.read` when the value was wrong (a problem is recorded)

SECRET_VALUE = re.compile(
    r"sk-[A-Za-z0-9_-]{16,}|sk-ant-[A-Za-z0-9_-]{6,}|sk-or-v1-[A-Za-z0-9]{6,}"
    r"|gsk_[A-Za-z0-9]{16,}|AIza[0-9A-Za-z_-]{30,}"
)
SECRET_KEY_NAMES = frozenset(
    {"api_key", "apikey", "api-key", "key", "token", "secret", "password", "access_token",
     "auth_token", "api_token", "secret_key", "bearer"}
)
LITERAL_KEY_MESSAGE = (
    "literal API keys are not allowed in the config; "
    "store it with `llmroute keys set NAME` or set key_env"
)

_TAG = "tag:yaml.org,2002:"
_KIND_NAMES = {"str": "a string", "int": "an integer", "num": "a number", "bool": "true or false"}


@dataclass(frozen=True)
class Field:
    """What one scalar key accepts: a kind, whether null is allowed, a range, or a choice."""

    kind: str  # "str" | "int" | "num" | "bool"
    nullable: bool = False
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    choices: tuple[str, ...] = ()


def line_of(node: Any) -> int:
    """1-based line of a node (line 1 for a missing one, e.g. an empty file)."""
    mark = getattr(node, "start_mark", None)
    return mark.line + 1 if mark is not None else 1


def show(value: Any) -> str:
    """A value quoted for a message; one that looks like an API key is never shown."""
    if isinstance(value, str) and SECRET_VALUE.search(value):
        return "(a value that looks like an API key)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def suggest(word: str, candidates: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest candidate, or nothing."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def describe(value: Any) -> str:
    """The type of a constructed value in words, for `got ...`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


class Reader:
    """Collects problems and warnings while reading one config file's node tree."""

    def __init__(self, path: str):
        import yaml

        self.path = path
        self._yaml = yaml
        self._loader = yaml.SafeLoader("")
        self._problems: list[tuple[int, str]] = []
        self._warnings: list[tuple[int, str]] = []

    # -- recording -------------------------------------------------------------------------
    def problem(self, node: Any, message: str) -> None:
        self._problems.append((node if isinstance(node, int) else line_of(node), message))

    def warn(self, node: Any, message: str) -> None:
        self._warnings.append((node if isinstance(node, int) else line_of(node), message))

    def _format(self, items: list[tuple[int, str]]) -> list[str]:
        out: list[str] = []
        for line, message in sorted(items, key=lambda item: item[0]):
            text = f"{self.path}:{line}: {message}"
            if text not in out:
                out.append(text)
        return out

    @property
    def problems(self) -> list[str]:
        return self._format(self._problems)

    @property
    def warnings(self) -> list[str]:
        return self._format(self._warnings)

    # -- node shapes -----------------------------------------------------------------------
    def is_null(self, node: Any) -> bool:
        return node is None or (isinstance(node, self._yaml.ScalarNode) and node.tag == _TAG + "null")

    def is_scalar(self, node: Any) -> bool:
        return isinstance(node, self._yaml.ScalarNode)

    def is_mapping(self, node: Any) -> bool:
        return isinstance(node, self._yaml.MappingNode)

    def is_sequence(self, node: Any) -> bool:
        return isinstance(node, self._yaml.SequenceNode)

    def node_kind(self, node: Any) -> str:
        if self.is_mapping(node):
            return "a mapping"
        if self.is_sequence(node):
            return "a list"
        return describe(self.scalar(node))

    def scalar(self, node: Any) -> Any:
        """The Python value of a scalar node (YAML 1.1 rules, as `yaml.safe_load`)."""
        if node is None:
            return None
        try:
            return self._loader.construct_object(node, deep=True)
        except self._yaml.YAMLError:
            return node.value

    def mapping_items(
        self,
        node: Any,
        where: str,
        allowed: Iterable[str] | None = None,
        *,
        refuse_secret_keys: bool = False,
        elsewhere: Mapping[str, str] | None = None,
    ) -> dict[str, tuple[Any, Any]] | None:
        """`{key: (key_node, value_node)}` of a mapping node; null reads as empty.

        Keys not in `allowed` are problems: a secret-sounding name is refused as a literal key,
        a key valid `elsewhere` says where, anything else suggests the closest known key."""
        if self.is_null(node):
            return {}
        if not self.is_mapping(node):
            self.problem(node, f"{where} must be a mapping, got {self.node_kind(node)}")
            return None
        known = list(allowed) if allowed is not None else None
        out: dict[str, tuple[Any, Any]] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if self.is_scalar(key_node) else str(self.scalar(key_node))
            if key in out:
                self.problem(key_node, f"{where}: duplicate key '{key}'")
                continue
            if known is not None and key not in known:
                self._unknown_key(key_node, key, where, known, refuse_secret_keys, elsewhere or {})
                continue
            out[key] = (key_node, value_node)
        return out

    def mapping(self, node: Any, where: str, allowed: Iterable[str] | None = None, **kw: Any) -> dict[str, Any] | None:
        items = self.mapping_items(node, where, allowed, **kw)
        return None if items is None else {k: v for k, (_, v) in items.items()}

    def _unknown_key(self, key_node: Any, key: str, where: str, known: list[str],
                     refuse_secret_keys: bool, elsewhere: Mapping[str, str]) -> None:
        if refuse_secret_keys and key.lower() in SECRET_KEY_NAMES:
            self.problem(key_node, LITERAL_KEY_MESSAGE)
        elif key in elsewhere:
            self.problem(key_node, f"{where}: '{key}' only applies to {elsewhere[key]}")
        else:
            shown = show(key)
            self.problem(key_node, f"{where}: unknown key {shown}{suggest(key, known)}; known keys: {', '.join(known)}")

    def sequence(self, node: Any, where: str) -> list[Any] | None:
        """Items of a list node; null reads as empty."""
        if self.is_null(node):
            return []
        if not self.is_sequence(node):
            self.problem(node, f"{where} must be a list, got {self.node_kind(node)}")
            return None
        return list(node.value)

    # -- typed scalars ---------------------------------------------------------------------
    def read(self, node: Any, where: str, spec: Field) -> Any:
        """The value of a scalar key checked against `spec`; `BAD` after recording a problem."""
        if not self.is_scalar(node):
            self.problem(node, f"{where} must be {_KIND_NAMES[spec.kind]}, got {self.node_kind(node)}")
            return BAD
        value = self.scalar(node)
        if value is None:
            if spec.nullable:
                return None
            self.problem(node, f"{where} must be {_KIND_NAMES[spec.kind]}, got null")
            return BAD
        if not _is_kind(value, spec.kind):
            self.problem(node, f"{where} must be {_KIND_NAMES[spec.kind]}, got {describe(value)}")
            return BAD
        if spec.choices and value not in spec.choices:
            noun = where.rsplit(".", 1)[-1]
            self.problem(node, f"{where}: unknown {noun} {show(value)}{suggest(value, spec.choices)}; "
                               f"valid: {', '.join(spec.choices)}")
            return BAD
        message = _range_problem(value, spec)
        if message:
            self.problem(node, f"{where} {message}")
            return BAD
        return float(value) if spec.kind == "num" else value

    def fields(self, entries: Mapping[str, Any], where: str, specs: Mapping[str, Field]) -> dict[str, Any]:
        """Read every key of `specs` present in `entries`; wrong ones are left out (defaults apply)."""
        out: dict[str, Any] = {}
        for key, spec in specs.items():
            if key in entries:
                value = self.read(entries[key], f"{where}.{key}", spec)
                if value is not BAD:
                    out[key] = value
        return out

    def strings(self, node: Any, where: str) -> list[tuple[str, Any]] | None:
        """A list of strings as `(text, node)` pairs; wrong items are problems and left out."""
        items = self.sequence(node, where)
        if items is None:
            return None
        out = []
        for index, item in enumerate(items):
            value = self.read(item, f"{where}[{index}]", Field("str"))
            if value is not BAD:
                out.append((value, item))
        return out

    def scan_secrets(self, root: Any) -> None:
        """Refuse every scalar anywhere in the file that looks like a real API key."""
        seen: set[int] = set()
        stack = [root] if root is not None else []
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if self.is_scalar(node):
                if isinstance(node.value, str) and SECRET_VALUE.search(node.value):
                    self.problem(node, LITERAL_KEY_MESSAGE)
            elif self.is_sequence(node):
                stack.extend(node.value)
            elif self.is_mapping(node):
                for key_node, value_node in node.value:
                    stack.extend((key_node, value_node))


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False  # `true` is not a number
    if kind == "int":
        return isinstance(value, int)
    return isinstance(value, (int, float)) and value == value  # reject .nan


def _range_problem(value: Any, spec: Field) -> str | None:
    if spec.kind not in ("int", "num"):
        return None
    lo, hi = spec.lo, spec.hi
    too_low = lo is not None and (value <= lo if spec.lo_open else value < lo)
    too_high = hi is not None and value > hi
    if not (too_low or too_high):
        return None
    if lo is not None and hi is not None:
        return f"must be in {'(' if spec.lo_open else '['}{_num(lo)}, {_num(hi)}], got {_num(value)}"
    if lo is not None:
        return f"must be {'greater than' if spec.lo_open else 'at least'} {_num(lo)}, got {_num(value)}"
    return f"must be at most {_num(hi)}, got {_num(value)}"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
