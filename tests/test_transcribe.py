"""`llmroute transcribe`: refusals before upload, fallback across transcription targets, ledger
records priced per audio minute. End to end against the fake OpenAI server's multipart endpoint."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from llmroute.errors import UsageError
from llmroute.transcribe import check_audio, wav_duration_s

from .support import fake_server, read_ledger, run_cli, project_config


def make_wav(path: Path, seconds: float = 1.5, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        audio.writeframes(b"\x00\x00" * int(rate * seconds))
    return path


def test_wav_duration_is_read_from_the_file(tmp_path):
    assert wav_duration_s(make_wav(tmp_path / "a.wav", 1.5)) == pytest.approx(1.5)


def test_unsupported_type_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(UsageError, match="unsupported audio type"):
        check_audio(path)


def test_oversize_file_is_refused_before_sending(tmp_path):
    path = tmp_path / "big.mp3"
    with open(path, "wb") as f:
        f.truncate(26_214_401)
    with pytest.raises(UsageError, match="25 MiB"):
        check_audio(path)


def test_missing_file(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        check_audio(tmp_path / "nope.wav")


def config_text(first: str, second: str) -> str:
    return ("version: 1\ndefaults: {retries: 0}\nproviders:\n"
            f"  first:\n    type: openai\n    base_url: {first}/v1\n    models:\n"
            "      whisper-1: {mode: transcription}\n"
            f"  second:\n    type: openai\n    base_url: {second}/v1\n    models:\n"
            "      whisper-1: {mode: transcription, per_minute: 0.006}\n")


@pytest.mark.e2e
def test_transcription_falls_back_and_is_recorded(tmp_path, isolated_env):
    audio = make_wav(tmp_path / "hello.wav", 2.0)
    with fake_server(mode="error:500") as bad, fake_server(reply="hello world") as good:
        project_config(tmp_path).write_text(config_text(bad, good))
        result = run_cli(["transcribe", str(audio)], cwd=tmp_path)
        srt = run_cli(["transcribe", "--format", "srt", "-m", "second/whisper-1", str(audio)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == "hello world\n"
    assert "-->" in srt.stdout.decode()
    records = [r for r in read_ledger(isolated_env) if r["kind"] == "transcribe"]
    assert [(r["target"], r["status"]) for r in records[:2]] == [("first/whisper-1", "error"), ("second/whisper-1", "ok")]
    assert records[1]["cost_usd"] == pytest.approx(0.006 * 2.0 / 60)
    assert records[1]["price_source"] == "config"


@pytest.mark.e2e
def test_refusals_exit_2_without_contacting_anyone(tmp_path):
    project_config(tmp_path).write_text(config_text("http://127.0.0.1:9", "http://127.0.0.1:9"))
    text = tmp_path / "notes.txt"
    text.write_text("x")
    big = tmp_path / "big.wav"
    with open(big, "wb") as f:
        f.truncate(26_214_401)
    for path in (text, big):
        result = run_cli(["transcribe", str(path)], cwd=tmp_path)
        assert result.returncode == 2 and b"Traceback" not in result.stderr


@pytest.mark.e2e
def test_no_transcription_model_is_exit_5(tmp_path):
    audio = make_wav(tmp_path / "a.wav")
    project_config(tmp_path).write_text(
        "version: 1\nproviders:\n  demo:\n    type: mock\n    models: {m: {}}\n")
    result = run_cli(["transcribe", str(audio)], cwd=tmp_path)
    assert result.returncode == 5 and b"mode: transcription" in result.stderr


def test_known_transcription_models_need_no_mode(tmp_path):
    """SPEC §11: whisper-1, whisper-large-v3, gpt-4o-transcribe are transcription models by
    the built-in table; chat models and explicitly marked ones stay as they are."""
    from llmroute.config.load import parse_config
    from llmroute.transcribe import transcription_targets

    config = parse_config(
        "version: 1\nproviders:\n"
        "  openai:\n    type: openai\n    models:\n      whisper-1: {}\n      gpt-4o-transcribe: {}\n      gpt-4o-mini: {}\n"
        "  groq:\n    type: openai\n    models:\n      whisper-large-v3: {}\n"
        "  mine:\n    type: openai\n    base_url: https://stt.example.com/v1\n"
        "    models:\n      my-stt: {mode: transcription, per_minute: 0.01}\n")
    found = {t.id for t in transcription_targets(config, None)}
    assert found == {"openai/whisper-1", "openai/gpt-4o-transcribe", "groq/whisper-large-v3", "mine/my-stt"}
    assert config.providers["openai"].models["gpt-4o-mini"].mode == "chat"


# --- content by magic bytes ----------------------------------------------------------------------

@pytest.mark.parametrize("head, kind", [
    (b"RIFF\x24\x08\x00\x00WAVEfmt ", "wav"),
    (b"ID3\x04\x00\x00\x00\x00\x00\x00", "mp3"),
    (b"\xff\xfb\x90\x64\x00\x00\x00\x00", "mp3"),  # an MPEG-1 layer III frame, no tag
    (b"fLaC\x00\x00\x00\x22", "flac"),
    (b"OggS\x00\x02\x00\x00", "ogg"),
    (b"\x00\x00\x00\x20ftypM4A \x00\x00", "m4a/mp4"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "webm"),
    (b"\x00\x00\x01\xba\x44\x00\x04\x00", "mpeg"),
])
def test_audio_containers_are_recognised_by_their_magic_bytes(head, kind):
    from llmroute.transcribe import sniff_audio

    assert sniff_audio(head) == kind


@pytest.mark.parametrize("head", [b"hello, this is text", b"%PDF-1.7\n", b"\x89PNG\r\n\x1a\n", b"{\"a\": 1}",
                                  b"\xff\xff\xff\xff"])
def test_other_content_is_not_audio(head):
    from llmroute.transcribe import sniff_audio

    assert sniff_audio(head) is None


def test_a_text_file_renamed_wav_is_refused(tmp_path):
    path = tmp_path / "meeting.wav"
    path.write_text("these are my meeting notes, not a recording\n")
    with pytest.raises(UsageError, match="meeting.wav is not an audio file"):
        check_audio(path)
    assert check_audio(make_wav(tmp_path / "real.wav")) > 0


@pytest.mark.e2e
def test_a_renamed_text_file_exits_2_and_is_never_uploaded(tmp_path):
    log = tmp_path / "server.log"
    fake = tmp_path / "notes.wav"
    fake.write_text("not audio at all\n")
    with fake_server(reply="hello world", log=log) as url:
        project_config(tmp_path).write_text(config_text(url, url))
        result = run_cli(["transcribe", str(fake)], cwd=tmp_path)
    assert result.returncode == 2 and b"not an audio file" in result.stderr
    assert not log.exists() or log.read_text() == ""


# --- which targets: a route, a provider, a target --------------------------------------------------

def _sent_models(log: Path) -> list[str]:
    import json
    import re

    bodies = [json.loads(line)["body"].get("_raw", "") for line in log.read_text().splitlines()]
    return [re.search(r'name="model"\r\n\r\n([^\r]+)', raw).group(1) for raw in bodies]


@pytest.mark.e2e
def test_a_route_name_uses_its_transcription_targets_in_order(tmp_path, isolated_env):
    audio = make_wav(tmp_path / "hello.wav", 2.0)
    with fake_server(mode="error:500") as bad, fake_server(reply="hello world") as good:
        project_config(tmp_path).write_text(
            config_text(bad, good) + "routes:\n  speech: [first/whisper-1, second/whisper-1]\n")
        result = run_cli(["transcribe", "-m", "speech", str(audio)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == "hello world\n"
    records = [r for r in read_ledger(isolated_env) if r["kind"] == "transcribe"]
    assert [(r["target"], r["status"]) for r in records] == [("first/whisper-1", "error"), ("second/whisper-1", "ok")]


def groq_config(url: str, *models: str) -> str:
    listed = "".join(f"      {m}: {{}}\n" for m in models)
    return (f"version: 1\nproviders:\n  groq:\n    type: openai\n    preset: groq\n    base_url: {url}/v1\n"
            f"    models:\n{listed}")


@pytest.mark.e2e
@pytest.mark.parametrize("models", [("llama-3.1-8b-instant", "whisper-large-v3"), ("llama-3.1-8b-instant",)])
def test_a_provider_name_picks_its_transcription_model_not_its_chat_model(tmp_path, isolated_env, models):
    audio = make_wav(tmp_path / "hello.wav", 2.0)
    log = tmp_path / "groq.log"
    with fake_server(reply="hello world", log=log) as url:
        project_config(tmp_path).write_text(groq_config(url, *models))
        result = run_cli(["transcribe", "-m", "groq", str(audio)], cwd=tmp_path, env={"GROQ_API_KEY": "gsk-test"})
    assert result.returncode == 0, result.stderr
    assert _sent_models(log) == ["whisper-large-v3"]
    [record] = [r for r in read_ledger(isolated_env) if r["kind"] == "transcribe"]
    assert record["target"] == "groq/whisper-large-v3" and record["price_source"].startswith("builtin:")


def test_targets_for_routes_providers_and_the_built_in_default_config():
    from llmroute.config.defaults import default_config
    from llmroute.config.load import parse_config
    from llmroute.transcribe import transcription_targets

    config = parse_config(
        "version: 1\nproviders:\n"
        "  openai:\n    type: openai\n    models: {gpt-4o-mini: {}, whisper-1: {}, gpt-4o-transcribe: {}}\n"
        "  groq:\n    type: openai\n    models: {llama-3.1-8b-instant: {}}\n"
        "  mistral:\n    type: openai\n    models: {mistral-small-latest: {}}\n"
        "routes:\n  speech: [openai/gpt-4o-transcribe, openai/gpt-4o-mini, openai/whisper-1]\n"
        "  chat: [openai/gpt-4o-mini]\n")
    ids = lambda option: [t.id for t in transcription_targets(config, option)]  # noqa: E731
    assert ids("speech") == ["openai/gpt-4o-transcribe", "openai/whisper-1"]
    assert ids("openai") == ["openai/whisper-1", "openai/gpt-4o-transcribe"]
    assert ids("groq") == ["groq/whisper-large-v3"]  # not configured, known to be served there
    assert ids("openai/whisper-1") == ["openai/whisper-1"]
    for option, message in (("chat", "holds no transcription target"), ("mistral", "has no transcription model"),
                            ("openai/gpt-4o-mini", "is not a transcription model"), ("nope", "unknown")):
        with pytest.raises(UsageError, match=message):
            transcription_targets(config, option)
    builtin = default_config({"OPENAI_API_KEY": "sk-x", "GROQ_API_KEY": "gsk-x"}, lambda name: False,
                             lambda: False, lambda: False)
    assert [t.id for t in transcription_targets(builtin, None)] == ["groq/whisper-large-v3", "openai/whisper-1"]
    assert [t.id for t in transcription_targets(builtin, "groq")] == ["groq/whisper-large-v3"]
