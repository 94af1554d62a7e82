"""Speech engines: a Whisper checkpoint folder run by transformers or vLLM (kind ``speech``).

An engine takes a batch of 16 kHz mono float32 waveforms and the benchmark's
:class:`~provision.manifest.model.GenerationSpec`, and returns for each the generated token ids
(through the first end-of-text token), the prompt's length and the decoded text (:data:`Transcribed`).
``spec.prompt`` is the decoder prompt as text (MLPerf's
``<|startoftranscript|><|en|><|transcribe|><|notimestamps|>``): the language, the task and "no
timestamps" are forced by those tokens, as the reference SUT does.

- ``transformers``: the checkpoint's ``WhisperFeatureExtractor`` (log-mel features of the clip
  zero-padded to 30 s) and ``WhisperForConditionalGeneration`` run by the plain
  :meth:`transformers.GenerationMixin.generate` from the decoder prompt, with a generation config
  built from the spec alone: the checkpoint's ``generation_config.json`` (its ``suppress_tokens``,
  ``begin_suppress_tokens``, forced ids) never changes what runs, as it does not under vLLM.
- ``vllm``: vLLM's offline ``LLM`` with the reference SUT's prompt form (``prompt`` text plus
  ``multi_modal_data = {"audio": (waveform, 16000)}``), ``max_model_len = 448``, one audio per
  prompt, ``SamplingParams`` from the spec (temperature 0, top_p 1, ``max_tokens`` 200).

:mod:`provision.validation.runners.generate` registers both in ``ENGINES`` under ``speech`` through
factories that import this module on first use and turn each :data:`Transcribed` into a ``Generated``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from provision.errors import ModelError, UsageError
from provision.manifest.model import GenerationSpec
from provision.validation.runners.device import engine_version, torch_dtype, usable_cores

if TYPE_CHECKING:
    from provision.validation.runners.generate import EngineOptions

__all__ = [
    "SAMPLE_RATE",
    "WHISPER_MAX_TARGET",
    "Transcribed",
    "TransformersSpeechEngine",
    "VllmSpeechEngine",
    "as_waveform",
]

#: One clip's result: the generated ids (through the first end-of-text), the prompt's length, the text.
#: (``runners.generate`` makes each a ``Generated``: this module does not import it, no import cycle.)
Transcribed = tuple[tuple[int, ...], int, str]

#: The sample rate every Whisper checkpoint's feature extractor expects (Hz).
SAMPLE_RATE = 16000
#: The decoder's context in the reference SUT (``max_model_len``): prompt plus generated tokens.
WHISPER_MAX_TARGET = 448


def as_waveform(value: Any, where: str) -> np.ndarray:
    """An engine input as a 1-D float32 waveform; UsageError naming ``where`` when it is not one."""
    if isinstance(value, (str, bytes)):
        raise UsageError(f"{where}: a speech engine takes a waveform (an array of samples), got {type(value).__name__}")
    array = np.asarray(value)
    if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.floating):
        raise UsageError(
            f"{where}: expected a non-empty 1-D float waveform, got shape {array.shape} of {array.dtype}; "
            "decode the clip to mono float samples first"
        )
    return array.astype(np.float32, copy=False)


def _prompt_ids(tokenizer: Any, spec: GenerationSpec, where: Path) -> list[int]:
    """The decoder prompt text as ids: every piece must be one of the tokenizer's special tokens."""
    if not spec.prompt.startswith("<|"):
        raise UsageError(
            f"[benchmark.generation] prompt {spec.prompt!r}: a speech benchmark's prompt is the decoder prompt "
            "text, e.g. '<|startoftranscript|><|en|><|transcribe|><|notimestamps|>'"
        )
    ids = [int(i) for i in tokenizer(spec.prompt, add_special_tokens=False)["input_ids"]]
    unknown = tokenizer.unk_token_id
    if not ids or (unknown is not None and unknown in ids):
        raise ModelError(f"{where}: the tokenizer does not know every token of the prompt {spec.prompt!r}")
    return ids


