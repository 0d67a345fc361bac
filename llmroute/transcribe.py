"""Speech to text across providers (SPEC §11 `transcribe`).

The file is checked before anything is sent (type by extension, the 25 MiB limit every
OpenAI-compatible endpoint enforces), then the targets whose model is a transcription model are
tried with the same retry/fallback rules, budget reservation and ledger records as a prompt.
Transcription is priced per audio minute; the duration comes from the provider's reported usage,
else from the file itself when it is a WAV.
"""

from __future__ import annotations

import hashlib
import wave
from dataclasses import dataclass
from pathlib import Path

from .config.model import Config
from .engine import Engine
from .errors import AllAttemptsFailed, NoProviderError, ProviderError, UsageError
from .calls import Call, CallSite
from .catalog.builtin import lookup_price, price_source_label
from .resilience import RetryPolicy, run_with_fallback
from .routing.plan import Candidate
from .types import Message, Request, Result, Target

AUDIO_TYPES = (".flac", ".m4a", ".mp3", ".mp4", ".mpeg", ".mpga", ".oga", ".ogg", ".wav", ".webm")
MAX_BYTES = 26_214_400  # 25 MiB, the endpoints' own limit
FORMATS = ("text", "json", "srt", "vtt")
# Without a known duration, the worst case for the budget assumes a compressed file at 16 kB/s.
ASSUMED_BYTES_PER_SECOND = 16_000


@dataclass
class Transcript:
    text: str  # exactly what the provider returned in the requested format
    target: Target
    duration_s: float | None
    cost_usd: float | None
    attempts: int


def check_audio(path: Path) -> int:
    """Refuse a file that the endpoints would refuse, before uploading it. Returns its size."""
    if not path.is_file():
        raise UsageError(f"audio file not found: {path}")
    if path.suffix.lower() not in AUDIO_TYPES:
        raise UsageError(f"unsupported audio type {path.suffix or '(none)'!r} for {path.name}",
                         f"supported: {', '.join(t.lstrip('.') for t in AUDIO_TYPES)}")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise UsageError(f"{path.name} is {size / 1_048_576:.1f} MiB; transcription endpoints accept at most 25 MiB",
                         "split it first, e.g. ffmpeg -i in.mp3 -f segment -segment_time 600 part%03d.mp3")
    if size == 0:
        raise UsageError(f"{path.name} is empty")
    return size


def wav_duration_s(path: Path) -> float | None:
    if path.suffix.lower() != ".wav":
        return None
    try:
        with wave.open(str(path), "rb") as audio:
            return audio.getnframes() / float(audio.getframerate())
    except (wave.Error, EOFError, OSError, ZeroDivisionError):
        return None


def transcription_targets(config: Config, model_option: str | None) -> list[Target]:
    """`-m` (a target or a provider), else every enabled model marked `mode: transcription`."""
    if model_option:
        target = config.resolve_target(model_option)
        if target is None:
            listed = ", ".join(t.id for t in _all_transcription(config)) or "none configured"
            raise UsageError(f"unknown target {model_option!r}", f"transcription targets: {listed}")
        return [target]
    return _all_transcription(config)


def _all_transcription(config: Config) -> list[Target]:
    return [Target(p.name, name) for p in config.providers.values() if p.enabled
            for name, model in p.models.items() if model.mode == "transcription"]


def per_minute_price(config: Config, target: Target) -> tuple[float | None, str]:
    provider = config.providers[target.provider]
    model = provider.models.get(target.model)
    if model is not None and model.per_minute is not None:
        return model.per_minute, "config"
    entry = lookup_price(provider.type, target.model, provider.base_url, provider.preset)
    if entry is not None and entry.per_minute is not None:
        return entry.per_minute, price_source_label()
    return None, "unknown"


def transcribe(engine: Engine, audio: Path, *, model_option: str | None, language: str | None,
               response_format: str, timeout: float | None = None) -> Transcript:
    size = check_audio(audio)
    config = engine.config
    targets = transcription_targets(config, model_option)
    usable = [t for t in targets if config.providers[t.provider].type == "openai"
              and engine.has_key(config.providers[t.provider])]
    if not usable:
        raise NoProviderError(
            "no transcription target is usable" + (f" ({', '.join(t.id for t in targets)} lack a key)" if targets else ""),
            "add a model with `mode: transcription` (e.g. whisper-1) to an OpenAI, Groq or compatible provider",
        )
    known_duration = wav_duration_s(audio)
    worst_minutes = (known_duration or size / ASSUMED_BYTES_PER_SECOND) / 60
    site = CallSite(Request(messages=(Message("user", audio.name),)), kind="transcribe",
                    strategy="priority", prompt_hash=hashlib.sha256(audio.read_bytes()).hexdigest())
    reserved: dict[Target, Call] = {}

    def may_try(candidate: Candidate) -> bool:
        price, _ = per_minute_price(config, candidate.target)
        call = Call(engine, site, candidate.target)
        if not call.reserve((price or 0.0) * worst_minutes, 0):
            return False
        reserved[candidate.target] = call
        return True

    def attempt(candidate: Candidate, number: int):
        target = candidate.target
        provider_config = config.providers[target.provider]
        call = reserved.pop(target, None) or Call(engine, site, target)
        call.number = number
        started = engine.monotonic()
        try:
            result = engine.provider(target.provider).transcribe(
                audio, target.model, language=language, response_format=response_format,
                timeout=timeout or provider_config.timeout or config.defaults.timeout)
        except ProviderError as error:
            call.extra = {"audio_seconds": None}
            call.failed(error, int((engine.monotonic() - started) * 1000))
            raise
        duration = result.duration_s or known_duration
        price, source = per_minute_price(config, target)
        cost = price * duration / 60 if price is not None and duration is not None else None
        call.extra = {"audio_seconds": result.duration_s}
        call.pricer = lambda answered: (answered.usage, cost, source)
        call.answered(Result(text=result.text, usage=result.usage), int((engine.monotonic() - started) * 1000))
        return result, duration, cost

    candidates = [Candidate(t, "transcription target") for t in usable]
    policy = RetryPolicy(retries=config.defaults.retries, max_attempts=config.defaults.max_attempts)
    outcome = run_with_fallback(candidates, attempt, policy, sleep=engine.sleep, rng=engine.rng, may_try=may_try)
    if outcome.value is None:
        parts = [f"{f.candidate.target} {f.error.error_class.value}: {f.error.message}" for f in outcome.failures]
        raise AllAttemptsFailed("every transcription attempt failed: " + ("; ".join(parts) or "budget refused every target"),
                                [], "run with -m to pick a target, or check `llmroute health`")
    result, duration, cost = outcome.value
    return Transcript(result.raw, outcome.candidate.target, duration, cost, len(outcome.failures) + 1)
