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
    MetricInfo("exact_match", "%", True, "SQuAD v1.1 exact match of normalised answers, averaged x100"),
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
)