def _cut(ids: Sequence[int], stops: frozenset[int], pad: int) -> tuple[int, ...]:
    """Ids through the first stop token; a finished row's trailing padding dropped."""
    out: list[int] = []
    for token in ids:
        out.append(int(token))
        if token in stops:
            return tuple(out)
    while out and out[-1] == pad and pad not in stops:
        out.pop()
    return tuple(out)


class TransformersSpeechEngine:
    """A Whisper checkpoint folder run by ``transformers`` (CPU or CUDA), batched 30 s features."""

    engine = "transformers"

    def __init__(self, model_dir: Path, options: EngineOptions, dtype: str) -> None:
        engine_version("transformers", "speech recognition")
        import torch

        transformers: Any = importlib.import_module("transformers")
        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()

        self.model_dir = model_dir
        self.device = options.device
        self.threads = options.threads or usable_cores()
        if self.device == "cpu":
            torch.set_num_threads(self.threads)
        try:
            self.features: Any = transformers.WhisperFeatureExtractor.from_pretrained(
                str(model_dir), local_files_only=True
            )
            self.tokenizer: Any = transformers.AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
            model = transformers.WhisperForConditionalGeneration.from_pretrained(
                str(model_dir), dtype=torch_dtype(dtype), local_files_only=True
            )
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"{model_dir}: transformers cannot load this Whisper checkpoint ({str(exc)[:200]})"
            ) from exc
        if self.features.sampling_rate != SAMPLE_RATE:
            raise ModelError(
                f"{model_dir}: the feature extractor expects {self.features.sampling_rate} Hz, not {SAMPLE_RATE}"
            )
        self.model: Any = model.to(self.device).eval()
        self.dtype = str(self.model.dtype).removeprefix("torch.")
        self.eos = self._token("<|endoftext|>")
        self.pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos
        # Only the spec decides: a bare config, so the checkpoint's generation_config.json cannot add
        # suppressed tokens or forced ids when transformers fills unset fields from the model's config.
        self.model.generation_config = transformers.GenerationConfig(
            decoder_start_token_id=self.model.config.decoder_start_token_id,
            pad_token_id=self.pad,
            eos_token_id=self.eos,
        )

    def _token(self, token: str) -> int:
        found = self.tokenizer.convert_tokens_to_ids(token)
        if found is None or found == self.tokenizer.unk_token_id:
            raise ModelError(f"{self.model_dir}: the tokenizer has no {token} token; is this a Whisper checkpoint?")
        return int(found)

    def generate(self, inputs: Sequence[Any], spec: GenerationSpec) -> list[Transcribed]:
        """One batch: features of each clip padded to 30 s, greedy (or sampled) from the decoder prompt."""
        import torch

        transformers: Any = importlib.import_module("transformers")
        waves = [as_waveform(x, f"input {k}") for k, x in enumerate(inputs)]
        prompt = _prompt_ids(self.tokenizer, spec, self.model_dir)
        if len(prompt) + spec.max_new_tokens > self.model.config.max_target_positions:
            raise UsageError(
                f"max_new_tokens {spec.max_new_tokens} + a {len(prompt)}-token prompt exceed the decoder's "
                f"{self.model.config.max_target_positions} positions; lower max_new_tokens"
            )
        batch = self.features(waves, sampling_rate=SAMPLE_RATE, return_tensors="pt")  # pads to 30 s
        features = batch["input_features"].to(self.device, dtype=self.model.dtype)
        decoder = torch.tensor([prompt] * len(waves), dtype=torch.long, device=self.device)
        stops = tuple(spec.stop_token_ids) or (self.eos,)
        settings: dict[str, Any] = {
            "max_new_tokens": spec.max_new_tokens,
            "min_new_tokens": spec.min_new_tokens,
            "do_sample": not spec.greedy,
            "num_beams": 1,
            "pad_token_id": self.pad,
            "eos_token_id": list(stops),
            "decoder_start_token_id": prompt[0],
        }
        if not spec.greedy:
            settings.update(temperature=spec.temperature, top_p=spec.top_p, top_k=spec.top_k or None)
            torch.manual_seed(spec.seed)
        config = transformers.GenerationConfig(**settings)
        with torch.inference_mode():
            # the base class's generate: Whisper's own override adds its long-form and timestamp logic
            out = transformers.GenerationMixin.generate(
                self.model, input_features=features, decoder_input_ids=decoder, generation_config=config
            )
        results: list[Transcribed] = []
        for row in range(len(waves)):
            new = _cut(out[row, len(prompt) :].tolist(), frozenset(stops), self.pad)
            text = self.tokenizer.decode(list(new), skip_special_tokens=spec.skip_special_tokens)
            results.append((new, len(prompt), text))
        return results

    def describe(self) -> dict[str, Any]:
        """Engine, versions, dtype, device, threads, the feature settings."""
        import torch

        return {
            "engine": self.engine,
            "version": engine_version("transformers", "speech recognition"),
            "torch": torch.__version__,
            "dtype": self.dtype,
            "device": self.device,
            "threads": self.threads if self.device == "cpu" else None,
            "features": {
                "mel_bins": int(self.features.feature_size),
                "sampling_rate": int(self.features.sampling_rate),
                "padded_seconds": int(self.features.chunk_length),
            },
        }

    def close(self) -> None:
        """Drop the model (and free CUDA memory when it was on a GPU)."""
        del self.model
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()


