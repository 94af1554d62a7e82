"""The built-in MLPerf catalogue (``manifests/*.toml``) against the facts it was written from.

Every table below is copied from ``../shared/reference/mlperf-sources.md`` (checksums, sizes,
checker targets, dataset sizes) so that a typo in a manifest, or a fact silently changed
there, fails here. Fast and offline: nothing is downloaded. The isolation fixture points
PROVISION_MANIFESTS at an empty folder, so only the built-in manifests are loaded.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import catalogue_facts
import pytest
from typer.testing import CliRunner

from provision import api
from provision.cli.app import app
from provision.config import Settings, builtin_manifest_dir
from provision.errors import UnknownNameError
from provision.manifest.model import Artifact, Benchmark, Catalog

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

runner = CliRunner()

INF = "https://raw.githubusercontent.com/mlcommons/inference/b66003e10e2db4b8c36a448b0545ec90fcc6e9e9/"


@pytest.fixture
def catalog() -> Catalog:
    return api.load(Settings.from_env())


def _raw_benchmarks() -> list[dict[str, Any]]:
    """The [[benchmark]] tables as written (to tell an explicit key from a default)."""
    out: list[dict[str, Any]] = []
    for path in sorted(builtin_manifest_dir().glob("*.toml")):
        out.extend(tomllib.loads(path.read_text(encoding="utf-8")).get("benchmark", []))
    return out


def _all_files(catalog: Catalog) -> list[tuple[Artifact, Any]]:
    return [(art, f) for art in catalog.artifacts.values() for f in art.files]


# ---------------------------------------------------------------------------------------
# lint


def test_builtin_manifests_lint_clean() -> None:
    settings = Settings.from_env()
    assert settings.manifest_dirs and not any(settings.manifest_dirs[0].iterdir())  # only built-ins
    assert api.lint(settings=settings) == []


def test_one_manifest_per_benchmark_family() -> None:
    names = {p.stem for p in builtin_manifest_dir().glob("*.toml")}
    assert names >= {
        "resnet50",
        "retinanet",
        "bert",
        "3d-unet",
        "rnnt",
        "dlrm-v2",
        "gpt-j",
        "llama2-70b",
        "stable-diffusion-xl",
        "llama3.1-8b",
    }


# ---------------------------------------------------------------------------------------
# URLs: https, or a reason on record

# Plain-http URLs kept on purpose: the host serves nothing else, and every byte is verified
# against the published md5 before use, so a tampered or truncated answer is refused.
HTTP_ALLOWED = {
    "http://cKnowledge.org/ai/data/ILSVRC2012_img_val_500.tar": (
        "MLC's primary mirror of the 500-image subset; http only; md5-checked; the https Dropbox copy is tried first"
    ),
    "http://dl.caffe.berkeleyvision.org/caffe_ilsvrc12.tar.gz": (
        "the original Berkeley caffe_ilsvrc12 archive (its own md5); the host serves http only"
    ),
    "http://www.openslr.org/resources/12/dev-clean.tar.gz": "openslr serves LibriSpeech over http only; md5-checked",
    "http://www.openslr.org/resources/12/train-clean-100.tar.gz": "openslr serves LibriSpeech over http only",
}
# Schemes handled by their own sources (credentials, listings, a person's download).
OTHER_SCHEMES_OK = ("manual:", "hf://", "hf-dataset://", "mlc-r2://", "s3://")


def test_every_url_is_https_or_allowed(catalog: Catalog) -> None:
    bad = []
    for art, f in _all_files(catalog):
        for url in f.urls:
            if url.startswith("https://") or url.startswith(OTHER_SCHEMES_OK) or url in HTTP_ALLOWED:
                continue
            bad.append(f"{art.name}/{f.name}: {url}")
    assert bad == []


def test_http_allow_list_is_current_and_checksummed(catalog: Catalog) -> None:
    used = {url: (art, f) for art, f in _all_files(catalog) for url in f.urls if url.startswith("http://")}
    assert set(used) == set(HTTP_ALLOWED)  # no stale entries, nothing unlisted
    for url, (art, f) in used.items():
        assert f.checksum.known, f"{art.name}/{f.name}: an http URL needs a published checksum ({url})"
        assert "http" in art.notes, f"{art.name}: notes should say why plain http is acceptable"


# ---------------------------------------------------------------------------------------
# benchmarks: status, sizes, models, metrics

# benchmark: (status, dataset_size, performance_sample_count), from section 12 (and mlperf.conf)
BENCHMARKS = {
    "resnet50": ("current", 50000, 1024),
    "retinanet": ("retired", 24781, 64),
    "bert": ("current", 10833, 10833),
    "3d-unet": ("current", 43, 43),
    "rnnt": ("retired", 2513, 2513),
    "dlrm-v2": ("retired", 330067, 204800),
    "gpt-j": ("retired", 13368, 13368),
    "llama2-70b": ("current", 24576, 24576),
    "stable-diffusion-xl": ("current", 5000, 5000),
    "llama3.1-8b": ("current", 13368, 13368),
    "llama3.1-8b-edge": ("current", 5000, 5000),
}


def test_benchmark_set(catalog: Catalog) -> None:
    assert set(BENCHMARKS) <= set(catalog.benchmarks)  # the rest: tests/test_catalogue_suite.py


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_benchmark_status_and_sizes(catalog: Catalog, name: str) -> None:
    b = catalog.benchmarks[name]
    status, size, perf = BENCHMARKS[name]
    assert (b.status, b.dataset_size, b.performance_sample_count) == (status, size, perf)
    assert b.metrics, f"{name}: no accuracy metric"
    assert b.preprocess is not None and b.preprocess.recipe
    assert catalog.artifacts[b.dataset].kind == "dataset"
    if b.status == "current":
        assert b.models, f"{name}: a current benchmark needs a model"
    for m in b.models:
        assert catalog.artifacts[m].kind == "model"


def test_every_benchmark_states_its_status_and_sizes_explicitly() -> None:
    tables = [t for t in _raw_benchmarks() if t["name"] in BENCHMARKS]
    assert {t["name"] for t in tables} == set(BENCHMARKS)
    for t in tables:
        missing = {"rounds", "dataset_size", "performance_sample_count", "accuracy", "dataset"} - set(t)
        assert not missing, f"{t['name']}: missing {sorted(missing)}"


def test_resnet50_shape(catalog: Catalog) -> None:
    b = catalog.benchmarks["resnet50"]
    assert b.dataset == "imagenet-val"
    assert b.models[0] == "resnet50-onnx"  # the default: ONNX opset 11
    assert set(b.models) == {"resnet50-onnx", "resnet50-onnx-opset8", "resnet50-pytorch", "resnet50-pytorch-int8"}
    assert dict(b.subsets) == {"500": "imagenet-val-500"}
    assert b.with_subset("500").dataset == "imagenet-val-500"
    assert b.labels is not None and b.labels.artifact == "imagenet-aux"
    imagenet = catalog.artifacts["imagenet-val"]
    assert imagenet.access == "registration"
    assert all(u.startswith("manual:") for u in imagenet.files[0].urls)
    params = dict(b.preprocess.params) if b.preprocess else {}
    assert b.preprocess is not None and b.preprocess.recipe == "imagenet-resnet50"
    assert params["means"] == [123.68, 116.78, 103.94]
    assert (params["resize_short_side"], params["crop"], params["layout"]) == (256, 224, "NCHW")


def test_llm_checkpoints_members_and_gated(catalog: Catalog) -> None:
    assert catalog.artifacts["llama2-70b-chat-hf"].access == "members"
    for r2, hub in (("llama3.1-8b-instruct", "llama3.1-8b-instruct-hub"),):
        assert catalog.artifacts[r2].access == "members"
        assert catalog.artifacts[r2].files[0].urls[0].startswith("mlc-r2://")
        assert catalog.artifacts[hub].access == "gated"
        assert catalog.artifacts[hub].files[0].urls[0].startswith("hf://")
    (f,) = catalog.artifacts["llama3.1-8b-instruct-hub"].files
    assert "@be673f326cab4cd22ccfef76109faf68e41aa5f1/" in f.urls[0]  # the revision MLPerf pins


# ---------------------------------------------------------------------------------------
# checksums and sizes copied from the reference

# (artifact, file, checksum) exactly as the reference states them
CHECKSUMS = [
    # resnet50 (section 2)
    ("imagenet-val", "ILSVRC2012_img_val.tar", "md5:29b22e2961454d5413ddabcf34fc5622"),
    ("imagenet-val-500", "ILSVRC2012_img_val_500.tar", "md5:8627befdd8c2bcf305729020e9db354e"),
    ("imagenet-aux", "caffe_ilsvrc12.tar.gz", "md5:ee346d67141e476df9c1a3f813552503"),
    ("imagenet-aux-berkeley", "caffe_ilsvrc12.tar.gz", "md5:f963098ea0e785a968ca1eb634003a90"),
    (
        "imagenet-calibration",
        "cal_image_list_option_1.txt",
        "sha256:7662247d1d9407d6cb564268f64c5a4a6cf9f1a34fd2e6cdc3b94dcf278b3dc9",
    ),
    (
        "imagenet-calibration",
        "cal_image_list_option_2.txt",
        "sha256:11ce810122226ec0ca8c56e47ee356e3c1185f3c6ce8262edb50c3c1d0a9705e",
    ),
    ("resnet50-onnx", "resnet50_v1.onnx", "md5:f6a4da60cd5f084d97efc2c1ddb10beb"),
    ("resnet50-onnx-opset8", "resnet50_v1.onnx", "md5:a638cf028b5870da29e09ccc2f7182e7"),
    ("resnet50-pytorch", "resnet50-19c8e357.pth", "md5:9e9c86b324d80e65229fab49b8d9a8e8"),
    ("resnet50-pytorch-int8", "resnet50_INT8bit_quantized.pt", "md5:6893ea9769b0afce65bb0ddf002f4438"),
    ("resnet50-tf", "resnet50_v1.pb", "md5:7b94a2da05dd30f6c0af23a46bc08886"),
    # retinanet (section 3)
    ("openimages-mlperf", "openimages-mlperf_annotations_2.1.json.zip", "md5:817fd8da3aeeb0575f1e2d2926b15e68"),
    (
        "openimages-mlperf",
        "openimages_cal_images_list.txt",
        "sha256:f5c20ee508bf9449ac26e4db6c6035760e31385a3deefb1856ad47dbe5b0d7be",
    ),
    ("retinanet-onnx", "resnext50_32x4d_fpn.onnx", "md5:4544f4e56e0a4684215831cc937ea45c"),
    ("retinanet-pytorch", "resnext50_32x4d_fpn.pth", "md5:a55f6bec3464f605ce8d686da8ac1533"),
    ("retinanet-training-weights", "retinanet_model_10.zip", "md5:2037c152a6be18e371ebec654314f7e0"),
    # bert (section 4)
    ("squad-v1.1", "dev-v1.1.json", "md5:3e85deb501d4e538b6bc56f786231552"),
    ("bert-onnx", "vocab.txt", "md5:64800d5d8528ce344256daf115d4965e"),
    ("bert-onnx", "model.onnx", "md5:819b25b19cd8e59080c10892689750ca"),
    ("bert-onnx-int8", "bert_large_v1_1_fake_quant.onnx", "md5:45f88ffb2915362242703c85c38ec2d4"),
    ("bert-pytorch", "model.pytorch", "md5:00fbcbfaebfa20d87ac9885120a6e9b4"),
    ("bert-pytorch-int8", "pytorch_model.bin", "md5:0734c580cb53b4b56a3f400771ffcb7c"),
    ("bert-tf", "model.pb", "md5:dd72de12e8226f25f0128a1a864b97ad"),
    ("bert-tf-checkpoint", "model.ckpt-5474.data-00000-of-00001", "md5:3089b27c559906a868878741d992ade7"),
    ("bert-tf-checkpoint", "model.ckpt-5474.index", "md5:d23d61572d9404da4dac3363b5bc735b"),
    ("bert-tf-checkpoint", "model.ckpt-5474.meta", "md5:83e11e57eea14c9e9a246af74af40d66"),
    ("squad-v1.1-calibration", "bert_calibration_features.txt", "md5:81fa69eb66f72831edccb624133bb4b3"),
    ("squad-v1.1-calibration", "bert_calibration_qas_ids.txt", "md5:1e44e78ac31349a6c5a688f629449a74"),
    # 3d-unet (section 5)
    ("kits19-meta", "meta/inference_cases.json", "md5:273144eabe68de46618ca5ac982f7e1e"),
    ("kits19-meta", "meta/calibration_cases.json", "md5:f37e8cd07d3760bfc982e8d008bac9ae"),
    ("kits19-meta", "meta/checksum_inference.json", "md5:75b54b8be0462a46ffe2605ff11693ec"),
    ("kits19-meta", "meta/checksum_calibration.json", "md5:1e12b0c2965f071a1b6e6e6b1d9137ef"),
    ("kits19-meta", "calibration_cases.txt", "md5:b552bb5e2267ce79060551646bbccbae"),
    ("3d-unet-onnx", "3dunet_kits19_128x128x128_dynbatch.onnx", "md5:82f0618fde78f9839e7c712274019b4a"),
    ("3d-unet-pytorch", "3dunet_kits19_pytorch.ptc", "md5:2251109371f408c9f10a4320ffdcaef8"),
    ("3d-unet-pytorch-checkpoint", "3dunet_kits19_pytorch_checkpoint.pth", "md5:09c696e3ec13d83c628498bcd831eb5b"),
    ("3d-unet-tf", "3dunet_kits19_128x128x128.tf.zip", "md5:9497108bd0504ae8f85a764a807b76a9"),
    # rnnt (section 6)
    ("librispeech-dev-clean", "dev-clean.tar.gz", "md5:42e2234ba48799c1f50f24a7926300a1"),
    ("librispeech-dev-clean", "calibration_files.txt", "md5:86f87b989fe7dafe815c07beb8f6aeef"),
    ("librispeech-train-clean-100", "train-clean-100.tar.gz", "md5:2a93770f6d5c6c964bc36631d331a522"),
    # dlrm-v2 (section 7)
    ("criteo-day23-multihot", "day_23_dense.npy", "md5:cdf7af87cbc7e9b468c0be46b1767601"),
    ("criteo-day23-multihot", "day_23_labels.npy", "md5:dd68f93301812026ed6f58dfb0757fa7"),
    ("criteo-day23-multihot", "day_23_sparse_multi_hot.npz", "md5:c46b7e31ec6f2f8768fa60bdfc0f6e40"),
    ("criteo-day23-multihot", "README.txt", "md5:ccd188d780eb94fb74e295726d2c0ec4"),
    ("criteo-day23-multihot", "dlrm_trace_of_aggregated_samples.txt", "md5:3db90209564316f2506c99cc994ad0b2"),
    # gpt-j (section 8)
    ("cnn-dailymail-gptj", "calibration-list.txt", "md5:3bfd46979f1e7f9efd09d2b20b878344"),
    # llama2-70b (section 9)
    (
        "open-orca-llama2",
        "open_orca_gpt4_tokenized_llama.sampled_24576.pkl.gz",
        "md5:c247a315b9328365f66d2c2585b35cd4",
    ),
    (
        "open-orca-llama2",
        "open_orca_gpt4_tokenized_llama.calibration_1000.pkl.gz",
        "md5:d04917e08afb675640c9d7a5bb9b5e2a",
    ),
    ("open-orca-llama2", "reference_impl_gpu_bs32_fp32_output.pkl.gz", "md5:65f4cfbdaf30dd1938cd4aea58e884a6"),
    ("open-orca-llama2", "mlperf_log_accuracy.json", "md5:d5e9018235b2783a4c6bdad473e3ca52"),
    # stable-diffusion-xl (section 10)
    (
        "coco2014-captions",
        "captions/captions_source.tsv",
        "sha256:2eeb95637b30fe5af26dd644bafa7affe4e5472ad0bda32d0feb1bd261280d5e",
    ),
    ("coco2014-captions", "latents/latents.pt", "md5:58f4165e574452b9ce6a1a32c2fb3908"),
    (
        "coco2014-captions",
        "latents/latents.npy",
        "sha256:78cac10a20ea287f88b5851382e21504a755338d3f8ba8ffd2bcf9e9bf2404f9",
    ),
    ("coco2014-captions", "sample_ids.txt", "md5:68f87f0c158c75f6a05c652ea724c43d"),
    ("coco2014-captions", "coco_cal_captions_list.txt", "md5:35061c423b4219445777cd6db456d0dd"),
    (
        "coco2014-annotations",
        "annotations_trainval2014.zip",
        "sha256:031296bbc80c45a1d1f76bf9a90ead27e94e99ec629208449507a4917a3bf009",
    ),
    # llama3.1-8b (section 11)
    ("cnn-dailymail-llama3.1-8b", "cnn_eval.json", "md5:c41c613c17794d117899fdcdeeadbe3c"),
    ("cnn-dailymail-llama3.1-8b-edge", "sample_cnn_eval_5000.json", "md5:b9d994f8a8431c89f57b38d33b94a00d"),
    (
        "cnn-dailymail-llama3.1-8b-calibration",
        "cnn_dailymail_calibration.json",
        "md5:706268fffad9bc1d93be9b29261116d7",
    ),
]


def test_checksum_table_covers_every_family() -> None:
    assert len(CHECKSUMS) >= 25
    assert len({(a, f) for a, f, _ in CHECKSUMS}) == len(CHECKSUMS)
    families = {
        "resnet50": "imagenet-val",
        "bert": "squad-v1.1",
        "3d-unet": "kits19-meta",
        "rnnt": "librispeech-dev-clean",
        "dlrm": "criteo-day23-multihot",
        "sdxl": "coco2014-captions",
        "llama3.1": "cnn-dailymail-llama3.1-8b",
    }
    assert set(families.values()) <= {a for a, _, _ in CHECKSUMS}


@pytest.mark.parametrize(("artifact", "file", "checksum"), CHECKSUMS, ids=[f"{a}/{f}" for a, f, _ in CHECKSUMS])
def test_reference_checksum_in_manifest(catalog: Catalog, artifact: str, file: str, checksum: str) -> None:
    assert str(catalog.artifacts[artifact].file(file).checksum) == checksum


def test_bert_vocab_is_the_same_file_in_every_model(catalog: Catalog) -> None:
    vocabs = {str(a.file("vocab.txt").checksum) for a in catalog.artifacts.values() if a.name.startswith("bert-")}
    assert vocabs == {"md5:64800d5d8528ce344256daf115d4965e"}


# (artifact, file, size in bytes) where the reference states an exact size
SIZES = [
    ("imagenet-val", "ILSVRC2012_img_val.tar", 6744924160),
    ("imagenet-calibration", "cal_image_list_option_1.txt", 14500),
    ("imagenet-calibration", "cal_image_list_option_2.txt", 16390),
    ("openimages-mlperf", "openimages_cal_images_list.txt", 10499),
    ("squad-v1.1", "dev-v1.1.json", 4854279),
    ("bert-onnx", "vocab.txt", 231508),
    ("squad-v1.1-calibration", "bert_calibration_features.txt", 495),
    ("squad-v1.1-calibration", "bert_calibration_qas_ids.txt", 2500),
    ("kits19-meta", "meta/inference_cases.json", 776),
    ("kits19-meta", "meta/calibration_cases.json", 362),
    ("kits19-meta", "meta/checksum_inference.json", 2496),
    ("kits19-meta", "meta/checksum_calibration.json", 1162),
    ("librispeech-dev-clean", "dev-clean.tar.gz", 337926286),
    ("librispeech-dev-clean", "calibration_files.txt", 25726),
    ("librispeech-train-clean-100", "train-clean-100.tar.gz", 6387309499),
    ("cnn-dailymail-gptj", "calibration-list.txt", 41000),
    ("coco2014-captions", "captions/captions_source.tsv", 862324),
    ("coco2014-captions", "latents/latents.pt", 263324),
    ("coco2014-captions", "latents/latents.npy", 262272),
    ("coco2014-captions", "sample_ids.txt", 49),
    ("coco2014-captions", "coco_cal_captions_list.txt", 3431),
]


@pytest.mark.parametrize(("artifact", "file", "size"), SIZES, ids=[f"{a}/{f}" for a, f, _ in SIZES])
def test_reference_size_in_manifest(catalog: Catalog, artifact: str, file: str, size: int) -> None:
    assert catalog.artifacts[artifact].file(file).size == size


# Files with no published checksum: each is deliberate and says why (trust note).
# The 43 MLPerf inference cases of KiTS19 (meta/inference_cases.json; 400 is the harness's copy of 185).
KITS19_CASES = tuple(
    f"{n:05d}"
    for n in (
        0,
        3,
        5,
        6,
        12,
        24,
        34,
        41,
        44,
        49,
        52,
        56,
        61,
        65,
        66,
        70,
        76,
        78,
        80,
        84,
        86,
        87,
        92,
        111,
        112,
        125,
        128,
        138,
        157,
        160,
        161,
        162,
        169,
        171,
        176,
        185,
        187,
        189,
        198,
        203,
        206,
        207,
        400,
    )
)

UNPUBLISHED = {
    ("3d-unet-onnx-static", "3dunet_kits19_128x128x128.onnx"),
    ("rnnt-pytorch", "DistributedDataParallel_1576581068.9962234-epoch-100.pt"),
    ("cnn-dailymail-gptj", "cnn_eval.json"),
    ("coco2014-captions", "val2014.npz"),
} | {
    # the 43 KiTS19 inference cases: no published per-file checksums
    ("kits19-cases", f"case_{c}/{kind}.nii.gz")
    for c in KITS19_CASES
    for kind in ("imaging", "segmentation")
}
# Folder entries: the source (an R2 .uri/.md5 pair, a Hub glob) lists the files.
FOLDERS = {
    (
        "dlrm-v2-weights",
        "model_weights/",
    ): "mlc-r2://inference.mlcommons-storage.org/metadata/dlrm-v2-model-weights.uri",
    ("gpt-j-checkpoint", "checkpoint-final/"): (
        "mlc-r2://inference.mlcommons-storage.org/metadata/gpt-j-model-checkpoint.uri"
    ),
    ("llama2-70b-chat-hf", "Llama-2-70b-chat-hf/"): (
        "mlc-r2://llama2.mlcommons-storage.org/metadata/llama-2-70b-chat-hf.uri"
    ),
    ("llama3.1-8b-instruct", "Llama-3.1-8B-Instruct/"): (
        "mlc-r2://llama3-1.mlcommons-storage.org/metadata/llama3-1-8b-instruct.uri"
    ),
    ("llama3.1-8b-instruct-hub", "Llama-3.1-8B-Instruct/"): (
        "hf://meta-llama/Llama-3.1-8B-Instruct@be673f326cab4cd22ccfef76109faf68e41aa5f1/*"
    ),
    ("sdxl-fp16", "stable_diffusion_fp16/"): (
        "mlc-r2://inference.mlcommons-storage.org/metadata/stable-diffusion-xl-1-0-fp16-checkpoint.uri"
    ),
    ("sdxl-fp32", "stable_diffusion_fp32/"): (
        "mlc-r2://inference.mlcommons-storage.org/metadata/stable-diffusion-xl-1-0-fp32-checkpoint.uri"
    ),
}


def test_unpublished_and_folder_entries_are_the_known_ones(catalog: Catalog) -> None:
    unpublished = set()
    folders = {}
    for art, f in _all_files(catalog):
        if f.is_folder:
            folders[(art.name, f.name)] = f.urls
        elif not f.checksum.known:
            unpublished.add((art.name, f.name))
            assert len(f.trust) > 40, f"{art.name}/{f.name}: the trust note must say why and what pins it"
    assert unpublished == UNPUBLISHED | catalogue_facts.UNPUBLISHED
    assert folders == {k: (v,) for k, v in {**FOLDERS, **catalogue_facts.FOLDERS}.items()}


def test_committed_reference_files_come_from_the_pinned_commit(catalog: Catalog) -> None:
    """raw.githubusercontent.com URLs of mlcommons/inference name the commit the reference hashed."""
    for _art, f in _all_files(catalog):
        for url in f.urls:
            if url.startswith("https://raw.githubusercontent.com/mlcommons/inference/"):
                assert url.startswith(INF), url


# ---------------------------------------------------------------------------------------
# accuracy targets: the submission checker's values (section 12 and the sections it cites)

# benchmark: {metric: ([reference x ratio for each ratio], upper bound or None)}
TARGETS: dict[str, dict[str, tuple[list[float], float | None]]] = {
    "resnet50": {"top1": ([75.6954], None)},
    "retinanet": {"map": ([37.1745], None)},
    "bert": {"f1": ([89.96526, 90.783126], None)},
    "3d-unet": {"dice": ([0.853083, 0.860838], None)},
    "rnnt": {"accuracy": ([91.62252], None)},
    "dlrm-v2": {"auc": ([79.5069, 80.22969], None)},
    "gpt-j": {
        "rouge1": ([42.556635, 42.943514], None),
        "rouge2": ([19.922265, 20.103376], None),
        "rougel": ([29.688219, 29.958112], None),
        "gen_len": ([3615190.2], None),
    },
    "llama2-70b": {
        "rouge1": ([43.986888, 44.386769], None),
        "rouge2": ([21.814848, 22.013165], None),
        "rougel": ([28.330038, 28.587584], None),
        "tokens_per_sample": ([265.005], 323.895),
    },
    "stable-diffusion-xl": {
        "clip_score": ([31.68631873], 31.81331801),
        "fid_score": ([23.01085758], 23.95007626),
    },
    "llama3.1-8b": {
        "rouge1": ([38.391408], None),
        "rouge2": ([15.748425], None),
        "rougel": ([24.250743], None),
        "rougelsum": ([35.43507], None),
        "gen_len": ([7350879.6], 8984408.4),
    },
    "llama3.1-8b-edge": {
        "rouge1": ([38.6694], None),
        "rouge2": ([15.953553], None),
        "rougel": ([24.391125], None),
        "rougelsum": ([35.76276], None),
        "gen_len": ([2746001.7], 3356224.3),
    },
}


def test_targets_cover_every_benchmark() -> None:
    assert set(TARGETS) == set(BENCHMARKS)


# ---------------------------------------------------------------------------------------
# names people type

ALIASES = {
    "imagenet": "imagenet-val",
    "squad": "squad-v1.1",
    "openimages": "openimages-mlperf",
    "kits19": "kits19-meta",
    "librispeech": "librispeech-dev-clean",
    "criteo": "criteo-day23-multihot",
    "coco2014": "coco2014-captions",
    "openorca": "open-orca-llama2",
    "cnn-dailymail": "cnn-dailymail-llama3.1-8b",
    # benchmark short names, and the submission checker's model names
    "resnet": "resnet50",
    "bert-99": "bert",
    "bert-99.9": "bert",
    "3d-unet-99": "3d-unet",
    "3d-unet-99.9": "3d-unet",
    "rnnt": "rnnt",
    "retinanet": "retinanet",
    "dlrm-v2-99": "dlrm-v2",
    "dlrm-v2-99.9": "dlrm-v2",
    "gptj": "gpt-j",
    "gptj-99": "gpt-j",
    "gptj-99.9": "gpt-j",
    "llama2-70b-99": "llama2-70b",
    "llama2-70b-99.9": "llama2-70b",
    "sdxl": "stable-diffusion-xl",
    "stable-diffusion-xl": "stable-diffusion-xl",
    "llama3.1-8b": "llama3.1-8b",
    "llama3.1-8b-edge": "llama3.1-8b-edge",
}


@pytest.mark.parametrize(("alias", "name"), sorted(ALIASES.items()))
def test_alias_resolves(catalog: Catalog, alias: str, name: str) -> None:
    assert catalog.get(alias).name == name


def test_checker_names_are_benchmarks(catalog: Catalog) -> None:
    for alias, name in ALIASES.items():
        if name in BENCHMARKS:
            assert isinstance(catalog.get(alias), Benchmark)


def test_misspelt_name_suggests(catalog: Catalog) -> None:
    with pytest.raises(UnknownNameError) as info:
        catalog.get("imagnet")
    assert "imagenet" in info.value.suggestions


# ---------------------------------------------------------------------------------------
# provision show resnet50: what, from where, how much, which licences, which target


def test_show_resnet50_text(catalog: Catalog) -> None:
    result = runner.invoke(app, ["show", "resnet50"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    b = catalog.benchmarks["resnet50"]
    for name in b.artifact_names:  # what will be downloaded ...
        for f in catalog.artifacts[name].files:
            assert f.name in out
            for url in f.urls:  # ... and from where
                assert url in out
    assert "6.3 GiB" in out  # the total known size (the ImageNet tar)
    gate = [line for line in out.splitlines() if "imagenet-val" in line and "registration" in line]
    assert gate, "show must say that imagenet-val needs registration"
    assert "75.6954" in out  # the accuracy target, 76.46 x 0.99
    assert "500" in out and "imagenet-val-500" in out  # the subset


def test_show_resnet50_json(catalog: Catalog) -> None:
    result = runner.invoke(app, ["show", "resnet50", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    b = catalog.benchmarks["resnet50"]
    assert [a["name"] for a in doc["artifacts"]] == list(b.artifact_names)
    known = [f.size for n in b.artifact_names for f in catalog.artifacts[n].files if f.size is not None]
    assert doc["total_size"] == sum(known) == 6744924160
    assert doc["unknown_sizes"] == sum(
        1 for n in b.artifact_names for f in catalog.artifacts[n].files if f.size is None
    )
    assert {(g["artifact"], g["access"]) for g in doc["licence_gates"]} == {("imagenet-val", "registration")}
    (metric,) = doc["metrics"]
    assert metric["metric"] == "top1"
    assert metric["targets"] == pytest.approx([75.6954], rel=1e-6)
    assert (doc["status"], doc["dataset_size"], doc["performance_sample_count"]) == ("current", 50000, 1024)


def test_hub_revisions_are_pinned_to_commits(catalog: Catalog) -> None:
    """Built-in manifests pin every Hugging Face URL to a 40-hex commit, never a branch."""
    hub = [
        u
        for a in catalog.artifacts.values()
        for f in a.files
        for u in f.urls
        if u.startswith(("hf://", "hf-dataset://"))
    ]
    assert hub
    for url in hub:
        revision = url.split("@", 1)[1].split("/", 1)[0]
        assert re.fullmatch(r"[0-9a-f]{40}", revision), url


def test_resnet50_models_name_their_preprocessing(catalog: Catalog) -> None:
    """The PyTorch checkpoints use MLPerf's PyTorch profile; the ONNX/TF models the benchmark's."""
    bench = catalog.benchmarks["resnet50"]
    assert bench.preprocess is not None and bench.preprocess.recipe == "imagenet-resnet50"
    for name in ("resnet50-pytorch", "resnet50-pytorch-int8"):
        spec = catalog.artifacts[name].preprocess
        assert spec is not None and spec.recipe == "imagenet-torchvision"
    assert catalog.artifacts["resnet50-onnx"].preprocess is None


def test_3d_unet_dataset_holds_the_43_inference_cases(catalog: Catalog) -> None:
    bench = catalog.benchmarks["3d-unet"]
    cases = catalog.artifacts[bench.dataset]
    assert bench.dataset == "kits19-cases" and bench.dataset_size == 43
    assert len({f.name.split("/")[0] for f in cases.files}) == 43
    assert bench.labels is not None and str(bench.labels) == "kits19-meta/meta/inference_cases.json"
    copy = cases.file("case_00400/imaging.nii.gz")
    assert copy.urls == cases.file("case_00185/imaging.nii.gz").urls  # the harness's copy of 00185
