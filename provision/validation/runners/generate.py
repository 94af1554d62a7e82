"""Generation engines: a Hugging Face checkpoint folder run by vLLM or transformers.

An engine takes a batch of prompts (pre-tokenised input ids, or text the engine tokenises) and
the benchmark's :class:`~provision.manifest.model.GenerationSpec`, and returns for each prompt
the generated token ids (prompt excluded, through the first stop token) and their decoded text.

- ``vllm``: the engine MLPerf's reference SUTs use; only when it is installed and a CUDA device
  is visible. ``SamplingParams`` carry every setting (``top_k = -1`` for "off").
- ``transformers``: ``AutoModelForCausalLM.generate`` on the CPU or a GPU, left-padded batches
  with an attention mask, a :class:`transformers.GenerationConfig` built from the spec alone (of
  the checkpoint's own ``generation_config.json`` only the eos ids are used, as vLLM uses them).

``auto`` picks vLLM when both hold, else transformers. A missing engine is one line naming the
extra to install. Engines of other kinds register in :data:`ENGINES` under their kind (``speech``:
:mod:`provision.validation.runners.speech`, imported on first use).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from provision.errors import ModelError, UsageError
from provision.manifest.model import GenerationSpec
from provision.validation.runners.device import engine_version, torch_dtype, usable_cores

__all__ = [
    "ENGINES",
    "ENGINE_CHOICES",
    "Engine",
    "EngineOptions",
    "Generated",
    "TransformersTextEngine",
    "VllmTextEngine",
    "choose_engine",
    "open_engine",
]

#: ``--engine`` values.
ENGINE_CHOICES = ("auto", "vllm", "transformers")


@dataclass(frozen=True)
class Generated:
    """One prompt's generation: ids after the prompt through the first stop token, and their text."""

    token_ids: tuple[int, ...]
    prompt_tokens: int
    text: str


@dataclass(frozen=True)
class EngineOptions:
    """Where and how an engine runs: device (``cpu``, ``cuda``, ``cuda:N``), CPU threads, batch size."""

    device: str = "cpu"
    threads: int | None = None
    batch_size: int = 8


class Engine(Protocol):
    """A loaded generation engine."""

    engine: str  # "vllm" | "transformers"
    device: str

    def generate(self, inputs: Sequence[Any], spec: GenerationSpec) -> list[Generated]:
        """Generate for each input (token ids or prompt text for text engines)."""
        ...  # pragma: no cover - protocol

    def describe(self) -> dict[str, Any]:
        """JSON-ready: engine, versions, dtype, device and what else changes the output."""
        ...  # pragma: no cover - protocol

    def close(self) -> None:
        """Release the model and its device memory."""
        ...  # pragma: no cover - protocol


def _cuda_visible() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def choose_engine(engine: str, device: str) -> str:
    """The engine ``--engine`` means here: ``auto`` is vLLM when installed and a GPU is visible (and the
    device is not ``cpu``), else transformers. UsageError for vLLM on the CPU or an unknown name."""
    if engine not in ENGINE_CHOICES:
        raise UsageError(f"engine {engine!r} is not one of {', '.join(ENGINE_CHOICES)}; pick one of those")
    if engine == "auto":
        if device != "cpu" and importlib.util.find_spec("vllm") is not None and _cuda_visible():
            return "vllm"
        return "transformers"
    if engine == "vllm" and device == "cpu":
        raise UsageError("--engine vllm runs on a CUDA device; drop --device cpu or use --engine transformers")
    return engine


def _cut(ids: Sequence[int], stops: frozenset[int], pad: int | None) -> tuple[int, ...]:
    """Generated ids through the first stop token; trailing padding of a finished row dropped."""
    out: list[int] = []
    for token in ids:
        out.append(int(token))
        if token in stops:
            return tuple(out)
    while out and pad is not None and out[-1] == pad and pad not in stops:
        out.pop()
    return tuple(out)


