"""Tiny generative checkpoints for tests: a word-level tokenizer trained with ``tokenizers`` and a
random Llama built from a config, saved as a Hugging Face folder (config, safetensors, tokenizer).

Greedy generation of a random model is arbitrary but deterministic: the tests compare provision's
scores with transformers called directly on the same folder, never with fixed numbers.
"""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "the cat sat on the mat . the dog ran in the park .",
    "a storm hit the coast on monday . officials said the damage was small .",
    "the team won the game . fans were happy and the coach thanked them .",
    "summarize the following news article in 128 tokens . article : summary :",
    "prices rose in march . the bank said it would act . markets fell .",
]
SPECIAL = ["<pad>", "<s>", "</s>", "<unk>"]


def tiny_tokenizer(folder: Path, corpus: list[str] | None = None, chat_template: str | None = None) -> None:
    """A word-level tokenizer over ``corpus`` (default :data:`CORPUS`; pad 0, bos 1, eos 2, unk 3), saved
    in ``folder``, with ``chat_template`` when given."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(corpus or CORPUS, trainers.WordLevelTrainer(special_tokens=SPECIAL))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    if chat_template is not None:
        fast.chat_template = chat_template
    fast.save_pretrained(str(folder))


def tiny_llama(folder: Path, seed: int = 0, corpus: list[str] | None = None, chat_template: str | None = None) -> None:
    """A random 2-layer Llama (hidden 32) over the tiny tokenizer's vocabulary, saved in ``folder``."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder.mkdir(parents=True, exist_ok=True)
    tiny_tokenizer(folder, corpus, chat_template)
    vocab = len(AutoTokenizer.from_pretrained(str(folder)))
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # a spread-out output layer: fewer near-ties between the top tokens
        model.lm_head.weight.mul_(40.0)
    model.save_pretrained(str(folder), safe_serialization=True)


def greedy_direct(
    folder: Path, prompts: list[list[int]], max_new_tokens: int, min_new_tokens: int = 1
) -> list[list[int]]:
    """Greedy generation with transformers called directly, one prompt at a time (no padding):
    the generated ids through the first eos."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    config = GenerationConfig(
        max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens, do_sample=False, eos_token_id=2, pad_token_id=0
    )
    out = []
    for prompt in prompts:
        with torch.inference_mode():
            ids = model.generate(input_ids=torch.tensor([prompt]), generation_config=config)[0, len(prompt) :].tolist()
        if 2 in ids:
            ids = ids[: ids.index(2) + 1]
        out.append(ids)
    return out


def legacy_frame(data: object) -> object:
    """A DataFrame of object columns under an object column index, as the published MLPerf pickles
    (written by pandas < 3) hold them: pandas 3 would store str columns as pyarrow arrays."""
    import pandas as pd

    frame = pd.DataFrame(data).astype(object)
    frame.columns = frame.columns.astype(object)
    return frame
