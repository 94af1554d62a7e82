"""Whisper validation end to end on the CPU: a tiny random Whisper checkpoint folder, wavs and a
``dev-all-repack.json`` in the published shape, ``provision validate`` with the transformers speech engine.

The score is compared with an independent computation in the test: audio read with scipy, features
from the checkpoint's feature extractor, greedy decoding written out step by step (one clip at a
time, the model's forward pass, no ``generate``), the SUT's character filter and the concatenation-
aware WER re-implemented here from the definitions of speech2text ``reference_SUT.py``,
``accuracy_eval.py`` and ``helpers.py``, and the normaliser of transformers with the checkpoint's
spelling map.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ManifestWriter, dataset_toml
from whisperkit import PROMPT, RATE, SPELLING, repack, tiny_whisper

from provision import api
from provision.config import Settings
from provision.errors import UsageError
from provision.manifest.model import GenerationSpec
from provision.validation.metrics.speech import concatenation_word_errors, word_errors
from provision.validation.runners.generate import ENGINES, EngineOptions, open_engine
from provision.validation.tasks.whisper import (
    english_normalizer,
    hypothesis_text,
    read_clip,
    read_repack_manifest,
    reference_text,
    resolve_audio,
)
from provision.validation.validate import ValidateOptions

pytest.importorskip("transformers")
pytest.importorskip("soundfile")

MAX_NEW = 8
SECONDS = [2.0 + 3.0 * k for k in range(6)]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("whisper") / "ckpt"
    tiny_whisper(folder)
    return folder


# --- the independent computation -------------------------------------------------------------


def _direct_greedy(checkpoint: Path, wav: Path) -> str:
    """Greedy decoding of one clip with the model's forward pass, written out: the text of the ids
    generated after the prompt up to (not including) <|endoftext|>, at most MAX_NEW of them."""
    import torch
    from scipy.io import wavfile
    from transformers import AutoTokenizer, WhisperFeatureExtractor, WhisperForConditionalGeneration

    rate, pcm = wavfile.read(str(wav))
    assert rate == RATE and pcm.dtype == np.int16
    audio = pcm.astype(np.float32) / 32768.0
    features = WhisperFeatureExtractor.from_pretrained(str(checkpoint))(
        audio, sampling_rate=RATE, return_tensors="pt"
    ).input_features
    assert features.shape[-1] == 3000  # zero-padded to 30 s
    tok = AutoTokenizer.from_pretrained(str(checkpoint))
    model = WhisperForConditionalGeneration.from_pretrained(str(checkpoint), dtype=torch.float32).eval()
    ids = [tok.convert_tokens_to_ids(t) for t in re.findall(r"<\|[^|]+\|>", PROMPT)]
    eos = tok.convert_tokens_to_ids("<|endoftext|>")
    new: list[int] = []
    with torch.inference_mode():
        for _ in range(MAX_NEW):
            logits = model(input_features=features, decoder_input_ids=torch.tensor([ids + new])).logits
            token = int(logits[0, -1].argmax())
            if token == eos:
                break
            new.append(token)
    return str(tok.decode(new, skip_special_tokens=True))


def _sut_filter(text: str) -> str:
    """reference_SUT.py: lower-cased, stripped, only the 42 symbols kept (as the scorer rebuilds it)."""
    return re.sub(r"[^ a-z'0-9$%+\-]", "", text.lower().strip())


def _edit_distance(a: list[str], b: list[str]) -> int:
    table = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return table[-1][-1]


def _mlperf_errors(hyp: list[str], ref: list[str]) -> tuple[int, int]:
    """helpers.compute_wer_with_concatenation: pairs built left to right, k = 1..3 words of the
    reference then of the hypothesis joined to match the other side's word; word Levenshtein of the
    joined sides over the reference's original word count."""
    pairs: list[tuple[str | None, str | None]] = []
    i = j = 0
    while i < len(ref) and j < len(hyp):
        if ref[i] == hyp[j]:
            pairs.append((ref[i], hyp[j]))
            i, j = i + 1, j + 1
            continue
        step = (1, 1)
        for k in range(1, 4):
            if i + k <= len(ref) and "".join(ref[i : i + k]) == hyp[j]:
                step = (k, 1)
                break
            if j + k <= len(hyp) and "".join(hyp[j : j + k]) == ref[i]:
                step = (1, k)
                break
        pairs.append((" ".join(ref[i : i + step[0]]), " ".join(hyp[j : j + step[1]])))
        i, j = i + step[0], j + step[1]
    pairs += [(w, None) for w in ref[i:]] + [(None, w) for w in hyp[j:]]
    left = [r.replace(" ", "") for r, _ in pairs if r is not None]
    right = [h.replace(" ", "") for _, h in pairs if h is not None]
    return _edit_distance(left, right), len(ref)


