"""`-o KEY=VALUE`, `--schema FILE|JSON` and `-a/--attach FILE` (SPEC §14): the click options
`ask` and `route` share, and what they become in the `Request` (`options`, `schema`,
`attachments`). Every problem with what the user typed is a usage error (exit 2)."""

from __future__ import annotations

from pathlib import Path

import click

from ..types import Answer

MAX_IMAGE_BYTES = 20 * 1024 * 1024  # the smallest per-image limit of the formats (OpenAI, Gemini inline data: 20 MB)

# Leading bytes → media type. The content decides, never the file name's extension.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def request_input_options() -> list:
    """The three options, as decorators for `prompt_options`."""
    return [
        click.option("-o", "--option", "model_options", multiple=True, metavar="KEY=VALUE",
                     help="Model option, validated per target (repeatable): top_p, top_k, min_p, seed, stop, "
                          "presence_penalty, frequency_penalty, reasoning_effort, num_ctx. "
                          "E.g. -o top_p=0.9 -o stop=END,STOP. A target that cannot take one is skipped."),
        click.option("--schema", metavar="FILE|JSON",
                     help="Answer as JSON matching this JSON schema (a file, or inline JSON); an answer "
                          "that does not match moves on to the next target. "
                          "E.g. --schema '{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"}}}'"),
        click.option("-a", "--attach", "attachments", multiple=True, metavar="FILE",
                     type=click.Path(dir_okay=False, path_type=Path),
                     help="Image to send with the prompt: png, jpeg, webp or gif, up to 20 MiB "
                          "(repeatable); only targets that take images are used. E.g. -a photo.png"),
    ]


def request_inputs(options: dict) -> dict:
    """The `Request` fields these options give (empty when none was used)."""
    out: dict = {}
    if options.get("model_options"):
        from ..catalog.options import parse_cli

        out["options"] = parse_cli(options["model_options"])
    if options.get("schema") is not None:
        from ..structured import load_schema

        out["schema"] = load_schema(options["schema"])
    if options.get("attachments"):
        out["attachments"] = tuple(read_image(path) for path in options["attachments"])
    return out


def image_type(head: bytes) -> str | None:
    """The media type the file's first bytes show, or None when it is none of ours."""
    for magic, media_type in _MAGIC:
        if head.startswith(magic):
            return media_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def read_image(path: Path):
    """An `Attachment` from a file; exit 2 when it cannot be read, is too large or is not an
    image of a type the formats take."""
    from ..errors import UsageError
    from ..types import Attachment

    try:
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise UsageError(f"-a {path}: {size / 1024 / 1024:.1f} MiB is over the 20 MiB limit for an image")
        data = path.read_bytes()
    except OSError as error:
        raise UsageError(f"-a {path}: cannot read it ({error.strerror or error})") from None
    media_type = image_type(data[:16])
    if media_type is None:
        raise UsageError(f"-a {path}: not a png, jpeg, webp or gif image (judged by its content, not its name)")
    return Attachment(media_type, data, path.name)



class StructuredAnswer(Answer):
    """An answer to a `--schema` request: its text is the validated JSON (`structured.checked`),
    and its `--json` object carries the parsed value as `data` too."""

    def to_json(self) -> dict:
        import json

        return {**super().to_json(), "data": json.loads(self.text)}


def structured_answer(answer: Answer) -> StructuredAnswer:
    from dataclasses import fields

    return StructuredAnswer(**{f.name: getattr(answer, f.name) for f in fields(answer)})
