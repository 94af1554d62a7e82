"""Tiny Whisper checkpoints and LibriSpeech-style clips for tests, built offline.

The checkpoint is a random 1-layer ``WhisperForConditionalGeneration`` (d_model 16, 8 mel bins,
1500 encoder positions: the 30 s of padded features Whisper requires) saved with a
``WhisperFeatureExtractor`` of 8 mel bins, a ``normalizer.json`` spelling map, and a word-level
tokenizer trained with ``tokenizers`` whose added special tokens are Whisper's
(``<|endoftext|>``, ``<|startoftranscript|>``, ``<|en|>``, ``<|transcribe|>``,
``<|notimestamps|>``), wrapped as a ``PreTrainedTokenizerFast``: a real Whisper vocabulary
cannot be downloaded here, and decoding only needs ids -> words with the special tokens skipped.

Clips are 16 kHz mono 16-bit wavs written with ``soundfile`` (the library the task reads with);
the manifest is a JSON list shaped like ``dev-all-repack.json`` (``repackage_librispeech.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

CORPUS = (
    "the colour of mister smith's cat is grey and it is twenty one years old "
    "we went to the theatre at ten o'clock dr jones said hmm okay percent dollars"
)
SPECIAL = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>", "<unk>"]
PROMPT = "<|startoftranscript|><|en|><|transcribe|><|notimestamps|>"
SPELLING = {"colour": "color", "theatre": "theater", "grey": "gray"}
MEL_BINS = 8
AUDIO_GAIN = 2.0
RATE = 16000


def tiny_tokenizer(folder: Path) -> None:
    """A word-level tokenizer over :data:`CORPUS` with Whisper's special tokens first (eos/pad 0)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator([CORPUS], trainers.WordLevelTrainer(special_tokens=SPECIAL))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        bos_token="<|startoftranscript|>",
        unk_token="<unk>",
        additional_special_tokens=SPECIAL[1:5],
    )
    fast.save_pretrained(str(folder))


def tiny_whisper(folder: Path, seed: int = 0) -> None:
    """A random tiny Whisper over the tiny tokenizer, its feature extractor and spelling map, in ``folder``."""
    import torch
    from transformers import AutoTokenizer, WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    folder.mkdir(parents=True, exist_ok=True)
    tiny_tokenizer(folder)
    tok = AutoTokenizer.from_pretrained(str(folder))
    eos, sot = tok.convert_tokens_to_ids("<|endoftext|>"), tok.convert_tokens_to_ids("<|startoftranscript|>")
    config = WhisperConfig(
        vocab_size=len(tok),
        num_mel_bins=MEL_BINS,
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_source_positions=1500,
        max_target_positions=64,
        pad_token_id=eos,
        bos_token_id=eos,
        eos_token_id=eos,
        decoder_start_token_id=sot,
        begin_suppress_tokens=None,
        suppress_tokens=None,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config)
    with torch.no_grad():  # a spread-out output layer (fewer near-ties); the prompt's tokens never win
        model.proj_out.weight.mul_(40.0)
        model.proj_out.weight[1 : len(SPECIAL)] = 0.0
        encoder, decoder = model.model.encoder, model.model.decoder
        for conv in (encoder.conv1, encoder.conv2):  # the audio, not the positions, drives the encoder
            conv.weight.mul_(AUDIO_GAIN)
        for layer in decoder.layers:  # and the decoder listens to it
            layer.encoder_attn.v_proj.weight.mul_(AUDIO_GAIN)
            layer.encoder_attn.out_proj.weight.mul_(AUDIO_GAIN)
    model.save_pretrained(str(folder), safe_serialization=True)
    WhisperFeatureExtractor(feature_size=MEL_BINS, sampling_rate=RATE).save_pretrained(str(folder))
    (folder / "normalizer.json").write_text(json.dumps(SPELLING), encoding="utf-8")


def clip(seed: int, seconds: float) -> np.ndarray:
    """A deterministic noisy tone of ``seconds`` at 16 kHz in [-0.5, 0.5]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    wave = 0.3 * np.sin(2 * np.pi * (200 + 50 * seed) * t) + 0.2 * rng.uniform(-1, 1, t.size)
    return wave.astype(np.float64)


def repack(folder: Path, transcripts: list[str], seconds: list[float], fname_prefix: str = "dev-all-repack/") -> Path:
    """Wavs in ``folder/dev-all-repack/`` and a ``dev-all-repack.json`` in the published shape whose
    ``fname`` is ``fname_prefix`` + the wav's name; the manifest's path."""
    import soundfile

    rows: list[dict[str, Any]] = []
    for k, (text, length) in enumerate(zip(transcripts, seconds, strict=True)):
        base = f"{1272 + k}-128104_0.wav"
        name = fname_prefix + base  # as the manifest writes it; the file itself is in dev-all-repack/
        path = folder / "dev-all-repack" / base
        path.parent.mkdir(parents=True, exist_ok=True)
        audio = clip(k, length)
        soundfile.write(str(path), audio, RATE, subtype="PCM_16")
        file = {
            "channels": 1,
            "sample_rate": float(RATE),
            "bitdepth": 16,
            "bitrate": 256000.0,
            "duration": len(audio) / RATE,
            "num_samples": len(audio),
            "encoding": "Signed Integer PCM",
            "silent": False,
            "fname": name,
            "speed": 1,
        }
        rows.append(
            {
                "transcript": text,
                "files": [file],
                "original_duration": len(audio) / RATE,
                "original_num_samples": len(audio),
            }
        )
    manifest = folder / "dev-all-repack.json"
    manifest.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return manifest
