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
