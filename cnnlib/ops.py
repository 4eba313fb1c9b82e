"""The from-scratch operations the chapters teach, each checked against bad input.

They are written for reading, not speed: ``nn.Conv2d``, ``nn.MaxPool2d`` and ``nn.BatchNorm2d`` do the
same work fast. The tests check each one against its PyTorch counterpart.
"""
import torch


def _check_tensor(name, t, ndims, what):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() not in ndims:
        raise ValueError(f"{name} must have shape {what}, got shape {tuple(t.shape)}")


def _pair(name, value):
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return pair


def _check_window(window, X, name="kernel"):
    kh, kw = window
    if kh > X.shape[-2] or kw > X.shape[-1]:
        raise ValueError(f"the {name} ({kh}, {kw}) is larger than the input {tuple(X.shape[-2:])}; "
                         f"pad the input or use a smaller {name}")


def corr2d(X, K):
    """2-D cross-correlation. X: (h, w), K: (kh, kw) -> (h - kh + 1, w - kw + 1), float."""
    _check_tensor("X", X, (2,), "(height, width)")
    _check_tensor("K", K, (2,), "(kernel height, kernel width)")
    if K.numel() == 0:
        raise ValueError(f"the kernel is empty: shape {tuple(K.shape)}")
    _check_window(K.shape, X)
    h, w = K.shape
    dtype = torch.promote_types(torch.promote_types(X.dtype, K.dtype), torch.float32)
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), dtype=dtype, device=X.device)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y


def corr2d_multi_in(X, K):
    """Cross-correlate each input channel with its own kernel and add up.

    X: (c_in, h, w), K: (c_in, kh, kw) -> (h - kh + 1, w - kw + 1).
    """
    _check_tensor("X", X, (3,), "(channels, height, width)")
    _check_tensor("K", K, (3,), "(channels, kernel height, kernel width)")
    if X.shape[0] != K.shape[0]:
        raise ValueError(f"X has {X.shape[0]} input channels but K has kernels for {K.shape[0]}")
    return sum(corr2d(x, k) for x, k in zip(X, K))


def corr2d_multi_in_out(X, K):
    """One output channel per kernel set. X: (c_in, h, w), K: (c_out, c_in, kh, kw) -> (c_out, h', w')."""
    _check_tensor("K", K, (4,), "(out channels, in channels, kernel height, kernel width)")
    return torch.stack([corr2d_multi_in(X, k) for k in K], 0)


def corr2d_multi_in_out_1x1(X, K):
    """A 1x1 convolution as a matrix product: the same dense layer applied at every pixel.

    X: (c_in, h, w), K: (c_out, c_in, 1, 1) -> (c_out, h, w).
    """
    _check_tensor("X", X, (3,), "(channels, height, width)")
    _check_tensor("K", K, (4,), "(out channels, in channels, 1, 1)")
    if K.shape[2:] != (1, 1):
        raise ValueError(f"a 1x1 convolution needs K of shape (c_out, c_in, 1, 1), got {tuple(K.shape)}")
    if X.shape[0] != K.shape[1]:
        raise ValueError(f"X has {X.shape[0]} input channels but K expects {K.shape[1]}")
    c_in, h, w = X.shape
    Y = torch.matmul(K.reshape(K.shape[0], c_in), X.reshape(c_in, h * w))
    return Y.reshape(K.shape[0], h, w)


def pool2d(X, pool_size, mode="max"):
    """Max or average pooling with stride 1 and no padding. X: (h, w) -> (h - ph + 1, w - pw + 1)."""
    _check_tensor("X", X, (2,), "(height, width)")
    p_h, p_w = _pair("pool_size", pool_size)
    if mode not in ("max", "avg"):
        raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")
    _check_window((p_h, p_w), X, "pooling window")
    Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1), dtype=torch.promote_types(X.dtype, torch.float32),
                    device=X.device)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            window = X[i:i + p_h, j:j + p_w]
            Y[i, j] = window.max() if mode == "max" else window.float().mean()
    return Y


def comp_conv2d(conv2d, X):
    """Apply a one-in, one-out channel layer to a single (h, w) image and return the (h', w') result."""
    _check_tensor("X", X, (2,), "(height, width)")
    Y = conv2d(X.reshape((1, 1) + X.shape))
    return Y.reshape(Y.shape[2:])


def batch_norm(X, gamma, beta, moving_mean, moving_var, eps=1e-5, momentum=0.9, training=True):
    """Batch normalization from scratch; returns ``(Y, moving_mean, moving_var)``.

    X: (n, features) after a dense layer, or (n, channels, h, w) after a convolution. ``gamma``, ``beta``
    and the moving statistics have one value per feature/channel, shaped (1, f) or (1, c, 1, 1). In
    training, X is normalized with the batch's mean and variance and the moving statistics are updated as
    ``momentum * moving + (1 - momentum) * batch``; in prediction, the moving statistics are used.
    Note: ``nn.BatchNorm2d(momentum=0.1)`` means the same as ``momentum=0.9`` here.
    """
    _check_tensor("X", X, (2, 4), "(batch, features) or (batch, channels, height, width)")
    if eps <= 0 or not 0 <= momentum <= 1:
        raise ValueError(f"need eps > 0 and 0 <= momentum <= 1, got eps={eps}, momentum={momentum}")
    stat_shape = (1, X.shape[1]) if X.dim() == 2 else (1, X.shape[1], 1, 1)
    for name, t in (("gamma", gamma), ("beta", beta), ("moving_mean", moving_mean), ("moving_var", moving_var)):
        if tuple(t.shape) != stat_shape:
            raise ValueError(f"{name} must have shape {stat_shape} for X of shape {tuple(X.shape)}, "
                             f"got {tuple(t.shape)}")
    if not training:
        X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)
    else:
        if X.shape[0] * (X[0, 0].numel()) < 2:
            raise ValueError("training-mode batch norm needs more than one value per channel; use a larger batch")
        dims = (0,) if X.dim() == 2 else (0, 2, 3)
        mean = X.mean(dim=dims, keepdim=True)
        var = ((X - mean) ** 2).mean(dim=dims, keepdim=True)
        X_hat = (X - mean) / torch.sqrt(var + eps)
        moving_mean = momentum * moving_mean + (1.0 - momentum) * mean.detach()
        moving_var = momentum * moving_var + (1.0 - momentum) * var.detach()
    return gamma * X_hat + beta, moving_mean, moving_var
