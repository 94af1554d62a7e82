"""The metric names a manifest may use (``[benchmark.accuracy] metric``): unit, direction, meaning."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["METRICS", "MetricInfo"]


@dataclass(frozen=True)
class MetricInfo:
    """A manifest metric: its name, the unit MLPerf prints it in, its direction and what it measures."""

    name: str
    unit: str
    higher_is_better: bool
    description: str


def _registry(*infos: MetricInfo) -> Mapping[str, MetricInfo]:
    return MappingProxyType({info.name: info for info in infos})


#: Every metric name of the manifests (``provision.manifest.KNOWN_METRICS``) -> what it is.
METRICS: Mapping[str, MetricInfo] = _registry(
    MetricInfo("top1", "%", True, "top-1 accuracy of image classification, 100 * good / n"),
    MetricInfo("map", "%", True, "COCO mAP@[0.50:0.95] of object detection (pycocotools, bbox), x100"),
    MetricInfo("f1", "%", True, "SQuAD v1.1 token F1, best over the reference answers, averaged x100"),
    MetricInfo(
        "exact_match",
        "%",
        True,
        "exact match of normalised answers x100 (SQuAD v1.1; for reasoning LLMs the reference's per-dataset "
        "answer extraction)",
    ),
    MetricInfo("dice", "", True, "KiTS19 mean DICE (mean of kidney and tumor per case, over cases), 0..1"),
    MetricInfo("wer", "%", False, "word error rate, total word edits / total reference words, x100"),
    MetricInfo("accuracy", "%", True, "speech recognition accuracy, (1 - word error rate) * 100"),
    MetricInfo("auc", "%", True, "ROC AUC of click predictions (scikit-learn roc_auc_score), x100"),
    MetricInfo("rouge1", "%", True, "ROUGE-1 F-measure with stemming, mean over samples x100, 4 decimals"),
    MetricInfo("rouge2", "%", True, "ROUGE-2 F-measure with stemming, mean over samples x100, 4 decimals"),
    MetricInfo("rougel", "%", True, "ROUGE-L F-measure with stemming, mean over samples x100, 4 decimals"),
    MetricInfo(
        "rougelsum", "%", True, "ROUGE-Lsum (one sentence a line) F-measure, mean over samples x100, 4 decimals"
    ),
    MetricInfo("gen_len", "characters", True, "total characters of the generated texts"),
    MetricInfo("tokens_per_sample", "tokens", True, "generated tokens per sample, 1 decimal (checked in a range)"),
    MetricInfo("clip_score", "", True, "CLIP score of generated images, 100 x cosine similarity (not computed here)"),
    MetricInfo("fid_score", "", False, "FID of generated images against COCO statistics (not computed here)"),
    MetricInfo("gsm8k", "%", True, "GSM8K exact match of the final number x100 (mixtral-8x7b; not computed here)"),
    MetricInfo("mbxp", "%", True, "MBXP programs that pass their tests x100 (mixtral-8x7b; not computed here)"),
    MetricInfo("vbench_score", "", True, "VBench: mean of six dimension scores of videos (not computed here)"),
    MetricInfo(
        "f1_hierarchical", "", True, "hierarchical F1 of predicted product categories (longest common prefix), 0..1"
    ),
    MetricInfo(
        "dlrm_ne", "", False, "normalized entropy of click predictions, 0..1 (the checker treats it as a lower bound)"
    ),
    MetricInfo("dlrm_acc", "", True, "accuracy of click predictions, 0..1 (dlrm-v3)"),
    MetricInfo("dlrm_auc", "", True, "group AUC of click predictions (window 3000), 0..1 (dlrm-v3)"),
    MetricInfo(
        "node_accuracy", "", True, "node-classification accuracy as the checker compares it, 0..1 (rgat prints %)"
    ),
    MetricInfo("e2e_accuracy", "%", True, "end-to-end RAG answers judged correct x100 (an LLM judge; qna), or db %"),
    MetricInfo("bfcl_accuracy", "%", True, "BFCL v4 function-calling accuracy x100 (the checker's key is 'mAP')"),
    MetricInfo("waymo_map", "", True, "Waymo 3D detection mAP averaged over classes ('Total'), 0..1"),
)
