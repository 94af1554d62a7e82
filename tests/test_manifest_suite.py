"""manifest: the keys of the whole-suite catalogue (issue 14) — suite, rounds and the status they
decide, the checker's names, per-scenario accuracy, training quality targets, rounded sizes, and
what a folder listing must agree with — each problem one line naming file, entry and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ManifestWriter

from provision.errors import ManifestError, UnknownNameError, UsageError
from provision.manifest.parse import lint, load_catalog

H = "md5:" + "0" * 32

BASE = (
    "schema = 1\n"
    '[[dataset]]\nname = "ds"\n[[dataset.files]]\nname = "a.bin"\nurls = ["https://example.org/a.bin"]\n'
    f'checksum = "{H}"\n'
    '[[model]]\nname = "net"\nformat = "onnx"\n[[model.files]]\nname = "n.onnx"\n'
    f'urls = ["https://example.org/n.onnx"]\nchecksum = "{H}"\n'
)
ACC = '[[benchmark.accuracy]]\nmetric = "top1"\nreference = 76.46\n'
QUALITY = '[[benchmark.quality]]\nmetric = "log_perplexity"\ntarget = 3.3\ndirection = "<="\n'


def bench(name: str, body: str, tail: str = ACC) -> str:
    return f'[[benchmark]]\nname = "{name}"\ndataset = "ds"\nmodels = ["net"]\n{body}\n{tail}'


def problem(manifests: Path, *fragments: str) -> str:
    found = lint([manifests])
    with pytest.raises(ManifestError):
        load_catalog([manifests])
    hits = [p for p in found if all(f in p for f in fragments)]
    assert len(hits) == 1, "\n".join(found)
    assert "\n" not in hits[0]
    return hits[0]


# --- rounds decide the status ----------------------------------------------------------------


def test_status_follows_rounds_per_suite(write_manifest: ManifestWriter, manifests: Path) -> None:
    write_manifest(
        BASE
        + bench("new", 'rounds = ["v6.0", "v6.1"]\nchecker_names = ["new-99"]')
        + bench("old", 'rounds = ["v5.0", "v6.0"]')
        + bench("trn", 'suite = "training"\nrounds = ["v6.0"]', QUALITY)
    )
    catalog = load_catalog([manifests])
    new, old, trn = (catalog.benchmarks[n] for n in ("new", "old", "trn"))
    assert (new.status, new.status_text) == ("current", "current")
    assert (old.status, old.status_text, old.retired_after) == ("retired", "retired after v6.0", "v6.0")
    assert trn.status == "current"  # v6.0 is training's newest round here: suites are apart
    assert catalog.latest_round == {"inference": "v6.1", "training": "v6.0"}
    assert catalog.rounds() == ["v5.0", "v6.0", "v6.1"] and catalog.rounds("training") == ["v6.0"]
    assert catalog.get("new-99") is new and new.names_in("v6.1") == ("new-99",) and new.names_in("v5.0") == ()
    assert old.names_in("v5.0") == ("old",)  # no checker names: the benchmark's own


def test_round_names_narrow_a_round(write_manifest: ManifestWriter, manifests: Path) -> None:
    body = 'rounds = ["v6.0", "v6.1"]\nchecker_names = ["b-99", "b-99.9"]\n[benchmark.round_names]\n"v6.1" = ["b-99.9"]'
    write_manifest(BASE + bench("b", body))
    b = load_catalog([manifests]).benchmarks["b"]
    assert b.names_in("v6.0") == ("b-99", "b-99.9") and b.names_in("v6.1") == ("b-99.9",)


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ('rounds = ["6.1"]', ("rounds: expected names like 'v6.1', got '6.1'",)),
        ('rounds = ["v6.1", "v6.1"]', ("names a round twice",)),
        ('rounds = ["v6.1"]\nstatus = "retired"', ("status: not with rounds",)),
        ('suite = "trainning"', ("suite: expected one of 'inference', 'training', got 'trainning'",)),
        ('rounds = ["v6.1"]\n[benchmark.round_names]\n"v6.0" = ["b"]', ("round_names: 'v6.0' is not one of rounds",)),
        (
            'rounds = ["v6.1"]\nchecker_names = ["b-99"]\n[benchmark.round_names]\n"v6.1" = ["b-98"]',
            ("round_names: v6.1 names ['b-98'], not in checker_names",),
        ),
        ('checker_names = ["B 99"]', ("checker name",)),
        ("accuracy_sample_count = -1", ("accuracy_sample_count: expected a non-negative integer",)),
    ],
    ids=["round-form", "round-twice", "status-and-rounds", "suite", "round-names-round", "round-names-name",
         "checker-name", "acc-count"],
)  # fmt: skip
def test_round_and_name_problems(
    write_manifest: ManifestWriter, manifests: Path, body: str, fragments: tuple[str, ...]
) -> None:
    path = write_manifest(BASE + bench("b", body))
    line = problem(manifests, *fragments)
    assert line.startswith(f"{path}: benchmark 'b'")


def test_a_checker_name_is_a_name_like_any_other(write_manifest: ManifestWriter, manifests: Path) -> None:
    write_manifest(BASE + bench("b", 'checker_names = ["ds"]'))
    problem(manifests, "name 'ds'")


# --- suites: names resolve in their own suite -------------------------------------------------


def test_suite_refuses_the_other_suites_benchmark_with_its_close_names(
    write_manifest: ManifestWriter, manifests: Path
) -> None:
    write_manifest(
        BASE
        + bench("llama3.1-8b", 'rounds = ["v6.1"]')
        + bench("llama3.1_8b", 'suite = "training"\nrounds = ["v6.1"]', QUALITY)
    )
    catalog = load_catalog([manifests])
    assert catalog.get("llama3.1_8b", suite="training").name == "llama3.1_8b"
    with pytest.raises(UsageError) as info:
        catalog.get("llama3.1-8b", suite="training")
    assert str(info.value) == (
        "'llama3.1-8b' is an MLPerf inference benchmark, not training; did you mean 'llama3.1_8b'? "
        "(see 'provision list --suite training')"
    )
    assert catalog.get("ds", suite="training").name == "ds"  # datasets and models belong to no suite
    with pytest.raises(UsageError, match="--suite 'train'"):
        catalog.get("ds", suite="train")
    with pytest.raises(UnknownNameError) as unknown:
        catalog.get("llama3.1-8", suite="training")
    assert unknown.value.suggestions == ["llama3.1_8b"]
    assert [a.name for a in catalog.resolve(["llama3.1_8b"], suite="training")] == ["ds", "net"]


# --- targets: per scenario; training's quality ------------------------------------------------


def test_accuracy_per_scenario_and_training_quality(write_manifest: ManifestWriter, manifests: Path) -> None:
    scenario = '[[benchmark.accuracy]]\nmetric = "top1"\nreference = 70.0\nscenario = "Interactive"\n'
    counts = "scenario_sample_counts = { Interactive = 8000 }"
    write_manifest(BASE + bench("b", counts, ACC + scenario) + bench("t", 'suite = "training"', QUALITY))
    catalog = load_catalog([manifests])
    assert dict(catalog.benchmarks["b"].scenario_sample_counts) == {"Interactive": 8000}
    assert [(m.metric, m.scenario) for m in catalog.benchmarks["b"].metrics] == [("top1", ""), ("top1", "Interactive")]
    (q,) = catalog.benchmarks["t"].quality
    assert (q.metric, q.direction, q.target, str(q)) == ("log_perplexity", "<=", 3.3, "log_perplexity <= 3.3")


def test_an_upper_bound_alone_is_a_limit_with_no_floor(write_manifest: ManifestWriter, manifests: Path) -> None:
    cap = '[[benchmark.accuracy]]\nmetric = "tokens_per_sample"\nupper = 10998.9\n'
    write_manifest(BASE + bench("b", "", ACC + cap))
    top1, tps = load_catalog([manifests]).benchmarks["b"].metrics
    assert (top1.reference, top1.targets()) == (76.46, pytest.approx((76.46 * 0.99,)))
    assert (tps.metric, tps.reference, tps.target_ratio, tps.targets(), tps.upper) == (
        "tokens_per_sample",
        None,
        (),
        (),
        10998.9,
    )


def test_extra_datasets_are_fetched_with_the_benchmark(write_manifest: ManifestWriter, manifests: Path) -> None:
    extra = BASE.replace('name = "ds"', 'name = "eval"', 1).split("[[model]]")[0].replace("schema = 1\n", "")
    write_manifest(BASE + extra + bench("b", 'extra_datasets = ["eval"]'))
    catalog = load_catalog([manifests])
    b = catalog.benchmarks["b"]
    assert (b.dataset, b.extra_datasets, b.artifact_names) == ("ds", ("eval",), ("ds", "eval", "net"))
    assert [a.name for a in catalog.resolve(["b"])] == ["ds", "eval", "net"]


@pytest.mark.parametrize(
    ("body", "tail", "fragment"),
    [
        ("", ACC + 'scenario = "Batch"\n', "scenario: expected one of SingleStream, MultiStream, Offline, Server"),
        ("", '[[benchmark.accuracy]]\nmetric = "top1"\n', "missing required key 'reference' (or 'upper' alone"),
        (
            "",
            '[[benchmark.accuracy]]\nmetric = "tokens_per_sample"\nupper = 9.0\ntarget_ratio = [0.9]\n',
            "target_ratio: needs a 'reference' (an upper bound alone has no ratios)",
        ),
        ('extra_datasets = ["nope"]', ACC, "extra_datasets: no dataset named 'nope'"),
        ('extra_datasets = ["net"]', ACC, "extra_datasets: no dataset named 'net'"),
        ('extra_datasets = ["ds"]', ACC, "extra_datasets: 'ds' is already the benchmark's dataset"),
        ('suite = "training"', "", "quality: a training benchmark needs its quality target"),
        ('suite = "training"', QUALITY.replace('"<="', '"=<"'), "direction: expected one of '<=', '>=', '<', '>'"),
        ('suite = "training"', QUALITY.replace("3.3", '"3.3"'), "target: expected a number, got '3.3'"),
        ('suite = "training"', QUALITY + "goal = 1\n", "unknown key 'goal'"),
        ("scenario_sample_counts = { Batch = 1 }", ACC, "scenario_sample_counts: 'Batch' is not one of"),
        ("scenario_sample_counts = { Server = -1 }", ACC, "Server: expected a non-negative integer"),
    ],
    ids=[
        "scenario",
        "no-reference",
        "ratio-without-reference",
        "extra-unknown",
        "extra-model",
        "extra-twice",
        "no-quality",
        "direction",
        "target",
        "key",
        "counts-scenario",
        "counts-value",
    ],
)
def test_target_problems(write_manifest: ManifestWriter, manifests: Path, body: str, tail: str, fragment: str) -> None:
    write_manifest(BASE + bench("b", body, tail))
    problem(manifests, "benchmark 'b'", fragment)


# --- rounded sizes, pins and counts -------------------------------------------------------------


def folder(extra: str, name: str = "d/") -> str:
    return (
        'schema = 1\n[[dataset]]\nname = "f"\n[[dataset.files]]\n'
        f'name = "{name}"\nurls = ["mlc-r2://h.example/metadata/x.uri"]\nchecksum = "listed"\n{extra}\n'
    )


def test_rounded_size_pins_and_count_parse(write_manifest: ManifestWriter, manifests: Path) -> None:
    write_manifest(folder('approx_size = "2.2 TB"\nlisted_count = 22\npins = { "a/b.npy" = "' + H + '" }'))
    (spec,) = load_catalog([manifests]).artifacts["f"].files
    assert (spec.approx_size, spec.size, spec.listed_count) == (2_200_000_000_000, None, 22)
    assert {k: str(v) for k, v in spec.pins.items()} == {"a/b.npy": H}
    assert spec.planned_size == 2_200_000_000_000


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (folder('approx_size = "lots"'), 'approx_size: expected bytes or a figure like "163 GB"'),
        (folder('approx_size = "2 PB"'), "approx_size"),
        (folder('pins = { "a" = "md5:zz" }'), "pins: 'a'"),
        (folder('pins = "a"'), "pins: expected a table"),
        (folder("listed_count = 1.5"), "listed_count: expected a non-negative integer"),
        (
            folder("listed_count = 2", name="a.bin").replace('"listed"', f'"{H}"'),
            "listed_count: only on a folder entry",
        ),
        (
            folder('size = 5\napprox_size = "5 MB"', name="a.bin").replace('"listed"', f'"{H}"'),
            "approx_size: not with size",
        ),
    ],
    ids=["approx-form", "approx-huge", "pin-hex", "pins-type", "count-type", "count-on-file", "approx-and-size"],
)
def test_size_and_listing_problems(write_manifest: ManifestWriter, manifests: Path, text: str, fragment: str) -> None:
    write_manifest(text)
    problem(manifests, "dataset 'f'", fragment)
