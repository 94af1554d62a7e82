#!/usr/bin/env python3
"""Benchmark ``provision validate`` generation throughput against calling the engine directly.

One run:

1. **builds** a small random Llama checkpoint folder (``--hidden`` 256, ``--layers`` 4, the
   word-level tokenizer of ``tests/llmkit.py``; random weights: the text is meaningless, the
   compute per token is that of the configured model) and a ``cnn_eval.json``-format dataset of
   ``--prompts`` prompts (default 64, ~40 tokens each), writes a summarisation benchmark manifest
   (``[benchmark.generation]``: greedy, ``min_new_tokens = max_new_tokens = --new-tokens``, so
   every run generates exactly the same number of tokens whatever the weights), and fetches
   it into a scratch cache (plain-path URLs; untimed);
2. **times**, alternating and repeated (``--runs``, median reported), on the same prompts and
   batch size:

   - ``direct``: the engine library called directly — ``transformers``
     ``AutoModelForCausalLM.generate`` on the same left-padded batches with the same
     ``GenerationConfig`` (or, with ``--engine vllm`` on a GPU, ``vllm.LLM.generate`` with the
     same ``SamplingParams``), model loaded once, untimed;
   - ``provision``: ``provision.api.validate`` end to end (catalog, digest checks, engine load,
     generation, scoring, result record; ``--revalidate`` semantics: a fresh run each time),
     reporting generated tokens/s over its generation loop and the wall time of the whole call;

3. **prints** a Markdown table: generated tokens/s, the ratio to ``direct``, and a machine line.
   The issue's goal is a ratio of at least 0.95.

Usage: ``python benchmarks/validate_llm.py [--prompts 64] [--new-tokens 64] [--batch 16] [--runs 3]
[--hidden 256] [--layers 4] [--engine transformers|vllm]``.
The figures in ``benchmarks/README.md`` come from this script on the machine named there.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def _checkpoint(folder: Path, hidden: int, layers: int) -> None:
    import torch
    from llmkit import tiny_tokenizer
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder.mkdir(parents=True, exist_ok=True)
    tiny_tokenizer(folder)
    config = LlamaConfig(
        vocab_size=len(AutoTokenizer.from_pretrained(str(folder))),
        hidden_size=hidden,
        intermediate_size=hidden * 4,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 64),
        num_key_value_heads=max(1, hidden // 64),
        max_position_embeddings=1024,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(str(folder), safe_serialization=True)


def _md5(path: Path) -> str:
    return "md5:" + hashlib.md5(path.read_bytes()).hexdigest()


def _setup(work: Path, args: argparse.Namespace) -> tuple[Any, list[list[int]], Path]:
    from llmkit import CORPUS
    from transformers import AutoTokenizer

    from provision.config import Settings

    ckpt = work / "ckpt"
    _checkpoint(ckpt, args.hidden, args.layers)
    tok = AutoTokenizer.from_pretrained(str(ckpt))
    prompts = [tok.encode(" ".join(CORPUS[(i + k) % len(CORPUS)] for k in range(3))) for i in range(args.prompts)]
    rows = [{"tok_input": p, "output": CORPUS[i % len(CORPUS)]} for i, p in enumerate(prompts)]
    data = work / "cnn_eval.json"
    data.write_text(json.dumps(rows), encoding="utf-8")
    model_files = "".join(
        f'[[model.files]]\nname = "{p.name}"\nurls = ["{p}"]\nchecksum = "{_md5(p)}"\n'
        for p in sorted(ckpt.iterdir())
        if p.is_file()
    )
    manifests = work / "manifests"
    manifests.mkdir(exist_ok=True)
    (manifests / "bench.toml").write_text(
        f"""schema = 1
