"""manifest: parsing v1 TOML into frozen dataclasses, every lint problem, the Catalog."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import MappingProxyType

import pytest
from conftest import ManifestWriter, dataset_toml
from httpserver import md5
from typer.testing import CliRunner

from provision.cli.app import app
from provision.config import builtin_manifest_dir
from provision.errors import ManifestError, UnknownNameError
from provision.manifest.checksum import Checksum
from provision.manifest.model import (
    KNOWN_METRICS,
    MODEL_FORMATS,
    SCHEMA_VERSION,
    AccuracySpec,
    Artifact,
    Benchmark,
    Catalog,
    FileSpec,
    LabelsRef,
    PreprocessSpec,
)
from provision.manifest.parse import lint, load_catalog, manifest_files

H = "md5:" + "0" * 32
H2 = "md5:" + "1" * 32


def problems_of(manifests: Path) -> list[str]:
    """Lint ``manifests``; check load_catalog raises the very same problems; return them."""
    found = lint([manifests])
    assert found, "expected at least one problem"
    with pytest.raises(ManifestError) as info:
        load_catalog([manifests])
    assert info.value.problems == found
    assert info.value.exit_code == 6
    for line in found:
        assert "\n" not in line
    return found


def the_problem(found: list[str], path: Path, *fragments: str) -> str:
    """The one problem line of ``path`` holding every fragment (fails listing all problems)."""
    hits = [p for p in found if p.startswith(f"{path}: ") and all(f in p for f in fragments)]
    assert len(hits) == 1, f"no single problem with {fragments!r} in:\n" + "\n".join(found)
    return hits[0]


def file_table(name: str = "a.bin", urls: str = '["https://example.org/a.bin"]', extra: str = "") -> str:
    return f'name = "{name}"\nurls = {urls}\nchecksum = "{H}"\n{extra}\n'


def one_dataset(name: str = "ds", file_body: str | None = None, extra: str = "") -> str:
    body = file_body if file_body is not None else file_table()
    return f'schema = 1\n[[dataset]]\nname = "{name}"\n{extra}\n[[dataset.files]]\n{body}'


# A valid dataset 'ds' (data.bin, labels.txt) and model 'net'; tests append a benchmark.
BASE = (
    "schema = 1\n"
    + '[[dataset]]\nname = "ds"\n[[dataset.files]]\n'
    + file_table("data.bin")
    + "[[dataset.files]]\n"
    + file_table("labels.txt")
    + '[[model]]\nname = "net"\nformat = "onnx"\n[[model.files]]\n'
    + file_table("net.onnx")
)


# --- file-level problems ---------------------------------------------------------------


def test_toml_syntax_error(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest('schema = 1\n[[dataset]\nname = "x"\n')
    found = problems_of(manifests)
    assert len(found) == 1
    line = the_problem(found, path, "TOML syntax error")
    assert "line 2" in line


def test_syntax_error_in_one_file_does_not_hide_others(write_manifest: ManifestWriter, manifests: Path) -> None:
    bad = write_manifest("schema = = 1\n", name="a")
    other = write_manifest(one_dataset(file_body=file_table(extra="size = -5")), name="b")
    found = problems_of(manifests)
    the_problem(found, bad, "TOML syntax error")
    the_problem(found, other, "dataset 'ds'", "size")


def test_missing_schema(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(one_dataset().replace("schema = 1\n", ""))
    found = problems_of(manifests)
    assert found == [f"{path}: missing 'schema = 1' at the top"]


@pytest.mark.parametrize(("schema", "shown"), [("2", "2"), ("0", "0"), ('"1"', "'1'")])
def test_wrong_schema_version(write_manifest: ManifestWriter, manifests: Path, schema: str, shown: str) -> None:
    path = write_manifest(one_dataset(extra="bad_key = 1").replace("schema = 1", f"schema = {schema}"))
    found = problems_of(manifests)
    # A newer schema is not interpreted further: one problem, not one per unknown key.
    assert found == [f"{path}: schema: this provision reads schema {SCHEMA_VERSION}, got {shown}; upgrade provision"]


def test_unknown_top_level_key(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest("bogus = 3\n" + one_dataset())
    found = problems_of(manifests)
    line = the_problem(found, path, "unknown key 'bogus'")
    assert "allowed: benchmark, dataset, model, schema" in line


def test_misspelt_top_level_key(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest('schema = 1\n[[datasets]]\nname = "x"\n')
    found = problems_of(manifests)
    the_problem(found, path, "unknown key 'datasets'", "did you mean 'dataset'?")


def test_dataset_as_single_table(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest('schema = 1\n[dataset]\nname = "x"\n')
    found = problems_of(manifests)
    the_problem(found, path, "dataset: use [[dataset]]")


def test_benchmark_as_single_table(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(BASE + '[benchmark]\nname = "b"\ndataset = "ds"\n')
    found = problems_of(manifests)
    the_problem(found, path, "benchmark: use [[benchmark]]")


def test_missing_path_is_a_problem(tmp_path: Path) -> None:
    found = lint([tmp_path / "nowhere"])
    assert found == [f"{tmp_path / 'nowhere'}: no such file or folder"]
    with pytest.raises(ManifestError):
        load_catalog([tmp_path / "nowhere"])


def test_unreadable_encoding(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = manifests / "latin.toml"
    path.write_bytes(b"schema = 1\n# caf\xe9\n")
    found = problems_of(manifests)
    the_problem(found, path, "cannot read")


# --- missing required keys -------------------------------------------------------------


def test_missing_artifact_name(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(one_dataset().replace('name = "ds"\n', "", 1))
    found = problems_of(manifests)
    assert found == [f"{path}: dataset[0]: missing required key 'name'"]


def test_missing_model_name_uses_index(write_manifest: ManifestWriter, manifests: Path) -> None:
    text = BASE + '[[model]]\nformat = "onnx"\n[[model.files]]\n' + file_table()
    path = write_manifest(text)
    found = problems_of(manifests)
    assert found == [f"{path}: model[1]: missing required key 'name'"]


def test_missing_urls(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(one_dataset(file_body=f'name = "a.bin"\nchecksum = "{H}"\n'))
    found = problems_of(manifests)
    assert found == [f"{path}: dataset 'ds': files[0]: missing required key 'urls'"]


def test_empty_urls(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(one_dataset(file_body=file_table(urls="[]")))
    found = problems_of(manifests)
    assert found == [f"{path}: dataset 'ds': files[0]: urls: needs at least one URL"]


def test_urls_not_strings(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(one_dataset(file_body=file_table(urls="[1, 2]")))
    found = problems_of(manifests)
    the_problem(found, path, "dataset 'ds': files[0]: urls: expected a list of strings")


def test_missing_checksum(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(one_dataset(file_body='name = "a.bin"\nurls = ["https://e.org/a"]\n'))
    found = problems_of(manifests)
    assert found == [f"{path}: dataset 'ds': files[0]: missing required key 'checksum'"]


def test_missing_file_name(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(one_dataset(file_body=f'urls = ["https://e.org/a"]\nchecksum = "{H}"\n'))
    found = problems_of(manifests)
    assert found == [f"{path}: dataset 'ds': files[0]: missing required key 'name'"]


def test_missing_files(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest('schema = 1\n[[dataset]]\nname = "ds"\n')
    found = problems_of(manifests)
    assert found == [f"{path}: dataset 'ds': files: needs at least one [[dataset.files]] table"]


def test_missing_model_format(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(BASE.replace('format = "onnx"\n', ""))
    found = problems_of(manifests)
    assert found == [f"{path}: model 'net': missing required key 'format'"]


def test_missing_benchmark_dataset(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(BASE + '[[benchmark]]\nname = "b"\nmodels = ["net"]\n')
    found = problems_of(manifests)
    the_problem(found, path, "benchmark 'b'", "missing required key 'dataset'")


def test_missing_benchmark_name(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(BASE + '[[benchmark]]\ndataset = "ds"\n')
    found = problems_of(manifests)
    assert found == [f"{path}: benchmark[0]: missing required key 'name'"]


@pytest.mark.parametrize(
    ("accuracy", "key"),
    [
        ("reference = 76.0\n", "missing required key 'metric'"),
        ('metric = "top1"\n', "missing required key 'reference' (or 'upper' alone, for a limit with no floor)"),
    ],
)
def test_missing_accuracy_keys(write_manifest: ManifestWriter, manifests: Path, accuracy: str, key: str) -> None:
    path = write_manifest(BASE + '[[benchmark]]\nname = "b"\ndataset = "ds"\n[benchmark.accuracy]\n' + accuracy)
    found = problems_of(manifests)
    assert found == [f"{path}: benchmark 'b': accuracy: {key}"]


def test_missing_preprocess_recipe(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(BASE + '[[benchmark]]\nname = "b"\ndataset = "ds"\n[benchmark.preprocess]\nsize = 3\n')
    found = problems_of(manifests)
    assert found == [f"{path}: benchmark 'b': preprocess: missing required key 'recipe'"]


@pytest.mark.parametrize(
    ("text", "where", "key"),
    [
        (one_dataset(name=""), "dataset[0]", "name"),
        (one_dataset(file_body=file_table(name="")), "dataset 'ds': files[0]", "name"),
        (one_dataset(file_body='name = "a"\nurls = ["https://e.org/a"]\nchecksum = ""\n'), "files[0]", "checksum"),
        (BASE.replace('format = "onnx"', 'format = ""'), "model 'net'", "format"),
        (BASE + '[[benchmark]]\nname = "b"\ndataset = " "\n', "benchmark 'b'", "dataset"),
        (
            BASE + '[[benchmark]]\nname = "b"\ndataset = "ds"\n[benchmark.accuracy]\nmetric = ""\nreference = 1\n',
            "benchmark 'b': accuracy",
            "metric",
        ),
    ],
)
def test_empty_required_strings_are_reported(
    write_manifest: ManifestWriter, manifests: Path, text: str, where: str, key: str
) -> None:
    # An empty required value must be a problem, not a silently dropped entry.
    path = write_manifest(text)
    found = problems_of(manifests)
    the_problem(found, path, where, f"{key}: must not be empty")


@pytest.mark.parametrize("url", ['""', '"  "'])
def test_empty_url(write_manifest: ManifestWriter, manifests: Path, url: str) -> None:
    path = write_manifest(one_dataset(file_body=file_table(urls=f'["https://e.org/a", {url}]')))
    found = problems_of(manifests)
    assert found == [f"{path}: dataset 'ds': files[0].urls: empty URL"]


@pytest.mark.parametrize(
    ("line", "field"),
    [("description = 5", "description"), ('license = ["x"]', "license"), ("homepage = 1.5", "homepage")],
)
def test_non_string_fields(write_manifest: ManifestWriter, manifests: Path, line: str, field: str) -> None:
    path = write_manifest(one_dataset(extra=line))
    found = problems_of(manifests)
    the_problem(found, path, "dataset 'ds'", f"{field}: expected a string")


def test_non_string_name(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(one_dataset().replace('name = "ds"', "name = 7"))
    found = problems_of(manifests)
    the_problem(found, path, "dataset[0]", "name: expected a string, got int")


# --- misspelt / unknown keys ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "where", "bad", "good"),
    [
        (one_dataset(extra='descripton = "x"'), "dataset 'ds'", "descripton", "description"),
        (one_dataset(extra='alias = ["d"]'), "dataset 'ds'", "alias", "aliases"),
        (one_dataset(file_body=file_table(extra="sise = 3")), "dataset 'ds': files[0]", "sise", "size"),
        (one_dataset(file_body=file_table(extra='url = ["x"]')), "dataset 'ds': files[0]", "url", "urls"),
        (BASE.replace('format = "onnx"', 'format = "onnx"\nlicence = "MIT"'), "model 'net'", "licence", "license"),
        (BASE + '[[benchmark]]\nname = "b"\ndataset = "ds"\nmodles = ["net"]\n', "benchmark 'b'", "modles", "models"),
        (
            BASE + '[[benchmark]]\nname = "b"\ndataset = "ds"\n[benchmark.accuracy]\n'
            'metric = "top1"\nreference = 1.0\ntarget_ratios = [0.99]\n',
            "benchmark 'b': accuracy",
            "target_ratios",
            "target_ratio",
        ),
    ],
)
def test_misspelt_key_suggests(
    write_manifest: ManifestWriter, manifests: Path, text: str, where: str, bad: str, good: str
) -> None:
    path = write_manifest(text)
    found = problems_of(manifests)
    line = the_problem(found, path, where, f"unknown key {bad!r}")
    assert line.endswith(f"did you mean {good!r}?")


def test_unknown_key_without_close_match_lists_allowed(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(one_dataset(file_body=file_table(extra="zzzzzz = 1")))
    found = problems_of(manifests)
    line = the_problem(found, path, "files[0]", "unknown key 'zzzzzz'")
    assert line.endswith(
        "allowed: approx_size, checksum, expect_files, extract, extract_to, extracted_size, keep_archive, "
        "listed_count, members, name, pins, size, strip_components, tree, trust, urls"
    )


def test_model_only_key_on_dataset(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(one_dataset(extra='format = "onnx"'))
    found = problems_of(manifests)
    the_problem(found, path, "dataset 'ds'", "unknown key 'format'")


# --- checksums and sizes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("checksum", "fragment"),
    [
        ("crc32:deadbeef", "unknown checksum algorithm 'crc32'"),
        ("md5:" + "0" * 31, "md5 digest must be 32 hex digits, got 31 characters"),
        ("sha256:" + "a" * 40, "sha256 digest must be 64 hex digits, got 40 characters"),
        ("md5:" + "g" * 32, "md5 digest must be 32 hex digits"),
        ("md5:" + "0" * 30 + "-1", "md5 digest must be 32 hex digits"),
        ("0" * 32, "is not of the form 'alg:hex'"),
    ],
)
def test_bad_checksum(write_manifest: ManifestWriter, manifests: Path, checksum: str, fragment: str) -> None:
    path = write_manifest(
        one_dataset(file_body=f'name = "a.bin"\nurls = ["https://e.org/a"]\nchecksum = "{checksum}"\n')
    )
    found = problems_of(manifests)
    assert len(found) == 1
    the_problem(found, path, "dataset 'ds': files[0]: checksum: ", fragment)


def test_checksum_not_a_string(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(one_dataset(file_body='name = "a"\nurls = ["https://e.org/a"]\nchecksum = 5\n'))
    found = problems_of(manifests)
    the_problem(found, path, "files[0]", "checksum: expected a string, got int")


@pytest.mark.parametrize("size", ["-1", '"12"', "true", "1.5", "[1]"])
def test_bad_size(write_manifest: ManifestWriter, manifests: Path, size: str) -> None:
    path = write_manifest(one_dataset(file_body=file_table(extra=f"size = {size}")))
    found = problems_of(manifests)
    assert len(found) == 1
    line = the_problem(found, path, "dataset 'ds': files[0]: size: expected a non-negative integer (bytes)")
    assert line.endswith(size.replace("true", "True").replace('"', "'"))


def test_size_zero_is_fine(write_manifest: ManifestWriter, manifests: Path) -> None:
    write_manifest(one_dataset(file_body=file_table(extra="size = 0")))
    cat = load_catalog([manifests])
    assert cat.artifacts["ds"].files[0].size == 0


# --- names ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ResNet", "a b", "-x", ".x", "x/y", "ünï", "_x"])
def test_bad_artifact_name(write_manifest: ManifestWriter, manifests: Path, name: str) -> None:
    path = write_manifest(one_dataset(name=name))
    found = problems_of(manifests)
    the_problem(found, path, f"dataset {name!r}", f"name {name!r} must be lower-case letters")


def test_bad_alias_name(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(one_dataset(extra='aliases = ["ok-alias", "Bad Alias"]'))
    found = problems_of(manifests)
    assert found == [f"{path}: dataset 'ds': alias 'Bad Alias' must be lower-case letters, digits, '.', '_', '+', '-'"]


def test_bad_benchmark_name(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(BASE + '[[benchmark]]\nname = "My Bench"\ndataset = "ds"\n')
    found = problems_of(manifests)
    the_problem(found, path, "benchmark 'My Bench'", "name 'My Bench' must be lower-case")


@pytest.mark.parametrize("fname", ["../x.bin", "a/../../b", "/etc/passwd", "a\\b", "a/./b", ".", "a//b", "./a"])
def test_bad_file_name(write_manifest: ManifestWriter, manifests: Path, fname: str) -> None:
    escaped = fname.replace("\\", "\\\\")
    path = write_manifest(one_dataset(file_body=file_table(name=escaped)))
    found = problems_of(manifests)
    assert len(found) == 1
    the_problem(found, path, "dataset 'ds': files[0]", f"name {fname!r} must be a relative path without '..'")


def test_folder_entry_needs_listed_checksum(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(one_dataset(file_body=file_table(name="dir/")))
    found = problems_of(manifests)
    the_problem(
        found, path, "dataset 'ds': files[0]", 'a folder entry needs both name = "<dir>/" and checksum = "listed"'
    )


def test_nested_file_name_is_fine(write_manifest: ManifestWriter, manifests: Path) -> None:
    write_manifest(one_dataset(file_body=file_table(name="sub/dir/a.bin")))
    assert load_catalog([manifests]).artifacts["ds"].files[0].name == "sub/dir/a.bin"


def test_duplicate_file_name(write_manifest: ManifestWriter, manifests: Path) -> None:
    text = one_dataset() + "[[dataset.files]]\n" + file_table().replace(H, H2)
    path = write_manifest(text)
    found = problems_of(manifests)
    assert found == [f"{path}: dataset 'ds': files: duplicate file name 'a.bin'"]


def test_duplicate_names_across_files(write_manifest: ManifestWriter, manifests: Path) -> None:
    first = write_manifest(one_dataset(name="same"), name="a")
    second = write_manifest(BASE.replace('name = "net"', 'name = "same"'), name="b")
    found = problems_of(manifests)
    assert found == [f"{second}: model 'same': name 'same' is already defined in {first}"]


def test_duplicate_names_in_one_file(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(one_dataset() + '[[dataset]]\nname = "ds"\n[[dataset.files]]\n' + file_table())
    found = problems_of(manifests)
    assert found == [f"{path}: dataset 'ds': name 'ds' is already defined in {path}"]


def test_alias_collides_with_name(write_manifest: ManifestWriter, manifests: Path) -> None:
    first = write_manifest(one_dataset(name="imagenet"), name="a")
    second = write_manifest(one_dataset(name="imagenet-val", extra='aliases = ["imagenet"]'), name="b")
    found = problems_of(manifests)
    assert found == [f"{second}: dataset 'imagenet-val': name 'imagenet' is already defined in {first}"]


def test_name_collides_with_earlier_alias(write_manifest: ManifestWriter, manifests: Path) -> None:
    first = write_manifest(one_dataset(name="squad-v1.1", extra='aliases = ["squad"]'), name="a")
    second = write_manifest(BASE + '[[benchmark]]\nname = "squad"\ndataset = "ds"\n', name="b")
    found = problems_of(manifests)
    assert found == [f"{second}: benchmark 'squad': name 'squad' is already defined in {first}"]


# --- cross references --------------------------------------------------------------------


def test_benchmark_unknown_dataset(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(BASE + '[[benchmark]]\nname = "b"\ndataset = "dss"\n')
    found = problems_of(manifests)
    assert found == [f"{path}: benchmark 'b': dataset: no dataset named 'dss'; did you mean 'ds'?"]


def test_benchmark_dataset_names_a_model(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(BASE + '[[benchmark]]\nname = "b"\ndataset = "net"\n')
    found = problems_of(manifests)
    the_problem(found, path, "benchmark 'b': dataset: no dataset named 'net'")


def test_benchmark_unknown_model(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(BASE + '[[benchmark]]\nname = "b"\ndataset = "ds"\nmodels = ["net", "nett", "ds"]\n')
    found = problems_of(manifests)
    assert found == [
        f"{path}: benchmark 'b': models: no model named 'nett'; did you mean 'net'?",
        f"{path}: benchmark 'b': models: no model named 'ds'; allowed: net",  # a dataset is not a model
    ]


def test_benchmark_unknown_labels_artifact(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(BASE + '[[benchmark]]\nname = "b"\ndataset = "ds"\nlabels = "nope/labels.txt"\n')
    found = problems_of(manifests)
    assert found == [f"{path}: benchmark 'b': labels: no artifact named 'nope'"]


def test_benchmark_unknown_labels_file(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(BASE + '[[benchmark]]\nname = "b"\ndataset = "ds"\nlabels = "ds/missing.txt"\n')
    found = problems_of(manifests)
    assert found == [
        f"{path}: benchmark 'b': labels: artifact 'ds' has no file 'missing.txt' "
        "(name a listed file, or a path inside an archive's extract_to folder)"
    ]


def test_benchmark_labels_inside_extracted_archive(write_manifest: ManifestWriter, manifests: Path) -> None:
    write_manifest(
        'schema = 1\n[[dataset]]\nname = "aux"\n[[dataset.files]]\nname = "aux.tar.gz"\n'
        'urls = ["https://e.org/aux.tar.gz"]\nchecksum = "md5:' + "0" * 32 + '"\nextract = "tar.gz"\n'
        '[[benchmark]]\nname = "b"\ndataset = "aux"\nlabels = "aux/aux/val.txt"\n'
    )
    assert lint([manifests]) == []


@pytest.mark.parametrize("labels", ["labels.txt", "/labels.txt", "ds/"])
def test_benchmark_labels_syntax(write_manifest: ManifestWriter, manifests: Path, labels: str) -> None:
    path = write_manifest(BASE + f'[[benchmark]]\nname = "b"\ndataset = "ds"\nlabels = "{labels}"\n')
    found = problems_of(manifests)
    the_problem(found, path, "benchmark 'b'", f"labels: expected 'artifact/file', got {labels!r}")


def test_cross_file_references_are_fine(write_manifest: ManifestWriter, manifests: Path) -> None:
    write_manifest(BASE, name="a")
    write_manifest(
        'schema = 1\n[[benchmark]]\nname = "b"\ndataset = "ds"\nmodels = ["net"]\nlabels = "ds/labels.txt"\n', name="b"
    )
    cat = load_catalog([manifests])
    assert cat.benchmarks["b"].labels == LabelsRef("ds", "labels.txt")


# --- URLs, accuracy, formats -------------------------------------------------------------------


@pytest.mark.parametrize("url", ["ftp://e.org/a", "gs://bucket/a", "sftp://org/repo"])
def test_unsupported_url_scheme(write_manifest: ManifestWriter, manifests: Path, url: str) -> None:
    path = write_manifest(one_dataset(file_body=file_table(urls=f'["https://e.org/a", "{url}"]')))
    found = problems_of(manifests)
    scheme = url.split(":")[0]
    where = f"{path}: dataset 'ds': files[0].urls"
    assert found == [
        f"{where}: unsupported URL scheme {scheme!r}; expected one of http, https, file, manual, hf, hf-dataset, "
        "mlc-r2, s3"
    ]


# --- lint: URLs no source reads, sizes past 1 PiB, names that forge output lines ------------------

SCHEMES = "http, https, file, manual, hf, hf-dataset, mlc-r2, s3"


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,x", "mailto:a@e.org", "C:/data/a.bin", "x:y"])
def test_an_unknown_scheme_without_slashes_is_refused(
    write_manifest: ManifestWriter, manifests: Path, url: str
) -> None:
    path = write_manifest(one_dataset(file_body=file_table(urls=f'["https://e.org/a", "{url}"]')))
    found = problems_of(manifests)
    scheme = url.split(":")[0]
    assert found == [
        f"{path}: dataset 'ds': files[0].urls: unsupported URL scheme {scheme!r}; expected one of {SCHEMES} "
        f"(a relative path with ':' is written {'./' + url!r})"
    ]


@pytest.mark.parametrize("url", ["https:e.org/a", "file:/srv/a.bin", "HF:org/repo"])
def test_a_known_scheme_without_slashes_is_refused(write_manifest: ManifestWriter, manifests: Path, url: str) -> None:
    path = write_manifest(one_dataset(file_body=file_table(urls=f'["{url}"]')))
    found = problems_of(manifests)
    scheme = url.split(":")[0].lower()
    assert found == [f"{path}: dataset 'ds': files[0].urls: URL {url!r}: write '{scheme}://…'"]


def test_a_relative_path_with_a_colon_is_written_with_dot_slash(manifests: Path) -> None:
    manifests.mkdir(exist_ok=True)
    (manifests / "t.toml").write_text(one_dataset(file_body=file_table(urls='["./a:b.bin"]')), encoding="utf-8")
    cat = load_catalog([manifests])
    assert cat.artifacts["ds"].files[0].urls == (str((manifests / "a:b.bin").resolve()),)


@pytest.mark.parametrize("page", ["javascript:alert(1)", "", "www.e.org/register", "file:///etc/passwd"])
def test_a_manual_page_must_be_a_web_url(write_manifest: ManifestWriter, manifests: Path, page: str) -> None:
    path = write_manifest(one_dataset(file_body=file_table(urls=f'["manual:{page}"]')))
    found = problems_of(manifests)
    assert found == [
        f"{path}: dataset 'ds': files[0].urls: manual: the registration page must be an https:// or http:// URL, "
        f"got {page!r}"
    ]


@pytest.mark.parametrize("homepage", ["javascript:alert(1)", "e.org", "ftp://e.org/"])
def test_a_homepage_must_be_a_web_url(write_manifest: ManifestWriter, manifests: Path, homepage: str) -> None:
    path = write_manifest(one_dataset(extra=f'homepage = "{homepage}"'))
    found = problems_of(manifests)
    assert found == [f"{path}: dataset 'ds': homepage: expected an https:// or http:// URL, got {homepage!r}"]


PIB = 1 << 50


@pytest.mark.parametrize(
    ("key", "extra"),
    [("size", f"size = {PIB + 1}"), ("extracted_size", f'extract = "tar"\nextracted_size = {PIB + 1}')],
)
def test_a_size_over_1_pib_is_refused(write_manifest: ManifestWriter, manifests: Path, key: str, extra: str) -> None:
    path = write_manifest(one_dataset(file_body=file_table(name="a.tar", extra=extra)))
    found = problems_of(manifests)
    assert found == [
        f"{path}: dataset 'ds': files[0]: {key}: expected at most 1 PiB ({PIB} bytes), got {PIB + 1}; a typo?"
    ]


def test_a_size_of_1_pib_is_fine(write_manifest: ManifestWriter, manifests: Path) -> None:
    write_manifest(
        one_dataset(file_body=file_table(name="a.tar", extra=f'size = {PIB}\nextract = "tar"\nextracted_size = {PIB}'))
    )
    spec = load_catalog([manifests]).artifacts["ds"].files[0]
    assert spec.size == PIB and spec.extract is not None and spec.extract.extracted_size == PIB


# (TOML escape, the character): newline, ANSI escape, tab, DEL, C1 NEL and CSI, line separator
CONTROLS = [
    ("\\n", "\n"),
    ("\\u001b", "\x1b"),
    ("\\t", "\t"),
    ("\\u007f", "\x7f"),
    ("\\u0085", "\x85"),
    ("\\u009b", "\x9b"),
    ("\\u2028", "\u2028"),
]


def _odd_field(field: str, toml: str) -> tuple[str, str, str]:
    """(manifest, the entry and field of the problem, the odd text) for ``field`` holding ``toml``."""
    text = toml.encode().decode("unicode_escape")  # what TOML reads
    if field == "file name":
        return one_dataset(file_body=file_table(name=f"a{toml}b.bin")), "dataset 'ds': files[0]: name", f"a{text}b.bin"
    if field == "extract_to":
        body = file_table(name="a.tar", extra=f'extract = "tar"\nextract_to = "x{toml}y"')
        return one_dataset(file_body=body), "dataset 'ds': files[0]: extract_to:", f"x{text}y"
    if field == "members":
        body = file_table(name="a.tar", extra=f'extract = "tar"\nmembers = ["ok/*", "*.jpg{toml}[2K"]')
        return one_dataset(file_body=body), "dataset 'ds': files[0]: members: glob", f"*.jpg{text}[2K"
    if field == "url":
        body = file_table(urls=f'["https://e.org/a{toml}b"]')
        return one_dataset(file_body=body), "dataset 'ds': files[0].urls: URL", f"https://e.org/a{text}b"
    if field == "homepage":
        return (
            one_dataset(extra=f'homepage = "https://e.org/{toml}"'),
            "dataset 'ds': homepage:",
            f"https://e.org/{text}",
        )
    raise AssertionError(field)


@pytest.mark.parametrize(("toml", "char"), CONTROLS, ids=[repr(c) for _, c in CONTROLS])
@pytest.mark.parametrize("field", ["file name", "extract_to", "members", "url", "homepage"])
def test_a_control_character_is_refused_and_shown_escaped(
    write_manifest: ManifestWriter, manifests: Path, field: str, toml: str, char: str
) -> None:
    text, where, odd = _odd_field(field, toml)
    path = write_manifest(text)
    found = problems_of(manifests)
    assert found == [f"{path}: {where} {odd!r} holds the control character {char!r}; it must be printable"]
    assert found[0].isprintable()


@pytest.mark.parametrize(("toml", "char"), CONTROLS, ids=[repr(c) for _, c in CONTROLS])
@pytest.mark.parametrize("what", ["dataset", "alias", "benchmark"])
def test_a_control_character_in_a_name_or_alias_is_refused(
    write_manifest: ManifestWriter, manifests: Path, what: str, toml: str, char: str
) -> None:
    name = f"ok{char}"  # a trailing newline used to pass the name rule ('$' matches before it)
    if what == "dataset":
        path = write_manifest(one_dataset(name=f"ok{toml}"))
        where, label = f"dataset {name!r}", "name"
    elif what == "alias":
        path = write_manifest(one_dataset(extra=f'aliases = ["fine", "ok{toml}"]'))
        where, label = "dataset 'ds'", "alias"
    else:
        path = write_manifest(BASE + f'[[benchmark]]\nname = "ok{toml}"\ndataset = "ds"\n')
        where, label = f"benchmark {name!r}", "name"
    found = problems_of(manifests)
    line = the_problem(found, path, f"{where}: {label} {name!r} must be lower-case letters")
    assert line.isprintable()


def test_a_manifest_path_with_a_control_character_is_quoted(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(one_dataset(name="Bad"), name="odd\nname")
    found = problems_of(manifests)
    assert found == [f"{str(path)!r}: dataset 'Bad': name 'Bad' must be lower-case letters, digits, '.', '_', '+', '-'"]


@pytest.mark.parametrize("ratio", ["0", "1.5", "-0.5", '"0.99"', "[]", "[0.5, 2]", "true"])
def test_bad_target_ratio(write_manifest: ManifestWriter, manifests: Path, ratio: str) -> None:
    text = BASE + (
        '[[benchmark]]\nname = "b"\ndataset = "ds"\n[benchmark.accuracy]\n'
        f'metric = "top1"\nreference = 76.0\ntarget_ratio = {ratio}\n'
    )
    path = write_manifest(text)
    found = problems_of(manifests)
    assert len(found) == 1
    the_problem(found, path, "benchmark 'b': accuracy: target_ratio: expected a number in (0, 1]")


def test_bad_reference(write_manifest: ManifestWriter, manifests: Path) -> None:
    text = BASE + '[[benchmark]]\nname = "b"\ndataset = "ds"\n[benchmark.accuracy]\nmetric = "f1"\nreference = "90"\n'
    path = write_manifest(text)
    found = problems_of(manifests)
    assert found == [f"{path}: benchmark 'b': accuracy: reference: expected a number, got '90'"]


@pytest.mark.parametrize(("metric", "hint"), [("top-1", "did you mean 'top1'?"), ("bleu", "allowed: ")])
def test_unknown_metric(write_manifest: ManifestWriter, manifests: Path, metric: str, hint: str) -> None:
    text = BASE + (
        f'[[benchmark]]\nname = "b"\ndataset = "ds"\n[benchmark.accuracy]\nmetric = "{metric}"\nreference = 1.0\n'
    )
    path = write_manifest(text)
    found = problems_of(manifests)
    assert len(found) == 1
    line = the_problem(found, path, "benchmark 'b': accuracy: metric: unknown metric", repr(metric))
    assert hint in line


def test_accuracy_not_a_table(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(BASE + '[[benchmark]]\nname = "b"\ndataset = "ds"\naccuracy = 0.99\n')
    found = problems_of(manifests)
    assert found == [f"{path}: benchmark 'b': accuracy: expected a table"]


def test_preprocess_not_a_table(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(BASE + '[[benchmark]]\nname = "b"\ndataset = "ds"\npreprocess = "imagenet"\n')
    found = problems_of(manifests)
    assert found == [f"{path}: benchmark 'b': preprocess: expected a table"]


@pytest.mark.parametrize(("fmt", "hint"), [("onxx", "did you mean 'onnx'?"), ("keras", "allowed: ")])
def test_unknown_model_format(write_manifest: ManifestWriter, manifests: Path, fmt: str, hint: str) -> None:
    path = write_manifest(BASE.replace('format = "onnx"', f'format = "{fmt}"'))
    found = problems_of(manifests)
    assert len(found) == 1
    line = the_problem(found, path, "model 'net': format: unknown format", repr(fmt))
    assert hint in line


def test_every_known_format_and_metric_accepted(write_manifest: ManifestWriter, manifests: Path) -> None:
    parts = ["schema = 1", '[[dataset]]\nname = "ds"\n[[dataset.files]]\n' + file_table()]
    for i, fmt in enumerate(sorted(MODEL_FORMATS)):
        parts.append(f'[[model]]\nname = "m{i}"\nformat = "{fmt}"\n[[model.files]]\n' + file_table())
    for i, metric in enumerate(sorted(KNOWN_METRICS)):
        parts.append(
            f'[[benchmark]]\nname = "b{i}"\ndataset = "ds"\n[benchmark.accuracy]\nmetric = "{metric}"\nreference = 1\n'
        )
    write_manifest("\n".join(parts))
    cat = load_catalog([manifests])
    assert {a.format for a in cat.artifacts.values() if a.kind == "model"} == set(MODEL_FORMATS)
    assert {b.accuracy.metric for b in cat.benchmarks.values() if b.accuracy} == set(KNOWN_METRICS)


# --- all problems at once ------------------------------------------------------------------


def test_lint_reports_every_problem_of_a_file(write_manifest: ManifestWriter, manifests: Path) -> None:
    text = f"""schema = 1
