"""Speech to text across providers (SPEC §11 `transcribe`).

The file is checked before anything is sent (type by extension, the 25 MiB limit every
OpenAI-compatible endpoint enforces, and its content by magic bytes, so a text file renamed
`.wav` is never uploaded), then the targets whose model is a transcription model are tried with
the same retry/fallback rules, budget reservation and ledger records as a prompt. `-m` names a
target, a route (its transcription targets, in order) or a provider (its transcription models;
with none configured, the one the built-in table knows it serves: Groq's whisper-large-v3,
OpenAI's whisper-1), so a chat model is never sent audio.
Transcription is priced per audio minute; the duration comes from the provider's reported usage,
else from the file itself when it is a WAV.
"""

from __future__ import annotations

import functools
import hashlib
import wave
from dataclasses import dataclass
from pathlib import Path

from .config.model import Config
from .engine import Engine
from .errors import AllAttemptsFailed, NoProviderError, ProviderError, UsageError
from .calls import Call, CallSite
from .catalog.builtin import known_models, lookup_price, price_source_label
from .catalog.presets import preset_for
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
    with open(path, "rb") as handle:
        head = handle.read(16)
    if sniff_audio(head) is None:
        raise UsageError(f"{path.name} is not an audio file: its content is none of "
                         f"{', '.join(AUDIO_KINDS)} (it starts {head[:8]!r})",
                         "check that it is the recording you meant; a renamed text file is refused before upload")
    return size


AUDIO_KINDS = ("wav", "mp3", "flac", "ogg", "m4a/mp4", "webm", "mpeg")


def sniff_audio(head: bytes) -> str | None:
    """The audio container the first bytes of a file name (its magic bytes), or None."""
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:3] == b"ID3":  # an ID3v2 tag: mp3, sometimes flac or aac behind it
        return "mp3"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[4:8] == b"ftyp":
        return "m4a/mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: WebM / Matroska
        return "webm"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):  # MPEG program stream, video
        return "mpeg"
    if _mpeg_audio_frame(head):
        return "mp3"
    return None


def _mpeg_audio_frame(head: bytes) -> bool:
    """An MPEG audio frame header (mp3, mpga without an ID3 tag): 11 sync bits, then a version,
    layer, bitrate and sample rate that are not the reserved values."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 0b11, (head[1] >> 1) & 0b11
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 0b11
    return version != 0b01 and layer != 0b00 and bitrate != 0b1111 and rate != 0b11


def wav_duration_s(path: Path) -> float | None:
    if path.suffix.lower() != ".wav":
        return None
    try:
        with wave.open(str(path), "rb") as audio:
            return audio.getnframes() / float(audio.getframerate())
    except (wave.Error, EOFError, OSError, ZeroDivisionError):
        return None


# The model `-m PROVIDER` and an unconfigured provider fall back to, first one the built-in table
# prices on that provider: whisper-1 (OpenAI), whisper-large-v3 (Groq), ...
PREFERRED_MODELS = ("whisper-1", "whisper-large-v3", "whisper-large-v3-turbo", "gpt-4o-transcribe",
                    "gpt-4o-mini-transcribe")


def transcription_targets(config: Config, model_option: str | None) -> list[Target]:
    """The targets to try, in order. `-m` names a route (its transcription targets), a provider
    (its transcription models, else the one it is known to serve) or a target; without it,
    every enabled transcription model — or, when the config marks none, each enabled provider's
    known one (so the built-in default config can transcribe)."""
    if not model_option:
        return _all_transcription(config)
    if "/" not in model_option and model_option in config.routes:
        targets = [t for t in config.routes[model_option] if is_transcription(config, t)]
        if not targets:
            raise UsageError(f"route {model_option!r} holds no transcription target",
                             f"transcription targets: {_listed(config)}")
        return targets
    if "/" not in model_option and model_option in config.providers:
        targets = _provider_transcription(config.providers[model_option])
        if not targets:
            raise UsageError(f"provider {model_option!r} has no transcription model",
                             f"add one (e.g. whisper-1) with `mode: transcription`; transcription targets: {_listed(config)}")
        return targets
    provider_name, _, model = model_option.partition("/")
    provider = config.providers.get(provider_name)
    target = Target(provider_name, model)
    if provider is None or not model or (model not in provider.models and target not in _provider_transcription(provider)):
        raise UsageError(f"unknown target or route {model_option!r}", f"transcription targets: {_listed(config)}")
    if not is_transcription(config, target):
        raise UsageError(f"{target} is not a transcription model",
                         "mark it `mode: transcription` in the config if it is one")
    return [target]


def is_transcription(config: Config, target: Target) -> bool:
    """Marked `mode: transcription`, or a model the built-in table prices per audio minute."""
    model = config.model(target)
    if model is not None and model.mode == "transcription":
        return True
    return known_transcription_model(target.model)


@functools.lru_cache(maxsize=256)
def known_transcription_model(name: str) -> bool:
    """whisper-1, whisper-large-v3, gpt-4o-transcribe, ...: the table prices it per minute,
    whoever serves it (an OpenAI-compatible server on this machine too)."""
    return any(entry.per_minute is not None and (key == name or key.endswith("/" + name))
               for key, entry in known_models().items())


def _provider_transcription(provider) -> list[Target]:
    """A provider's transcription models in config order; with none, the one it is known to serve."""
    listed = [Target(provider.name, name) for name, model in provider.models.items()
              if model.mode == "transcription" or known_transcription_model(name)]
    if listed or provider.type != "openai":
        return listed
    preset = preset_for(provider)
    for name in PREFERRED_MODELS:
        entry = lookup_price(provider.type, name, provider.base_url, preset.name if preset else None)
        if entry is not None and entry.per_minute is not None:
            return [Target(provider.name, name)]
    return []


def _all_transcription(config: Config) -> list[Target]:
    enabled = [p for p in config.providers.values() if p.enabled]
    marked = [Target(p.name, name) for p in enabled for name, model in p.models.items()
              if model.mode == "transcription" or known_transcription_model(name)]
    return marked or [t for p in enabled for t in _provider_transcription(p)]


def _listed(config: Config) -> str:
    return ", ".join(t.id for t in _all_transcription(config)) or "none configured"


def per_minute_price(config: Config, target: Target) -> tuple[float | None, str]:
    provider = config.providers[target.provider]
    model = provider.models.get(target.model)
    if model is not None and model.per_minute is not None:
        return model.per_minute, "config"
    preset = preset_for(provider)  # a provider named `groq` is priced as Groq without `preset:`
    entry = lookup_price(provider.type, target.model, provider.base_url, preset.name if preset else None)
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
