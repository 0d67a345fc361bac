"""What llmroute knows about providers and models before any config is read: one owner per fact.

- `presets`: named OpenAI-compatible services (base URL, key variable, wire quirks).
- `builtin`: the dated built-in model table (prices, context and output limits, per-minute
  transcription prices), from which a model's facts come when the config does not give them.
- `capabilities`: which targets can take a request's tools (by wire format and model).
- `costs`: the one price rule (the provider's own reported cost, then config, then the table),
  a target's facts (price, context, free-ness), worst-case and actual cost of a call.

The provider types that run on the user's own machine are defined here, once: they need no key
and cost nothing unless the config prices them.
"""

from __future__ import annotations

LOCAL_TYPES = frozenset({"ollama", "local", "mock"})
