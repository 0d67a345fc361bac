"""The command table and top-level help, in a module that imports nothing.

Both the click group (`main.py`) and the fast path for `--help`/`--version` (`entry.py`) read
them, so the two cannot drift apart (a test renders both and compares).
"""

from __future__ import annotations

# name -> (module in llmroute/cli/, attribute, one-line help).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "ask": ("ask", "ask_command", "Ask a prompt (the default command)."),
    "route": ("ask", "route_command", "Show the routing plan for a prompt without calling anything."),
    "models": ("models_cmd", "models_command", "List every target with prices, context, tier and state."),
    "config": ("config_cmd", "config_group", "Write, locate, validate, show or trust the config."),
    "keys": ("keys_cmd", "keys_group", "Store, list or delete provider API keys in the keyring."),
    "report": ("report_cmd", "report_command", "Spend and performance report from the ledger."),
    "budget": ("budget_cmd", "budget_command", "Show spend against the budget limits."),
    "health": ("health_cmd", "health_command", "Probe providers and show their health."),
    "compare": ("compare_cmd", "compare_command", "Send one prompt to several targets side by side."),
    "abtest": ("abtest_cmd", "abtest_group", "Run and report A/B tests between two targets."),
    "feedback": ("abtest_cmd", "feedback_command", "Record a thumbs up or down on an answer."),
    "batch": ("batch_cmd", "batch_command", "Answer many prompts from a file, N at a time."),
    "transcribe": ("transcribe_cmd", "transcribe_command", "Speech to text across providers."),
    "cache": ("cache_cmd", "cache_group", "Response cache statistics and clearing."),
    "completion": ("completion_cmd", "completion_command", "Print a shell completion script."),
    "tokens": ("tokens_cmd", "tokens_command", "Count a text's tokens exactly, with the fast estimate."),
}


GROUP_HELP = """Route prompts to the best LLM provider, within budget, with fallbacks and a ledger.

\b
echo "explain this" | llmroute            answer a piped prompt
llmroute -m openai/gpt-4o-mini "hi"       pin a target
llmroute --explain "prove it"             show the plan, spend nothing
"""

# The group's options in the order click lists them: --version first (it is added by the
# version_option decorator, outermost), the help option last.
OPTION_HELP: dict[str, str] = {
    "--version": "Show the version and exit.",
    "--config PATH": "Config file (default: ./llmroute.yaml once trusted, then the user config dir).",
    "--no-color": "Never use colour.",
    "-h, --help": "Show this message and exit.",
}
