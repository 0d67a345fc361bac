"""`llmroute serve` (SPEC §13): an OpenAI- and Anthropic-compatible gateway in front of the engine.

Only the two ends are the gateway's: `openai_format` and `anthropic_format` turn a client's body
into a `Request` and write an `Answer` (or a stream of chunks) back in the client's wire format;
`app` holds the Starlette routes, the shared async client and the one engine; `auth` checks the
bearer token; `errors` maps llmroute's errors to each client's error body. Everything between —
plan, fallback, budget, ledger (`kind: serve`), cache — is `AsyncEngine`'s. Starlette and uvicorn
are imported only here (the `[serve]` extra).
"""