class TransformersTextEngine:
    """A causal LM checkpoint folder run by ``transformers`` (CPU or CUDA), left-padded batches."""

    engine = "transformers"

    def __init__(self, model_dir: Path, options: EngineOptions, dtype: str) -> None:
        engine_version("transformers")
        import torch

        transformers: Any = importlib.import_module("transformers")
        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()

        self.device = options.device
        self.threads = options.threads or usable_cores()
        if self.device == "cpu":
            torch.set_num_threads(self.threads)
        try:
            self.tokenizer: Any = transformers.AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
            model = transformers.AutoModelForCausalLM.from_pretrained(
                str(model_dir), dtype=torch_dtype(dtype), local_files_only=True
            )
        except (OSError, ValueError) as exc:
            raise ModelError(f"{model_dir}: transformers cannot load this checkpoint ({str(exc)[:200]})") from exc
        self.model: Any = model.to(self.device).eval()
        self.dtype = str(self.model.dtype).removeprefix("torch.")
        config = self.model.generation_config
        eos = config.eos_token_id if config is not None else None
        self.eos: tuple[int, ...] = tuple(eos) if isinstance(eos, list) else ((eos,) if eos is not None else ())
        self.pad: int | None = self.tokenizer.pad_token_id
        if self.pad is None:
            self.pad = self.eos[0] if self.eos else 0
        # Only the spec decides: transformers fills every field a call leaves unset from the model's
        # generation_config (the checkpoint's generation_config.json: its repetition penalty, sampling
        # defaults, n-gram bans...), so that config is replaced by a bare one; only its eos ids are kept.
        self.model.generation_config = transformers.GenerationConfig(
            eos_token_id=list(self.eos) or None, pad_token_id=self.pad
        )

    def encode(self, text: str, spec: GenerationSpec) -> list[int]:
        """``text`` as input ids: the tokenizer's chat template around it when the spec says so."""
        if spec.chat_template:
            messages = [{"role": "user", "content": text}]
            ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
            if isinstance(ids, dict) or hasattr(ids, "keys"):
                ids = ids["input_ids"]
            return [int(i) for i in ids]
        return [int(i) for i in self.tokenizer.encode(text)]

    def generate(self, inputs: Sequence[Any], spec: GenerationSpec) -> list[Generated]:
        """One left-padded batch through ``model.generate`` with the spec's settings."""
        import torch

        transformers: Any = importlib.import_module("transformers")
        prompts = [self.encode(x, spec) if isinstance(x, str) else [int(i) for i in x] for x in inputs]
        if any(not p for p in prompts):
            raise ModelError("a prompt has no tokens; check the dataset's prompt column")
        width = max(len(p) for p in prompts)
        pad = int(self.pad if self.pad is not None else 0)
        ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            mask[row, width - len(prompt) :] = 1
        stops = spec.stop_token_ids or self.eos
        settings: dict[str, Any] = {
            "max_new_tokens": spec.max_new_tokens,
            "min_new_tokens": spec.min_new_tokens,
            "do_sample": not spec.greedy,
            "num_beams": 1,
            "pad_token_id": pad,
            "eos_token_id": list(stops) or None,
        }
        if not spec.greedy:
            settings.update(temperature=spec.temperature, top_p=spec.top_p, top_k=spec.top_k or None)
            torch.manual_seed(spec.seed)
        config = transformers.GenerationConfig(**settings)
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=ids.to(self.device), attention_mask=mask.to(self.device), generation_config=config
            )
        results = []
        for row, prompt in enumerate(prompts):
            new = _cut(out[row, width:].tolist(), frozenset(stops), pad)
            text = self.tokenizer.decode(list(new), skip_special_tokens=spec.skip_special_tokens)
            results.append(Generated(new, len(prompt), text))
        return results

    def describe(self) -> dict[str, Any]:
        """Engine, versions, dtype, device, threads."""
        import torch

        return {
            "engine": self.engine,
            "version": engine_version("transformers"),
            "torch": torch.__version__,
            "dtype": self.dtype,
            "device": self.device,
            "threads": self.threads if self.device == "cpu" else None,
        }

    def close(self) -> None:
        """Drop the model (and free CUDA memory when it was on a GPU)."""
        del self.model
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()


