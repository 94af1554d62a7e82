"""The first eleven benchmarks: their rounds and the checker's names for them, from the submission
checker's ``models`` lists (mlcommons/inference @ b66003e ``tools/submission/submission_checker/constants.py``:
blocks v5.0, v5.1, v6.0, v6.1; rnnt's last block v4.0 is ../shared/reference/mlperf-sources.md section 6),
and the rounded sizes the manifests' notes quote from the R2 manifests (mlperf-sources.md sections 7-11)."""

from __future__ import annotations

ALL = ("v5.0", "v5.1", "v6.0", "v6.1")

# benchmark: (suite, rounds, dataset_size, performance_sample_count, accuracy_sample_count, checker_names)
BENCHMARKS: dict[str, tuple[str, tuple[str, ...], int | None, int | None, int | None, tuple[str, ...]]] = {
    "resnet50": ("inference", ALL, 50000, 1024, None, ("resnet",)),
    "retinanet": ("inference", ("v5.0", "v5.1", "v6.0"), 24781, 64, None, ("retinanet",)),
    "bert": ("inference", ALL, 10833, 10833, None, ("bert-99", "bert-99.9")),
    "3d-unet": ("inference", ALL, 43, 43, None, ("3d-unet-99", "3d-unet-99.9")),
    "rnnt": ("inference", ("v4.0",), 2513, 2513, None, ("rnnt",)),
    # v6.0's models list omits dlrm-v2 although its targets remain: the models list decides.
    "dlrm-v2": ("inference", ("v5.0", "v5.1"), 330067, 204800, None, ("dlrm-v2-99", "dlrm-v2-99.9")),
    "gpt-j": ("inference", ("v5.0",), 13368, 13368, None, ("gptj-99", "gptj-99.9")),
    "llama2-70b": (
        "inference",
        ALL,
        24576,
        24576,
        None,
        ("llama2-70b-99", "llama2-70b-99.9", "llama2-70b-interactive-99", "llama2-70b-interactive-99.9"),
    ),
    "stable-diffusion-xl": ("inference", ALL, 5000, 5000, None, ("stable-diffusion-xl",)),
    "llama3.1-8b": ("inference", ("v5.1", "v6.0", "v6.1"), 13368, 13368, None, ("llama3.1-8b",)),
    "llama3.1-8b-edge": ("inference", ("v5.1", "v6.0", "v6.1"), 5000, 5000, None, ("llama3.1-8b-edge",)),
}

# (artifact, file or folder): the source's rounded figure, in bytes (decimal units)
APPROX_SIZES: dict[tuple[str, str], int] = {
    ("dlrm-v2-weights", "model_weights/"): 105_000_000_000,
    ("gpt-j-checkpoint", "checkpoint-final/"): 25_000_000_000,
    ("llama2-70b-chat-hf", "Llama-2-70b-chat-hf/"): 552_000_000_000,
    ("cnn-dailymail-llama3.1-8b", "cnn_eval.json"): 267_000_000,
    ("cnn-dailymail-llama3.1-8b-edge", "sample_cnn_eval_5000.json"): 101_000_000,
    ("cnn-dailymail-llama3.1-8b-calibration", "cnn_dailymail_calibration.json"): 21_000_000,
    ("llama3.1-8b-instruct", "Llama-3.1-8B-Instruct/"): 33_000_000_000,
    ("sdxl-fp16", "stable_diffusion_fp16/"): 7_000_000_000,
    ("sdxl-fp32", "stable_diffusion_fp32/"): 14_000_000_000,
}