class VllmSpeechEngine:
    """A Whisper checkpoint folder run by vLLM's offline ``LLM`` on one CUDA device, as the reference SUT."""

    engine = "vllm"

    def __init__(self, model_dir: Path, options: EngineOptions, dtype: str) -> None:
        engine_version("vllm", "speech recognition")
        vllm: Any = importlib.import_module("vllm")

        self.model_dir = model_dir
        self.device = options.device if options.device.startswith("cuda") else "cuda"
        self.dtype = dtype
        self.settings: dict[str, Any] = {
            "max_model_len": WHISPER_MAX_TARGET,
            "max_num_seqs": 64,
            "limit_mm_per_prompt": {"audio": 1},
        }
        try:
            self.llm = vllm.LLM(model=str(model_dir), tokenizer=str(model_dir), dtype=dtype, seed=0, **self.settings)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelError(f"{model_dir}: vLLM cannot load this Whisper checkpoint ({str(exc)[:200]})") from exc

    def generate(self, inputs: Sequence[Any], spec: GenerationSpec) -> list[Transcribed]:
        """One batch through ``LLM.generate``: the prompt text with each clip as its audio."""
        vllm: Any = importlib.import_module("vllm")

        if not spec.prompt.startswith("<|"):
            raise UsageError(
                f"[benchmark.generation] prompt {spec.prompt!r}: a speech benchmark's prompt is the decoder prompt "
                "text, e.g. '<|startoftranscript|><|en|><|transcribe|><|notimestamps|>'"
            )
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
        prompts = [
            {"prompt": spec.prompt, "multi_modal_data": {"audio": (as_waveform(x, f"input {k}"), SAMPLE_RATE)}}
            for k, x in enumerate(inputs)
        ]
        outs = self.llm.generate(prompts, params, use_tqdm=False)
        return [
            (tuple(int(t) for t in o.outputs[0].token_ids), len(o.prompt_token_ids or ()), str(o.outputs[0].text))
            for o in outs
        ]

    def describe(self) -> dict[str, Any]:
        """Engine, versions, dtype, device and the LLM settings."""
        import torch

        return {
            "engine": self.engine,
            "version": engine_version("vllm", "speech recognition"),
            "torch": torch.__version__,
            "dtype": self.dtype,
            "device": self.device,
            "threads": None,
            "vllm": self.settings,
        }

    def close(self) -> None:
        """Drop the engine."""
        del self.llm