extra = 1

[[dataset]]
name = "Bad Name"
descripton = "typo"
[[dataset.files]]
name = "../up.bin"
urls = ["ftp://e.org/a"]
size = -3
checksum = "md5:123"

[[dataset]]
name = "good-ds"
description = 5
[[dataset.files]]
name = "x"
urls = ["https://e.org/x"]
checksum = "crc32:00000000"
[[dataset.files]]
name = "y"
urls = ["https://e.org/y"]
checksum = "{H}"
[[dataset.files]]
name = "y"
urls = ["https://e.org/y2"]
checksum = "{H}"

[[model]]
name = "m"
format = "onxx"
[[model.files]]
name = "m.onnx"
urls = ["https://e.org/m"]
checksum = "{H}"

[[benchmark]]
name = "bench"
dataset = "nope"
models = ["m"]
labels = "nolabels/l.txt"
[benchmark.accuracy]
metric = "top-1"
reference = 1.0
target_ratio = 2
"""
    path = write_manifest(text)
    found = problems_of(manifests)
    expected = [
        ("unknown key 'extra'",),
        ("dataset 'Bad Name'", "name 'Bad Name' must be lower-case"),
        ("dataset 'Bad Name'", "unknown key 'descripton'", "did you mean 'description'?"),
        ("dataset 'Bad Name': files[0]", "name '../up.bin' must be a relative path"),
        ("dataset 'Bad Name': files[0].urls", "unsupported URL scheme 'ftp'"),
        ("dataset 'Bad Name': files[0]", "size: expected a non-negative integer"),
        ("dataset 'Bad Name': files[0]", "checksum: md5 digest must be 32 hex digits, got 3"),
        ("dataset 'good-ds'", "description: expected a string, got int"),
        ("dataset 'good-ds': files[0]", "checksum: unknown checksum algorithm 'crc32'"),
        ("dataset 'good-ds'", "files: duplicate file name 'y'"),
        ("model 'm'", "format: unknown format 'onxx'", "did you mean 'onnx'?"),
        ("benchmark 'bench': accuracy", "metric: unknown metric 'top-1'"),
        ("benchmark 'bench': accuracy", "target_ratio: expected a number in (0, 1]"),
    ]
    for fragments in expected:
        the_problem(found, path, *fragments)
    assert len(found) == len(expected), "\n".join(found)


def test_cross_check_problems_reported_together(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(
        BASE + '[[benchmark]]\nname = "b"\ndataset = "nods"\nmodels = ["nomodel"]\nlabels = "noart/x"\n'
    )
    found = problems_of(manifests)
    the_problem(found, path, "benchmark 'b': dataset: no dataset named 'nods'")
    the_problem(found, path, "benchmark 'b': models: no model named 'nomodel'")
    the_problem(found, path, "benchmark 'b': labels: no artifact named 'noart'")
    assert len(found) == 3


def test_many_files_all_reported(write_manifest: ManifestWriter, manifests: Path) -> None:
    a = write_manifest(one_dataset(name="a", file_body=file_table(extra="size = -1")), name="a")
    b = write_manifest(one_dataset(name="b", file_body=file_table(urls='["ftp://x/y"]')), name="b")
    sub = manifests / "sub"
    sub.mkdir()
    c = sub / "c.toml"
    c.write_text(one_dataset(name="C"), encoding="utf-8")
    found = problems_of(manifests)
    the_problem(found, a, "dataset 'a'", "size")
    the_problem(found, b, "dataset 'b'", "unsupported URL scheme")
    the_problem(found, c, "dataset 'C'", "must be lower-case")
    assert len(found) == 3


def test_manifest_error_message_counts_problems(write_manifest: ManifestWriter, manifests: Path) -> None:
    write_manifest(one_dataset(name="X", file_body=file_table(extra="size = -1")))
    with pytest.raises(ManifestError) as info:
        load_catalog([manifests])
    assert len(info.value.problems) == 2
    assert str(info.value) == info.value.problems[0] + " (and 1 more; run 'provision lint')"


# --- valid manifests --------------------------------------------------------------------


FULL = f"""schema = 1

