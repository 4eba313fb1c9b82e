"""cnnlib.augment: each transform has the property it promises, validates its input, and the loaders use it
on training batches only, repeatably under a seed."""
import functools
import math

import pytest
import torch

import cnnlib
from cnnlib.augment import (Compose, color_jitter, flip_and_crop, random_crop, random_erasing,
                            random_horizontal_flip)



@pytest.fixture(autouse=True)
def seeded(monkeypatch):
    monkeypatch.setenv("CNNLIB_SMOKE", "0")
    cnnlib.set_seed(0)


def binomial_bound(n, p, sigmas=5):
    """Counts of a Binomial(n, p) fall outside n p +- this with probability below 1e-6 (5 sigma)."""
    return sigmas * math.sqrt(n * p * (1 - p))


# --- horizontal flip -------------------------------------------------------------------------------------

def test_flip_gives_each_example_or_its_exact_mirror():
    X = torch.rand(500, 2, 5, 7)
    out = random_horizontal_flip(X, p=0.5)
    same = (out == X).flatten(1).all(1)
    mirrored = (out == X.flip(-1)).flatten(1).all(1)
    assert (same | mirrored).all(), "an example is neither the original nor its mirror"
    assert same.any() and mirrored.any()
    assert out.shape == X.shape and not torch.equal(X, out)


@pytest.mark.parametrize("p", [0.0, 0.3, 0.5, 1.0])
def test_flipped_fraction_is_p_within_a_binomial_bound(p):
    n = 20_000
    X = torch.arange(4.0).expand(n, 1, 1, 4)  # mirrored rows are told apart by their first pixel
    flipped = int((random_horizontal_flip(X, p=p)[:, 0, 0, 0] == 3).sum())
    assert abs(flipped - n * p) <= binomial_bound(n, p), f"{flipped} of {n} flipped with p={p}"


def test_flip_leaves_its_input_alone():
    X = torch.rand(16, 1, 4, 4)
    before = X.clone()
    random_horizontal_flip(X, p=1.0)
    assert torch.equal(X, before)


# --- random crop -----------------------------------------------------------------------------------------

def window_offsets(padded, out):
    """(B,) index i * n_cols + j of the window padded[..., i:i+h, j:j+w] that equals each out example.

    Fails unless every example matches exactly one window (the inputs are random, so windows differ)."""
    h, w = out.shape[-2:]
    rows, cols = padded.shape[-2] - h + 1, padded.shape[-1] - w + 1
    matches = torch.stack([(padded[..., i:i + h, j:j + w] == out).flatten(1).all(1)
                           for i in range(rows) for j in range(cols)], dim=1)
    assert (matches.sum(1) == 1).all(), "a crop is not a window of the padded input"
    return matches.float().argmax(1), rows * cols


def test_every_crop_is_a_window_of_the_padded_input_and_every_window_occurs():
    X = torch.rand(3000, 2, 6, 6)
    out = random_crop(X, size=6, padding=2, fill=-1.0)
    assert out.shape == X.shape
    padded = torch.nn.functional.pad(X, (2, 2, 2, 2), value=-1.0)
    offsets, count = window_offsets(padded, out)
    seen = torch.bincount(offsets, minlength=count)
    # 25 windows, 3000 draws: each expected 120 times; 5 binomial sigmas around that.
    assert (seen - 120).abs().max() <= binomial_bound(3000, 1 / 25), f"window counts {seen.tolist()}"


def test_crop_to_a_smaller_rectangle_without_padding():
    X = torch.rand(200, 1, 8, 10)
    out = random_crop(X, size=(5, 3))
    assert out.shape == (200, 1, 5, 3)
    window_offsets(X, out)


def test_crop_of_the_full_padded_size_is_the_padded_image():
    X = torch.rand(4, 3, 5, 5)
    out = random_crop(X, size=9, padding=2, fill=0.5)
    assert torch.equal(out, torch.nn.functional.pad(X, (2,) * 4, value=0.5))


# --- random erasing --------------------------------------------------------------------------------------

