"""Entry point: `llmroute [OPTIONS] [PROMPT]` and its subcommands.

Two jobs only. (1) A lazy command group: subcommand modules are imported when invoked, and a
first argument that is not a command name makes the invocation an `ask`, so
`echo hi | llmroute -m openai` works. (2) `main()` turns every `LLMRouteError` into one or two
plain lines on stderr and the SPEC §12 exit code; a traceback only with `LLMROUTE_DEBUG=1`.

Faults of the machine are not bugs either: an `OSError` that reaches `main` (a data file on a
full disk or a read-only file system, a path whose parent is a file, no permission) and an
SQLite error (a database that cannot be used) get the same one or two lines naming the file and
what to do, exit 1. Bad input the user gave is handled where it is read (exit 2). Only what is
left — a real bug — is reported as "internal error ... please report it".
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

import click

from .. import __version__
from .commands import COMMAND_WORD, COMMANDS, GROUP_HELP, OPTION_HELP

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
        return with_common_options(getattr(module, attribute))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.resilient_parsing and not args:  # shell completion of the command name itself
            return super().parse_args(ctx, args)
        full = _insert_default_command(args, set(COMMANDS))
        rest = args[_group_options_end(args):]
        if len(full) > len(args) and rest and not rest[0].startswith("-"):
            ctx.meta[COMMAND_WORD] = rest[0]  # an implicit `ask` whose first word stands where a command goes
        return super().parse_args(ctx, full)


def _group_options_end(args: list[str]) -> int:
    """The index of the first argument after the group's own options."""
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
    return index


def _insert_default_command(args: list[str], commands: set[str]) -> list[str]:
    """`llmroute [group options] PROMPT...` -> `llmroute [group options] ask PROMPT...`."""
    index = _group_options_end(args)
    rest = args[index:]
    if rest and (rest[0] in commands or rest[0] in ("--help", "-h", "--version")):
        return args
    return args[:index] + ["ask"] + rest


def with_common_options(command: click.Command) -> click.Command:
    """Give a command, and every subcommand of a group, the group's `--config PATH` and
    `--no-color`, so they may follow the command name (`llmroute models --config x.yaml`)
    with the same meaning; given after the command, they win. A command that declares an
    option of its own under either name keeps it. Done once per command object."""
    if getattr(command, "_llmroute_common_options", False):
        return command
    command._llmroute_common_options = True  # type: ignore[attr-defined]
    declared = {name for param in command.params for name in getattr(param, "opts", ())}
    if "--config" not in declared:
        command.params.append(click.Option(
            ["--config"], metavar="PATH", expose_value=False, callback=_config_after_command,
            help=OPTION_HELP["--config PATH"]))
    if "--no-color" not in declared:
        command.params.append(click.Option(
            ["--no-color"], is_flag=True, expose_value=False, callback=_no_color_after_command,
            help=OPTION_HELP["--no-color"]))
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            with_common_options(sub)
    return command


def _config_after_command(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None and hasattr(ctx.obj, "config_path_option"):
        ctx.obj.config_path_option = value


def _no_color_after_command(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and hasattr(ctx.obj, "no_color"):
        ctx.obj.no_color = True


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
    except click.exceptions.Abort:  # click's form of Ctrl-C (it has already ended the line)
        sys.stderr.write("llmroute: interrupted\n")
        sys.exit(ExitCode.INTERRUPTED)
    except KeyboardInterrupt:
        sys.stderr.write("\nllmroute: interrupted\n")
        sys.exit(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (`llmroute ... | head -1`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(ExitCode.OK)
    except OSError as error:  # the machine, not llmroute: a full disk, a read-only directory
        if debug:
            raise
        _print_error(os_error_lines(error))
        sys.exit(ExitCode.PROVIDER)
    except Exception as error:  # a bug: say so plainly, traceback on request
        if debug:
            raise
        _print_error(_database_lines(error) or [
            f"internal error: {type(error).__name__}: {error}",
            "set LLMROUTE_DEBUG=1 for a traceback, and please report it"])
        sys.exit(ExitCode.PROVIDER)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)


_OS_HINTS = {
    "ENOSPC": "free some disk space and try again",
    "EDQUOT": "free some space within your disk quota and try again",
    "EROFS": "llmroute writes its ledger, state and cache there: make it writable, or set "
             "LLMROUTE_HOME (and ledger.path) to a writable place",
    "EACCES": "check its permissions, or set LLMROUTE_HOME (and ledger.path) to a place you can write",
    "EPERM": "check its permissions and attributes (chattr), or set LLMROUTE_HOME to another place",
    "ENOTDIR": "a part of that path is a file, not a directory: fix the path (LLMROUTE_HOME, "
               "ledger.path) or move the file",
    "EISDIR": "that path is a directory where a file is expected: fix the path or move the directory",
    "ENOENT": "check that the path exists",
    "ENAMETOOLONG": "use a shorter path",
    "ELOOP": "that path has a symbolic link loop: fix the link",
    "EIO": "the disk reported an I/O error: check it (dmesg) and try again",
    "EMFILE": "too many open files: raise the limit (ulimit -n) and try again",
    "ENFILE": "the system is out of file handles: try again later",
}


def os_error_lines(error: OSError) -> list[str]:
    """What failed and what to do, for an OSError from the file system."""
    import errno

    if isinstance(error, FileExistsError) and error.filename and not os.path.isdir(error.filename):
        # making a directory where a file is: the file is in the way
        error = NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), error.filename)
    name = errno.errorcode.get(error.errno or 0, "")
    reason = error.strerror or str(error) or type(error).__name__
    where = f": {error.filename}" if error.filename else ""
    if error.filename2:
        where += f" -> {error.filename2}"
    hint = _OS_HINTS.get(name, "check the file named above and try again")
    return [f"{reason}{where}", hint]


def _database_lines(error: Exception) -> list[str] | None:
    """An SQLite error (checked without importing sqlite3 for every error): which data
    directory and what to do. None for anything else."""
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is None or not isinstance(error, sqlite3.Error):
        return None
    from ..paths import Paths

    data_dir = Paths.from_env(os.environ).data_dir
    return [f"a database in {data_dir} could not be used: {error}",
            "check that the directory is writable and the disk not full; the response cache can "
            "be reset with `llmroute cache clear`"]


def _print_error(lines: list[str]) -> None:
    color = (sys.stderr.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
             and "--no-color" not in sys.argv)
    prefix = click.style("llmroute:", fg="red", bold=True) if color else "llmroute:"
    for i, line in enumerate(lines):
        sys.stderr.write(f"{prefix if i == 0 else ' ' * len('llmroute:')} {line}\n")
    sys.stderr.flush()
