"""``provision harness``: the commands that run MLPerf's reference implementation on provision's outputs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from provision import api
from provision.cli.common import CacheDir, Json, Subset, errors, print_json, settings
from provision.fsutil import human_bytes

if TYPE_CHECKING:
    from provision.preprocessing.harness import HarnessReport

__all__ = ["harness", "harness_lines"]


def harness_lines(report: HarnessReport) -> list[str]:
    """The report as a shell script: ``#`` lines say what and why, the others are the commands to run."""
    what = report.reference + (f" --profile {report.profile}" if report.profile else "")
    what += f" --backend {report.backend}" if report.backend else ""
    lines = [
        f"# MLPerf reference harness for {report.benchmark} with {report.model}: {what}",
        f"# preprocessed outputs: {report.preprocessed} ({report.items} items, key {report.key[:16]})",
    ]
    if report.folder is None:
        lines.append("# files written: none (the reference reads the outputs above as they are)")
    else:
        state = "written now" if report.state == "written" else "unchanged, checked against harness.json"
        lines.append(f"# files in {report.folder} ({state}):")
        for f in report.files:
            if f.kind == "file":
                detail = f"{human_bytes(f.size or 0)}, xxh3_128:{f.xxh3_128}"
                lines.append(f"#   {f.path}  ({detail}): {f.read_as}")
            elif f.kind == "link":
                lines.append(f"#   {f.path} -> {f.target}: {f.read_as}")
            else:
                lines.append(f"#   {f.path}/: {f.read_as}")
    if report.inference is None:
        lines.append("# set INFERENCE to your checkout of https://github.com/mlcommons/inference (or give --inference)")
    envs = sorted({f"{k}={v}" for c in report.commands for k, v in c.env})
    if envs:
        lines.append(f"# environment (set on the run line): {', '.join(envs)}")
    lines += [c.shell() for c in report.commands]
    lines += [f"# note: {note}" for note in report.notes]
    return lines


def harness(
    name: Annotated[str, typer.Argument(help="A benchmark with a harness story (resnet50, retinanet, bert).")],
    model: Annotated[
        str | None,
        typer.Option("--model", metavar="MODEL", help="The benchmark model to run (default: its first model)."),
    ] = None,
    subset: Subset = None,
    inference: Annotated[
        Path | None,
        typer.Option(
            "--inference",
            metavar="DIR",
            help="Your checkout of mlcommons/inference (default: $INFERENCE in the commands).",
        ),
    ] = None,
    cache_dir: CacheDir = None,
    json_out: Json = False,
) -> None:
    """Print how to run MLPerf's reference implementation on NAME's preprocessed outputs, writing what it needs.

    The lines are a shell script: the commands (working folder, environment, arguments) and, as
    comments, the files written beside the outputs in <key>.harness/ (BERT's eval_features.pickle,
    RetinaNet's annotation file). Exit 2 for a benchmark without a harness story, 3 when it is not
    preprocessed or its model is not fetched.

    Example: provision harness bert --inference ~/src/inference
    """
    with errors():
        report = api.harness(name, settings(cache_dir), model=model, subset=subset, inference=inference)
        if json_out:
            print_json(report.to_json())
            return
        for line in harness_lines(report):
            typer.echo(line)
