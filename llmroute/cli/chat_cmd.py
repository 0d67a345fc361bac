"""`llmroute chat`: an interactive loop on one conversation (SPEC §14).

Each line is a prompt sent with the conversation's earlier turns, routed like `ask` (a turn may
be answered by another provider than the last), streamed to a terminal, and kept in the
conversations file. `exit`, `quit` or Ctrl-D leave; Ctrl-C cancels the answer being written
(its attempt is recorded as interrupted by the call itself) and returns to the prompt.
"""

from __future__ import annotations

import sys

import click

from .completers import complete_model, complete_route

EXIT_WORDS = ("exit", "quit")


@click.command("chat")
@click.option("-m", "--model", metavar="TARGET|ROUTE", shell_complete=complete_model,
              help="Pin a target (its route's fallbacks still apply) or name a route.")
@click.option("-r", "--route", metavar="NAME", shell_complete=complete_route, help="Use a route.")
@click.option("-s", "--system", metavar="TEXT", help="System prompt for the conversation.")
@click.option("--cid", metavar="ID", help="Go on with this conversation (see `llmroute logs`).")
@click.option("--config", "config_path", metavar="PATH", help="Config file.")
@click.option("--no-color", is_flag=True, help="Never use colour.")
@click.option("-o", "--option", "model_options", multiple=True, metavar="KEY=VALUE",
              help="Model option for every turn, as for ask (repeatable). E.g. -o seed=7")
@click.pass_context
def chat_command(ctx: click.Context, model: str | None, route: str | None, system: str | None,
                 cid: str | None, config_path: str | None, no_color: bool, model_options: tuple[str, ...]) -> None:
    """Chat interactively on one conversation: type a prompt, read the answer, go on.
    `exit`, `quit` or Ctrl-D leaves; Ctrl-C cancels the answer being written.

    \b
    llmroute chat -m anthropic -s "be brief"
    llmroute chat --cid 3f2a9c01b7de      go on with an earlier conversation
    """
    from ..prompt_input import check_arguments

    app = ctx.obj
    if config_path:
        app.config_path_option = config_path
    if no_color:
        app.no_color = True
    check_arguments([("--system", system), ("--model", model), ("--route", route), ("--cid", cid)])
    from ..catalog.options import parse_cli

    chat = Chat(app, model=model, route=route, system=system, cid=cid)
    chat.model_options = parse_cli(model_options)  # `-o` (SPEC §14): exit 2 before the loop starts
    chat.run()


class Chat:
    model_options: tuple = ()  # `-o KEY=VALUE` pairs, parsed, sent with every turn

    def __init__(self, app, *, model: str | None, route: str | None, system: str | None, cid: str | None):
        from ..conversations import new_id, resolve, store_for

        self.app = app
        self.model, self.route, self.system = model, route, system
        self.config = app.load_config()
        self.store = store_for(self.config, app.paths)
        if cid:
            self.cid, self.turns = resolve(self.store, cid=cid, continue_latest=False)
        else:
            self.cid, self.turns = new_id(), []
        self.stream = sys.stdout.isatty()

    def run(self) -> None:
        err = self._err
        kept = self.store.keep > 0
        where = f"conversation {self.cid}" if kept else "a conversation that is not kept (conversations.keep: 0)"
        err(f"llmroute: chatting on {where}; exit, quit or Ctrl-D to leave, Ctrl-C cancels an answer")
        engine = self.app.engine(self.config)
        try:
            while True:
                try:
                    line = input("> ")
                except EOFError:
                    sys.stdout.write("\n")
                    return
                except KeyboardInterrupt:
                    sys.stdout.write("\n")
                    continue
                if not line.strip():
                    continue
                if line.strip().lower() in EXIT_WORDS:
                    return
                self._turn(engine, line)
        finally:
            sys.stdout.flush()
            engine.close()
            self.store.close()

    def _turn(self, engine, prompt: str) -> None:
        from ..conversations import Turn, messages_for, system_for
        from ..engine import AskOptions
        from ..errors import ConfigError, LLMRouteError, UsageError
        from ..types import Request

        defaults = self.config.defaults
        request = Request(messages=messages_for(self.turns, prompt), system=system_for(self.turns, self.system),
                          max_tokens=defaults.max_tokens, temperature=defaults.temperature,
                          options=self.model_options)
        options = AskOptions(model=self.model, route=self.route)
        if self.store.keep > 0:
            options.extra_record = {"conversation_id": self.cid}
        options.stream = self.stream
        written: list[str] = []

        def on_text(text: str) -> None:
            written.append(text)
            sys.stdout.write(text)
            sys.stdout.flush()

        try:
            answer = engine.ask(request, options, on_text=on_text, on_notice=self._err,
                                on_hop=lambda message: self._err(f"llmroute: {message}"))
        except KeyboardInterrupt:
            if written:
                sys.stdout.write("\n")
            self._err("llmroute: answer cancelled")
            return
        except (UsageError, ConfigError):
            raise  # the same on every turn: leave with its exit code
        except LLMRouteError as error:
            lines = error.lines()
            self._err("\n".join(["llmroute: " + lines[0], *("          " + line for line in lines[1:])]))
            return
        if not written:
            sys.stdout.write(answer.text)
        if not (written and "".join(written) or answer.text).endswith("\n"):
            sys.stdout.write("\n")
        sys.stdout.flush()
        turn = Turn(prompt=prompt, answer=answer.text, system=request.system, target=answer.target.id,
                    request_id=answer.request_id, conversation=self.cid)
        self.turns.append(turn)
        self._keep(turn)

    def _keep(self, turn) -> None:
        import sqlite3

        try:
            self.store.add_turn(self.cid, prompt=turn.prompt, answer=turn.answer, system=turn.system,
                                target=turn.target, request_id=turn.request_id)
        except (sqlite3.Error, OSError) as error:
            self._err(f"llmroute: could not keep this turn in {self.store.path} ({error})")

    @staticmethod
    def _err(message: str) -> None:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