def test_erasing_changes_exactly_one_rectangle_to_value_in_every_channel():
    X = torch.rand(400, 3, 28, 28) * 0.9 + 0.1  # never equal to the value 0
    out = random_erasing(X, p=1.0, scale=(0.1, 0.2), ratio=(1.0, 1.0), value=0.0)
    changed = out != X
    assert (changed == changed[:, :1]).all(), "the rectangle differs between channels"
    assert (out[changed] == 0).all()
    mask = changed[:, 0]
    for m in mask:
        rows, cols = m.any(1).nonzero().flatten(), m.any(0).nonzero().flatten()
        assert len(rows) and len(cols), "a chosen example was not erased"
        box = m[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        assert box.all() and int(m.sum()) == box.numel(), "the erased pixels are not one rectangle"
        assert len(rows) == len(cols), "ratio=(1, 1) must give squares"
    fraction = mask.flatten(1).float().mean(1)
    low, high = (math.sqrt(0.1 * 784) - 0.5) ** 2 / 784, (math.sqrt(0.2 * 784) + 0.5) ** 2 / 784
    assert fraction.min() >= low and fraction.max() <= high, (fraction.min(), fraction.max())


def test_erasing_chooses_examples_with_probability_p():
    n = 10_000
    X = torch.ones(n, 1, 4, 4)
    erased = int((random_erasing(X, p=0.25, value=0.0) != 1).flatten(1).any(1).sum())
    assert abs(erased - n * 0.25) <= binomial_bound(n, 0.25)
    assert torch.equal(random_erasing(X, p=0.0), X)


# --- colour jitter ---------------------------------------------------------------------------------------

def test_jitter_stays_in_0_1():
    X = torch.rand(256, 3, 8, 8)
    out = color_jitter(X, brightness=1.0, contrast=1.0)
    assert out.min() >= 0 and out.max() <= 1 and out.shape == X.shape
    assert not torch.equal(out, X)


def test_brightness_scales_each_image_by_one_factor_in_range():
    X = torch.rand(500, 1, 6, 6) * 0.4 + 0.05  # X * factor <= 0.9: nothing is clamped
    out = color_jitter(X, brightness=0.5)
    factor = out / X
    per_image = factor.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image), atol=1e-5)
    assert per_image.min() >= 0.5 - 1e-6 and per_image.max() <= 1.5 + 1e-6
    assert per_image[:, 0].std() > 0.2, "the factors are not drawn per example"


@pytest.mark.parametrize("channels", [1, 3])
def test_contrast_keeps_each_images_mean_grey_and_scales_its_spread(channels):
    X = torch.rand(500, channels, 6, 6) * 0.2 + 0.4  # within 0.1 of 0.5: factors <= 1.5 never clamp
    out = color_jitter(X, contrast=0.5)
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1) if channels == 3 else torch.ones(1, 1, 1, 1)
    grey_mean = lambda T: (T * weights).sum(1).mean((1, 2))  # noqa: E731
    assert torch.allclose(grey_mean(out), grey_mean(X), atol=1e-5)
    mean = grey_mean(X).view(-1, 1, 1, 1)
    ratio = ((out - mean).flatten(1).norm(dim=1) / (X - mean).flatten(1).norm(dim=1))
    assert ratio.min() >= 0.5 - 1e-4 and ratio.max() <= 1.5 + 1e-4 and ratio.std() > 0.2


def test_zero_jitter_is_the_identity():
    X = torch.rand(4, 3, 5, 5)
    assert torch.equal(color_jitter(X), X)


