"""cnnlib.summary, cnnlib.models and cnnlib.utils."""
import time

import pytest
import torch

import cnnlib
from cnnlib import models

# Parameter counts of the book's networks with 10 classes and one input channel (d2l's numbers).
PARAMS = {"lenet": 61_706, "alexnet": 46_764_746, "resnet18": 11_178_378, "bn_lenet": 44_878}


def test_summary_of_lenet(capsys):
    rows = cnnlib.summary(models.lenet(), (1, 1, 28, 28))
    table = capsys.readouterr().out
    assert [r["output_shape"] for r in rows][:3] == [(1, 6, 28, 28), (1, 6, 28, 28), (1, 6, 14, 14)]
    assert rows[-1]["output_shape"] == (1, 10)
    assert rows.total_params == 61_706 == sum(r["params"] for r in rows)
    assert rows[0]["flops"] == 2 * 6 * 28 * 28 * 5 * 5  # multiply-adds of the first convolution, times 2
    assert rows.total_flops == sum(r["flops"] for r in rows)
    assert "Conv2d" in table and "61,706" in table and "total" in table
    assert "12 layers" in repr(rows)


def test_summary_counts_flops_of_the_whole_batch():
    one = cnnlib.summary(models.lenet(), (1, 1, 28, 28), print_table=False)
    four = cnnlib.summary(models.lenet(), (4, 1, 28, 28), print_table=False)
    assert four.total_flops == 4 * one.total_flops


def test_summary_rejects_bad_input():
    with pytest.raises(ValueError, match="cannot take an input of shape"):
        cnnlib.summary(models.lenet(), (1, 3, 28, 28), print_table=False)
    with pytest.raises(ValueError, match="input_shape must be positive ints"):
        cnnlib.summary(models.lenet(), (1, 0, 28), print_table=False)
    with pytest.raises(TypeError, match="must be an nn.Module"):
        cnnlib.summary(lambda x: x, (1, 1, 28, 28))


@pytest.mark.parametrize("name", sorted(models.BOOK_MODELS))
def test_book_models_map_images_to_ten_logits(name):
    settings = models.BOOK_MODELS[name]
    size = settings["resize"] or 28
    net = settings["build"]()
    net.eval()
    with torch.no_grad():
        assert net(torch.zeros(2, 1, size, size)).shape == (2, 10)
    if name in PARAMS:
        assert sum(p.numel() for p in net.parameters()) == PARAMS[name]


def test_vgg_ratio_divides_widths():
    assert models.vgg(ratio=4)[0][0].out_channels == 16
    assert models.vgg()[4][0].out_channels == 512


def test_blocks_keep_their_documented_shapes():
    X = torch.rand(4, 3, 6, 6)
    assert models.Residual(3, 3)(X).shape == (4, 3, 6, 6)
    assert models.Residual(3, 6, use_1x1conv=True, strides=2)(X).shape == (4, 6, 3, 3)
    assert models.DenseBlock(2, 3, 10)(torch.rand(4, 3, 8, 8)).shape == (4, 23, 8, 8)
    assert models.transition_block(23, 10)(torch.rand(4, 23, 8, 8)).shape == (4, 10, 4, 4)
    assert models.Inception(192, 64, (96, 128), (16, 32), 32)(torch.rand(1, 192, 12, 12)).shape == (1, 256, 12, 12)


def test_timer_and_accumulator():
    timer = cnnlib.Timer()
    time.sleep(0.01)
    assert timer.stop() >= 0.01
    timer.start()
    timer.stop()
    assert len(timer.times) == 2 and timer.sum() == pytest.approx(sum(timer.times))
    assert timer.avg() == pytest.approx(timer.sum() / 2) and timer.cumsum()[-1] == pytest.approx(timer.sum())
    acc = cnnlib.Accumulator(2)
    acc.add(1, torch.tensor(2.0))
    acc.add(3, 4)
    assert acc[0] == 4 and acc[1] == 6
    acc.reset()
    assert acc.data == [0.0, 0.0]
    with pytest.raises(ValueError, match="holds 2 values"):
        acc.add(1)
    with pytest.raises(ValueError, match="at least one slot"):
        cnnlib.Accumulator(0)


def test_set_seed_repeats_random_numbers():
    cnnlib.set_seed(3)
    a = torch.rand(3)
    cnnlib.set_seed(3)
    assert torch.equal(a, torch.rand(3))


def test_devices(monkeypatch):
    """What torch reports about GPUs is faked: none, then two."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert cnnlib.try_gpu() == torch.device("cpu") and cnnlib.try_all_gpus() == [torch.device("cpu")]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert cnnlib.try_gpu() == torch.device("cuda:0") and cnnlib.try_gpu(1) == torch.device("cuda:1")
    assert cnnlib.try_gpu(2) == torch.device("cpu"), "a GPU index the machine lacks falls back to the CPU"
    assert cnnlib.try_all_gpus() == [torch.device("cuda:0"), torch.device("cuda:1")]


@pytest.mark.parametrize("value, expected", [("", False), ("0", False), ("off", False), ("1", True), ("yes", True)])
def test_smoke_switch(monkeypatch, value, expected):
    monkeypatch.setenv("CNNLIB_SMOKE", value)
    assert cnnlib.smoke_mode() is expected


def test_smoke_switch_rejects_nonsense(monkeypatch):
    monkeypatch.setenv("CNNLIB_SMOKE", "maybe")
    with pytest.raises(ValueError, match="CNNLIB_SMOKE='maybe' is not understood"):
        cnnlib.smoke_mode()
