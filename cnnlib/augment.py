"""Image augmentation on the device, a whole batch at a time.

Every transform takes ``X``: float (B, C, H, W), values in [0, 1] as the loaders give them (before any resize
or normalisation), and returns a new tensor; the input is never modified. Random numbers come from torch's
global generator on ``X``'s device, so :func:`cnnlib.set_seed` and ``train(seed=...)`` make every draw
repeatable. There is no PIL, no per-image Python loop and no worker process: each transform is a handful of
tensor operations on the whole batch, so it runs wherever the batch already is.

Hand a transform (or a :class:`Compose` of several) to a loader as ``augment=...``; the loaders apply it to
training batches only::

    aug = Compose([random_horizontal_flip, functools.partial(random_crop, size=28, padding=4)])
    train_iter, test_iter = cnnlib.load_fashion_mnist(256, resize=96, augment=aug)
"""
import functools
import math
import numbers

import torch
import torch.nn.functional as F

__all__ = ["Compose", "color_jitter", "flip_and_crop", "random_crop", "random_erasing",
           "random_horizontal_flip"]


def _check_images(X, name):
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"{name} expects a tensor X of shape (B, C, H, W), got {type(X).__name__}")
    if X.dim() != 4:
        raise ValueError(f"{name} expects X of shape (B, C, H, W) (a batch of images), got shape {tuple(X.shape)}"
                         f"; add a batch dimension with X.unsqueeze(0) for a single image")
    if not X.is_floating_point():
        raise TypeError(f"{name} expects float images in [0, 1], got {X.dtype}; convert with X.float() / 255")


def _check_probability(p, name):
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"{name}: p is a probability and must lie in [0, 1], got {p!r}")


def _check_range(values, name, what, low, high):
    """``values`` must be a pair (a, b) with low < a <= b <= high (``high=None``: no upper bound)."""
    ok = (isinstance(values, (tuple, list)) and len(values) == 2
          and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values))
    if ok:
        a, b = values
        ok = low < a <= b and (high is None or b <= high)
    if not ok:
        bound = f"{low} < a <= b" + (f" <= {high}" if high is not None else "")
        raise ValueError(f"{name}: {what} must be a pair (a, b) with {bound}, got {values!r}")


def _as_pair(size, name):
    pair = (size, size) if isinstance(size, int) and not isinstance(size, bool) else tuple(size)
    if len(pair) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in pair):
        raise ValueError(f"{name}: size must be a positive int or a (height, width) pair of them, got {size!r}")
    return pair


def _check_padding(padding, name):
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"{name}: padding must be a non-negative int (pixels added on every side), got {padding!r}")


def _per_example(X):
    """Shape (B, 1, 1, 1) on X's device: broadcasts one value per example over C, H and W."""
    return (X.shape[0], 1, 1, 1)


def random_horizontal_flip(X, p=0.5):
    """Mirror each example left-right with probability ``p``: (B, C, H, W) -> (B, C, H, W)."""
    _check_images(X, "random_horizontal_flip")
    _check_probability(p, "random_horizontal_flip")
    flip = torch.rand(_per_example(X), device=X.device) < p
    return torch.where(flip, X.flip(-1), X)


def random_crop(X, size, padding=0, fill=0.0):
    """Pad every side by ``padding`` with ``fill``, then cut one random window per example.

    (B, C, H, W) -> (B, C, h, w) with ``size`` an int h = w or a pair (h, w). Every window of the padded
    (H + 2 * padding, W + 2 * padding) image is equally likely. With ``size`` equal to the original size this
    is a random shift by up to ``padding`` pixels in each direction.
    """
    _check_images(X, "random_crop")
    h, w = _as_pair(size, "random_crop")
    _check_padding(padding, "random_crop")
    if isinstance(fill, bool) or not isinstance(fill, numbers.Real):
        raise ValueError(f"random_crop: fill must be a number (the value of the padded pixels), got {fill!r}")
    B, _, H, W = X.shape
    if h > H + 2 * padding or w > W + 2 * padding:
        raise ValueError(f"random_crop: a ({h}, {w}) window does not fit in the padded image "
                         f"({H + 2 * padding}, {W + 2 * padding}) = ({H}, {W}) plus {padding} on every side; "
                         f"use a smaller size or more padding")
    padded = F.pad(X, (padding,) * 4, value=float(fill)) if padding else X
    C, Hp, Wp = padded.shape[1:]
    top = torch.randint(0, Hp - h + 1, (B, 1, 1, 1), device=X.device)
    left = torch.randint(0, Wp - w + 1, (B, 1, 1, 1), device=X.device)
    # Two gathers, rows then columns, pick each example's own window: (B, C, Hp, Wp) -> (B, C, h, Wp) -> (B, C, h, w).
    rows = (top + torch.arange(h, device=X.device).view(1, 1, h, 1)).expand(B, C, h, Wp)
    cols = (left + torch.arange(w, device=X.device).view(1, 1, 1, w)).expand(B, C, h, w)
    return padded.gather(2, rows).gather(3, cols)


