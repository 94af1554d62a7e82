"""training benchmarks: facts copied from ../shared/reference/mlperf-more-sources.md §29 (and §30, question 10).

MLPerf Training v6.1 (flux.1, llama3.1_8b, llama2_70b_lora, gpt_oss_20b, deepseekv3, qwen35_397b_grpo) and the
two v6.0 benchmarks v6.1 dropped (llama3.1_405b, dlrm_dcnv2). Rounds are the mlcommons/training README's tables
(@ aa344c7: v6.0 lists all but qwen35_397b_grpo). Beyond §29: the listing counts and pins marked [R2I] are the
R2 md5 lists at mlcommons/r2-infra @ 5d77ea6 (the reference file's own R2 source); dlrm_dcnv2's artifacts are
mlcommons/training @ aa344c7 recommendation_v2/torchrec_dlrm (README.MD, md5sums_*.txt) plus those R2 lists, and
its target, like llama3.1_405b's, is mlcommons/logging compliance_checker training_6.0.0.
"""

from __future__ import annotations

V6 = ("v6.0", "v6.1")

# benchmark: (suite, rounds, dataset_size, performance_sample_count, accuracy_sample_count, checker_names)
BENCHMARKS: dict[str, tuple[str, tuple[str, ...], int | None, int | None, int | None, tuple[str, ...]]] = {
    "flux.1": ("training", V6, None, None, None, ("flux.1",)),
    "llama3.1_8b": ("training", V6, None, None, None, ("llama3.1_8b",)),
    "llama2_70b_lora": ("training", V6, None, None, None, ("llama2_70b_lora",)),
    "gpt_oss_20b": ("training", V6, None, None, None, ("gpt_oss_20b",)),
    "deepseekv3": ("training", V6, None, None, None, ("deepseekv3",)),
    "qwen35_397b_grpo": ("training", ("v6.1",), None, None, None, ("qwen35_397b_grpo",)),
    "llama3.1_405b": ("training", ("v6.0",), None, None, None, ("llama3.1_405b",)),
    "dlrm_dcnv2": ("training", ("v6.0",), None, None, None, ("dlrm_dcnv2",)),
}

# benchmark: {metric (or "metric@Scenario"): ([checker lower bound per ratio], checker upper bound or None)}
TARGETS: dict[str, dict[str, tuple[list[float], float | None]]] = {}

# training benchmark: [(metric, direction, target)]
QUALITY: dict[str, list[tuple[str, str, float]]] = {
    "flux.1": [("val_loss", "<=", 0.586)],
    "llama3.1_8b": [("log_perplexity", "<=", 3.3)],
    "llama2_70b_lora": [("eval_loss", "<=", 0.925)],
    "gpt_oss_20b": [("log_perplexity", "<=", 3.34)],
    "deepseekv3": [("val_loss", "<=", 3.6)],
    # README: pass@4 >= 0.69; the [LOG] checker: value > target_accuracy (followed)
    "qwen35_397b_grpo": [("pass_at_4", ">", 0.69)],
    "llama3.1_405b": [("log_perplexity", "<=", 5.6)],
    "dlrm_dcnv2": [("auc", ">=", 0.80275)],
}

# (artifact, file, "alg:hex") for each file entry with a published checksum
CHECKSUMS: list[tuple[str, str, str]] = [
    ("flux-1-empty-encodings", "t5_empty.npy", "md5:23d8c177e1cdca298931af08c84c1633"),
    ("flux-1-empty-encodings", "clip_empty.npy", "md5:60513e7c2edfafa36d264692b2681a7d"),
    ("flux-1-coco-2014-val-30k", "val2014_30k.tsv", "md5:88ce8451f44a4a2970f7aaa8b347ed06"),
    ("c4-validation-91205", "c4-validation-91205-samples.en.json.gz", "md5:e6a0e8ba4ce8bff219b8541cfba17fea"),
]

_C4 = ("c4-llama3.1-8b-preprocessed", "llama3_1_8b/")
_DLRM = ("criteo-multihot-dlrm-dcnv2", "criteo_multihot_v3.0_reference/")

