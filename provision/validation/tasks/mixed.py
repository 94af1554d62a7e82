"""Sets that mix several sources, each scored its own way, as the MLPerf scripts score them.

A row's source is read from a column of the published file (``dataset`` or ``metric``); a
:class:`Profile` names the routes, what each contributes to, and the benchmark's own conventions
(text preparation, token counting, rounding, weights). The answer extraction is
:mod:`provision.validation.metrics.answers`.

- ``mixtral`` (``evaluate-accuracy.py``): OpenOrca rows -> ROUGE-1/2/L/Lsum (stripped, one sentence
  a line, stemming, mean x100 rounded to 4); GSM8K rows -> ``gsm8k`` (% correct); MBXP rows are left
  out (scored by running the generated code). Token counts drop the trailing eos/pad ids (2, 0)
  as the reference SUT's ``postProcess`` does.
- ``llama3.1-405b`` (``evaluate-accuracy.py``): every text stripped and sentence-split, then by the
  ``metric`` column: ``rouge`` -> ``rougel`` (100 x F, mean); ``niah_em``/``qa_em`` -> ``exact_match``
  (the mean over both kinds of rows).
- ``deepseek-r1`` (``eval_accuracy.py``): by the ``dataset`` column (the first of gpqa, mmlu_pro,
  math500, aime, livecodebench it contains): multiple choice, AIME integers, MATH-500 through
  PRM800K's grader (rows left out when it is not importable); LiveCodeBench rows left out;
  ``exact_match`` = the mean of 100/0 over the rows.
- ``gpt-oss`` (``eval_mlperf_accuracy.py``): the same routes with gpt-oss's Harmony-aware
  multiple choice, special tokens kept; ``exact_match`` = sum_d correct_d / r_d over sum_d
  total_d / r_d x 100 with the repeats r of aime25 (8), gpqa_diamond (5), livecodebench_v6 (3).

``tokens_per_sample`` is the mean count of generated ids (rounded to 1 decimal by mixtral's and
llama3.1-405b's scripts, unrounded by deepseek-r1's; gpt-oss's script prints none and its
exact match with 3 decimals). Rows left out are not
generated; ``--count N`` takes the first N of the rows that are scored. With rows left out the
run covers part of the benchmark, so its targets are judged as on a subset, with a note naming
what was left out and why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from provision.errors import UsageError
from provision.validation.metrics import answers
from provision.validation.metrics.text import prepare_texts, rouge_per_sample
from provision.validation.tasks.base import Score, in_order
from provision.validation.tasks.records import read_rows
from provision.validation.tasks.summarization import ROUGE_METRICS, prompt_of

if TYPE_CHECKING:
    from provision.validation.runners.generate import Generated
    from provision.validation.tasks.registry import GenerativeSource

__all__ = ["PROFILES", "MixedTask", "Profile", "Route"]

#: A grader: (prepared generation, ground truth) -> the sample's value, 0..100.
Grade = Callable[[str, Any], float]
#: The metric a ROUGE route feeds (every ROUGE variant the targets name).
ROUGE = "rouge"


@dataclass(frozen=True)
class Route:
    """One source of a mixed set: the route column's value (``match``; a lower-case part of it when
    the profile matches by substring), the metric its rows feed, and its grader (none for ROUGE rows,
    which are scored as a set); a ``left_out`` reason leaves its rows out."""

    match: str
    metric: str
    grade: Grade | None = None
    left_out: str = ""


@dataclass(frozen=True)
class Profile:
    """How one benchmark's mixed set is routed and scored (see the module docstring)."""

    name: str
    column: str
    routes: tuple[Route, ...]
    substring: bool = False
    prepare_all: bool = False  # strip + sentence-split every text before any metric (llama3.1-405b)
    round_rouge: bool = True  # mean x100 rounded to 4 decimals (else the unrounded mean of 100 x F)
    round_tokens: bool = True  # tokens_per_sample rounded to 1 decimal (else the plain mean)
    exact_digits: int | None = None  # exact_match rounded as the script prints it (gpt-oss: 3)
    trailing: frozenset[int] = frozenset()  # ids dropped from the end before counting tokens
    repeats: Mapping[str, int] = field(default_factory=dict)  # source -> repeats (weight 1/r)
    metrics: tuple[str, ...] = ()
    scoring: str = ""

    def route(self, value: Any, where: str) -> Route:
        """The route of a row whose route column holds ``value``."""
        text = str(value)
        for candidate in self.routes:
            if (candidate.match in text.lower()) if self.substring else (candidate.match == text):
                return candidate
        known = ", ".join(r.match for r in self.routes)
        raise UsageError(f"{where}: {self.column} {text!r} is none of the {self.name} sources ({known})")