[[dataset]]
name = "llmbench-data"
[[dataset.files]]
name = "cnn_eval.json"
urls = ["{data}"]
checksum = "{_md5(data)}"
[[model]]
name = "llmbench-ckpt"
format = "huggingface"
{model_files}
[[benchmark]]
name = "llmbench"
dataset = "llmbench-data"
models = ["llmbench-ckpt"]
dataset_size = {len(rows)}
[benchmark.generation]
task = "summarization"
file = "cnn_eval.json"
max_new_tokens = {args.new_tokens}
min_new_tokens = {args.new_tokens}
dtype = "float32"
[[benchmark.accuracy]]
metric = "rouge1"
reference = 0.001
""",
        encoding="utf-8",
    )
    settings = Settings(cache_dir=work / "cache", manifest_dirs=(manifests,))
    from provision import api

    report = api.fetch(["llmbench"], settings)
    if not report.ok:
        raise SystemExit(f"fetch failed: {report.failures}")
    return settings, prompts, ckpt


def _direct_transformers(ckpt: Path, prompts: list[list[int]], args: argparse.Namespace) -> Any:
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    model = AutoModelForCausalLM.from_pretrained(str(ckpt), dtype=torch.float32).eval()
    config = GenerationConfig(
        max_new_tokens=args.new_tokens,
        min_new_tokens=args.new_tokens,
        do_sample=False,
        num_beams=1,
        pad_token_id=0,
        eos_token_id=[2],
    )

    def run() -> float:
        start = time.perf_counter()
        generated = 0
        for first in range(0, len(prompts), args.batch):
            batch = prompts[first : first + args.batch]
            width = max(len(p) for p in batch)
            ids = torch.zeros((len(batch), width), dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, p in enumerate(batch):
                ids[row, width - len(p) :] = torch.tensor(p)
                mask[row, width - len(p) :] = 1
            with torch.inference_mode():
                out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
            generated += int(out[:, width:].numel())
        return generated / (time.perf_counter() - start)

    return run


def _direct_vllm(ckpt: Path, prompts: list[list[int]], args: argparse.Namespace) -> Any:
    import vllm

    llm = vllm.LLM(model=str(ckpt), tokenizer=str(ckpt), dtype="float32", seed=0)
    params = vllm.SamplingParams(temperature=0.0, max_tokens=args.new_tokens, min_tokens=args.new_tokens, top_k=-1)

    def run() -> float:
        start = time.perf_counter()
        generated = 0
        for first in range(0, len(prompts), args.batch):
            batch = [{"prompt_token_ids": p} for p in prompts[first : first + args.batch]]
            outs = llm.generate(batch, params, use_tqdm=False)
            generated += sum(len(o.outputs[0].token_ids) for o in outs)
        return generated / (time.perf_counter() - start)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--engine", choices=("transformers", "vllm"), default="transformers")
    args = parser.parse_args()

    import nltk
    import torch

    from provision import api
    from provision.validation.validate import ValidateOptions

    with tempfile.TemporaryDirectory(prefix="validate-llm-") as tmp:
        work = Path(tmp)
        # ROUGE-1 needs no sentence split, but keep nltk from looking for punkt anywhere else
        nltk.data.path.insert(0, str(work))
        settings, prompts, ckpt = _setup(work, args)
        direct = (_direct_vllm if args.engine == "vllm" else _direct_transformers)(ckpt, prompts, args)
        device = "cuda" if args.engine == "vllm" else "cpu"
        options = ValidateOptions(device=device, batch_size=args.batch, engine=args.engine)
        rows: dict[str, list[float]] = {"direct": [], "provision": [], "provision wall": []}
        direct()  # warm-up (allocator, kernels)
        for _ in range(args.runs):
            rows["direct"].append(direct())
            start = time.perf_counter()
            report = api.validate("llmbench", settings, options=options)
            wall = time.perf_counter() - start
            tokens = report.tokens or {}
            rows["provision"].append(float(tokens.get("generated_tokens_per_second") or 0.0))
            rows["provision wall"].append(float(tokens.get("generated_tokens", 0)) / wall)
        base = statistics.median(rows["direct"])
        shape = f"{args.prompts} prompts x {args.new_tokens} new tokens, batch {args.batch}"
        print(f"## validate_llm ({args.engine}): {shape}")
        print()
        print(f"| run | generated tokens/s (median of {args.runs}) | ratio to direct |")
        print("|---|---|---|")
        labels = {
            "direct": "engine called directly",
            "provision": "provision validate (generation loop)",
            "provision wall": "provision validate (whole call: load, digests, score, record)",
        }
        for key, values in rows.items():
            median = statistics.median(values)
            print(f"| {labels[key]} | {median:.1f} | {median / base:.3f} |")
        print()
        cpu = platform.processor() or platform.machine()
        print(
            f"Machine: {platform.node()}, {os.cpu_count()} CPUs ({cpu}), torch {torch.__version__} "
            f"threads {torch.get_num_threads()}, Python {platform.python_version()}; model hidden {args.hidden}, "
            f"{args.layers} layers, float32."
        )


if __name__ == "__main__":
    main()