def random_erasing(X, p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0.0):
    """Set one random rectangle of each chosen example to ``value`` (cutout): (B, C, H, W) -> same shape.

    Each example is chosen with probability ``p``. Its rectangle covers a fraction of the image drawn
    uniformly from ``scale`` and has a height/width ratio drawn log-uniformly from ``ratio``, as in
    torchvision's ``RandomErasing``; unlike torchvision, which retries up to 10 times and may give up, a side
    longer than the image is clipped to it, so every chosen example is erased. All channels are erased.
    """
    _check_images(X, "random_erasing")
    _check_probability(p, "random_erasing")
    _check_range(scale, "random_erasing", "scale (the erased fraction of the image)", 0, 1)
    _check_range(ratio, "random_erasing", "ratio (height / width of the rectangle)", 0, None)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"random_erasing: value must be a number (the erased pixels' value), got {value!r}")
    B, _, H, W = X.shape
    device = X.device
    area = H * W * torch.empty(B, device=device).uniform_(*scale)
    aspect = torch.empty(B, device=device).uniform_(math.log(ratio[0]), math.log(ratio[1])).exp()
    h = (area * aspect).sqrt().round().clamp(1, H).long()
    w = (area / aspect).sqrt().round().clamp(1, W).long()
    top = (torch.rand(B, device=device) * (H - h + 1)).long()
    left = (torch.rand(B, device=device) * (W - w + 1)).long()
    chosen = torch.rand(B, device=device) < p
    rows = torch.arange(H, device=device).view(1, H, 1)
    cols = torch.arange(W, device=device).view(1, 1, W)
    in_rows = (rows >= top.view(B, 1, 1)) & (rows < (top + h).view(B, 1, 1)) & chosen.view(B, 1, 1)  # (B, H, 1)
    in_cols = (cols >= left.view(B, 1, 1)) & (cols < (left + w).view(B, 1, 1))  # (B, 1, W)
    mask = (in_rows & in_cols).unsqueeze(1)  # (B, 1, H, W), the same for every channel
    return torch.where(mask, torch.tensor(float(value), dtype=X.dtype, device=device), X)


# ITU-R 601 luma weights, the grey that torchvision's adjust_contrast uses for RGB images.
_GREY_WEIGHTS = (0.299, 0.587, 0.114)


def _mean_grey(X):
    """Mean grey level of each image: (B, C, H, W) -> (B, 1, 1, 1). RGB uses luma weights, else the mean."""
    if X.shape[1] == 3:
        grey = torch.tensordot(X, X.new_tensor(_GREY_WEIGHTS), dims=([1], [0]))
    else:
        grey = X.mean(dim=1)
    return grey.mean(dim=(1, 2)).view(_per_example(X))


def color_jitter(X, brightness=0.0, contrast=0.0):
    """Scale brightness, then contrast, by random per-example factors: (B, C, H, W) -> same shape.

    Brightness multiplies each image by a factor drawn uniformly from [1 - brightness, 1 + brightness].
    Contrast moves every pixel away from (factor > 1) or towards (factor < 1) the image's mean grey
    level, with a factor drawn likewise from [1 - contrast, 1 + contrast], which keeps that mean. The
    result is clamped to [0, 1]. Both amounts lie in [0, 1]; 0 leaves the image alone.
    """
    _check_images(X, "color_jitter")
    for name, amount in (("brightness", brightness), ("contrast", contrast)):
        if isinstance(amount, bool) or not isinstance(amount, numbers.Real) or not 0 <= amount <= 1:
            raise ValueError(f"color_jitter: {name} must lie in [0, 1] (factors are drawn from "
                             f"[1 - {name}, 1 + {name}]), got {amount!r}")
    shape = _per_example(X)
    out = X
    if brightness:
        out = out * torch.empty(shape, device=X.device).uniform_(1 - brightness, 1 + brightness)
    if contrast:
        mean = _mean_grey(out)
        out = (out - mean) * torch.empty(shape, device=X.device).uniform_(1 - contrast, 1 + contrast) + mean
    return out.clamp(0, 1)


class Compose:
    """Apply several transforms in order: ``Compose([t1, t2])(X) == t2(t1(X))``.

    Each transform is a callable X -> X, e.g. ``random_horizontal_flip`` or
    ``functools.partial(random_crop, size=28, padding=4)``.
    """

    def __init__(self, transforms):
        self.transforms = list(transforms)
        bad = [t for t in self.transforms if not callable(t)]
        if bad:
            raise TypeError(f"Compose takes callables X -> X, got {bad!r}; wrap a transform with arguments "
                            f"in functools.partial, e.g. partial(random_crop, size=28, padding=4)")

    def __call__(self, X):
        for transform in self.transforms:
            X = transform(X)
        return X

    def __repr__(self):
        return f"Compose({self.transforms!r})"


def flip_and_crop(size, padding=4, p=0.5):
    """The usual augmentation for small images: a horizontal flip with probability ``p``, then a random
    ``size`` crop of the image padded by ``padding`` (a shift by up to ``padding`` pixels)."""
    _check_probability(p, "flip_and_crop")
    _as_pair(size, "flip_and_crop")
    _check_padding(padding, "flip_and_crop")
    return Compose([functools.partial(random_horizontal_flip, p=p),
                    functools.partial(random_crop, size=size, padding=padding)])
