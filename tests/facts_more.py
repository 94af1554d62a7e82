"""more benchmarks: facts copied from ../shared/reference/mlperf-more-sources.md §14, §16, §18-22, §27, §28, §30.

whisper, wan-2.2-t2v-a14b, qwen3-vl-235b-a22b, dlrm-v3, yolo (yolo-95/-99), rgat and pointpainting. Rounds and
targets are the submission checker's (mlcommons/inference @ b66003e
``tools/submission/submission_checker/constants.py``, summarised in /tmp/facts/checker.md). Full listing paths
that the reference abbreviates (the Shopify parquet suffix, the Qwen3-VL / Wan path prefix, the Wan VAE file name,
IGBH's ``full/processed/``) are as the R2 md5 lists at mlcommons/r2-infra @ 5d77ea6 write them.
"""

from __future__ import annotations

ALL = ("v5.0", "v5.1", "v6.0", "v6.1")
V6 = ("v6.0", "v6.1")

# benchmark: (suite, rounds, dataset_size, performance_sample_count, accuracy_sample_count, checker_names)
BENCHMARKS: dict[str, tuple[str, tuple[str, ...], int | None, int | None, int | None, tuple[str, ...]]] = {
    "whisper": ("inference", ("v5.1", "v6.0", "v6.1"), 1633, 1633, None, ("whisper",)),
    # checker psc 50 (mlperf.conf says 248): the checker is followed
    "wan-2.2-t2v-a14b": ("inference", V6, 248, 50, 248, ("wan-2.2-t2v-a14b",)),
    # Interactive's 8000 is per scenario (the 8k subset), not a benchmark-wide count
    "qwen3-vl-235b-a22b": ("inference", V6, 48289, 48289, None, ("qwen3-vl-235b-a22b",)),
    "dlrm-v3": ("inference", V6, 349823, 349823, None, ("dlrm-v3",)),
    "yolo": ("inference", V6, 1525, 64, None, ("yolo-95", "yolo-99")),
    "rgat": ("inference", ALL, 788379, 788379, None, ("rgat",)),
    "pointpainting": ("inference", ("v5.0", "v5.1", "v6.0"), 39987, 1024, None, ("pointpainting",)),
}

# benchmark: {metric (or "metric@Scenario"): ([checker lower bound per ratio], checker upper bound or None)}
TARGETS: dict[str, dict[str, tuple[list[float], float | None]]] = {
    "whisper": {"accuracy": ([96.953571], None)},
    "wan-2.2-t2v-a14b": {"vbench_score": ([69.7752], None)},
    "qwen3-vl-235b-a22b": {
        "f1_hierarchical": ([0.782397], None),
        "f1_hierarchical@Interactive": ([0.779922], None),
    },
    "dlrm-v3": {
        "dlrm_ne": ([0.8660031], None),
        "dlrm_acc": ([0.6958135], None),
        "dlrm_auc": ([0.7858434], None),
    },
    "yolo": {"map": ([50.73, 52.866], None)},
    # as the checker writes it (a fraction); the printout is a percent (open question 4)
    "rgat": {"node_accuracy": ([0.721314], None)},
    "pointpainting": {"waymo_map": ([0.5419575], None)},
}

# training benchmark: [(metric, direction, target)]
QUALITY: dict[str, list[tuple[str, str, float]]] = {}

# (artifact, file, "alg:hex") for each file entry with a published checksum
CHECKSUMS: list[tuple[str, str, str]] = [
    ("wan-t2v-vbench-prompts", "vbench_prompts.txt", "md5:42d1ccd079557678f1404d6b53bbdc91"),
    ("wan-t2v-vbench-prompts", "calibration_prompts.txt", "md5:06c9a84bb7417e6b149450e3c65e2de9"),
    ("wan-t2v-vbench-prompts", "fixed_latent.pt", "md5:ac9e57b4b57cd270bf94a42430ff40df"),
    ("wan-t2v-vbench-prompts", "LICENSE.txt", "md5:f32a6958e785b2455a85342f62cada0f"),
    ("rgat-igbh", "RGAT.pt", "md5:81225f862db03e6042f68b088b84face"),
    ("igbh-full", "calibration.txt", "md5:a9122f99edcc2bc2e7731507623e0df8"),
]