def _mlperf_accuracy(hypotheses: list[str], transcripts: list[str]) -> tuple[float, int, int]:
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    normalize = EnglishTextNormalizer(SPELLING)
    edits = words = 0
    for h, r in zip(hypotheses, transcripts, strict=True):
        ref_kept = "".join(c for c in r if c in " abcdefghijklmnopqrstuvwxyz'0123456789$%+-")
        e, w = _mlperf_errors(normalize(_sut_filter(h)).split(), normalize(ref_kept).split())
        edits, words = edits + e, words + w
    return (1 - edits / words) * 100, edits, words


# --- the benchmark ---------------------------------------------------------------------------


def _transcripts(direct: list[str]) -> list[str]:
    """Transcripts made from the model's own outputs, so that each kind of difference is scored:
    equal, a word missing, two words written as one (no error under the concatenation rule), one more
    reference word (British spelling), more words with punctuation and a filler the normaliser drops
    ("hmm"), a different text."""
    words = [_sut_filter(t).split() for t in direct]
    assert all(len(w) >= 3 for w in words[:5]), direct
    out = [
        " ".join(words[0]),
        " ".join(words[1][1:]),
        " ".join([words[2][0] + words[2][1], *words[2][2:]]),
        " ".join([*words[3], "colour"]),
        " ".join(words[4]) + ", hmm dr. jones",
        "twenty one years old",
    ]
    return out


def _bench(
    tmp_path: Path, write_manifest: ManifestWriter, checkpoint: Path, transcripts: list[str], reference: float
) -> Path:
    """A whisper-shaped benchmark: dataset/ (dev-all-repack.json + wavs), a huggingface checkpoint."""
    data = tmp_path / "data"
    # fnames as repackage_librispeech.py writes them on the machine that built the set
    repack(data, transcripts, SECONDS, fname_prefix="./data/dev-all-repack/")
    files = sorted(p for p in data.rglob("*") if p.is_file())
    dataset = dataset_toml(
        "tinywhisper-data", [(p.relative_to(data).as_posix(), [str(p)], p.read_bytes(), None) for p in files]
    )
    ckpt = sorted(p for p in checkpoint.iterdir() if p.is_file())
    model = dataset_toml("tinywhisper-ckpt", [(p.name, [str(p)], p.read_bytes(), None) for p in ckpt], kind="model")
    model = model.replace('format = "onnx"', 'format = "huggingface"').replace("schema = 1\n", "")
    write_manifest(
        dataset
        + model
        + '[[benchmark]]\nname = "tinywhisper"\ndataset = "tinywhisper-data"\nmodels = ["tinywhisper-ckpt"]\n'
        + f"dataset_size = {len(transcripts)}\n"
        + '[benchmark.generation]\ntask = "whisper"\nfile = "dev-all-repack.json"\nreference = "transcript"\n'
        + f'prompt = "{PROMPT}"\nmax_new_tokens = {MAX_NEW}\nmin_new_tokens = 0\ndtype = "float32"\n'
        + f'[[benchmark.accuracy]]\nmetric = "accuracy"\nreference = {reference}\ntarget_ratio = [0.99]\n'
        + '[[benchmark.accuracy]]\nmetric = "wer"\nreference = 100.0\ntarget_ratio = [1.0]\n',
        name="tinywhisper",
    )
    return data


def _wavs(data: Path) -> list[Path]:
    return sorted((data / "dev-all-repack").glob("*.wav"))