[[dataset]]
name = "ds"
description = "a dataset"
license = "CC0"
homepage = "https://e.org"
notes = "note"
aliases = ["dset", "the-ds"]
[[dataset.files]]
name = "data.bin"
urls = ["https://e.org/data.bin", "data/local.bin", "file:///srv/data.bin", "manual:https://e.org/register"]
size = 10
checksum = "MD5:{"A" * 32}"
[[dataset.files]]
name = "sub/labels.txt"
urls = ["../shared/labels.txt", "/abs/labels.txt", "~/labels.txt"]
size = 5
checksum = "sha256:{"b" * 64}"

[[model]]
name = "net"
format = "onnx"
[[model.files]]
name = "net.onnx"
urls = ["https://e.org/net.onnx"]
checksum = "{H}"

[[model]]
name = "net2"
format = "pytorch"
aliases = "net-two"
[[model.files]]
name = "net2.pt"
urls = "https://e.org/net2.pt"
size = 7
checksum = "{H2}"

[[benchmark]]
name = "bench"
description = "the benchmark"
aliases = ["bm"]
dataset = "ds"
labels = "ds/sub/labels.txt"
models = ["net", "net2", "net"]
[benchmark.preprocess]
recipe = "imagenet-resnet50"
layout = "NCHW"
size = 224
[benchmark.accuracy]
metric = "top1"
reference = 76.46
target_ratio = [0.99, 0.999]