# (artifact, folder entry name, path in folder, "md5:hex")
PINS: list[tuple[str, str, str, str]] = [
    ("flux-1-cc12m-disk", "cc12m_disk/", "data-00000-of-00326.arrow", "md5:eeb02dd6004734464017328f2ee73ec6"),
    ("flux-1-coco", "coco/", "shard_00000.tar", "md5:ffbb90a82127294d47bd16664405adaf"),  # [R2I]
    (  # [R2I]
        "flux-1-cc12m-preprocessed",
        "cc12m_preprocessed/",
        "data-00000-of-04762.arrow",
        "md5:ec352bbaf5e53fddff7c302006cfe4ba",
    ),
    (  # [R2I]
        "flux-1-coco-preprocessed",
        "coco_preprocessed/",
        "data-00000-of-00129.arrow",
        "md5:fb888af426a197aef89c648fe4b59ea2",
    ),
    (*_C4, "c4-train.en_6_text_document.bin", "md5:c781dc1a0eeb5a0322ad3b528e25027e"),
    (*_C4, "c4-train.en_6_text_document.idx", "md5:78b6262d170c7c9839253fdb4f944057"),
    (*_C4, "c4-validation-91205-samples.en_text_document.bin", "md5:85944abe86263a9a12f283b34af10a2b"),
    (*_C4, "c4-validation-91205-samples.en_text_document.idx", "md5:32d3afd6f81d320ca88c6675c27cf26f"),
    ("llama3.1-8b-tokenizer", "llama3_1_8b/", "tokenizer.json", "md5:c78db1e4b2b306efca2b39555ee69106"),
    (
        "scrolls-gov-report-8k",
        "scrolls_gov_report_8k/",
        "train-00000-of-00001.parquet",
        "md5:95915d6ec74f30323a348cf1d7531800",
    ),
    (
        "scrolls-gov-report-8k",
        "scrolls_gov_report_8k/",
        "validation-00000-of-00001.parquet",
        "md5:9081197184107757d172c71032c11725",
    ),
    (  # [R2I]
        "llama2-70b-fused-qkv-mlperf",
        "Llama2-70b-fused-qkv-mlperf/",
        "config.json",
        "md5:cdd7c20ebf8b2692b30ec126ac82deec",
    ),
    (
        "deepseekv3-checkpoint-bf16",
        "deepseekv3_checkpoint_bf16/",
        "config.json",
        "md5:ba5445553ae6416f28e61ed2ee5ef9ac",
    ),
    (  # [R2I]
        "deepseekv3-checkpoint-bf16-megatron-bridge",
        "deepseekv3_checkpoint_bf16_megatron_bridge/",
        "latest_checkpointed_iteration.txt",
        "md5:897316929176464ebc9ad085f31e7284",
    ),
    (  # [R2I]
        "c4-mixtral-8x22b-preprocessed",
        "mixtral_8x22b_preprocessed/",
        "c4-validation-91205-samples.en_text_document.bin",
        "md5:0d99b29ccbce1c57382c6f60242ef5d5",
    ),
    ("mixtral-8x22b-tokenizer", "mixtral_8x22b/", "tokenizer.json", "md5:622037c9c522b307424a22e55d1b0750"),  # [R2I]
    (  # [R2I]
        "llama3.1-405b-nemo-hf-checkpoint",
        "nemo-formatted-hf-checkpoint/405b/",
        "context/model.yaml",
        "md5:1b89ebc8e57f5141c7f7ca3fcf2d2165",
    ),
    # dlrm_dcnv2: mlcommons/training md5sums_preprocessed_criteo_click_logs_dataset.txt (dense, labels) and
    # md5sums_MLPerf_v2_synthetic_multi_hot_sparse_dataset.txt (multi-hot), equal to the R2 list's
    (*_DLRM, "day_0_dense.npy", "md5:427113b0c4d85a8fceaf793457302067"),
    (*_DLRM, "day_0_labels.npy", "md5:4db255ce4388893e7aa1dcf157077975"),
    (*_DLRM, "day_0_sparse_multi_hot.npz", "md5:9287c283b01087427df915257300bf36"),
    (*_DLRM, "day_23_dense.npy", "md5:cdf7af87cbc7e9b468c0be46b1767601"),
    (*_DLRM, "day_23_labels.npy", "md5:dd68f93301812026ed6f58dfb0757fa7"),
    (*_DLRM, "day_23_sparse_multi_hot.npz", "md5:c46b7e31ec6f2f8768fa60bdfc0f6e40"),
    (  # [R2I]; train_data.bin has an empty hash in that list
        "criteo-multihot-dlrm-dcnv2-hugectr",
        "preprocessed_criteo_click_logs/",
        "val_data.bin",
        "md5:c7ca591ad3fd2b09b75d99fa4fc210e2",
    ),
    (  # [R2I]
        "criteo-multihot-dlrm-dcnv2-hugectr",
        "preprocessed_criteo_click_logs/",
        "test_data.bin",
        "md5:cf636876d8baf0776287be23b31c2f14",
    ),
]

