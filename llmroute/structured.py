"""`--schema` (SPEC §14): read the schema the user gave, and check an answer against it.

The providers ask for structured output in their own way (`providers/*.py`); whatever comes
back is checked here, in the life of the call (`calls.Call`), so an answer that is not JSON or
does not match is error class `invalid_output` and the fallback loop moves on to the next
target. The validator is `jsonschema` (the Draft its `$schema` names, else the latest), imported
only when a schema is in use.

The answer is the text, or — when the text is empty — the input of the forced `answer` tool
(Anthropic's mechanism). A Markdown code fence around the JSON is tolerated. The checked answer
is re-written as one line of JSON (`json.dumps`, keys in the model's order), so what is printed,
cached and stored is the parsed object, not the model's spacing.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from .errors import ErrorClass, ProviderError, UsageError
from .types import Result

ANSWER_TOOL = "answer"  # the forced tool Anthropic answers through
_FENCE = re.compile(r"^```(?:json)?\s*\n(.*)\n```\s*$", re.DOTALL)


def load_schema(text: str) -> dict:
    """`--schema FILE|JSON`: inline JSON when it starts with `{` (or `[`), else a file. Exit 2 for a
    file that cannot be read, text that is not a JSON object, or an invalid schema."""
    source = "--schema"
    if not text.lstrip().startswith(("{", "[")):
        path = Path(text).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"--schema: cannot read {path}: {getattr(error, 'strerror', None) or error}",
                             "give a JSON schema file or inline JSON, e.g. --schema '{\"type\": \"object\"}'") from None
        source = str(path)
    try:
        schema = json.loads(text)
    except ValueError as error:
        raise UsageError(f"{source}: not valid JSON ({error})") from None
    if not isinstance(schema, dict):
        raise UsageError(f"{source}: a JSON schema is an object, not {type(schema).__name__}")
    validator = _validator_class(schema)
    from jsonschema.exceptions import SchemaError

    try:
        validator.check_schema(schema)
    except SchemaError as error:
        raise UsageError(f"{source}: not a valid JSON schema: {error.message}") from None
    return schema


def _validator_class(schema: dict):
    from jsonschema.validators import validator_for

    from jsonschema import Draft202012Validator

    return validator_for(schema, default=Draft202012Validator)


def answer_text(result: Result) -> str:
    """The text that holds the structured answer (see the module docstring)."""
    if result.text.strip():
        return result.text
    for call in result.tool_calls:
        if call.name == ANSWER_TOOL:
            return call.arguments
    return result.text


def checked(result: Result, schema: dict) -> Result:
    """The result with its text the validated JSON; `ProviderError(INVALID_OUTPUT)` when the
    answer is not JSON or does not match the schema."""
    text = answer_text(result).strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        value: Any = json.loads(text)
    except ValueError:
        raise ProviderError(ErrorClass.INVALID_OUTPUT, f"answer is not JSON: {text[:80]!r}",
                            billed=result) from None
    validator = _validator_class(schema)(schema)
    error = next(iter(sorted(validator.iter_errors(value), key=lambda e: list(e.path))), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise ProviderError(ErrorClass.INVALID_OUTPUT,
                            f"answer does not match the schema at {where}: {error.message[:160]}",
                            billed=result)
    return replace(result, text=json.dumps(value, ensure_ascii=False), tool_calls=())