# (artifact, folder entry name, path in folder, "md5:hex")
PINS: list[tuple[str, str, str, str]] = [
    ("whisper-librispeech-dev-all", "dataset/", "dev-all-repack.json", "md5:898743fc5b2522db2bc39e9ceb4a4da6"),
    ("whisper-librispeech-dev-all", "dataset/", "dev-all.json", "md5:efd2a08d2596cb2d541e8c962844743e"),
    (
        "whisper-librispeech-dev-all",
        "dataset/",
        "LibriSpeech/dev-clean.tar.gz",
        "md5:42e2234ba48799c1f50f24a7926300a1",
    ),
    (
        "whisper-librispeech-dev-all",
        "dataset/",
        "LibriSpeech/dev-other.tar.gz",
        "md5:c8d0bcc9cca99d4f8b62fcc847357931",
    ),
    ("whisper-large-v3", "model/", "model.safetensors", "md5:5d75f35c812a122e9dc1a15166af56bc"),
    ("whisper-large-v3", "model/", "config.json", "md5:6c8a76d15a53a19d55a660588ff5522f"),
    ("whisper-large-v3", "model/", "tokenizer.json", "md5:e158cfb6a7c239ee9d25c26a307e0216"),
    (
        "wan2.2-t2v-a14b-diffusers",
        "t2v_model/",
        "Wan2.2-T2V-A14B-Diffusers/model_index.json",
        "md5:abbdaa1bb8164e3ee59c93ca6b07b89b",
    ),
    (
        "wan2.2-t2v-a14b-diffusers",
        "t2v_model/",
        "Wan2.2-T2V-A14B-Diffusers/vae/diffusion_pytorch_model.safetensors",
        "md5:3f80444947443d8f36c0ed2497c20c8d",
    ),
    ("vbench-weights", "t2v_vbench/", "clip_model/ViT-B-32.pt", "md5:3ba34e387b24dfe590eeb1ae6a8a122b"),
    (
        "vbench-weights",
        "t2v_vbench/",
        "dino_model/dino_vitbase16_pretrain.pth",
        "md5:552daf80332dbde16bba2a52c6508b77",
    ),
    (
        "shopify-product-catalogue",
        "vlm_data/",
        "shopify_product_catalog/data/train-00000-of-00015.parquet",
        "md5:2ea4d3847dc1e0a1f14b0d204a802920",
    ),
    (
        "shopify-product-catalogue",
        "vlm_data/",
        "shopify_product_catalog/data/test-00000-of-00005.parquet",
        "md5:59896a977e605f624a871d75e3b0a2f2",
    ),
    (
        "shopify-product-catalogue-8k",
        "Shopify-product-catalogue-8k/",
        "data/train-00002-of-00004.parquet",
        "md5:1d689ad80ddc054366a256c57de4e2d3",
    ),
    (
        "shopify-product-catalogue-8k",
        "Shopify-product-catalogue-8k/",
        "data/train-00003-of-00004.parquet",
        "md5:eb27b7edf0fc7206594746ef4a5cebf2",
    ),
    (
        "qwen3-vl-235b-a22b-instruct",
        "vlm_model/",
        "Qwen3-VL-235B-A22B-Instruct/model-00001-of-00096.safetensors",
        "md5:78aff0f815fc87b66c7004cc56beb8bc",
    ),
    (
        "qwen3-vl-235b-a22b-instruct",
        "vlm_model/",
        "Qwen3-VL-235B-A22B-Instruct/model.safetensors.index.json",
        "md5:feebdff62855fd8ec0aa76641d8f14c9",
    ),
    (
        "qwen3-vl-235b-a22b-instruct",
        "vlm_model/",
        "Qwen3-VL-235B-A22B-Instruct/config.json",
        "md5:3b4c03e9cd15644dcf26a8fa5d72e440",
    ),
    ("dlrm-v3-sampled-streaming", "dlrmv3_dataset/", "sampled_data/0.csv", "md5:e521c7ba9cc8ea1d82f87ed87f310947"),
    (
        "dlrm-v3-sampled-streaming",
        "dlrmv3_dataset/",
        "sampled_data/offset.csv",
        "md5:7c4ec04535a00f3e3b62a38481bc1ac2",
    ),
    (
        "dlrm-v3-sampled-streaming",
        "dlrmv3_dataset/",
        "sampled_data/requests_per_ts.csv",
        "md5:080d4cd504947f4e9868eb387a816d9c",
    ),
    (
        "dlrm-v3-sampled-streaming",
        "dlrmv3_dataset/",
        "sampled_data/requests_per_ts_offset.csv",
        "md5:442b4b83fecdcdcf534ec14d7adf3baf",
    ),
    (
        "dlrm-v3-sampled-streaming",
        "dlrmv3_dataset/",
        "sampled_data/users_cumsum_per_ts.csv",
        "md5:255b4df92c453f70aba02218642443b0",
    ),
    ("dlrm-v3-checkpoint", "dlrmv3_trained_checkpoint/", "non_sparse.ckpt", "md5:e5f8144f673d6e45bc3b596dc0a2977b"),
    ("dlrm-v3-checkpoint", "dlrmv3_trained_checkpoint/", "sparse/.metadata", "md5:234b152e800ee8b36c86320dde1227ee"),
    (
        "coco2017-safe",
        "coco_safe/",
        "val2017_safe/annotations/instances_val2017.json",
        "md5:d4f75ac5dfaf9822bc80e20d1d4b5bb5",
    ),
    ("coco2017-safe", "coco_safe/", "LICENSE.txt", "md5:f1a61ab5a0fee6944db3fea907cc0825"),
    ("yolo11l", "yolo_model/", "yolo11l.pt", "md5:92001a3126d6ebf548c1762038698214"),
    ("yolo11l", "yolo_model/", "LICENSE.txt", "md5:221688c884060e525f698133fda712fc"),
    ("igbh-full", "igbh/", "full/processed/paper/node_feat.npy", "md5:71058b9ac8011bafa1c5467504452d13"),
    ("igbh-full", "igbh/", "full/processed/paper/node_label_2K.npy", "md5:6eccab9a14f92f42be5b367c39002031"),
    (
        "igbh-full",
        "igbh/",
        "full/processed/paper__cites__paper/edge_index.npy",
        "md5:f4897f53636c04a9c66f6063ec635c16",
    ),
    ("pointpainting-waymo", "model/", "pp_ep36.pth", "md5:405fbe483d350a139c0ef753985bfa33"),
    ("pointpainting-waymo", "model/", "pp.onnx", "md5:512ebfb85b334160e3a770ee7703ab8f"),
    (
        "pointpainting-waymo",
        "model/",
        "best_deeplabv3plus_resnet50_waymo_os16.pth",
        "md5:f6b9c180cb29e85d1467b96d86d36b2c",
    ),
    ("pointpainting-waymo", "model/", "deeplabv3+.onnx", "md5:493bdb1852750a0fc9eb27fb113d0a92"),
]