# (artifact, folder entry name): listing line count
LISTED_COUNTS: dict[tuple[str, str], int] = {
    ("flux-1-cc12m-disk", "cc12m_disk/"): 328,
    ("flux-1-coco", "coco/"): 30,
    ("flux-1-cc12m-preprocessed", "cc12m_preprocessed/"): 4764,  # [R2I]: 4,762 arrow + 2 json
    ("flux-1-coco-preprocessed", "coco_preprocessed/"): 131,  # [R2I]: 129 arrow + 2 json
    _C4: 6,  # [R2I]: the 4 quoted files + LICENSE.txt + NOTICE.txt
    ("c4-en-3.0.1", "en_json/3.0.1/"): 1032,
    ("llama3.1-8b-tokenizer", "llama3_1_8b/"): 16,
    ("scrolls-gov-report-8k", "scrolls_gov_report_8k/"): 2,  # [R2I]: the two quoted parquets
    ("llama2-70b-fused-qkv-mlperf", "Llama2-70b-fused-qkv-mlperf/"): 168,
    ("deepseekv3-checkpoint-bf16", "deepseekv3_checkpoint_bf16/"): 172,
    ("deepseekv3-checkpoint-bf16-megatron-bridge", "deepseekv3_checkpoint_bf16_megatron_bridge/"): 524,
    ("c4-mixtral-8x22b-preprocessed", "mixtral_8x22b_preprocessed/"): 22,
    ("mixtral-8x22b-tokenizer", "mixtral_8x22b/"): 5,  # [R2I]
    ("llama3.1-405b-nemo-hf-checkpoint", "nemo-formatted-hf-checkpoint/405b/"): 10,
    _DLRM: 75,  # [R2I]
    ("criteo-multihot-dlrm-dcnv2-hugectr", "preprocessed_criteo_click_logs/"): 5,  # [R2I]
}

_TRN = "mlc-r2://training.mlcommons-storage.org/metadata/"