def _score(value: bool) -> float:
    return 100.0 if value else 0.0


def _gsm8k(text: str, truth: Any) -> float:
    return _score(answers.gsm8k_correct(text, truth))


def _niah(text: str, truth: Any) -> float:
    return answers.niah_exact_match(str(truth), text)


def _qa(text: str, truth: Any) -> float:
    return answers.qa_exact_match(str(truth), text)


def _choice(parse: Callable[[str, str], str | None], last: str) -> Grade:
    options = "ABCDEFGHIJ"[: "ABCDEFGHIJ".index(last) + 1]

    def grade(text: str, truth: Any) -> float:
        if answers.is_missing(truth):
            return 0.0
        return _score(answers.choice_correct(parse(text, last), truth, options))

    return grade


def _aime(text: str, truth: Any) -> float:
    if answers.is_missing(truth):
        return 0.0
    return _score(answers.aime_correct(answers.aime_answer(text), truth))


def _math500_route() -> Route:
    grader = answers.math500_grader()
    if grader is None:
        return Route(
            "math500",
            "exact_match",
            left_out="MATH-500 is graded by PRM800K's grade_answer, which is not importable: put its 'grading' "
            "package on PYTHONPATH (the reference's submodules/prm800k/prm800k) to score these rows",
        )

    def grade(text: str, truth: Any) -> float:
        given = answers.boxed(text)
        if not given or answers.is_missing(truth) or not truth:
            return 0.0
        return _score(grader(given, str(truth)))

    return Route("math500", "exact_match", grade)


_CODE = "scored by running the generated code, which provision never does (model output is not executed)"
_MIXTRAL = (
    Route("OpenOrca", ROUGE),
    Route("GSM8K", "gsm8k", _gsm8k),
    Route("MBXP", "mbxp", left_out=f"MBXP is {_CODE}"),
)
_LLAMA405 = (
    Route("rouge", ROUGE),
    Route("niah_em", "exact_match", _niah),
    Route("qa_em", "exact_match", _qa),
)


def _reasoning_routes(parse: Callable[[str, str], str | None]) -> tuple[Route, ...]:
    return (
        Route("gpqa", "exact_match", _choice(parse, "D")),
        Route("mmlu_pro", "exact_match", _choice(parse, "J")),
        _math500_route(),
        Route("aime", "exact_match", _aime),
        Route("livecodebench", "exact_match", left_out=f"LiveCodeBench is {_CODE}"),
        Route("mmlu", "exact_match", _choice(parse, "J")),
    )


def _profiles() -> dict[str, Callable[[], Profile]]:
    return {
        "mixtral": lambda: Profile(
            "mixtral",
            "dataset",
            _MIXTRAL,
            trailing=frozenset({0, 2}),
            metrics=(*ROUGE_METRICS, "gsm8k", "mbxp", "tokens_per_sample", "gen_len"),
            scoring="OpenOrca ROUGE (stemming, mean x100 rounded to 4); GSM8K last/delimited number as float",
        ),
        "llama3.1-405b": lambda: Profile(
            "llama3.1-405b",
            "metric",
            _LLAMA405,
            prepare_all=True,
            round_rouge=False,
            metrics=("rougel", "exact_match", "tokens_per_sample", "gen_len"),
            scoring="texts stripped and sentence-split; rouge rows ROUGE-L F x100; niah_em and qa_em rows exact match",
        ),
        "deepseek-r1": lambda: Profile(
            "deepseek-r1",
            "dataset",
            _reasoning_routes(answers.choice_r1)[:5],
            substring=True,
            round_tokens=False,
            metrics=("exact_match", "tokens_per_sample"),
            scoring="eval_accuracy.py extraction per dataset; exact match = mean of 100/0",
        ),
        "gpt-oss": lambda: Profile(
            "gpt-oss",
            "dataset",
            _reasoning_routes(answers.choice_harmony),
            substring=True,
            repeats={"aime25": 8, "gpqa_diamond": 5, "livecodebench_v6": 3},
            round_tokens=False,
            exact_digits=3,  # printed as 'exact_match': x.xxx for the checker
            metrics=("exact_match", "tokens_per_sample"),
            scoring="eval_accuracy.py extraction (Harmony final channel first); sum correct/r over sum total/r",
        ),
    }


