"""benchmarks/speedrun.py: the recipe runs end to end on a small subset, keeps every run, rejects bad arguments."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "speedrun.py"
TINY = ["--device", "cpu", "--subset", "256", "--epochs", "1", "--batch-size", "64", "--widths", "4", "8", "8", "16"]


@pytest.fixture(scope="module")
def speedrun():
    spec = importlib.util.spec_from_file_location("speedrun", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_net_maps_images_to_logits(speedrun):
    net = speedrun.SpeedNet((4, 8, 8, 16))
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_schedule_warms_up_then_decays_to_zero(speedrun):
    factors = [speedrun.triangle(step, 100) for step in range(101)]
    assert factors[0] == 0 and max(factors) == factors[20] == 1
    assert all(a < b for a, b in zip(factors[:20], factors[1:21])), "warm-up must rise"
    assert all(a > b for a, b in zip(factors[20:100], factors[21:])), "decay must fall"
    assert factors[100] == 0


def test_every_run_is_appended_to_the_json_and_seeds_repeat(speedrun, tmp_path, capsys):
    out = tmp_path / "speedrun-test.json"
    rows = speedrun.main(TINY + ["--seeds", "0", "1", "--json", str(out)])
    assert [r["seed"] for r in rows] == [0, 1]
    assert all(0 <= r["test_acc"] <= 1 and r["seconds"] > 0 for r in rows)
    speedrun.main(TINY + ["--seeds", "0", "--json", str(out)])
    saved = json.loads(out.read_text())
    assert [r["seed"] for r in saved] == [0, 1, 0], "every run is kept, earlier ones too"
    assert saved[2]["test_acc"] == saved[0]["test_acc"], "the same seed must give the same accuracy"
    for row in saved:
        assert row["device"] == "cpu" and row["torch"] == torch.__version__
        assert row["device_name"].startswith("cpu-") and row["train_examples"] == 256
        assert {"seconds", "test_acc", "epochs", "widths", "precision", "utc"} <= row.keys()
    assert "mean over 2 runs" in capsys.readouterr().out


def test_a_smoke_run_stays_out_of_the_results_folder(speedrun, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CNNLIB_SMOKE", "1")
    monkeypatch.setattr(speedrun, "RESULTS", tmp_path / "results")
    speedrun.main(TINY + ["--seeds", "0", "--json"])
    assert not (tmp_path / "results").exists(), "a smoke run measures nothing: it must not land in the results"
    assert "nothing appended to" in capsys.readouterr().out
    elsewhere = tmp_path / "smoke.json"  # a path outside the results folder is the caller's to ask for
    speedrun.main(TINY + ["--seeds", "0", "--json", str(elsewhere)])
    assert len(json.loads(elsewhere.read_text())) == 1


def recipe_as_run(speedrun, monkeypatch, without):
    """Run the tiny speedrun with ``--without *without`` and return what it actually built, spied on (the
    training steps and the test pass are recorded, not computed: what they were given is what counts)."""
    seen = {}

    def spy(name, make):
        def record(*args, **kwargs):
            seen[name] = (args, kwargs)
            return make(*args, **kwargs)
        return record
    monkeypatch.setattr(speedrun, "choose_precision", lambda device: "bf16")  # as on a GPU
    for owner, name in [(speedrun, "SpeedNet"), (speedrun.cnnlib, "load_fashion_mnist"), (torch.optim, "SGD"),
                        (torch.optim.lr_scheduler, "LambdaLR"), (torch.nn, "CrossEntropyLoss")]:
        monkeypatch.setattr(owner, name, spy(name, getattr(owner, name)))
    monkeypatch.setattr(speedrun, "train_step", spy("train_step", lambda *args, **kwargs: None))
    monkeypatch.setattr(speedrun, "test_accuracy", spy("test_accuracy", lambda *args, **kwargs: 0.5))
    [row] = speedrun.main(TINY + ["--seeds", "0"] + (["--without", *without] if without else []))
    factor = seen["LambdaLR"][0][1]
    return {
        "flip-crop": seen["load_fashion_mnist"][1]["augment"] is not None,
        "test-flip": seen["test_accuracy"][1]["test_flip"],
        "label-smoothing": seen["CrossEntropyLoss"][1]["label_smoothing"] > 0,
        "nesterov": seen["SGD"][1]["nesterov"],
        "schedule": factor(0) == 0,  # the warm-up starts from zero; a constant rate does not
        "residual": seen["SpeedNet"][1].get("residual", True),
        "bf16": seen["train_step"][0][4] == torch.bfloat16 and row["precision"] == "bf16",
        "channels-last": seen["test_accuracy"][0][3] == torch.channels_last,
    }


def test_each_ablation_leaves_out_its_part_and_only_that(speedrun, monkeypatch):
    """Every part is on in the full recipe, and --without PART turns off exactly that part."""
    assert set(recipe_as_run(speedrun, monkeypatch, []).values()) == {True}
    for part in speedrun.ABLATIONS:
        parts = recipe_as_run(speedrun, monkeypatch, [part])
        assert parts == {p: p != part for p in speedrun.ABLATIONS}, f"--without {part}: {parts}"


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "must be a positive integer"),
    (["--lr", "-1"], "must be a positive number"),
    (["--seeds", "1", "1"], "each seed once"),
    (["--device", "toaster"], "is not a device"),
    (["--widths", "8", "16"], "expected 4 arguments"),
    (["--without", "wings"], "invalid choice"),
])
def test_bad_arguments_say_what_is_wrong(speedrun, capsys, args, message):
    with pytest.raises(SystemExit):
        speedrun.main(args)
    assert message in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused(speedrun, capsys):
    with pytest.raises(SystemExit):
        speedrun.main(["--device", "cuda"])
    assert "no CUDA GPU" in capsys.readouterr().err