# (artifact, folder entry name): its one URL
FOLDERS: dict[tuple[str, str], str] = {
    ("flux-1-cc12m-disk", "cc12m_disk/"): _TRN + "flux-1-cc12m-disk.uri",
    ("flux-1-coco", "coco/"): _TRN + "flux-1-coco.uri",
    ("flux-1-cc12m-preprocessed", "cc12m_preprocessed/"): _TRN + "flux-1-cc12m-preprocessed.uri",
    ("flux-1-coco-preprocessed", "coco_preprocessed/"): _TRN + "flux-1-coco-preprocessed.uri",
    _C4: _TRN + "llama-3-1-8b-preprocessed-c4-dataset.uri",
    ("c4-en-3.0.1", "en_json/3.0.1/"): _TRN + "c4-full-dataset-unzipped.uri",
    ("llama3.1-8b-tokenizer", "llama3_1_8b/"): _TRN + "llama-3-1-8b-tokenizer.uri",
    ("scrolls-gov-report-8k", "scrolls_gov_report_8k/"): (
        "mlc-r2://llama2.mlcommons-storage.org/metadata/scrolls-gov-report-8k.uri"
    ),
    ("llama2-70b-fused-qkv-mlperf", "Llama2-70b-fused-qkv-mlperf/"): (
        "mlc-r2://llama2.mlcommons-storage.org/metadata/llama-2-70b-fused-qkv-mlperf.uri"
    ),
    ("deepseekv3-checkpoint-bf16", "deepseekv3_checkpoint_bf16/"): _TRN + "deepseekv3_checkpoint_bf16.uri",
    ("deepseekv3-checkpoint-bf16-megatron-bridge", "deepseekv3_checkpoint_bf16_megatron_bridge/"): (
        _TRN + "deepseekv3_checkpoint_bf16_megatron_bridge.uri"
    ),
    ("r2e-gym-subset", "R2E-Gym-Subset/"): (
        "hf-dataset://R2E-Gym/R2E-Gym-Subset@e8b9fcbce43eaca0dc2c0d4798ee6f3e965f590a/**"
    ),
    ("qwen3.5-397b-a17b", "Qwen3.5-397B-A17B/"): (
        "hf://Qwen/Qwen3.5-397B-A17B@8472618112abcbd45acbcdc58436aff4233c23f7/**"
    ),
    ("c4-mixtral-8x22b-preprocessed", "mixtral_8x22b_preprocessed/"): (
        _TRN + "mixtral-8x22b-preprocessed-c4-dataset.uri"
    ),
    ("mixtral-8x22b-tokenizer", "mixtral_8x22b/"): _TRN + "mixtral-8x22b-tokenizer.uri",
    ("llama3.1-405b-nemo-hf-checkpoint", "nemo-formatted-hf-checkpoint/405b/"): (
        "mlc-r2://llama3-1.mlcommons-storage.org/metadata/llama3-1-405b-nemo-hf-checkpoint.uri"
    ),
    _DLRM: _TRN + "dlrmv2-preprocessed-criteo-click-logs-reference.uri",
    ("criteo-multihot-dlrm-dcnv2-hugectr", "preprocessed_criteo_click_logs/"): (
        _TRN + "dlrmv2-preprocessed-criteo-click-logs.uri"
    ),
}

# (artifact, file or folder name): approx bytes (decimal: "163 MB" -> 163_000_000)
APPROX_SIZES: dict[tuple[str, str], int] = {
    ("flux-1-cc12m-disk", "cc12m_disk/"): 163_000_000_000,
    ("flux-1-coco", "coco/"): 3_600_000_000,
    ("flux-1-cc12m-preprocessed", "cc12m_preprocessed/"): 2_400_000_000_000,
    ("flux-1-coco-preprocessed", "coco_preprocessed/"): 65_000_000_000,
    _C4: 86_000_000_000,
    ("c4-en-3.0.1", "en_json/3.0.1/"): 842_000_000_000,
    ("llama3.1-8b-tokenizer", "llama3_1_8b/"): 33_000_000_000,
    ("scrolls-gov-report-8k", "scrolls_gov_report_8k/"): 112_000_000,
    ("llama2-70b-fused-qkv-mlperf", "Llama2-70b-fused-qkv-mlperf/"): 276_000_000_000,
    ("deepseekv3-checkpoint-bf16", "deepseekv3_checkpoint_bf16/"): 1_400_000_000_000,
    ("deepseekv3-checkpoint-bf16-megatron-bridge", "deepseekv3_checkpoint_bf16_megatron_bridge/"): 1_400_000_000_000,
    ("c4-mixtral-8x22b-preprocessed", "mixtral_8x22b_preprocessed/"): 389_000_000_000,
    ("mixtral-8x22b-tokenizer", "mixtral_8x22b/"): 2_800_000,  # [R2I] manifest.json
    ("llama3.1-405b-nemo-hf-checkpoint", "nemo-formatted-hf-checkpoint/405b/"): 1_300_000_000_000,
    _DLRM: 4_000_000_000_000,  # [R2I] manifest.json "4.0TB"
    ("criteo-multihot-dlrm-dcnv2-hugectr", "preprocessed_criteo_click_logs/"): 4_000_000_000_000,  # [R2I]
}

