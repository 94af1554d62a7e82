"""deepseek-r1 and gpt-oss-120b: facts copied from ../shared/reference/mlperf-more-sources.md sections 15, 17, 23
and 28 (checker v6.1 block of mlcommons/inference @ b66003e constants.py; R2 md5 lists of r2-infra @ 5d77ea6)."""

from __future__ import annotations

R2 = "mlc-r2://inference.mlcommons-storage.org/metadata/"
DS = "DeepSeek-R1/"
OSS = "gpt-oss_model/"

# benchmark: (suite, rounds, dataset_size, performance_sample_count, accuracy_sample_count, checker_names)
BENCHMARKS: dict[str, tuple[str, tuple[str, ...], int | None, int | None, int | None, tuple[str, ...]]] = {
    "deepseek-r1": ("inference", ("v5.1", "v6.0", "v6.1"), 4388, 4388, None, ("deepseek-r1",)),
    "gpt-oss-120b": ("inference", ("v6.0", "v6.1"), 6396, 6396, 4395, ("gpt-oss-120b",)),
}

# benchmark: {metric: ([checker lower bound per ratio], checker upper bound or None)}
TARGETS: dict[str, dict[str, tuple[list[float], float | None]]] = {
    "deepseek-r1": {"exact_match": ([80.544618], None), "tokens_per_sample": ([3497.60466], 4274.85014)},
    # the checker's TOKENS_PER_SAMPLE upper 10998.9 is a placeholder never printed: not encoded (see notes)
    "gpt-oss-120b": {"exact_match": ([82.2987], None)},
}

CHECKSUMS: list[tuple[str, str, str]] = [
    ("deepseek-r1-eval-4388", "mlperf_deepseek_r1_dataset_4388_fp8_eval.pkl", "md5:994a30e4787831b8c8f6e44da7de67fe"),
    ("deepseek-r1-eval-4388", "LICENSE.txt", "md5:975c63cb457db705262a638cfbdf191f"),
    (
        "deepseek-r1-calibration-500",
        "mlperf_deepseek_r1_calibration_dataset_500_fp8_eval.pkl",
        "md5:3f652e0b96b9342ebfe98c00593a5a4e",
    ),
    ("gpt-oss-eval", "acc/acc_eval_ref.parquet", "md5:29d35424fc8d31461e73a7766446480e"),
    ("gpt-oss-eval", "acc/acc_eval_compliance_gpqa.parquet", "md5:e35e6bc6d7343df1930501bb61e61260"),
    ("gpt-oss-eval", "acc/calibration_unique_sampled1024.parquet", "md5:3455fea2a2afceb69bdabace1ea90714"),
    ("gpt-oss-eval", "acc/input_ids_padded_acc_eval.npy", "md5:3ca6b06991e19fa7fd59c922b886b79c"),
    ("gpt-oss-eval", "acc/input_lens_acc_eval.npy", "md5:76639e901dca5f3fe4b747bac89b323c"),
    ("gpt-oss-eval", "perf/perf_eval_ref.parquet", "md5:e4cd6cef6dd975f3e50c85b3279b358b"),
    ("gpt-oss-eval", "perf/input_ids_padded_perf_eval.npy", "md5:f516f0dfe56a904623a5cc779cf953f7"),
    ("gpt-oss-eval", "perf/input_lens_perf_eval.npy", "md5:040cc2d13e77efedb9b76053ac45b9dc"),
]

PINS: list[tuple[str, str, str, str]] = [
    ("deepseek-r1-checkpoint", DS, "config.json", "md5:0c764135b735bcc9b196ec4353aadb8c"),
    ("deepseek-r1-checkpoint", DS, "tokenizer.json", "md5:17553782e30ae6d87f5702afb7b8c0f0"),
    ("deepseek-r1-checkpoint", DS, "model.safetensors.index.json", "md5:3d6e8163ad977150d6f94bdf2a948c68"),
    ("deepseek-r1-checkpoint", DS, "model-00001-of-000163.safetensors", "md5:694a092b87b7547fc1db086e1ad89518"),
    ("deepseek-r1-checkpoint", DS, "model-00163-of-000163.safetensors", "md5:7d794162e83939f818eb5b1dfaafe096"),
    ("gpt-oss-120b-checkpoint", OSS, "gpt-oss-120b/config.json", "md5:a2a84db519d82f14fb309b4e25c32776"),
    ("gpt-oss-120b-checkpoint", OSS, "gpt-oss-120b/tokenizer.json", "md5:50732becd3190df1ba056e6b050345eb"),
    ("gpt-oss-120b-checkpoint", OSS, "gpt-oss-120b/chat_template.jinja", "md5:4d4366d7bcdeb848ad0aebc3ef06d514"),
    (
        "gpt-oss-120b-checkpoint",
        OSS,
        "gpt-oss-120b/model.safetensors.index.json",
        "md5:e8fe3e9d4d23cc2942098e09b2d099ac",
    ),
    (
        "gpt-oss-120b-checkpoint",
        OSS,
        "gpt-oss-120b/model-00000-of-00014.safetensors",
        "md5:e530c771d6649810ffe1126aa1ed8f3f",
    ),
    (
        "gpt-oss-120b-checkpoint",
        OSS,
        "gpt-oss-120b/model-00014-of-00014.safetensors",
        "md5:cdbaa352e322d57b663b90badd7117ac",
    ),
    ("gpt-oss-20b-checkpoint", "gpt-oss-20B/", "gpt-oss-20b/config.json", "md5:f57e9087e87557ed16ddd5f2d57c6b5b"),
]

LISTED_COUNTS: dict[tuple[str, str], int] = {
    ("deepseek-r1-checkpoint", DS): 174,
    ("gpt-oss-120b-checkpoint", OSS): 37,
    ("gpt-oss-20b-checkpoint", "gpt-oss-20B/"): 55,
}

FOLDERS: dict[tuple[str, str], str] = {
    ("deepseek-r1-checkpoint", DS): R2 + "deepseek-r1.uri",
    ("deepseek-r1-hub", DS): "hf://deepseek-ai/DeepSeek-R1@56d4cbbb4d29f4355bab4b9a39ccb717a14ad5ad/*",
    ("gpt-oss-120b-checkpoint", OSS): R2 + "gpt-oss-model.uri",
    ("gpt-oss-120b-hub", "gpt-oss-120b/"): "hf://openai/gpt-oss-120b@b5c939de8f754692c1647ca79fbf85e8c1e70f8a/*",
    ("gpt-oss-20b-checkpoint", "gpt-oss-20B/"): R2 + "gpt-oss-20B.uri",
}

APPROX_SIZES: dict[tuple[str, str], int] = {
    ("deepseek-r1-checkpoint", DS): 689_000_000_000,
    ("gpt-oss-120b-checkpoint", OSS): 196_000_000_000,
    ("gpt-oss-20b-checkpoint", "gpt-oss-20B/"): 83_000_000_000,
}

ALIASES: dict[str, str] = {
    "deepseek-r1": "deepseek-r1",
    "deepseek": "deepseek-r1",
    "gpt-oss-120b": "gpt-oss-120b",
    "gpt-oss": "gpt-oss-120b",
    "gpt-oss-20b-model": "gpt-oss-20b-checkpoint",
}

ACCESS: dict[str, str] = {
    "deepseek-r1-eval-4388": "public",
    "deepseek-r1-checkpoint": "public",
    "deepseek-r1-hub": "public",
    "gpt-oss-eval": "public",
    "gpt-oss-120b-checkpoint": "public",
    "gpt-oss-120b-hub": "public",
    "gpt-oss-20b-checkpoint": "public",
}