[[benchmark]]
name = "bench2"
dataset = "ds"
models = ["net2"]
[benchmark.accuracy]
metric = "f1"
reference = 90
target_ratio = 0.5
"""


@pytest.fixture
def full(write_manifest: ManifestWriter, manifests: Path) -> tuple[Catalog, Path]:
    path = write_manifest(FULL, name="full")
    assert lint([manifests]) == []
    return load_catalog([manifests]), path


def test_valid_manifest_parses(full: tuple[Catalog, Path]) -> None:
    cat, path = full
    ds = cat.artifacts["ds"]
    assert isinstance(ds, Artifact)
    assert ds.kind == "dataset"
    assert (ds.description, ds.license, ds.homepage, ds.notes) == ("a dataset", "CC0", "https://e.org", "note")
    assert ds.aliases == ("dset", "the-ds")
    assert ds.format is None
    assert ds.source == path
    assert [f.name for f in ds.files] == ["data.bin", "sub/labels.txt"]
    data = ds.file("data.bin")
    assert isinstance(data, FileSpec)
    assert data.checksum == Checksum("md5", "a" * 32)
    assert data.size == 10
    assert ds.size == 15
    with pytest.raises(KeyError):
        ds.file("nope")

    net, net2 = cat.artifacts["net"], cat.artifacts["net2"]
    assert (net.kind, net.format, net.size) == ("model", "onnx", None)
    assert net2.aliases == ("net-two",)  # a single string is a one-element list
    assert net2.files[0].urls == ("https://e.org/net2.pt",)
    assert net2.size == 7

    b = cat.benchmarks["bench"]
    assert isinstance(b, Benchmark)
    assert b.dataset == "ds"
    assert b.models == ("net", "net2", "net")
    assert b.labels == LabelsRef("ds", "sub/labels.txt")
    assert str(b.labels) == "ds/sub/labels.txt"
    assert b.artifact_names == ("ds", "net", "net2")
    assert isinstance(b.preprocess, PreprocessSpec)
    assert b.preprocess.recipe == "imagenet-resnet50"
    assert dict(b.preprocess.params) == {"layout": "NCHW", "size": 224}
    assert b.accuracy == AccuracySpec("top1", 76.46, (0.99, 0.999))
    assert b.description == "the benchmark"
    assert b.source == path

    b2 = cat.benchmarks["bench2"]
    assert b2.accuracy == AccuracySpec("f1", 90.0, (0.5,))
    assert isinstance(b2.accuracy.reference, float)
    assert b2.labels is None
    assert b2.preprocess is None


def test_parsed_objects_are_frozen(full: tuple[Catalog, Path]) -> None:
    cat, _ = full
    ds = cat.artifacts["ds"]
    b = cat.benchmarks["bench"]
    assert b.accuracy is not None and b.preprocess is not None and b.labels is not None
    for obj, attr, value in [
        (ds, "name", "x"),
        (ds.files[0], "size", 1),
        (ds.files[0].checksum, "hex", "0"),
        (b, "dataset", "x"),
        (b.accuracy, "reference", 1.0),
        (b.preprocess, "recipe", "x"),
        (b.labels, "file", "x"),
    ]:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, attr, value)
    assert isinstance(ds.files, tuple)
    assert isinstance(ds.files[0].urls, tuple)
    assert isinstance(b.preprocess.params, MappingProxyType)
    with pytest.raises(TypeError):
        b.preprocess.params["layout"] = "NHWC"  # type: ignore[index]


def test_urls_resolved(full: tuple[Catalog, Path], tmp_path: Path) -> None:
    cat, path = full
    data = cat.artifacts["ds"].file("data.bin")
    assert data.urls == (
        "https://e.org/data.bin",
        str(path.parent / "data" / "local.bin"),
        "file:///srv/data.bin",
        "manual:https://e.org/register",
    )
    labels = cat.artifacts["ds"].file("sub/labels.txt")
    assert labels.urls == (
        str(tmp_path / "shared" / "labels.txt"),  # ../ from tmp_path/manifests, normalised
        "/abs/labels.txt",
        str(tmp_path / "home" / "labels.txt"),  # ~ expanded with the test's HOME
    )


def test_relative_urls_follow_the_manifest_folder(manifests: Path, tmp_path: Path) -> None:
    nested = manifests / "deep" / "er"
    nested.mkdir(parents=True)
    (nested / "x.toml").write_text(one_dataset(file_body=file_table(urls='["files/a.bin"]')), encoding="utf-8")
    cat = load_catalog([manifests])
    assert cat.artifacts["ds"].files[0].urls == (str(nested / "files" / "a.bin"),)


def test_dataset_toml_helper_round_trips(write_manifest: ManifestWriter, manifests: Path) -> None:
    body = b"hello"
    write_manifest(dataset_toml("helper", [("h.bin", ["https://e.org/h"], body, None)]))
    write_manifest(dataset_toml("mod", [("m.onnx", ["https://e.org/m"], None, H)], kind="model"), name="m")
    cat = load_catalog([manifests])
    f = cat.artifacts["helper"].files[0]
    assert str(f.checksum) == md5(body)
    assert f.size == 5
    assert cat.artifacts["mod"].format == "onnx"
    assert cat.artifacts["mod"].size is None


def test_catalog_get_by_name_and_alias(full: tuple[Catalog, Path]) -> None:
    cat, _ = full
    assert cat.get("ds") is cat.artifacts["ds"]
    assert cat.get("dset") is cat.artifacts["ds"]
    assert cat.get("the-ds") is cat.artifacts["ds"]
    assert cat.get("net-two") is cat.artifacts["net2"]
    assert cat.get("bm") is cat.benchmarks["bench"]
    assert cat.get("bench") is cat.benchmarks["bench"]
    assert set(cat.names()) == {"ds", "net", "net2", "bench", "bench2", "dset", "the-ds", "net-two", "bm"}


def test_catalog_entries_order(full: tuple[Catalog, Path]) -> None:
    cat, _ = full
    assert [e.name for e in cat.entries()] == ["ds", "net", "net2", "bench", "bench2"]


def test_unknown_name_suggests(full: tuple[Catalog, Path]) -> None:
    cat, _ = full
    with pytest.raises(UnknownNameError) as info:
        cat.get("bench3")
    assert info.value.name == "bench3"
    assert "bench" in info.value.suggestions
    assert "bench2" in info.value.suggestions
    assert len(info.value.suggestions) <= 3
    assert "did you mean" in str(info.value)
    with pytest.raises(UnknownNameError) as none:
        cat.get("zzzzzzzz")
    assert none.value.suggestions == []
    assert "provision list" in str(none.value)
    # it is a KeyError too, for dict-like callers
    with pytest.raises(KeyError):
        cat.get("nope")


def test_resolve_expands_benchmarks_without_repeats(full: tuple[Catalog, Path]) -> None:
    cat, _ = full
    assert [a.name for a in cat.resolve(["bench"])] == ["ds", "net", "net2"]
    assert [a.name for a in cat.resolve(["net2", "bm", "dset", "bench2"])] == ["net2", "ds", "net"]
    assert [a.name for a in cat.resolve(["dset", "ds"])] == ["ds"]
    assert cat.resolve([]) == []
    with pytest.raises(UnknownNameError):
        cat.resolve(["ds", "nope"])


def test_resolve_includes_labels_artifact(write_manifest: ManifestWriter, manifests: Path) -> None:
    write_manifest(
        BASE
        + '[[dataset]]\nname = "lab"\n[[dataset.files]]\n'
        + file_table("val_map.txt")
        + '[[benchmark]]\nname = "b"\ndataset = "ds"\nlabels = "lab/val_map.txt"\nmodels = ["net"]\n'
    )
    cat = load_catalog([manifests])
    assert cat.benchmarks["b"].artifact_names == ("ds", "lab", "net")
    assert [a.name for a in cat.resolve(["b", "lab", "net"])] == ["ds", "lab", "net"]


def test_accuracy_targets() -> None:
    spec = AccuracySpec("top1", 76.46, (0.99, 0.999))
    assert spec.targets() == pytest.approx((76.46 * 0.99, 76.46 * 0.999))
    assert AccuracySpec("f1", 90.0).targets() == pytest.approx((89.1,))
    assert AccuracySpec("f1", 90.0).target_ratio == (0.99,)


def test_target_ratio_defaults_to_099(write_manifest: ManifestWriter, manifests: Path) -> None:
    write_manifest(
        BASE + '[[benchmark]]\nname = "b"\ndataset = "ds"\n[benchmark.accuracy]\nmetric = "map"\nreference = 37.5\n'
    )
    acc = load_catalog([manifests]).benchmarks["b"].accuracy
    assert acc == AccuracySpec("map", 37.5, (0.99,))
    assert acc is not None and acc.targets() == pytest.approx((37.125,))


def test_artifact_equality_ignores_source(full: tuple[Catalog, Path], tmp_path: Path) -> None:
    cat, _ = full
    ds = cat.artifacts["ds"]
    assert dataclasses.replace(ds, source=tmp_path / "other.toml") == ds


def test_manifest_files(tmp_path: Path, manifests: Path) -> None:
    (manifests / "b.toml").write_text("", encoding="utf-8")
    (manifests / "a.toml").write_text("", encoding="utf-8")
    (manifests / "notes.txt").write_text("", encoding="utf-8")
    (manifests / "sub").mkdir()
    (manifests / "sub" / "c.toml").write_text("", encoding="utf-8")
    single = tmp_path / "single.toml"
    single.write_text("", encoding="utf-8")
    got = manifest_files([manifests, single, tmp_path / "missing"])
    assert got == [manifests / "a.toml", manifests / "b.toml", manifests / "sub" / "c.toml", single]


def test_empty_folder_is_an_empty_catalog(manifests: Path) -> None:
    assert lint([manifests]) == []
    cat = load_catalog([manifests])
    assert cat.artifacts == {} and cat.benchmarks == {}
    assert cat.names() == []


# --- built-in manifests --------------------------------------------------------------------


def test_builtin_manifests_lint_clean() -> None:
    assert lint([builtin_manifest_dir()]) == []


def test_builtin_manifests_content() -> None:
    cat = load_catalog([builtin_manifest_dir()])
    for name in ("resnet50", "resnet50-onnx", "imagenet-val", "squad-v1.1"):
        assert cat.get(name).name == name
    assert isinstance(cat.get("resnet50"), Benchmark)
    onnx = cat.artifacts["resnet50-onnx"]
    assert onnx.kind == "model" and onnx.format == "onnx"
    assert str(onnx.file("resnet50_v1.onnx").checksum) == "md5:f6a4da60cd5f084d97efc2c1ddb10beb"
    squad = cat.artifacts["squad-v1.1"]
    assert squad.kind == "dataset"
    assert str(squad.file("dev-v1.1.json").checksum) == "md5:3e85deb501d4e538b6bc56f786231552"
    assert squad.file("dev-v1.1.json").size == 4854279
    assert cat.artifacts["imagenet-val"].file("ILSVRC2012_img_val.tar").urls[0].startswith("manual:")
    resolved = [a.name for a in cat.resolve(["resnet50"])]
    assert resolved[0] == "imagenet-val" and "resnet50-onnx" in resolved
    assert cat.get("imagenet") is cat.artifacts["imagenet-val"]
    resnet = cat.benchmarks["resnet50"]
    assert resnet.accuracy is not None and resnet.accuracy.metric == "top1"


def test_builtin_and_user_manifests_together(write_manifest: ManifestWriter, manifests: Path) -> None:
    write_manifest(one_dataset(name="extra"))
    cat = load_catalog([builtin_manifest_dir(), manifests])
    assert "extra" in cat.artifacts and "squad-v1.1" in cat.artifacts


def test_user_manifest_cannot_shadow_builtin(write_manifest: ManifestWriter, manifests: Path) -> None:
    path = write_manifest(one_dataset(name="squad"))
    found = lint([builtin_manifest_dir(), manifests])
    assert found == [
        f"{path}: dataset 'squad': name 'squad' is already defined in {builtin_manifest_dir() / 'bert.toml'}"
    ]


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ('expected_tree = "xxh3_128:00"', "expected_tree: expected a table"),
        ('[benchmark.preprocess.expected_tree]\n"numpy=2" = "md5:' + "0" * 32 + '"', "is not 'xxh3_128:<32 hex>'"),
        ('[benchmark.preprocess.expected_tree]\n"numpy=2" = "xxh3_128:abc"', "is not 'xxh3_128:<32 hex>'"),
    ],
)
def test_preprocess_expected_tree_is_checked(
    write_manifest: ManifestWriter, manifests: Path, table: str, fragment: str
) -> None:
    text = BASE + '[[benchmark]]\nname = "b"\ndataset = "ds"\n[benchmark.preprocess]\nrecipe = "r"\n' + table + "\n"
    path = write_manifest(text)
    found = problems_of(manifests)
    the_problem(found, path, "benchmark 'b': preprocess", fragment)


def test_preprocess_expected_tree_accepts_pins(write_manifest: ManifestWriter, manifests: Path) -> None:
    write_manifest(
        BASE + '[[benchmark]]\nname = "b"\ndataset = "ds"\n[benchmark.preprocess]\nrecipe = "r"\n'
        '[benchmark.preprocess.expected_tree]\n"numpy=2 opencv=5" = "xxh3_128:' + "a" * 32 + '"\n'
    )
    assert lint([manifests]) == []


# --- [model.runtime] ---------------------------------------------------------------------


def test_model_runtime_parses_into_a_frozen_spec(write_manifest: ManifestWriter, manifests: Path) -> None:
    from provision.manifest.model import RuntimeSpec

    write_manifest(
        BASE
        + '[model.runtime]\nfile = "net.onnx"\ninputs = ["input_tensor:0"]\noutputs = ["ArgMax:0"]\noffset = -1\n'
        + "golden = [65, 970]\n"
    )
    net = load_catalog([manifests]).artifacts["net"]
    assert net.runtime == RuntimeSpec(
        file="net.onnx", inputs=("input_tensor:0",), outputs=("ArgMax:0",), offset=-1, golden=(65, 970)
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        net.runtime.offset = 0  # type: ignore[misc,union-attr]


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ('file = "other.onnx"\n', "file: 'other.onnx' is not one of the model's files (net.onnx)"),
        ('architecture = "mymodule.Net"\n', "architecture: expected 'torchvision:<builder>'"),
        ("offset = 1.5\n", "offset: expected an integer, got 1.5"),
        ("num_classes = 0\n", "num_classes: expected a positive integer"),
        ('golden = ["cat"]\n', "golden: expected a list of integers"),
        ("ofset = -1\n", "ofset"),
    ],
)
def test_model_runtime_problems(write_manifest: ManifestWriter, manifests: Path, table: str, fragment: str) -> None:
    path = write_manifest(BASE + "[model.runtime]\n" + table)
    the_problem(problems_of(manifests), path, "model 'net': runtime", fragment)


def test_builtin_resnet50_models_carry_their_runtime() -> None:
    catalog = load_catalog([builtin_manifest_dir()])
    onnx = catalog.artifacts["resnet50-onnx"].runtime
    assert onnx is not None and onnx.offset == -1 and onnx.inputs == ("input_tensor:0",)
    assert onnx.outputs == ("ArgMax:0",)
    torch_model = catalog.artifacts["resnet50-pytorch"].runtime
    assert torch_model is not None and torch_model.architecture == "torchvision:resnet50"
    assert torch_model.offset == 0 and torch_model.num_classes == 1000


def test_lint_cli_shows_forging_names_escaped_and_exits_6(write_manifest: ManifestWriter, manifests: Path) -> None:
    forged = "a.bin\\n/etc/ok.toml: dataset 'fine': all good"
    body = file_table(name=forged) + "[[dataset.files]]\n" + file_table(name="\\u001b[2J\\u001b[Hb.bin")
    path = write_manifest(one_dataset(file_body=body))
    result = CliRunner().invoke(app, ["lint", str(manifests)])
    assert result.exit_code == 6
    lines = result.stderr.splitlines()
    assert lines[-1] == "provision: 2 manifest problem(s)", result.stderr
    assert all(line.startswith(f"{path}: dataset 'ds': files[") for line in lines[:-1]), result.stderr
    assert "\x1b" not in result.stderr and len(lines) == 3
    assert repr("a.bin\n/etc/ok.toml: dataset 'fine': all good") in lines[0]
    assert repr("\x1b[2J\x1b[Hb.bin") in lines[1]