# name people type -> entry name (checker names, aliases)
ALIASES: dict[str, str] = {
    # checker names (the README's spelling)
    "flux.1": "flux.1",
    "llama3.1_8b": "llama3.1_8b",
    "llama2_70b_lora": "llama2_70b_lora",
    "gpt_oss_20b": "gpt_oss_20b",
    "deepseekv3": "deepseekv3",
    "qwen35_397b_grpo": "qwen35_397b_grpo",
    "llama3.1_405b": "llama3.1_405b",
    "dlrm_dcnv2": "dlrm_dcnv2",
    # mlcommons/logging's submission_benchmark values
    "flux1": "flux.1",
    "llama31_8b": "llama3.1_8b",
    "deepseekv3_671b": "deepseekv3",
    "llama31_405b": "llama3.1_405b",
    # R2 metadata names of the artifacts
    "llama-3-1-8b-preprocessed-c4-dataset": "c4-llama3.1-8b-preprocessed",
    "llama-3-1-8b-tokenizer": "llama3.1-8b-tokenizer",
    "c4-full-dataset-unzipped": "c4-en-3.0.1",
    "c4-validation-dataset-zipped": "c4-validation-91205",
    "llama-2-70b-fused-qkv-mlperf": "llama2-70b-fused-qkv-mlperf",
    "deepseekv3_checkpoint_bf16": "deepseekv3-checkpoint-bf16",
    "deepseekv3_checkpoint_bf16_megatron_bridge": "deepseekv3-checkpoint-bf16-megatron-bridge",
    "mixtral-8x22b-preprocessed-c4-dataset": "c4-mixtral-8x22b-preprocessed",
    "llama3-1-405b-nemo-hf-checkpoint": "llama3.1-405b-nemo-hf-checkpoint",
    "dlrmv2-preprocessed-criteo-click-logs-reference": "criteo-multihot-dlrm-dcnv2",
    "dlrmv2-preprocessed-criteo-click-logs": "criteo-multihot-dlrm-dcnv2-hugectr",
    # other spellings
    "flux-1": "flux.1",
    "llama2-70b-lora": "llama2_70b_lora",
    "deepseek-v3": "deepseekv3",
    "qwen3.5-397b-grpo": "qwen35_397b_grpo",
    "dlrm-dcnv2": "dlrm_dcnv2",
    "scrolls-gov-report": "scrolls-gov-report-8k",
    "r2e-gym": "r2e-gym-subset",
    "qwen3.5-397b": "qwen3.5-397b-a17b",
}

# artifact: access level
ACCESS: dict[str, str] = {
    # training bucket: no licence notice (Access gating UNCERTAIN)
    "flux-1-cc12m-disk": "public",
    "flux-1-coco": "public",
    "flux-1-coco-2014-val-30k": "public",
    "flux-1-cc12m-preprocessed": "public",
    "flux-1-coco-preprocessed": "public",
    "flux-1-empty-encodings": "public",
    "c4-llama3.1-8b-preprocessed": "public",
    "c4-en-3.0.1": "public",
    "c4-validation-91205": "public",
    "llama3.1-8b-tokenizer": "public",
    "c4-mixtral-8x22b-preprocessed": "public",
    "mixtral-8x22b-tokenizer": "public",
    "criteo-multihot-dlrm-dcnv2": "public",
    "criteo-multihot-dlrm-dcnv2-hugectr": "public",
    # the deepseekv3 README: "exclusively by MLCommons Members" (training bucket, though)
    "deepseekv3-checkpoint-bf16": "members",
    "deepseekv3-checkpoint-bf16-megatron-bridge": "members",
    # llama2 / llama3-1 buckets: Members only
    "scrolls-gov-report-8k": "members",
    "llama2-70b-fused-qkv-mlperf": "members",
    "llama3.1-405b-nemo-hf-checkpoint": "members",
    # Hugging Face, not gated (the README: HF_TOKEN "if required")
    "r2e-gym-subset": "public",
    "qwen3.5-397b-a17b": "public",
}
