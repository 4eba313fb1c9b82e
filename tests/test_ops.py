"""cnnlib.ops: each from-scratch operation equals its PyTorch counterpart and rejects bad input clearly."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlib import (batch_norm, comp_conv2d, corr2d, corr2d_multi_in, corr2d_multi_in_out,
                    corr2d_multi_in_out_1x1, pool2d)


def test_corr2d_on_the_book_example():
    X = torch.tensor([[0.0, 1, 2], [3, 4, 5], [6, 7, 8]])
    K = torch.tensor([[0.0, 1], [2, 3]])
    assert corr2d(X, K).tolist() == [[19, 25], [37, 43]]
    assert corr2d(X.long(), K.long()).dtype == torch.float32  # integer inputs give float output


def test_corr2d_matches_conv2d_and_passes_gradients():
    torch.manual_seed(0)
    X, K = torch.randn(6, 7), torch.randn(3, 2, requires_grad=True)
    Y = corr2d(X, K)
    assert torch.allclose(Y, F.conv2d(X[None, None], K[None, None])[0, 0], atol=1e-5)
    Y.sum().backward()
    assert K.grad is not None and K.grad.shape == K.shape


@pytest.mark.parametrize("X, K, message", [
    (torch.ones(3), torch.ones(2, 2), r"X must have shape \(height, width\)"),
    (torch.ones(3, 3), torch.ones(1, 2, 2), "K must have shape"),
    (torch.ones(2, 2), torch.ones(3, 1), "larger than the input"),
    (torch.ones(2, 2), torch.ones(0, 1), "kernel is empty"),
])
def test_corr2d_rejects_bad_shapes(X, K, message):
    with pytest.raises(ValueError, match=message):
        corr2d(X, K)


def test_corr2d_rejects_non_tensors():
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        corr2d([[1, 2], [3, 4]], torch.ones(1, 1))


def test_multi_in_on_the_book_example():
    X = torch.tensor([[[0.0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1.0, 2, 3], [4, 5, 6], [7, 8, 9]]])
    K = torch.tensor([[[0.0, 1], [2, 3]], [[1.0, 2], [3, 4]]])
    assert corr2d_multi_in(X, K).tolist() == [[56, 72], [104, 120]]
    with pytest.raises(ValueError, match="2 input channels but K has kernels for 3"):
        corr2d_multi_in(X, torch.ones(3, 2, 2))


def test_multi_in_out_matches_conv2d_and_1x1_equals_it():
    torch.manual_seed(0)
    X, K = torch.randn(3, 5, 5), torch.randn(4, 3, 2, 2)
    assert torch.allclose(corr2d_multi_in_out(X, K), F.conv2d(X[None], K)[0], atol=1e-5)
    K1 = torch.randn(2, 3, 1, 1)
    assert torch.allclose(corr2d_multi_in_out_1x1(X, K1), corr2d_multi_in_out(X, K1), atol=1e-5)
    with pytest.raises(ValueError, match=r"\(c_out, c_in, 1, 1\)"):
        corr2d_multi_in_out_1x1(X, torch.randn(2, 3, 2, 2))
    with pytest.raises(ValueError, match="3 input channels but K expects 2"):
        corr2d_multi_in_out_1x1(X, torch.randn(2, 2, 1, 1))
    with pytest.raises(ValueError, match="K must have shape"):
        corr2d_multi_in_out(X, torch.randn(3, 2, 2))


def test_pool2d_max_and_avg():
    X = torch.tensor([[0.0, 1, 2], [3, 4, 5], [6, 7, 8]])
    assert pool2d(X, (2, 2)).tolist() == [[4, 5], [7, 8]]
    assert pool2d(X, 2, "avg").tolist() == [[2, 3], [5, 6]]
    torch.manual_seed(0)
    Z = torch.randn(6, 5)
    assert torch.allclose(pool2d(Z, (3, 2)), F.max_pool2d(Z[None, None], (3, 2), stride=1)[0, 0])
    assert torch.allclose(pool2d(Z, (3, 2), "avg"), F.avg_pool2d(Z[None, None], (3, 2), stride=1)[0, 0], atol=1e-6)


@pytest.mark.parametrize("args, error, message", [
    ((torch.ones(3, 3), 2, "median"), ValueError, "mode must be 'max' or 'avg'"),
    ((torch.ones(3, 3), 0), ValueError, "pool_size must be a positive int"),
    ((torch.ones(3, 3), (2, 2, 2)), ValueError, "pool_size must be a positive int"),
    ((torch.ones(3, 3), 4), ValueError, "pooling window .* is larger than the input"),
    ((torch.ones(1, 3, 3), 2), ValueError, "X must have shape"),
])
def test_pool2d_rejects_bad_input(args, error, message):
    with pytest.raises(error, match=message):
        pool2d(*args)


@pytest.mark.parametrize("conv, shape", [
    (nn.Conv2d(1, 1, kernel_size=3, padding=1), (8, 8)),
    (nn.Conv2d(1, 1, kernel_size=(5, 3), padding=(2, 1)), (8, 8)),
    (nn.Conv2d(1, 1, kernel_size=3, padding=1, stride=2), (4, 4)),
    (nn.Conv2d(1, 1, kernel_size=(3, 5), padding=(0, 1), stride=(3, 4)), (2, 2)),
])
def test_comp_conv2d_shapes_from_the_book(conv, shape):
    assert comp_conv2d(conv, torch.rand(8, 8)).shape == shape


def test_comp_conv2d_needs_one_image():
    with pytest.raises(ValueError, match=r"X must have shape \(height, width\)"):
        comp_conv2d(nn.Conv2d(1, 1, 3), torch.rand(1, 8, 8))


@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 5, 5)])
def test_batch_norm_matches_torch_in_both_modes(shape):
    torch.manual_seed(0)
    X = torch.randn(shape) * 3 + 1
    stat = (1, shape[1]) if len(shape) == 2 else (1, shape[1], 1, 1)
    gamma, beta = torch.rand(stat) + 0.5, torch.randn(stat)
    mean, var = torch.zeros(stat), torch.ones(stat)
    Y, new_mean, new_var = batch_norm(X, gamma, beta, mean, var, eps=1e-5, momentum=0.9)
    ref_mean, ref_var = torch.zeros(shape[1]), torch.ones(shape[1])
    ref = F.batch_norm(X, ref_mean, ref_var, gamma.flatten(), beta.flatten(), training=True, momentum=0.1, eps=1e-5)
    assert torch.allclose(Y, ref, atol=1e-5)
    assert torch.allclose(new_mean.flatten(), ref_mean, atol=1e-6)
    # torch's running variance mixes in the unbiased batch variance, the book's version the biased one.
    n = X.numel() // shape[1]
    unbiased = (ref_var - 0.9) / 0.1
    assert torch.allclose(new_var.flatten(), 0.9 + 0.1 * unbiased * (n - 1) / n, atol=1e-5)
    Y_eval, m2, v2 = batch_norm(X, gamma, beta, new_mean, new_var, training=False)
    assert torch.equal(m2, new_mean) and torch.equal(v2, new_var)
    assert torch.allclose(Y_eval, gamma * (X - new_mean) / torch.sqrt(new_var + 1e-5) + beta)


def test_batch_norm_rejects_bad_input():
    X = torch.randn(4, 3)
    ok = torch.ones(1, 3)
    with pytest.raises(ValueError, match=r"gamma must have shape \(1, 3\)"):
        batch_norm(X, torch.ones(3), ok, ok, ok)
    with pytest.raises(ValueError, match="X must have shape"):
        batch_norm(torch.randn(4, 3, 2), ok, ok, ok, ok)
    with pytest.raises(ValueError, match="eps > 0"):
        batch_norm(X, ok, ok, ok, ok, eps=0)
    with pytest.raises(ValueError, match="more than one value per channel"):
        batch_norm(torch.randn(1, 3), ok, ok, ok, ok)