# (artifact, folder entry name): listing line count
LISTED_COUNTS: dict[tuple[str, str], int] = {
    ("whisper-librispeech-dev-all", "dataset/"): 18719,
    ("whisper-large-v3", "model/"): 22,
    ("wan2.2-t2v-a14b-diffusers", "t2v_model/"): 49,
    ("vbench-weights", "t2v_vbench/"): 14,
    ("shopify-product-catalogue", "vlm_data/"): 22,
    ("shopify-product-catalogue-8k", "Shopify-product-catalogue-8k/"): 5,
    ("qwen3-vl-235b-a22b-instruct", "vlm_model/"): 108,
    ("dlrm-v3-sampled-streaming", "dlrmv3_dataset/"): 6,
    ("dlrm-v3-checkpoint", "dlrmv3_trained_checkpoint/"): 11,
    ("coco2017-safe", "coco_safe/"): 1527,
    ("yolo11l", "yolo_model/"): 2,
    ("igbh-full", "igbh/"): 22,
    ("waymo-kitti-format", "kitti_format/"): 37,
    ("waymo-kitti-calibration", "testing/"): 8,
}

R2 = "mlc-r2://inference.mlcommons-storage.org/metadata/"

# (artifact, folder entry name): its one URL
FOLDERS: dict[tuple[str, str], str] = {
    ("whisper-librispeech-dev-all", "dataset/"): R2 + "whisper-dataset.uri",
    ("whisper-large-v3", "model/"): R2 + "whisper-model.uri",
    ("whisper-large-v3-hub", "whisper-large-v3/"): (
        "hf://openai/whisper-large-v3@06f233fe06e710322aca913c1bc4249a0d71fce1/*"
    ),
    ("wan2.2-t2v-a14b-diffusers", "t2v_model/"): R2 + "T2V-model.uri",
    ("wan2.2-t2v-a14b-diffusers-hub", "Wan2.2-T2V-A14B-Diffusers/"): (
        "hf://Wan-AI/Wan2.2-T2V-A14B-Diffusers@5be7df9619b54f4e2667b2755bc6a756675b5cd7/**"
    ),
    ("vbench-weights", "t2v_vbench/"): R2 + "T2V-vbench.uri",
    ("shopify-product-catalogue", "vlm_data/"): R2 + "VLM-data.uri",
    ("shopify-product-catalogue-hub", "product-catalogue/"): (
        "hf-dataset://Shopify/product-catalogue@d5c517c509f5aca99053897ef1de797d6d7e5aa5/**"
    ),
    ("shopify-product-catalogue-8k", "Shopify-product-catalogue-8k/"): R2 + "Shopify-product-catalogue-8k.uri",
    ("shopify-product-catalogue-8k-hub", "Shopify-product-catalogue-8k/"): (
        "hf-dataset://nvidia/Shopify-product-catalogue-8k@2bc8c6c4b6ebd27b880b0cba519cb45d09867045/**"
    ),
    ("qwen3-vl-235b-a22b-instruct", "vlm_model/"): R2 + "VLM-model.uri",
    ("qwen3-vl-235b-a22b-instruct-hub", "Qwen3-VL-235B-A22B-Instruct/"): (
        "hf://Qwen/Qwen3-VL-235B-A22B-Instruct@710c13861be6c466e66de3f484069440b8f31389/*"
    ),
    ("dlrm-v3-sampled-streaming", "dlrmv3_dataset/"): R2 + "dlrm-v3-dataset.uri",
    ("dlrm-v3-checkpoint", "dlrmv3_trained_checkpoint/"): R2 + "dlrm-v3-checkpoint.uri",
    ("coco2017-safe", "coco_safe/"): R2 + "YOLO-COCO2017-dataset.uri",
    ("yolo11l", "yolo_model/"): "mlc-r2://yolo.mlcommons-storage.org/metadata/YOLO-model.uri",
    ("igbh-full", "igbh/"): "mlc-r2://training.mlcommons-storage.org/metadata/gnn-igbh-dataset-full.uri",
    ("waymo-kitti-format", "kitti_format/"): "mlc-r2://waymo.mlcommons-storage.org/metadata/dataset.uri",
    ("waymo-kitti-calibration", "testing/"): "mlc-r2://waymo.mlcommons-storage.org/metadata/calibration-dataset.uri",
    ("pointpainting-waymo", "model/"): "mlc-r2://waymo.mlcommons-storage.org/metadata/model.uri",
}