#: ``[benchmark.generation] task`` -> its profile (built when the task is made: MATH-500's grader is
#: looked up then).
PROFILES: Mapping[str, Callable[[], Profile]] = _profiles()


class MixedTask:
    """A mixed set scored by its :class:`Profile` (see the module docstring)."""

    kind = "text"

    def __init__(self, source: GenerativeSource, profile: Profile) -> None:
        spec = source.spec
        self.name = profile.name
        self.profile = profile
        self.spec = spec
        path = source.folder / spec.file
        rows = read_rows(path, [spec.prompt, spec.reference, profile.column])
        kept: list[tuple[int, dict[str, Any], Route]] = []
        self.left_out: dict[str, int] = {}
        self.reasons: dict[str, str] = {}
        for index, row in enumerate(rows):
            route = profile.route(row[profile.column], f"{path.name} row {index}")
            if route.left_out:
                self.left_out[str(row[profile.column])] = self.left_out.get(str(row[profile.column]), 0) + 1
                self.reasons[route.metric] = route.left_out
                continue
            kept.append((index, row, route))
        if source.limit is not None:
            kept = kept[: source.limit]
        if not kept:
            raise UsageError(f"{path}: no row of this file can be scored here ({'; '.join(self.reasons.values())})")
        self.rows = [index for index, _, _ in kept]
        self.routes = [route for _, _, route in kept]
        self.sources = [str(row[profile.column]) for _, row, _ in kept]
        self.prompts = [prompt_of(r[spec.prompt], f"{path.name} row {i} {spec.prompt}") for i, r, _ in kept]
        self.truths = [r[spec.reference] for _, r, _ in kept]
        self.metrics = list(dict.fromkeys(m.metric for m in source.bench.metrics if not m.scenario))
        unknown = [m for m in self.metrics if m not in profile.metrics]
        if unknown:
            raise UsageError(
                f"{source.bench.name}: the {profile.name} task scores {', '.join(profile.metrics)}, "
                f"not {', '.join(unknown)}"
            )
        self.generated: dict[int, Generated] = {}

    def count(self) -> int:
        """Rows that are scored (after ``--count``)."""
        return len(self.prompts)

    def inputs(self, indices: Sequence[int]) -> list[Any]:
        """The prompts of ``indices``."""
        return [self.prompts[i] for i in indices]

    def collect(self, indices: Sequence[int], outputs: Sequence[Generated]) -> None:
        """Keep each generation by sample index."""
        for index, out in zip(indices, outputs, strict=True):
            self.generated[index] = out

    def _tokens(self, ids: Sequence[int]) -> int:
        end = len(ids)
        while end and ids[end - 1] in self.profile.trailing:
            end -= 1
        return end

    def score(self) -> Score:
        """Every metric the targets name that the scored rows give; the first is the primary."""
        n = len(self.prompts)
        texts = [g.text for g in in_order(self.generated, n)]
        truths = [str(t) if not answers.is_missing(t) else "" for t in self.truths]
        if self.profile.prepare_all:
            texts, truths = prepare_texts(texts), prepare_texts(truths)
        scores: dict[str, Score] = {}
        rouge_rows = [i for i in range(n) if self.routes[i].metric == ROUGE]
        wanted = [ROUGE_METRICS[m] for m in self.metrics if m in ROUGE_METRICS]
        if rouge_rows and wanted:
            per = rouge_per_sample([texts[i] for i in rouge_rows], [truths[i] for i in rouge_rows], wanted)
            for metric, kind in ROUGE_METRICS.items():
                if kind in per:
                    values = per[kind] * 100.0
                    mean = float(np.mean(values))  # pandas' mean of the per-sample 100 x F
                    value = float(np.round(np.mean(per[kind]) * 100, 4)) if self.profile.round_rouge else mean
                    scores[metric] = Score(value, len(rouge_rows), per_sample=values)
        if "gen_len" in self.metrics:
            rows = rouge_rows if not self.profile.prepare_all else list(range(n))
            chosen = [texts[i] for i in rows]
            lengths = np.array([len(t) for t in (chosen if self.profile.prepare_all else prepare_texts(chosen))])
            scores["gen_len"] = Score(float(lengths.sum()), len(rows), per_sample=lengths.astype(np.float64))
        for metric in dict.fromkeys(r.metric for r in self.routes if r.metric != ROUGE):
            scores[metric] = self._exact(metric, texts, truths)
        counts = np.array([self._tokens(self.generated[i].token_ids) for i in range(n)], dtype=np.float64)
        tokens = round(float(counts.mean()), 1) if self.profile.round_tokens else float(counts.mean())
        scores["tokens_per_sample"] = Score(tokens, n, per_sample=counts)
        primary_name = self.metrics[0]
        if primary_name not in scores:
            why = self.reasons.get(primary_name, "no scored row feeds it")
            raise UsageError(f"{self.name}: the primary metric {primary_name} cannot be computed here: {why}")
        primary = scores[primary_name]
        primary = Score(
            primary.value,
            n,  # the rows run decide whether this is the full set
            successes=primary.successes,
            per_sample=primary.per_sample,
            statistic=primary.statistic,
        )
        primary.names = [str(r) for r in self.rows]
        primary.more = {m: s for m, s in scores.items() if m != primary_name and m in self.metrics}
        primary.extra = {
            "generated_tokens": int(sum(len(g.token_ids) for g in self.generated.values())),
            "sources": self._breakdown(texts, truths),
        }
        if self.left_out:
            primary.extra["left_out"] = {"rows": self.left_out, "why": self.reasons}
            total = n + sum(self.left_out.values())
            for source, count in self.left_out.items():
                why = self.reasons[self.profile.route(source, source).metric]
                primary.notes.append(f"{count} {source} rows left out: {why}")
            primary.notes.append(
                f"{n} of {total} rows scored: the targets are judged as on a subset, not as the full benchmark"
            )
        primary.unjudged = {m: why for m, why in self.reasons.items() if m in self.metrics and m not in scores}
        return primary

    def _values(self, metric: str, texts: Sequence[str], truths: Sequence[str]) -> tuple[list[int], np.ndarray]:
        rows = [i for i in range(len(texts)) if self.routes[i].metric == metric]
        values = []
        for i in rows:
            grade = self.routes[i].grade
            if grade is None:
                raise UsageError(f"{self.name}: source {self.sources[i]!r} has no grader for {metric}")
            values.append(grade(texts[i], self.truths[i] if not self.profile.prepare_all else truths[i]))
        return rows, np.array(values, dtype=np.float64)

    def _exact(self, metric: str, texts: Sequence[str], truths: Sequence[str]) -> Score:
        rows, values = self._values(metric, texts, truths)
        if not self.profile.repeats:
            return Score(float(values.mean()), len(rows), per_sample=values)
        weights = np.array([1.0 / self.profile.repeats.get(self.sources[i].lower(), 1) for i in rows])

        def weighted(index: np.ndarray) -> float:
            return float((values[index] * weights[index]).sum() / weights[index].sum())

        value = weighted(np.arange(len(rows)))
        if self.profile.exact_digits is not None:
            value = round(value, self.profile.exact_digits)
        return Score(value, len(rows), statistic=weighted)

    def _breakdown(self, texts: Sequence[str], truths: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Per source: rows run and, for graded sources, the mean value (for the record and audits)."""
        out: dict[str, dict[str, Any]] = {}
        for metric in dict.fromkeys(r.metric for r in self.routes if r.metric != ROUGE):
            rows, values = self._values(metric, texts, truths)
            for row, value in zip(rows, values, strict=True):
                entry = out.setdefault(self.sources[row], {"rows": 0, "sum": 0.0})
                entry["rows"] += 1
                entry["sum"] += float(value)
        for i, route in enumerate(self.routes):
            if route.metric == ROUGE:
                out.setdefault(self.sources[i], {"rows": 0})["rows"] += 1
        for entry in out.values():
            if "sum" in entry:
                entry["mean"] = entry.pop("sum") / entry["rows"]
        return out

    def describe(self) -> dict[str, Any]:
        """File, columns, routing and scoring."""
        return {
            "task": self.name,
            "file": self.spec.file,
            "prompt": self.spec.prompt,
            "reference": self.spec.reference,
            "route": self.profile.column,
            "metrics": self.metrics,
            "rows": len(self.prompts),
            "left_out": self.left_out,
            "scoring": self.profile.scoring,
        }
