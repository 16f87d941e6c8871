"""The bench's reference point outside vLLM: one Hugging Face `generate()` stream of the same model."""

from __future__ import annotations

import time
from typing import Any

from bench.loadgen import percentile_ms
from core.models import resolve_model
from core.settings import Settings


def hf_generate(settings: Settings, prompt: str, max_tokens: int) -> dict[str, float]:
    """One greedy `generate()` stream of exactly `max_tokens` tokens (as `ignore_eos`), timed token by
    token, in vLLM's dtype; the metrics are named as the load generator's."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model(settings.chat_model, settings.cache_dir)
    dtype = settings.vllm.dtype
    tokenizer: Any = AutoTokenizer.from_pretrained(path)
    model: Any = AutoModelForCausalLM.from_pretrained(
        path, dtype="auto" if dtype == "auto" else getattr(torch, dtype)
    )
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    clock = TokenClock()
    with torch.inference_mode():
        model.generate(**inputs, do_sample=False, max_new_tokens=2, min_new_tokens=2)  # warm-up
        clock.started = time.perf_counter()
        model.generate(
            **inputs, do_sample=False, max_new_tokens=max_tokens, min_new_tokens=max_tokens, streamer=clock
        )
    return clock.metrics()


class TokenClock:
    """A `generate()` streamer that only timestamps tokens (the first `put` is the prompt)."""

    def __init__(self) -> None:
        self.started = 0.0
        self.times: list[float] = []
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if self._prompt_seen:
            self.times.append(time.perf_counter())
        self._prompt_seen = True

    def end(self) -> None:
        pass

    def metrics(self) -> dict[str, float]:
        """Tokens/s, requests/s, TTFT and median inter-token gap of the stream."""
        wall = self.times[-1] - self.started
        gaps = [b - a for a, b in zip(self.times, self.times[1:], strict=False)]
        return {
            "output_tok_s": len(self.times) / wall,
            "requests_s": 1 / wall,
            "ttft_p50_ms": (self.times[0] - self.started) * 1000,
            "itl_p50_ms": percentile_ms(gaps, 50),
            "output_tokens": len(self.times),
        }