class VllmTextEngine:
    """A checkpoint folder run by vLLM's offline ``LLM`` on one CUDA device."""

    engine = "vllm"

    def __init__(self, model_dir: Path, options: EngineOptions, dtype: str) -> None:
        engine_version("vllm")
        vllm: Any = importlib.import_module("vllm")

        self.device = options.device if options.device.startswith("cuda") else "cuda"
        self.dtype = dtype
        try:
            self.llm = vllm.LLM(model=str(model_dir), tokenizer=str(model_dir), dtype=dtype, seed=0)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelError(f"{model_dir}: vLLM cannot load this checkpoint ({str(exc)[:200]})") from exc
        self.tokenizer: Any = self.llm.get_tokenizer()

    def generate(self, inputs: Sequence[Any], spec: GenerationSpec) -> list[Generated]:
        """One batch through ``LLM.generate`` with the spec's ``SamplingParams``."""
        vllm: Any = importlib.import_module("vllm")

        params = vllm.SamplingParams(
            temperature=spec.temperature,
            top_p=spec.top_p,
            top_k=spec.top_k or -1,
            seed=spec.seed,
            max_tokens=spec.max_new_tokens,
            min_tokens=spec.min_new_tokens,
            stop_token_ids=list(spec.stop_token_ids) or None,
            skip_special_tokens=spec.skip_special_tokens,
        )
        prompts: list[Any] = []
        for x in inputs:
            if isinstance(x, str):
                text = x
                if spec.chat_template:
                    messages = [{"role": "user", "content": x}]
                    text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
                prompts.append({"prompt_token_ids": self.tokenizer.encode(text)})
            else:
                prompts.append({"prompt_token_ids": [int(i) for i in x]})
        outs = self.llm.generate(prompts, params, use_tqdm=False)
        return [
            Generated(tuple(int(t) for t in o.outputs[0].token_ids), len(o.prompt_token_ids), o.outputs[0].text)
            for o in outs
        ]

    def describe(self) -> dict[str, Any]:
        """Engine, versions, dtype, device."""
        import torch

        return {
            "engine": self.engine,
            "version": engine_version("vllm"),
            "torch": torch.__version__,
            "dtype": self.dtype,
            "device": self.device,
            "threads": None,
        }

    def close(self) -> None:
        """Drop the engine."""
        del self.llm


EngineFactory = Callable[[Path, EngineOptions, str], Engine]


class _SpeechEngine:
    """A speech engine of :mod:`provision.validation.runners.speech` as an :class:`Engine`: its
    ``(ids, prompt tokens, text)`` rows become :class:`Generated` (that module does not import this one)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.engine: str = inner.engine
        self.device: str = inner.device

    def generate(self, inputs: Sequence[Any], spec: GenerationSpec) -> list[Generated]:
        """The inner engine's rows of one batch as :class:`Generated`."""
        return [
            Generated(tuple(ids), int(prompt), str(text)) for ids, prompt, text in self.inner.generate(inputs, spec)
        ]

    def describe(self) -> dict[str, Any]:
        """The inner engine's description."""
        return dict(self.inner.describe())

    def close(self) -> None:
        """Close the inner engine."""
        self.inner.close()


def _speech_transformers(model_dir: Path, options: EngineOptions, dtype: str) -> Engine:
    from provision.validation.runners.speech import TransformersSpeechEngine

    return _SpeechEngine(TransformersSpeechEngine(model_dir, options, dtype))


def _speech_vllm(model_dir: Path, options: EngineOptions, dtype: str) -> Engine:
    from provision.validation.runners.speech import VllmSpeechEngine

    return _SpeechEngine(VllmSpeechEngine(model_dir, options, dtype))


#: (kind, engine) -> factory ``(model folder, options, dtype) -> Engine``; the speech engines'
#: module (:mod:`provision.validation.runners.speech`) is imported on first use.
ENGINES: dict[tuple[str, str], EngineFactory] = {
    ("text", "transformers"): TransformersTextEngine,
    ("text", "vllm"): VllmTextEngine,
    ("speech", "transformers"): _speech_transformers,
    ("speech", "vllm"): _speech_vllm,
}


def open_engine(kind: str, model_dir: Path, engine: str, options: EngineOptions, dtype: str) -> Engine:
    """Load ``model_dir`` with ``engine`` (already chosen: ``vllm`` or ``transformers``) for ``kind``."""
    factory = ENGINES.get((kind, engine))
    if factory is None:
        known = ", ".join(e for k, e in ENGINES if k == kind) or "none"
        raise UsageError(f"no {engine} engine for {kind} models; engines for them: {known}")
    return factory(model_dir, options, dtype)
