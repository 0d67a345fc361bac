"""`llmroute completion bash|zsh|fish`: print the shell's completion script.

The script is click's own (`click.shell_completion`): on Tab the shell runs `llmroute` with
`_LLMROUTE_COMPLETE=<shell>_complete`, and `main()` answers through click's machinery with
command names, options, and the dynamic values of `completers` (targets, routes, providers,
strategies from the config).

    eval "$(llmroute completion bash)"      # ~/.bashrc
    eval "$(llmroute completion zsh)"       # ~/.zshrc
    llmroute completion fish > ~/.config/fish/completions/llmroute.fish
"""

from __future__ import annotations

import click

PROG_NAME = "llmroute"
COMPLETE_VAR = "_LLMROUTE_COMPLETE"
SHELLS = ("bash", "zsh", "fish")


def completion_script(shell: str) -> str:
    """The completion script for `shell` (one of SHELLS)."""
    from click.shell_completion import get_completion_class

    from .main import cli

    completion_class = get_completion_class(shell)
    return completion_class(cli, {}, PROG_NAME, COMPLETE_VAR).source()


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion_command(shell: str) -> None:
    """Print a shell completion script for bash, zsh or fish.

    \b
    bash:  eval "$(llmroute completion bash)"       (add to ~/.bashrc)
    zsh:   eval "$(llmroute completion zsh)"        (add to ~/.zshrc)
    fish:  llmroute completion fish > ~/.config/fish/completions/llmroute.fish
    """
    click.echo(completion_script(shell))
