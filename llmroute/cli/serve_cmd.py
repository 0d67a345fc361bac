"""`llmroute serve` (SPEC §13): the OpenAI- and Anthropic-compatible gateway (`llmroute/serve/`)."""

from __future__ import annotations

import click

GRACE_SECONDS = 10  # in-flight requests get this long to finish after SIGINT/SIGTERM


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; a non-loopback one requires serve.token_env.")
@click.option("--port", default=4000, show_default=True, type=click.IntRange(0, 65535), help="Port to bind.")
@click.pass_obj
def serve_command(app_context, host: str, port: int) -> None:
    """Serve an OpenAI- and Anthropic-compatible gateway that routes every request."""
    try:
        import uvicorn

        from ..serve.app import create_app
    except ImportError:
        from ..errors import UsageError

        raise UsageError("serve needs the [serve] extra", "pip install 'llmroute[serve]'") from None
    from ..serve.auth import required_token

    config = app_context.load_config()
    token = required_token(host, config.serve.token_env, app_context.env)
    engine = app_context.engine(config)
    engine.check_writable()
    app = create_app(engine, token)
    click.echo(f"llmroute: serving on http://{host}:{port} (OpenAI: /v1, Anthropic: /v1/messages)", err=True)
    # loop/http "auto": uvloop and httptools when installed (the [serve] extra: ~10% less CPU
    # per request in bench/serve.py), asyncio and h11 otherwise. No proxy headers: the gateway
    # never uses the client's address, so it should not trust X-Forwarded-For either.
    server = uvicorn.Server(uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, proxy_headers=False,
        timeout_graceful_shutdown=GRACE_SECONDS))
    _stop_cleanly_on_signals(server)
    server.run()


def _stop_cleanly_on_signals(server) -> None:
    """SIGINT/SIGTERM stop the server gracefully (in-flight requests finish) and the command
    exits 0. uvicorn handles the signals while it serves, then re-raises the one it caught
    through the handler that was there before it: with the default ones the process would die
    of SIGTERM (or a KeyboardInterrupt) after a clean stop. This handler is that "before" one:
    it asks the server to stop, which also covers a signal that comes before uvicorn took over."""
    import signal

    def stop(signum, frame) -> None:
        server.should_exit = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
