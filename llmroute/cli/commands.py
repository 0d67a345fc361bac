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
    "serve": ("serve_cmd", "serve_command", "Serve an OpenAI- and Anthropic-compatible gateway."),
    "chat": ("chat_cmd", "chat_command", "Chat interactively on one conversation."),
    "logs": ("logs_cmd", "logs_command", "Recent requests, newest first, with their text."),
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


# `ctx.meta` key: the first argument of an implicit `ask` when it stands where a command name
# goes (`llmroute modles`); `ask` refuses it when it turns out to be the whole prompt (SPEC §4).
COMMAND_WORD = "llmroute.command_word"

# Commands other CLIs of this kind have and llmroute does not: a lone `llmroute help` is far
# more likely a command someone expected than a prompt (SPEC §4). name -> what to use instead.
PEER_COMMANDS: dict[str, str | None] = {
    "help": "`llmroute --help` lists the commands",
    "version": "`llmroute --version` prints the version",
    "init": "`llmroute config init` writes a starter config",
}


def edit_distance(a: str, b: str) -> int:
    """Insertions, deletions, substitutions and swaps of two neighbours, one edit each
    (optimal string alignment)."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[len(b)]


def close_names(word: str, names, limit: int = 1) -> list[str]:
    """The names within `limit` edits of `word` (case aside), nearest first."""
    word = word.lower()
    scored = sorted((edit_distance(word, name.lower()), name) for name in names)
    return [name for distance, name in scored if distance <= limit]


def mistaken_command(word: str) -> list[str] | None:
    """For a one-word prompt given where a command goes (`llmroute modles`): the two lines
    that say it looks like a command, or None when it does not (SPEC §4)."""
    if not word or any(c.isspace() for c in word):
        return None
    from shlex import quote

    as_prompt = f'to send "{word}" as a prompt: llmroute ask {quote(word)}'
    near = close_names(word, COMMANDS)
    if near:
        names = " or ".join(f"llmroute {name}" for name in near)
        return [f'"{word}" is not a command; did you mean: {names}?', as_prompt]
    peer = word.lower()
    if peer in PEER_COMMANDS:
        instead = PEER_COMMANDS[peer]
        return [f'there is no "{peer}" command' + (f"; {instead}" if instead else " yet"), as_prompt]
    return None