# (artifact, file or folder name): approx bytes (decimal: "163 MB" -> 163_000_000)
APPROX_SIZES: dict[tuple[str, str], int] = {
    ("whisper-librispeech-dev-all", "dataset/"): 4_600_000_000,
    ("whisper-large-v3", "model/"): 25_000_000_000,
    ("whisper-large-v3-hub", "whisper-large-v3/"): 25_000_000_000,  # "whole HF repo incl. .bin/flax"
    ("wan2.2-t2v-a14b-diffusers", "t2v_model/"): 127_000_000_000,
    ("vbench-weights", "t2v_vbench/"): 5_600_000_000,
    ("shopify-product-catalogue", "vlm_data/"): 9_500_000_000,
    ("shopify-product-catalogue-8k", "Shopify-product-catalogue-8k/"): 1_600_000_000,
    ("qwen3-vl-235b-a22b-instruct", "vlm_model/"): 472_000_000_000,
    ("dlrm-v3-sampled-streaming", "dlrmv3_dataset/"): 31_000_000_000,
    ("dlrm-v3-checkpoint", "dlrmv3_trained_checkpoint/"): 1_100_000_000_000,
    ("coco2017-safe", "coco_safe/"): 262_000_000,
    ("yolo11l", "yolo_model/"): 52_000_000,
    ("rgat-igbh", "RGAT.pt"): 53_000_000,
    ("igbh-full", "igbh/"): 2_400_000_000_000,  # the reference gives "~2.2-2.4 TB"; the R2 manifest 2.4TB
    ("waymo-kitti-format", "kitti_format/"): 469_000_000_000,
    ("waymo-kitti-calibration", "testing/"): 121_000_000_000,
    ("pointpainting-waymo", "model/"): 648_000_000,
}

