"""Context budget: sources are trimmed lowest-ranked first; only then is the request refused."""

from __future__ import annotations

import pytest

from core.types import Chunk, Hit
from serving.budget import ChatTemplateCounter, fit_context, model_context_len
from serving.errors import ContextLengthError
from tests.serving.fakes import WordCounter


def hits(*sizes: int) -> list[Hit]:
    return [
        Hit(Chunk(f"c{i}", f"s{i}.md", " ".join(["w"] * size)), 1.0 - i / 10) for i, size in enumerate(sizes)
    ]


MESSAGES = [{"role": "user", "content": "one two three four five"}]  # 5 tokens


def test_everything_fits():
    fitted = fit_context(MESSAGES, hits(10, 10), WordCounter(), context_len=200, answer_tokens=50)
    assert len(fitted.hits) == 2 and fitted.trimmed == 0 and fitted.messages[0]["role"] == "system"


def test_lowest_ranked_sources_are_dropped_first():
    sources = hits(40, 40, 40)
    # 5 message words + header/labels; the answer needs 50: only the best source fits in 130.
    fitted = fit_context(MESSAGES, sources, WordCounter(), context_len=130, answer_tokens=50)
    assert [hit.chunk.chunk_id for hit in fitted.hits] == ["c0"] and fitted.trimmed == 2
    assert fitted.prompt_tokens + 50 <= 130


def test_no_sources_fit_means_none_are_sent():
    fitted = fit_context(MESSAGES, hits(100), WordCounter(), context_len=60, answer_tokens=50)
    assert fitted.hits == [] and fitted.messages == MESSAGES and fitted.trimmed == 1


def test_too_long_even_without_sources_is_a_400_naming_the_lengths():
    with pytest.raises(ContextLengthError) as error:
        fit_context(MESSAGES, hits(10), WordCounter(), context_len=40, answer_tokens=50)
    assert error.value.status_code == 400 and error.value.code == "context_length_exceeded"
    assert "maximum context length is 40 tokens" in error.value.message
    assert (
        "55 tokens (5 in the messages (after dropping all 1 retrieved sources), 50 for" in error.value.message
    )


def test_chat_template_counter_counts_like_the_served_template(smol_tokenizer):
    counter = ChatTemplateCounter(smol_tokenizer)
    short = counter.count([{"role": "user", "content": "hi"}])
    parts = counter.count([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    longer = counter.count([{"role": "user", "content": "hi " * 50}])
    expected = smol_tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=True, add_generation_prompt=True
    )
    expected = expected["input_ids"] if hasattr(expected, "keys") else expected
    assert short == len(expected) == parts and longer >= short + 49


def test_context_len_comes_from_vllms_model_card():
    cards = [{"id": "base", "max_model_len": 4096}, {"id": "demo@v1", "parent": "base"}]
    assert model_context_len(cards, "base") == 4096 and model_context_len(cards, "other") is None
