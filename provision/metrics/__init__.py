"""MLPerf Inference accuracy metrics, computed as MLPerf's accuracy scripts compute them.

One module per task: :mod:`.classification` (top-1), :mod:`.detection` (RetinaNet payload, COCO
mAP), :mod:`.squad` (BERT answers, exact match, F1), :mod:`.segmentation` (KiTS19 DICE),
:mod:`.speech` (WER), :mod:`.ranking` (DLRM AUC), :mod:`.text` (ROUGE, output lengths) and
:mod:`.stats` (confidence intervals). Optional libraries (pycocotools, scikit-learn, rouge-score,
nltk) are imported only by the function that needs them.

:data:`METRICS` describes every metric name a manifest may use (``[benchmark.accuracy] metric``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from provision.metrics.classification import top1, top1_correct
from provision.metrics.detection import DETECTION_COLUMNS, coco_map, retinanet_detections
from provision.metrics.ranking import roc_auc, round_accuracy
from provision.metrics.segmentation import DiceSummary, dice_per_case, dice_summary
from provision.metrics.speech import levenshtein, wer_accuracy, word_error_rate, word_errors
from provision.metrics.squad import (
    NO_ANSWER,
    SquadScores,
    answer_exact_match,
    answer_f1,
    basic_tokenize,
    final_text,
    normalize_answer,
    squad_predictions,
    squad_scores,
)
from provision.metrics.stats import bootstrap_interval, bootstrap_statistic, normal_quantile, wilson_interval
from provision.metrics.text import ROUGE_TYPES, gen_len, prepare_texts, rouge, rouge_per_sample, tokens_per_sample

__all__ = [
    "DETECTION_COLUMNS",
    "METRICS",
    "NO_ANSWER",
    "ROUGE_TYPES",
    "DiceSummary",
    "MetricInfo",
    "SquadScores",
    "answer_exact_match",
    "answer_f1",
    "basic_tokenize",
    "bootstrap_interval",
    "bootstrap_statistic",
    "coco_map",
    "dice_per_case",
    "dice_summary",
    "final_text",
    "gen_len",
    "levenshtein",
    "normal_quantile",
    "normalize_answer",
    "prepare_texts",
    "retinanet_detections",
    "roc_auc",
    "rouge",
    "rouge_per_sample",
    "round_accuracy",
    "squad_predictions",
    "squad_scores",
    "tokens_per_sample",
    "top1",
    "top1_correct",
    "wer_accuracy",
    "wilson_interval",
    "word_error_rate",
    "word_errors",
]


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