# name people type -> entry name (checker names, aliases)
ALIASES: dict[str, str] = {
    # checker names
    "whisper": "whisper",
    "wan-2.2-t2v-a14b": "wan-2.2-t2v-a14b",
    "qwen3-vl-235b-a22b": "qwen3-vl-235b-a22b",
    "dlrm-v3": "dlrm-v3",
    "yolo-95": "yolo",
    "yolo-99": "yolo",
    "rgat": "rgat",
    "pointpainting": "pointpainting",
    # benchmark aliases
    "speech2text": "whisper",
    "whisper-large-v3-librispeech": "whisper",
    "wan-2.2": "wan-2.2-t2v-a14b",
    "wan2.2": "wan-2.2-t2v-a14b",
    "text-to-video": "wan-2.2-t2v-a14b",
    "qwen3-vl": "qwen3-vl-235b-a22b",
    "qwen3-vl-235b": "qwen3-vl-235b-a22b",
    "dlrmv3": "dlrm-v3",
    "dlrm-hstu": "dlrm-v3",
    "yolo11": "yolo",
    "yolov11": "yolo",
    "r-gat": "rgat",
    "rgat-igbh-full": "rgat",
    "point-painting": "pointpainting",
    # artifact aliases
    "librispeech-dev-all": "whisper-librispeech-dev-all",
    "whisper-dataset": "whisper-librispeech-dev-all",
    "whisper-model": "whisper-large-v3",
    "whisper-large-v3-checkpoint": "whisper-large-v3",
    "whisper-large-v3-hf": "whisper-large-v3-hub",
    "t2v-data": "wan-t2v-vbench-prompts",
    "vbench-prompts": "wan-t2v-vbench-prompts",
    "wan2.2-t2v-a14b": "wan2.2-t2v-a14b-diffusers",
    "wan-2.2-t2v-model": "wan2.2-t2v-a14b-diffusers",
    "wan2.2-t2v-a14b-hf": "wan2.2-t2v-a14b-diffusers-hub",
    "t2v-vbench": "vbench-weights",
    "vbench-models": "vbench-weights",
    "shopify-catalogue": "shopify-product-catalogue",
    "vlm-data": "shopify-product-catalogue",
    "shopify-catalogue-hf": "shopify-product-catalogue-hub",
    "shopify-catalogue-8k": "shopify-product-catalogue-8k",
    "shopify-catalogue-8k-hf": "shopify-product-catalogue-8k-hub",
    "qwen3-vl-235b-checkpoint": "qwen3-vl-235b-a22b-instruct",
    "vlm-model": "qwen3-vl-235b-a22b-instruct",
    "qwen3-vl-235b-a22b-hf": "qwen3-vl-235b-a22b-instruct-hub",
    "dlrm-v3-dataset": "dlrm-v3-sampled-streaming",
    "sampled-streaming-100b": "dlrm-v3-sampled-streaming",
    "dlrm-v3-model": "dlrm-v3-checkpoint",
    "dlrm-v3-trained-checkpoint": "dlrm-v3-checkpoint",
    "coco-safe": "coco2017-safe",
    "coco2017-val-safe": "coco2017-safe",
    "yolov11-l": "yolo11l",
    "yolo11l-pt": "yolo11l",
    "igbh": "igbh-full",
    "igbh-full-processed": "igbh-full",
    "rgat-model": "rgat-igbh",
    "rgat-checkpoint": "rgat-igbh",
    "waymo": "waymo-kitti-format",
    "waymo-preprocessed": "waymo-kitti-format",
    "waymo-calibration": "waymo-kitti-calibration",
    "pointpainting-model": "pointpainting-waymo",
    "pointpillars-deeplabv3plus": "pointpainting-waymo",
}

# artifact: access level
ACCESS: dict[str, str] = {
    "whisper-librispeech-dev-all": "public",
    "whisper-large-v3": "public",
    "whisper-large-v3-hub": "public",
    "wan-t2v-vbench-prompts": "public",
    "wan2.2-t2v-a14b-diffusers": "public",
    "wan2.2-t2v-a14b-diffusers-hub": "public",
    "vbench-weights": "public",
    "shopify-product-catalogue": "public",
    "shopify-product-catalogue-hub": "public",
    "shopify-product-catalogue-8k": "public",
    "shopify-product-catalogue-8k-hub": "public",
    "qwen3-vl-235b-a22b-instruct": "public",
    "qwen3-vl-235b-a22b-instruct-hub": "public",
    "dlrm-v3-sampled-streaming": "public",
    "dlrm-v3-checkpoint": "public",
    "coco2017-safe": "public",
    "yolo11l": "members",  # the yolo bucket's notice: Members only (Access gating UNCERTAIN)
    "rgat-igbh": "public",
    "igbh-full": "public",
    "waymo-kitti-format": "members",
    "waymo-kitti-calibration": "members",
    "pointpainting-waymo": "members",
}
