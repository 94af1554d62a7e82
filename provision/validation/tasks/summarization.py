"""Summarisation scored as MLPerf's ``evaluation.py`` / ``evaluate-accuracy.py`` score it.

Llama 3.1 8B (CNN/DailyMail, ``cnn_eval.json``), Llama 2 70B (OpenOrca pickle) and GPT-J read
pre-tokenised prompts (``tok_input``) and reference texts (``output``) from the published file.
Each generation is decoded as the script decodes it (``skip_special_tokens``), stripped and split
into one sentence a line (nltk ``sent_tokenize``; see :mod:`provision.validation.metrics.text`),
then scored with ``rouge_score`` (stemming, per-sample F-measure, mean x100 rounded to 4 decimals).
``gen_len`` is the total characters of the prepared predictions; ``tokens_per_sample`` the mean
count of generated token ids (the stop token included, as the accuracy log holds it), rounded to
1 decimal. Only the metrics the benchmark's targets name are computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from provision.errors import UsageError
from provision.validation.metrics.text import prepare_texts, rouge_per_sample
from provision.validation.tasks.base import Score, in_order
from provision.validation.tasks.records import read_rows

if TYPE_CHECKING:
    from provision.validation.runners.generate import Generated
    from provision.validation.tasks.registry import GenerativeSource

__all__ = ["ROUGE_METRICS", "SUMMARIZATION_METRICS", "SummarizationTask", "prompt_of"]

#: manifest metric -> the ``rouge_score`` type.
ROUGE_METRICS = {"rouge1": "rouge1", "rouge2": "rouge2", "rougel": "rougeL", "rougelsum": "rougeLsum"}
SUMMARIZATION_METRICS = (*ROUGE_METRICS, "gen_len", "tokens_per_sample")


def prompt_of(value: Any, where: str) -> list[int] | str:
    """A dataset cell as an engine input: token ids (a list or array of integers) or prompt text."""
    if isinstance(value, str):
        return value
    try:
        ids = [int(i) for i in value]
    except (TypeError, ValueError):
        raise UsageError(f"{where}: expected token ids or prompt text, got {type(value).__name__}") from None
    if not ids:
        raise UsageError(f"{where}: the prompt has no token ids")
    return ids


class SummarizationTask:
    """ROUGE (and generated length) of a summarisation or instruction set (see the module docstring)."""

    name = "summarization"
    kind = "text"

    def __init__(self, source: GenerativeSource) -> None:
        spec = source.spec
        path = source.folder / spec.file
        rows = read_rows(path, [spec.prompt, spec.reference])
        if source.limit is not None:
            rows = rows[: source.limit]
        self.path = path
        self.spec = spec
        self.prompts = [prompt_of(r[spec.prompt], f"{path.name} row {i} {spec.prompt}") for i, r in enumerate(rows)]
        self.references = [str(r[spec.reference]) for r in rows]
        self.metrics = list(dict.fromkeys(m.metric for m in source.bench.metrics if not m.scenario))
        unknown = [m for m in self.metrics if m not in SUMMARIZATION_METRICS]
        if unknown:
            raise UsageError(
                f"{source.bench.name}: the summarization task scores {', '.join(SUMMARIZATION_METRICS)}, "
                f"not {', '.join(unknown)}"
            )
        self.generated: dict[int, Generated] = {}

    def count(self) -> int:
        """Samples in the file (after ``--count``)."""
        return len(self.prompts)

    def inputs(self, indices: Sequence[int]) -> list[Any]:
        """The prompts of ``indices`` (token ids, or text the engine tokenises)."""
        return [self.prompts[i] for i in indices]

    def collect(self, indices: Sequence[int], outputs: Sequence[Generated]) -> None:
        """Keep each generation by sample index."""
        for index, out in zip(indices, outputs, strict=True):
            self.generated[index] = out

    def texts(self) -> list[str]:
        """The decoded generations in sample order."""
        return [self.generated[i].text for i in range(len(self.prompts))]

    def score(self) -> Score:
        """Every metric the targets name; the first is the primary, the others in ``more``."""
        texts = [g.text for g in in_order(self.generated, len(self.prompts))]
        n = len(texts)
        scores: dict[str, Score] = {}
        rouge_types = [ROUGE_METRICS[m] for m in self.metrics if m in ROUGE_METRICS]
        if rouge_types:
            per = rouge_per_sample(texts, self.references, rouge_types)
            for metric, kind in ROUGE_METRICS.items():
                if kind in per:
                    values = per[kind] * 100.0
                    scores[metric] = Score(float(np.round(np.mean(per[kind]) * 100, 4)), n, per_sample=values)
        if "gen_len" in self.metrics:
            lengths = np.array([len(t) for t in prepare_texts(texts)], dtype=np.float64)
            scores["gen_len"] = Score(float(lengths.sum()), n, per_sample=lengths)
        if "tokens_per_sample" in self.metrics:
            counts = np.array([len(self.generated[i].token_ids) for i in range(n)], dtype=np.float64)
            scores["tokens_per_sample"] = Score(round(float(counts.mean()), 1), n, per_sample=counts)
        primary = scores[self.metrics[0]]
        primary.names = [str(i) for i in range(n)]
        primary.more = {m: s for m, s in scores.items() if m != self.metrics[0]}
        primary.extra = {"generated_tokens": int(sum(len(g.token_ids) for g in self.generated.values()))}
        return primary

    def describe(self) -> dict[str, Any]:
        """File, columns and scoring."""
        return {
            "task": self.name,
            "file": self.spec.file,
            "prompt": self.spec.prompt,
            "reference": self.spec.reference,
            "metrics": self.metrics,
            "scoring": "rouge_score with stemming, per-sample F x100 mean rounded to 4; nltk sentence split",
        }
