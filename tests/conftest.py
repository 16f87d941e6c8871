"""Fixtures shared across the test tree: the real SmolLM2 files from the model cache (no hub access)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.models import ModelNotPulledError, resolve_model
from core.settings import DEFAULT_CHAT_MODEL, Settings

# Tests never reach the hub: everything they load is a local directory.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def smol_dir() -> Path:
    """The pulled SmolLM2 model directory: its tokenizer and chat template, as serving and training use."""
    try:
        return Path(resolve_model(DEFAULT_CHAT_MODEL, Settings().cache_dir))
    except ModelNotPulledError:
        pytest.fail(f"{DEFAULT_CHAT_MODEL} is not pulled: run `lorag models pull` (or `make models`) first")


@pytest.fixture(scope="session")
def smol_tokenizer(smol_dir):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smol_dir)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, smol_tokenizer) -> Path:  # type: ignore[no-untyped-def]
    """A randomly initialised 2-layer Llama with SmolLM2's tokenizer, saved like a real model directory."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(smol_tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        pad_token_id=smol_tokenizer.pad_token_id,
        bos_token_id=smol_tokenizer.bos_token_id,
        eos_token_id=smol_tokenizer.eos_token_id,
    )
    path = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(path)
    smol_tokenizer.save_pretrained(path)
    return path


TINY_WORDS = (
    "[PAD] [UNK] [CLS] [SEP] [MASK] a an the is of to and in for on with tent tents jacket price costs "
    "dollars returns return within days store stores open opens close at nine morning parcel arrive "
    "delivery when will my what how long much do i have bring back something bought shop time"
)
TINY_VOCAB = TINY_WORDS.split()


@pytest.fixture(scope="session")
def tiny_st_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sentence-transformers model (2-layer, 32-wide BERT + mean pooling + normalize) saved to a temporary
    directory: random weights, real files, so that loading and exporting run the real code in seconds."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("tiny-st")
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(TINY_VOCAB) + "\n")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(TINY_VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    hf_dir = root / "hf"
    BertModel(config).save_pretrained(hf_dir)
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=48)
    model = SentenceTransformer(modules=[transformer, Pooling(32, pooling_mode="mean"), Normalize()])
    model.save(str(root / "model"))
    return root / "model"