@pytest.fixture(scope="module")
def direct(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The model's greedy transcriptions of the six clips, computed directly."""
    data = tmp_path_factory.mktemp("clips")
    repack(data, ["x"] * len(SECONDS), SECONDS)
    return [_direct_greedy(checkpoint, w) for w in sorted((data / "dev-all-repack").glob("*.wav"))]


def test_whisper_accuracy_equals_the_mlperf_definition(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings, checkpoint: Path, direct: list[str]
) -> None:
    transcripts = _transcripts(direct)
    want, edits, words = _mlperf_accuracy(direct, transcripts)
    assert 0 < want < 100 and edits > 0
    data = _bench(tmp_path, write_manifest, checkpoint, transcripts, reference=round(want, 4))
    assert [_direct_greedy(checkpoint, w) for w in _wavs(data)] == direct  # the same clips
    fetched = api.fetch(["tinywhisper"], settings)
    assert fetched.ok, fetched.failures
    report = api.validate("tinywhisper", settings, options=ValidateOptions(device="cpu", batch_size=4))
    assert report.metric == "accuracy" and report.value == pytest.approx(want, abs=1e-9)
    assert report.extra["word_errors"] == edits and report.extra["reference_words"] == words
    by = {m["metric"]: m for m in report.metrics}
    assert by["wer"]["value"] == pytest.approx(100 - want, abs=1e-9)
    assert report.full_set and report.samples == len(transcripts) and report.passed
    assert report.runtime["engine"] == "transformers" and report.task["task"] == "whisper"
    assert report.tokens is not None and report.tokens["prompt_tokens"] == 4 * len(transcripts)
    # the concatenation rule and the normaliser matter here: plain Levenshtein on raw text scores lower
    plain = sum(word_errors(_sut_filter(h), t)[0] for h, t in zip(direct, transcripts, strict=True))
    assert plain > edits


def test_a_subset_gets_a_ratio_interval(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings, checkpoint: Path, direct: list[str]
) -> None:
    transcripts = _transcripts(direct)
    _bench(tmp_path, write_manifest, checkpoint, transcripts, reference=50.0)
    assert api.fetch(["tinywhisper"], settings).ok
    report = api.validate("tinywhisper", settings, options=ValidateOptions(device="cpu", count=4))
    want, _, _ = _mlperf_accuracy(direct[:4], transcripts[:4])
    assert report.samples == 4 and not report.full_set
    assert report.value == pytest.approx(want, abs=1e-9)
    assert report.interval is not None and report.interval_method is not None
    assert report.interval_method.startswith("bootstrap (")  # the ratio recomputed per resample
    lo, hi = report.interval
    assert lo <= want <= hi


# --- the pieces on hand-written values ---------------------------------------------------------


def test_concatenation_word_errors_on_hand_written_pairs() -> None:
    cases = [
        ("any one here", "anyone here", (0, 2)),  # 2 hypothesis words = 1 reference word
        ("anyone here", "any one here", (0, 3)),  # 1 hypothesis word = 2 reference words
        ("a b c d", "abc d", (0, 2)),  # three joined
        ("a b c d e", "abcd e", (4, 2)),  # four are never joined: plain edits of the rest
        ("the cat sat", "the dog sat", (1, 3)),
        ("the cat", "the cat sat down", (2, 4)),
        ("", "one two", (2, 2)),
        ("extra words", "", (2, 0)),
    ]
    for hyp, ref, want in cases:
        assert concatenation_word_errors(hyp, ref) == want, (hyp, ref)
        assert _mlperf_errors(hyp.split(), ref.split()) == want, (hyp, ref)  # the test's own copy agrees
    assert word_errors("any one here", "anyone here") == (2, 2)  # plain Levenshtein counts them


def test_filter_and_normaliser_on_hand_written_texts(tmp_path: Path) -> None:
    (tmp_path / "normalizer.json").write_text(json.dumps({"colour": "color"}), encoding="utf-8")
    normalize = english_normalizer(tmp_path)
    assert hypothesis_text(" Mr. Smith's colour is 21%!") == "mr smith's colour is 21%"
    assert reference_text("Hello, world. it's $3.50") == "ello world it's $350"  # upper case dropped, not lowered
    hyp = normalize(hypothesis_text(" Mr. Smith's colour is 21%!"))
    ref = normalize(reference_text("mister smith's color is twenty one percent"))
    assert hyp == ref == "mister smith is color is 21%"
    assert normalize("uh i'm gonna go hmm") == "i am going to go"
    # one sample: "the cat sat on the mat" vs "the cat sit on mat" -> 1 substitution + 1 deletion of 6 words
    edits, words = concatenation_word_errors(normalize("the cat sit on mat"), normalize("the cat sat on the mat"))
    assert (edits, words) == (2, 6) and (1 - edits / words) * 100 == pytest.approx(66.66666666666667)
    (tmp_path / "normalizer.json").unlink()
    with pytest.raises(UsageError, match=r"normalizer\.json: missing"):
        english_normalizer(tmp_path)


def test_repack_manifest_audio_and_refusals(tmp_path: Path) -> None:
    import soundfile

    manifest = repack(tmp_path, ["one", "two", "three"], [1.0, 2.0, 1.5], fname_prefix="/abs/data/dev-all-repack/")
    rows = json.loads(manifest.read_text(encoding="utf-8"))
    rows[1]["original_duration"] = 30.5  # over 30 s: left out as manifest.py's max_duration does
    manifest.write_text(json.dumps(rows), encoding="utf-8")
    kept = read_repack_manifest(manifest)
    assert [r["transcript"] for r in kept] == ["one", "three"]
    wav = resolve_audio(tmp_path, kept[1]["fname"])
    assert wav == tmp_path / "dev-all-repack" / "1274-128104_0.wav"
    audio = read_clip(wav)
    pcm, _ = soundfile.read(str(wav), dtype="int16")
    assert audio.dtype == np.float32 and audio.shape == (int(1.5 * RATE),)
    assert np.array_equal(audio, pcm.astype(np.float32) / 32768.0)
    stereo = tmp_path / "stereo.wav"
    soundfile.write(str(stereo), np.stack([audio, np.zeros_like(audio)], axis=1), RATE, subtype="PCM_16")
    assert np.allclose(read_clip(stereo), audio / 2, atol=1 / 32768)  # channels averaged
    other = tmp_path / "8k.wav"
    soundfile.write(str(other), audio[:800], 8000, subtype="PCM_16")
    with pytest.raises(UsageError, match="8000 Hz, expected 16000 Hz"):
        read_clip(other)
    with pytest.raises(UsageError, match=r"no audio file 'dev-all-repack/missing\.wav'"):
        resolve_audio(tmp_path, "dev-all-repack/missing.wav")
    rows[0].pop("files")
    manifest.write_text(json.dumps(rows), encoding="utf-8")
    with pytest.raises(UsageError, match="row 0: expected keys transcript, files, original_duration"):
        read_repack_manifest(manifest)


def test_speech_engine_batches_like_one_at_a_time_and_is_registered_lazily(checkpoint: Path, tmp_path: Path) -> None:
    assert {("speech", "transformers"), ("speech", "vllm")} <= set(ENGINES)
    code = (
        "import sys, provision.validation.runners.generate; print('provision.validation.runners.speech' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
    repack(tmp_path, ["x"] * 3, [1.0, 9.0, 20.0])
    clips = [read_clip(p) for p in sorted((tmp_path / "dev-all-repack").glob("*.wav"))]
    engine = open_engine("speech", checkpoint, "transformers", EngineOptions(device="cpu"), "float32")
    spec = GenerationSpec(task="whisper", prompt=PROMPT, max_new_tokens=MAX_NEW, min_new_tokens=0)
    together = engine.generate(clips, spec)
    alone: list[Any] = [engine.generate([c], spec)[0] for c in clips]
    assert together == alone and all(g.prompt_tokens == 4 for g in together)
    with pytest.raises(UsageError, match="the decoder prompt text"):
        engine.generate(clips[:1], GenerationSpec(task="whisper", prompt="tok_input"))
    with pytest.raises(UsageError, match="exceed the decoder's 64 positions"):
        engine.generate(clips[:1], GenerationSpec(task="whisper", prompt=PROMPT, max_new_tokens=200))
    engine.close()


@pytest.mark.gpu
def test_vllm_and_transformers_transcribe_alike_on_a_gpu(checkpoint: Path, tmp_path: Path) -> None:
    """On a CUDA machine with vLLM: the reference's engine and transformers give the same greedy text
    (float32, the tiny checkpoint)."""
    pytest.importorskip("vllm")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    repack(tmp_path, ["x"] * 3, [1.0, 9.0, 20.0])
    clips = [read_clip(p) for p in sorted((tmp_path / "dev-all-repack").glob("*.wav"))]
    spec = GenerationSpec(task="whisper", prompt=PROMPT, max_new_tokens=MAX_NEW, min_new_tokens=0)
    texts: dict[str, list[str]] = {}
    for name in ("vllm", "transformers"):
        engine = open_engine("speech", checkpoint, name, EngineOptions(device="cuda"), "float32")
        texts[name] = [g.text for g in engine.generate(clips, spec)]
        engine.close()
    assert texts["vllm"] == texts["transformers"]
