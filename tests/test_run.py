"""The command line ``python -m cnnlib.run``: options, one-line errors with exit code 2, outputs written whole."""
import json
import re

import pytest
import torch

from cnnlib import models
from cnnlib import run as cli
from cnnlib.training import History, TrainingDiverged

SUMMARY = re.compile(r"^loss \d+\.\d{3}, train acc \d\.\d{3}, test acc \d\.\d{3}, \d+\.\d examples/sec on cpu$")


@pytest.fixture(autouse=True)
def one_process(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)


def test_help_lists_every_book_model(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in models.BOOK_MODELS), out


@pytest.mark.parametrize("argv, says", [
    (["resnet50"], "invalid choice: 'resnet50'"),
    (["lenet", "--epochs", "0"], "--epochs: must be a positive number, got 0"),
    (["lenet", "--lr", "nan"], "--lr: must be a positive number"),
    (["lenet", "--batch-size", "ten"], "--batch-size: 'ten' is not a number"),
    (["lenet", "--subset", "-5"], "--subset: must be a positive number"),
    (["lenet", "--device", "tpu"], "--device"),
    (["lenet", "--save", "/no/such/folder/w.pt"], "the folder /no/such/folder does not exist"),
])
def test_bad_arguments_exit_2_with_one_line(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m cnnlib.run: error:") and says in err, err


@pytest.mark.parametrize("device", ["cuda:3", "cuda:1"])
def test_a_gpu_the_machine_does_not_have_is_one_line_and_exit_2(device, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a machine with one GPU
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["lenet", "--device", device])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--device: {device}: this machine has 1 GPU (cuda:0)" in err, err


def test_more_processes_than_gpus_is_one_line_and_exit_2(monkeypatch, capsys):
    """torchrun --nproc_per_node=2 on a machine with one GPU: rank 1 has no GPU of its own."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    for name, value in (("WORLD_SIZE", "2"), ("RANK", "1"), ("LOCAL_RANK", "1")):
        monkeypatch.setenv(name, value)
    assert cli.main(["lenet", "--device", "cuda", "--batch-size", "256"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rank 1 wants cuda:1 but this machine has 1 GPUs" in err, err


def test_a_batch_size_the_processes_cannot_share_is_refused(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["lenet", "--batch-size", "256"])
    assert exit_.value.code == 2
    assert "--batch-size 256 is not divisible by the 3 processes" in capsys.readouterr().err


def test_chapter_settings_are_the_defaults():
    args = cli.parse_args(["alexnet"])
    spec = models.BOOK_MODELS["alexnet"]
    assert (args.batch_size, args.lr, args.epochs, args.seed) == (spec["batch_size"], spec["lr"], 10, 0)


@pytest.mark.needs_data
def test_a_run_prints_the_closing_line_and_writes_history_and_weights(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CNNLIB_SMOKE", "0")
    save, history = tmp_path / "lenet.pt", tmp_path / "lenet.json"
    code = cli.main(["lenet", "--epochs", "2", "--subset", "512", "--device", "cpu", "--batch-size", "128",
                     "--save", str(save), "--json", str(history)])
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert SUMMARY.match(last), last
    record = json.loads(history.read_text())
    assert (record["model"], record["batch_size"], record["world_size"], record["summary"]) == ("lenet", 128, 1, last)
    assert len(record["train_loss"]) == 2 and record["train_examples"] == [512, 512]
    net = models.lenet()
    net.load_state_dict(torch.load(save))  # a complete state_dict of the model
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet.json", "lenet.pt"], "a temporary file remains"


@pytest.mark.needs_data
def test_a_diverging_run_exits_1_with_the_reason_and_writes_nothing(tmp_path, monkeypatch, capsys):
    def diverge(net, *args, **kwargs):
        raise TrainingDiverged("the training loss became nan in epoch 1 (lr=0.9)", History("cpu", "fp32"))

    monkeypatch.setattr(cli, "train", diverge)
    code = cli.main(["lenet", "--subset", "256", "--device", "cpu", "--save", str(tmp_path / "w.pt")])
    assert code == 1
    assert capsys.readouterr().err == "python -m cnnlib.run: error: the training loss became nan in epoch 1 (lr=0.9)\n"
    assert not list(tmp_path.iterdir())


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")

    def half_then_fail(f):
        f.write(b"{\"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cli.write_atomically(target, half_then_fail)
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]
    cli.write_atomically(target, lambda f: f.write(b"new"))
    assert target.read_text() == "new" and list(tmp_path.iterdir()) == [target]
