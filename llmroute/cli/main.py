"""Entry point: `llmroute [OPTIONS] [PROMPT]` and its subcommands.

Two jobs only. (1) A lazy command group: subcommand modules are imported when invoked, and a
first argument that is not a command name makes the invocation an `ask`, so
`echo hi | llmroute -m openai` works. (2) `main()` turns every `LLMRouteError` into one or two
plain lines on stderr and the SPEC §12 exit code; a traceback only with `LLMROUTE_DEBUG=1`.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

import click

from .. import __version__
from .commands import COMMANDS, GROUP_HELP, OPTION_HELP

def _available(name: str) -> bool:
    module = COMMANDS[name][0]
    return importlib.util.find_spec(f"llmroute.cli.{module}") is not None


class LazyGroup(click.Group):
    """Imports a command's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if _available(name))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not _available(name):
            return None
        module_name, attribute, _ = COMMANDS[name]
        module = importlib.import_module(f"llmroute.cli.{module_name}")
        return getattr(module, attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.resilient_parsing and not args:  # shell completion of the command name itself
            return super().parse_args(ctx, args)
        return super().parse_args(ctx, _insert_default_command(args, set(COMMANDS)))


def _insert_default_command(args: list[str], commands: set[str]) -> list[str]:
    """`llmroute [group options] PROMPT...` -> `llmroute [group options] ask PROMPT...`."""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in ("--config",) and index + 1 < len(args):
            index += 2
            continue
        if arg.startswith("--config=") or arg == "--no-color":
            index += 1
            continue
        break
    rest = args[index:]
    if rest and (rest[0] in commands or rest[0] in ("--help", "-h", "--version")):
        return args
    return args[:index] + ["ask"] + rest


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]},
             invoke_without_command=False, help=GROUP_HELP)
@click.version_option(__version__, "--version", prog_name="llmroute")
@click.option("--config", "config_path", metavar="PATH", help=OPTION_HELP["--config PATH"])
@click.option("--no-color", is_flag=True, help=OPTION_HELP["--no-color"])
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, no_color: bool) -> None:
    from .context import AppContext

    ctx.obj = AppContext.from_process(config_path, no_color)


def main(argv: list[str] | None = None) -> None:
    from ..errors import ExitCode, LLMRouteError

    debug = bool(os.environ.get("LLMROUTE_DEBUG"))
    try:
        code = cli.main(args=argv, prog_name="llmroute", standalone_mode=False)
    except LLMRouteError as error:
        if debug:
            import traceback

            traceback.print_exc()
        _print_error(error.lines())
        sys.exit(int(error.exit_code))
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(ExitCode.USAGE if isinstance(error, click.UsageError) else error.exit_code)
    except click.exceptions.Abort:
        sys.exit(ExitCode.INTERRUPTED)
    except KeyboardInterrupt:
        sys.stderr.write("\nllmroute: interrupted\n")
        sys.exit(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (`llmroute ... | head -1`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(ExitCode.OK)
    except Exception as error:  # a bug: say so plainly, traceback on request
        if debug:
            raise
        _print_error([f"internal error: {type(error).__name__}: {error}",
                      "set LLMROUTE_DEBUG=1 for a traceback, and please report it"])
        sys.exit(ExitCode.PROVIDER)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)


def _print_error(lines: list[str]) -> None:
    color = sys.stderr.isatty() and "NO_COLOR" not in os.environ and "--no-color" not in sys.argv
    prefix = click.style("llmroute:", fg="red", bold=True) if color else "llmroute:"
    for i, line in enumerate(lines):
        sys.stderr.write(f"{prefix if i == 0 else ' ' * len('llmroute:')} {line}\n")
    sys.stderr.flush()
