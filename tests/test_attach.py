"""`-a/--attach FILE` images (SPEC §14): the file's content decides its type, each format's image
shape (exact request bodies), which models take images, and text-only targets filtered — end to
end through the installed binary against fake providers."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from llmroute.catalog.capabilities import takes_images
from llmroute.cli.request_inputs import MAX_IMAGE_BYTES, image_type, read_image
from llmroute.config.model import ProviderConfig
from llmroute.errors import UsageError
from llmroute.types import Attachment, Message, Request

from .support import fake_server, project_config, run_cli
from .test_options import sent_body

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
B64 = base64.b64encode(PNG).decode()
WITH_IMAGE = Request((Message("user", "What is this?"),), max_tokens=8,
                     attachments=(Attachment("image/png", PNG, "dot.png"),))


# --- reading files ----------------------------------------------------------------------------


@pytest.mark.parametrize("head, media_type", [
    (PNG, "image/png"), (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"), (b"GIF89a\x01\x00", "image/gif"),
    (b"GIF87a\x01\x00", "image/gif"), (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"%PDF-1.7", None), (b"RIFF\x24\x00\x00\x00WAVEfmt ", None), (b"", None),
])
def test_the_content_decides_the_type(head, media_type):
    assert image_type(head) == media_type


def test_a_file_named_like_an_image_that_is_not_one_is_refused(tmp_path):
    fake = tmp_path / "photo.png"
    fake.write_text("just text")
    with pytest.raises(UsageError) as caught:
        read_image(fake)
    assert "not a png, jpeg, webp or gif image" in caught.value.message


def test_an_image_named_anything_is_read_by_its_content(tmp_path):
    path = tmp_path / "picture.dat"
    path.write_bytes(PNG)
    assert read_image(path) == Attachment("image/png", PNG, "picture.dat")


def test_too_large_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.png"
    with path.open("wb") as f:
        f.write(PNG)
        f.truncate(MAX_IMAGE_BYTES + 1)  # sparse: no 20 MiB written
    with pytest.raises(UsageError) as caught:
        read_image(path)
    assert "over the 20 MiB limit" in caught.value.message


def test_missing_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError) as caught:
        read_image(tmp_path / "nope.png")
    assert "cannot read it" in caught.value.message


# --- each format's image shape ---------------------------------------------------------------


def test_openai_body():
    body = sent_body("openai", WITH_IMAGE)
    assert body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{B64}"}}]}]


def test_anthropic_body():
    body = sent_body("anthropic", WITH_IMAGE)
    assert body["messages"] == [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": B64}},
        {"type": "text", "text": "What is this?"}]}]


def test_gemini_body():
    body = sent_body("gemini", WITH_IMAGE)
    assert body["contents"] == [{"role": "user", "parts": [
        {"inlineData": {"mimeType": "image/png", "data": B64}}, {"text": "What is this?"}]}]


def test_ollama_body():
    body = sent_body("ollama", WITH_IMAGE)
    assert body["messages"] == [{"role": "user", "content": "What is this?", "images": [B64]}]


def test_cohere_body():
    body = sent_body("cohere", WITH_IMAGE)
    assert body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{B64}"}}]}]


def test_images_join_only_the_last_user_turn():
    request = Request((Message("user", "first"), Message("assistant", "ok"), Message("user", "now this")),
                      attachments=WITH_IMAGE.attachments)
    body = sent_body("openai", request)
    assert body["messages"][0]["content"] == "first"
    assert body["messages"][2]["content"][0] == {"type": "text", "text": "now this"}


# --- which models take images ------------------------------------------------------------------


@pytest.mark.parametrize("kind, name, model, expected", [
    ("openai", "openai", "gpt-4o-mini", True), ("openai", "openai", "gpt-4.1", True),
    ("openai", "openai", "gpt-5-mini", True), ("openai", "openai", "gpt-3.5-turbo", False),
    ("openai", "openai", "o1-mini", False), ("openai", "openrouter", "openai/gpt-4o", True),
    ("anthropic", "anthropic", "claude-haiku-4-5", True), ("anthropic", "anthropic", "claude-2.1", False),
    ("gemini", "gemini", "gemini-2.5-flash", True), ("ollama", "ollama", "llava:13b", True),
    ("ollama", "ollama", "llama3.2-vision", True), ("ollama", "ollama", "llama3.2", False),
    ("cohere", "cohere", "command-a-vision-07-2025", True), ("cohere", "cohere", "command-a-03-2025", False),
    ("local", "local", "smollm2", False), ("mock", "mock", "anything", True),
])
def test_the_model_table(kind, name, model, expected):
    assert takes_images(ProviderConfig(name=name, type=kind), model) is expected


def test_the_config_overrides_the_table():
    provider = ProviderConfig(name="ollama", type="ollama")
    assert takes_images(provider, "my-vision-finetune", SimpleNamespace(images=True)) is True
    assert takes_images(provider, "llava", SimpleNamespace(images=False)) is False
    assert takes_images(provider, "llava", SimpleNamespace(images=None)) is True


def test_planner_filters_text_only_targets():
    from llmroute.config.load import parse_config
    from llmroute.routing.planner import PlanInputs, make_plan

    config = parse_config(
        "version: 1\ndefaults: {strategy: priority}\nproviders:\n"
        "  openai: {type: openai, models: {gpt-3.5-turbo: {input: 1, output: 1}, gpt-4o-mini: {input: 1, output: 1}}}\n")
    plan = make_plan(PlanInputs(config, WITH_IMAGE, datetime.now(timezone.utc)))
    assert [c.target.id for c in plan.candidates] == ["openai/gpt-4o-mini"]
    assert [(e.target.id, e.reason) for e in plan.excluded] == [("openai/gpt-3.5-turbo", "no image input")]


# --- end to end ------------------------------------------------------------------------------

KEYS = {"TEXT_API_KEY": "k1", "VISION_API_KEY": "k2"}


@pytest.mark.e2e
def test_text_only_target_is_filtered_and_the_image_reaches_the_other(tmp_path, isolated_env):
    image = tmp_path / "dot.png"
    image.write_bytes(PNG)
    log = tmp_path / "vision.jsonl"
    with fake_server("openai", reply="text only") as text, fake_server("openai", reply="a dot", log=log) as vision:
        project_config(tmp_path).write_text(
            "version: 1\ndefaults: {strategy: priority, retries: 0}\nproviders:\n"
            f"  text: {{type: openai, base_url: {text}/v1, priority: 90, models: {{gpt-3.5-turbo: {{input: 1, output: 1}}}}}}\n"
            f"  vision: {{type: openai, base_url: {vision}/v1, priority: 10, models: {{gpt-4o-mini: {{input: 1, output: 1}}}}}}\n")
        result = run_cli(["--json", "-a", str(image), "what is it?"], cwd=tmp_path, env=KEYS)
        plan = run_cli(["route", "--json", "-a", str(image), "what is it?"], cwd=tmp_path, env=KEYS)
    assert result.returncode == 0, result.stderr.decode()
    data = json.loads(result.stdout)
    assert data["text"] == "a dot" and [a["target"] for a in data["attempts"]] == ["vision/gpt-4o-mini"]
    content = json.loads(log.read_text().splitlines()[0])["body"]["messages"][-1]["content"]
    assert content[1] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{B64}"}}
    assert {"target": "text/gpt-3.5-turbo", "reason": "no image input"} in json.loads(plan.stdout)["excluded"]


@pytest.mark.e2e
def test_wrong_content_exits_2(tmp_path, isolated_env):
    fake = tmp_path / "notes.jpg"
    fake.write_text("hello")
    result = run_cli(["-a", str(fake), "what is it?"], cwd=tmp_path)
    assert result.returncode == 2
    assert "not a png, jpeg, webp or gif image" in result.stderr.decode()


def test_config_images_field_is_read_and_checked(tmp_path):
    from llmroute.config.load import parse_config
    from llmroute.errors import ConfigError

    config = parse_config("version: 1\nproviders:\n  ollama:\n    type: ollama\n"
                          "    models:\n      my-vision: {images: true}\n      llava: {images: false}\n")
    models = config.providers["ollama"].models
    assert models["my-vision"].images is True and models["llava"].images is False
    provider = config.providers["ollama"]
    assert takes_images(provider, "my-vision", models["my-vision"]) and not takes_images(provider, "llava", models["llava"])
    with pytest.raises(ConfigError) as caught:
        parse_config("version: 1\nproviders:\n  ollama:\n    type: ollama\n    models:\n      m: {images: maybe}\n")
    assert "images" in "\n".join(caught.value.problems)
