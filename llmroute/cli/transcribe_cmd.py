"""`llmroute transcribe AUDIO`: speech to text with the same fallback, budget and ledger as a
prompt. The transcript (in the requested format) is the only thing on stdout."""

from __future__ import annotations

from pathlib import Path

import click

from .completers import complete_transcription
from .context import AppContext


@click.command("transcribe")
@click.argument("audio", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-m", "--model", metavar="TARGET|ROUTE", shell_complete=complete_transcription, help="A transcription target (groq/whisper-large-v3), a provider (its transcription model) or a route (its transcription targets, in order).")
@click.option("--language", metavar="xx", help="ISO-639-1 language of the audio (e.g. en, de).")
@click.option("--format", "response_format", type=click.Choice(["text", "json", "srt", "vtt"]), default="text",
              show_default=True, help="Output format.")
@click.option("--timeout", type=click.FloatRange(min=0.1), metavar="S", help="Seconds per attempt.")
@click.option("-v", "--verbose", is_flag=True, help="Say which target answered, the duration and the cost.")
@click.pass_obj
def transcribe_command(app: AppContext, audio: Path, model: str | None, language: str | None,
                       response_format: str, timeout: float | None, verbose: bool) -> None:
    """Transcribe AUDIO (flac, m4a, mp3, mp4, mpeg, mpga, oga, ogg, wav, webm; at most 25 MiB,
    checked by its content too) with the configured transcription models (whisper-1,
    whisper-large-v3, gpt-4o-transcribe, ... or any marked `mode: transcription`), falling back
    across them."""
    from ..transcribe import transcribe

    if language is not None and (len(language) != 2 or not language.isalpha()):
        from ..errors import UsageError

        raise UsageError(f"--language takes a two-letter ISO-639-1 code, not {language!r}")
    engine = app.engine()
    try:
        transcript = transcribe(engine, audio, model_option=model, language=language,
                                response_format=response_format, timeout=timeout)
    finally:
        engine.close()
    text = transcript.text
    click.echo(text if text.endswith("\n") else text + "\n", nl=False)
    if verbose:
        from ..render import money

        duration = f"{transcript.duration_s:.1f} s" if transcript.duration_s is not None else "duration unknown"
        cost = money(transcript.cost_usd) if transcript.cost_usd is not None else "cost unknown"
        click.echo(f"transcribed by {transcript.target}: {duration}, {cost}", err=True)
