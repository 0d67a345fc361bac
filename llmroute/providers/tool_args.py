"""Tool-call arguments between the shared types and formats that want a JSON object.

`ToolCall.arguments` is JSON text (what OpenAI sends and streams). Anthropic's `tool_use.input`
and Gemini's `functionCall.args` are objects, so an assistant turn sent back to them needs the
text parsed, and their answers need the object written back as text.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ErrorClass, ProviderError
from ..types import ToolCall


def arguments_object(call: ToolCall) -> dict:
    """The call's arguments as a JSON object; "" means no arguments. Anything else that is not
    a JSON object cannot be sent to an object-typed format: a bad request, not a crash."""
    text = call.arguments.strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ProviderError(
            ErrorClass.BAD_REQUEST,
            f"tool call {call.id} ({call.name}): arguments are not a JSON object",
        )
    return value


def arguments_text(value: Any) -> str:
    """An object-typed format's arguments as the JSON text `ToolCall.arguments` holds."""
    return json.dumps(value if value is not None else {}, ensure_ascii=False, separators=(",", ":"))
