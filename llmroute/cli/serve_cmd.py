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
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=GRACE_SECONDS)