# --- validation ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, error, message", [
    (lambda: random_horizontal_flip(torch.rand(1, 28, 28)), ValueError, r"\(B, C, H, W\).*unsqueeze"),
    (lambda: random_horizontal_flip(torch.zeros(2, 1, 4, 4, dtype=torch.uint8)), TypeError, "float"),
    (lambda: random_horizontal_flip([[0.0]]), TypeError, "tensor"),
    (lambda: random_horizontal_flip(torch.rand(2, 1, 4, 4), p=1.5), ValueError, r"p .*\[0, 1\].*1.5"),
    (lambda: random_erasing(torch.rand(2, 1, 4, 4), p=-0.1), ValueError, r"\[0, 1\]"),
    (lambda: random_crop(torch.rand(2, 1, 28, 28), size=40, padding=4), ValueError,
     r"\(40, 40\) window does not fit.*\(36, 36\)"),
    (lambda: random_crop(torch.rand(2, 1, 28, 28), size=(0, 28)), ValueError, "positive int"),
    (lambda: random_crop(torch.rand(2, 1, 28, 28), size=28, padding=-1), ValueError, "non-negative"),
    (lambda: random_erasing(torch.rand(2, 1, 8, 8), scale=(0.5, 0.1)), ValueError, "scale"),
    (lambda: random_erasing(torch.rand(2, 1, 8, 8), scale=(0.1, 1.5)), ValueError, "scale"),
    (lambda: random_erasing(torch.rand(2, 1, 8, 8), ratio=(0.0, 2.0)), ValueError, "ratio"),
    (lambda: random_erasing(torch.rand(2, 1, 8, 8), ratio=3.0), ValueError, "ratio"),
    (lambda: color_jitter(torch.rand(2, 1, 8, 8), brightness=1.5), ValueError, "brightness"),
    (lambda: color_jitter(torch.rand(2, 1, 8, 8), contrast=-0.1), ValueError, "contrast"),
    (lambda: Compose([random_horizontal_flip, 3]), TypeError, "callables"),
    (lambda: flip_and_crop(size=28, padding=-2), ValueError, "padding"),
])
def test_bad_input_gives_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --- composing and the loaders ---------------------------------------------------------------------------

def test_compose_applies_in_order():
    X = torch.arange(6.0).view(1, 1, 2, 3)
    flip_then_crop = Compose([functools.partial(random_horizontal_flip, p=1.0),
                              functools.partial(random_crop, size=(2, 1))])
    assert flip_then_crop(X).shape == (1, 1, 2, 1)
    halve = Compose([lambda T: T / 2, lambda T: T + 1])
    assert torch.equal(halve(X), X / 2 + 1)


def small_loader(augment, resize=None, shuffle=True):
    images = torch.randint(0, 256, (100, 1, 8, 8), dtype=torch.uint8)
    return cnnlib.DeviceLoader(images, torch.arange(100), 32, shuffle=shuffle, resize=resize, augment=augment)


def test_loader_augments_float_batches_before_the_resize():
    seen = []

    def spy(X):
        seen.append((X.dtype, tuple(X.shape[1:]), float(X.min()), float(X.max())))
        return random_crop(X, size=6)

    batches = list(small_loader(spy, resize=12))
    assert all(X.shape[1:] == (1, 12, 12) for X, _ in batches)
    assert len(seen) == 4 and all(s[:2] == (torch.float32, (1, 8, 8)) and 0 <= s[2] <= s[3] <= 1 for s in seen)


def test_loader_rejects_an_augment_that_is_not_callable():
    with pytest.raises(TypeError, match="augment must be a callable"):
        small_loader(augment="flip")


def batches(loader):
    return [(X.clone(), y.clone()) for X, y in loader]


def test_a_seed_repeats_the_augmented_batches_and_another_seed_differs():
    loader = small_loader(flip_and_crop(size=8, padding=2))
    cnnlib.set_seed(7)
    first = batches(loader)
    cnnlib.set_seed(7)
    again = batches(loader)
    cnnlib.set_seed(8)
    other = batches(loader)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(first, other))


def test_without_shuffle_the_augmentation_alone_differs_between_seeds():
    loader = small_loader(functools.partial(random_erasing, p=1.0), shuffle=False)
    cnnlib.set_seed(1)
    a = batches(loader)
    cnnlib.set_seed(2)
    b = batches(loader)
    assert all(torch.equal(x[1], y[1]) for x, y in zip(a, b)) and not torch.equal(a[0][0], b[0][0])


@pytest.mark.needs_data
def test_load_fashion_mnist_augments_training_batches_only():
    def blank(X):
        return torch.zeros_like(X)

    train_iter, test_iter = cnnlib.load_fashion_mnist(64, device="cpu", subset=200, augment=blank)
    assert all(X.abs().sum() == 0 for X, _ in train_iter)
    raw, _ = cnnlib.read_fashion_mnist(train=False)
    X_test = torch.cat([X for X, _ in test_iter])
    assert torch.equal(X_test, raw[:200].float() / 255), "the test loader was augmented"
    assert test_iter.augment is None
