'''The commented starter config that `llmroute config init` writes (SPEC §2.6).

It is kept small on purpose: the providers most people have, one route, a daily budget, and
comments pointing at the rest. `example-config.yaml` in the repository shows every key.
Tests load this text to make sure it always validates.
'''

STARTER_CONFIG = """\
# llmroute config — see `llmroute config check` to validate and `llmroute config show` to see
# the effective config. Every key is described in the README (and example-config.yaml).
version: 1

defaults:
  route: default          # the route used when you give neither -m nor -r
  strategy: auto          # priority | cost | latency | round-robin | weighted | quality | auto
  timeout: 60             # seconds per attempt
  max_tokens: 1024

# Keys never go in this file. Store them with `llmroute keys set openai` (OS keyring) or export
# the variable named by key_env (default: <NAME>_API_KEY, e.g. OPENAI_API_KEY).
providers:
  openai:
    type: openai
    models:
      gpt-4o-mini: {tier: small}     # prices and context come from the built-in table
      gpt-4o: {tier: large}
  anthropic:
    type: anthropic
    models:
      claude-haiku-4-5: {tier: small}
      claude-sonnet-4-5: {tier: large}
  ollama:                            # a local Ollama server; no key, no cost
    type: ollama
    free: true
    models:
      llama3.2: {tier: small}

# A route is an ordered list of targets (provider/model; a bare provider means its first model).
# Providers without a key are skipped, so it is fine to list ones you have not set up yet.
routes:
  default: [openai/gpt-4o-mini, anthropic/claude-haiku-4-5, ollama/llama3.2]
  strong: [anthropic/claude-sonnet-4-5, openai/gpt-4o]

# First matching rule wins; evaluated before the strategy.
rules:
  - when: {regex: "(?i)\\\\b(prove|derive|step by step)\\\\b"}
    then: {route: strong}

budget:
  daily: 5.00             # USD; also weekly, monthly, tokens_daily, ...
  on_exhaust: free        # free: only free providers answer once spent; block: refuse (exit 4)
  alert_at: [0.5, 0.8, 1.0]

ledger:
  log_prompts: false      # true stores prompt and answer text in the ledger too
"""
