"""tools/gpu_pass.py: the smoke pass runs every section's code on the CPU and archives the result, so the GPU
procedure cannot rot before a GPU comes; a command that outlives its time is stopped and its log kept."""
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tools import gpu_pass

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.needs_data
def test_smoke_pass_archives_every_section(tmp_path):
    """About a minute on two idle cores: LeNet and a small ResNet-18 in fp16 and bf16, the speedrun and its
    first ablation, one train_speed run; the rest is skipped with its reason."""
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "tools/gpu_pass.py", str(out), "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    with tarfile.open(out / "gpu-pass.tar.gz") as tar:
        names = set(tar.getnames())
        summary = json.load(tar.extractfile("gpu-pass/summary.json"))
        table = tar.extractfile("gpu-pass/summary.md").read().decode()
    rows = {row["section"]: row for row in summary["sections"]}
    assert list(rows) == [name for name, _, _ in gpu_pass.SECTIONS]
    for name, row in rows.items():
        assert row["status"] in (gpu_pass.PASS, gpu_pass.SKIP), (name, row)
        assert f"| {name} | {row['status']} |" in table
        if row["status"] == gpu_pass.SKIP:
            assert row["summary"], f"{name} is skipped without a reason"
    for name in ("cuda-tests", "nccl", "chapters", "nbval"):  # what a CPU cannot run at the size that matters
        assert rows[name]["status"] == gpu_pass.SKIP
    for name in ("environment", "t4-path", "speedrun", "benchmarks"):
        assert rows[name]["status"] == gpu_pass.PASS, rows[name]
    t4 = rows["t4-path"]["details"]
    assert {(r["model"], r["precision"]) for r in t4["runs"]} == {
        (m, p) for m in ("lenet", "resnet18") for p in ("bf16", "fp16")}
    assert rows["speedrun"]["details"]["recipe"] and rows["speedrun"]["details"]["ablations"]
    for log in ("environment", "t4-path", "speedrun", "train-speed-lenet"):
        assert f"gpu-pass/logs/{log}.log" in names
    assert "gpu-pass/json/t4-path.json" in names
    print(f"smoke pass: {summary['seconds']:.0f} s")


def test_a_command_past_its_time_is_stopped_and_its_log_kept(tmp_path):
    args = gpu_pass.build_parser().parse_args([str(tmp_path), "--smoke"])
    p = gpu_pass.Pass(args)
    start = time.monotonic()
    code, seconds, out = p.run("sleeper", ["bash", "-c", "echo started; sleep 60 & wait"], limit=1)
    assert code is None and time.monotonic() - start < 10
    assert "started" in out and "stopped after" in (tmp_path / "gpu-pass" / "logs" / "sleeper.log").read_text()


def test_too_small_a_budget_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        gpu_pass.main([str(tmp_path), "--budget", "5"])
    assert "--budget 5" in capsys.readouterr().err
