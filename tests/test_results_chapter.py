"""Chapter 19 (results) says what the committed measurement files hold, and benchmarks/read_results.py reads them.

The chapter's stored outputs are recomputed here straight from the JSON (not through read_results.py), every
decimal number its prose states must be one its outputs print, and the lists its prose names (models above
d2l-zh, the Pareto front) must be the ones its outputs show. When a benchmark is rerun, these tests fail
until the chapter is rerun (tools/run_chapters.py 19-results, then tools/sync_translation.py 19-results) and
its prose is brought up to date.
"""
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tools.nbtools import CHAPTERS, ROOT, code_cells, load, source, tags

sys.path.insert(0, str(ROOT / "benchmarks"))
import read_results as rr  # noqa: E402

NAME = "19-results.ipynb"
DECIMAL = re.compile(r"\d+\.\d+")
LANGS = ("zh", "en")


def outputs(nb):
    """The text every code cell printed, one string per cell, in order."""
    texts = []
    for cell in code_cells(nb):
        text = ""
        for out in cell.get("outputs", []):
            text += "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
        texts.append(text)
    return texts


def output_with(nb, head):
    found = [t for t in outputs(nb) if t.startswith(head)]
    assert len(found) == 1, f"{NAME}: expected one stored output starting with {head!r}, found {len(found)}"
    return found[0]


def table(text):
    """Rows of a printed table keyed by their first column (header line skipped)."""
    return {line.split()[0]: line.split()[1:] for line in text.strip().splitlines()[1:]}


def prose(nb):
    return "\n".join(source(c) for c in nb["cells"] if c["cell_type"] == "markdown")


@pytest.fixture(scope="module")
def chapter():
    return {lang: load(CHAPTERS / lang / NAME) for lang in LANGS}


@pytest.fixture(scope="module")
def measured(chapter):
    """The results file the chapter names, read with plain json, and each model's numbers from its seeds."""
    head = output_with(chapter["zh"], "file:")
    path = ROOT / head.splitlines()[0].split()[1]
    rows = json.loads(path.read_text(encoding="utf-8"))
    models = {}
    for row in rows:
        accs = [row["cnnlib_test_acc_seeds"][s] for s in sorted(row["cnnlib_test_acc_seeds"], key=int)]
        models[rr.LABELS[row["model"]]] = dict(row=row, accs=accs, mean=statistics.mean(accs),
                                               std=statistics.stdev(accs))
    return path, rows, models


def test_chapter_names_the_file_device_and_command(chapter, measured):
    path, rows, _ = measured
    assert path == rr.full_run()[0], "the chapter should read the file read_results.full_run picks"
    head = output_with(chapter["zh"], "file:")
    assert rows[0]["device_name"] in head and rows[0]["precision"] in head and rows[0]["torch"] in head
    epochs, seeds = rows[0]["epochs"], " ".join(sorted(rows[0]["cnnlib_test_acc_seeds"], key=int))
    assert (f"command: python benchmarks/train_speed.py --device {rows[0]['device']} --epochs {epochs} "
            f"--d2l-epochs {rows[0]['d2l_style_epochs']} --seeds {seeds}") in head
    n_seeds = len(rows[0]["cnnlib_test_acc_seeds"])
    for lang, epochs_text, seeds_text in (("zh", f"训练 {epochs} 个迭代周期", f"{n_seeds} 个随机种子"),
                                          ("en", f"for {epochs} epochs", f"{n_seeds} random seeds")):
        text = prose(chapter[lang])
        assert "benchmarks/train_speed.py" in text and "benchmarks/results/" in text
        assert epochs_text in text and seeds_text in text, (
            f"{lang}: the prose should say {epochs_text!r} and {seeds_text!r}")


def test_accuracy_table_agrees_with_the_file(measured, chapter):
    _, _, models = measured
    printed = table(output_with(chapter["zh"], "model       seeds"))
    assert set(printed) == set(models), f"models in the table: {sorted(printed)}, in the file: {sorted(models)}"
    for label, m in models.items():
        d2l = rr.D2L_ZH_TEST_ACC[m["row"]["model"]]
        inside = round(min(m["accs"]), 3) <= d2l <= round(max(m["accs"]), 3)
        expected = [str(len(m["accs"]))] + [f"{v:.3f}" for v in (m["mean"], m["std"], min(m["accs"]),
                                                                 max(m["accs"]), d2l)] + ["yes" if inside else "no"]
        assert printed[label] == expected, f"{label}: the chapter shows {printed[label]}, the file gives {expected}"
        assert abs(m["row"]["cnnlib_test_acc_mean"] - m["mean"]) < 1e-9, f"{label}: the file's mean disagrees"


def test_nin_seeds_and_speed_table_agree_with_the_file(measured, chapter):
    _, _, models = measured
    nin = models["NiN"]["accs"]
    text = output_with(chapter["zh"], "NiN, seed")
    assert [float(v) for v in re.findall(r"test acc (\d\.\d+)", text)] == [round(a, 3) for a in nin]
    assert f"{max(nin) - min(nin):.3f} apart" in text
    printed = table(output_with(chapter["zh"], "model       d2l-style"))
    for label, m in models.items():
        r = m["row"]
        expected = [f"{r['d2l_style_epoch_s']:.2f}", f"{r['cnnlib_epoch_s']:.2f}",
                    f"{r['d2l_style_epoch_s'] / r['cnnlib_epoch_s']:.1f}x", f"{r['cnnlib_epoch_seconds'][0]:.2f}",
                    f"{r['d2l_style_epoch_s'] / r['cnnlib_epoch_seconds'][0]:.1f}x"]
        assert printed[label] == expected, f"{label}: the chapter shows {printed[label]}, the file gives {expected}"
    d2l = sum(m["row"]["d2l_style_epoch_s"] for m in models.values())
    ours = sum(m["row"]["cnnlib_epoch_s"] for m in models.values())
    assert printed["sum"] == [f"{d2l:.2f}", f"{ours:.2f}", f"{d2l / ours:.1f}x"]


def test_speedrun_section_agrees_with_the_speedrun_files(chapter):
    text = next(t for t in outputs(chapter["zh"]) if "speedrun on a GPU at full size:" in t)
    files = sorted((ROOT / "benchmarks" / "results").glob("speedrun-*.json"))
    hint = "a speedrun file changed: rerun tools/run_chapters.py 19-results, then tools/sync_translation.py 19-results"
    named = re.findall(r"^(benchmarks/results/speedrun-\S+\.json)$", text, flags=re.M)
    assert named == [f.relative_to(ROOT).as_posix() for f in files], hint
    runs = [json.loads(f.read_text(encoding="utf-8")) for f in files]
    printed = [int(n) for n in re.findall(r"runs: (\d+),", text)]
    assert sum(printed) == sum(len(r) for r in runs), f"{hint} (it prints {sum(printed)} runs)"
    groups = {}  # the runs of each file grouped by every setting, the ablation's "without" included
    for f in runs:
        for r in f:
            key = tuple(str(r.get(k)) for k in rr.SETTINGS if k != "without") + (tuple(sorted(r.get("without") or [])),)
            groups.setdefault(key, []).append(r)
    shown = re.findall(r"without: (.+)\n    runs: (\d+), test acc (\d\.\d+) ± \d\.\d+, [\d.]+ s per run "
                       r"\(([\d.]+) to ([\d.]+)\)", text)
    expected = [(", ".join(key[-1]) or "- (nothing left out)", str(len(g)),
                 f"{statistics.mean(r['test_acc'] for r in g):.4f}", f"{min(r['seconds'] for r in g):.2f}",
                 f"{max(r['seconds'] for r in g):.2f}") for key, g in groups.items()]
    assert shown == expected, f"{hint}: the groups shown differ from the files' runs grouped by their settings"
    gpu_full = any(r["device_name"].startswith("nvidia") and (r["train_examples"], r["test_examples"]) == rr.FULL_SIZE
                   for f in runs for r in f)
    assert text.rstrip().endswith("measured" if gpu_full else "not measured yet"), hint


def test_d2l_zh_values_are_the_ones_each_chapter_quotes():
    for model, value in rr.D2L_ZH_TEST_ACC.items():
        for lang in LANGS:
            text = prose(load(CHAPTERS / lang / f"{rr.CHAPTERS[model]}.ipynb"))
            assert "d2l-zh" in text and f"{value:.3f}" in text, (
                f"{lang}/{rr.CHAPTERS[model]} should quote d2l-zh's {value:.3f} for {model}")


@pytest.mark.parametrize("lang", LANGS)
def test_every_decimal_in_the_prose_is_printed_by_the_chapter(chapter, lang, measured):
    printed = set(DECIMAL.findall("\n".join(outputs(chapter[lang]))))
    printed |= {str(row["lr"]) for row in measured[1]}  # the learning rates, settings the file records
    stated = DECIMAL.findall(prose(chapter[lang]))
    assert stated, "the prose should discuss the measured numbers"
    missing = sorted(set(stated) - printed)
    assert not missing, f"{lang}/{NAME} states {missing}, which no output of the chapter prints"


@pytest.mark.parametrize("lang", LANGS)
def test_lists_in_the_prose_match_the_outputs(chapter, lang):
    nb = chapter[lang]
    rows = table(output_with(nb, "model       seeds"))
    above = [label for label, r in rows.items() if r[-1] == "no"]
    inside = sum(r[-1] == "yes" for r in rows.values())
    front = output_with(nb, "FLOPs:").splitlines()[0].split(":", 1)[1].strip().split(", ")
    text = prose(nb)
    if lang == "zh":
        phrases = [f"有 {inside} 个模型", "、".join(above[:-1]) + " 和 " + above[-1], "、".join(front)]
    else:
        phrases = [f"for {inside} models", ", ".join(above[:-1]) + " and " + above[-1], ", ".join(front)]
    for phrase in phrases:
        assert phrase in text, f"{lang}/{NAME}: the prose should say {phrase!r}, as the outputs show"


def test_colab_clones_the_repository_it_installs_from(tmp_path):
    nb = load(CHAPTERS / "zh" / NAME)
    locate = next(source(c) for c in code_cells(nb) if "git" in source(c) and "clone" in source(c))
    url = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]["url"]
    assert f'"{url}"' in locate, f"the clone URL should be the repository.url of _config.yml ({url})"

    repo = tmp_path / "origin"
    (repo / "benchmarks").mkdir(parents=True)
    (repo / "benchmarks" / "read_results.py").write_text((ROOT / "benchmarks" / "read_results.py").read_text())
    (repo / "benchmarks" / "results").mkdir()
    (repo / "benchmarks" / "results" / "gpu.json").write_text("[]")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    subprocess.run(git + ["init", "-q", str(repo)], check=True)
    subprocess.run(git + ["-C", str(repo), "add", "."], check=True)
    subprocess.run(git + ["-C", str(repo), "commit", "-q", "-m", "results"], check=True)
    work = tmp_path / "content" / "notebooks"  # like Colab's /content: no benchmarks/ two folders up
    work.mkdir(parents=True)
    env = dict(os.environ, CNNLIB_REPOSITORY=f"file://{repo}")
    script = "import os, subprocess, sys\nfrom pathlib import Path\n" + locate + "\nprint(RESULTS.resolve())"
    out = subprocess.run([sys.executable, "-c", script], cwd=work, env=env, check=True,
                         stdout=subprocess.PIPE, text=True).stdout.split()[-1]
    assert Path(out) == (work / "cnn-book" / "benchmarks" / "results").resolve()
    assert (Path(out) / "gpu.json").read_text() == "[]"


# benchmarks/read_results.py


def write(path, data):
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def good_row(model="lenet", seeds=(0.8, 0.82), **change):
    row = dict(model=model, device="cuda", device_name="gpu", epochs=10, d2l_style_epochs=1, torch="2", subset=None,
               precision="bf16", cnnlib_test_acc_seeds={str(i): a for i, a in enumerate(seeds)},
               cnnlib_epoch_seconds=[0.5, 0.1], cnnlib_epoch_s=0.1, d2l_style_epoch_s=2.0, graphs=True)
    row.update(change)
    return row


def test_a_missing_file_names_itself_and_the_command(tmp_path):
    with pytest.raises(rr.ResultsError, match=r"gpu\.json not found.*train_speed\.py"):
        rr.read_rows(tmp_path / "gpu.json")
    write(tmp_path / "augment-gpu.json", {"device_name": "gpu"})  # another benchmark's file is left alone
    write(tmp_path / "speedrun-gpu.json", [speedrun(0, 0.9, 3.0)])
    with pytest.raises(rr.ResultsError, match="no python benchmarks/train_speed.py results in .*--seeds 0 1 2"):
        rr.full_run(tmp_path)


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not valid JSON"),
    ({"model": "lenet"}, "should hold a list of rows"),
    ([good_row(cnnlib_test_acc_seeds={})], "'cnnlib_test_acc_seeds' should map each seed"),
    ([good_row(seeds=(0.8, 1.5))], "accuracy in \\[0, 1\\]"),
    ([good_row(cnnlib_epoch_s="fast")], "'cnnlib_epoch_s' should be a number, got 'fast'"),
    ([good_row(cnnlib_epoch_seconds=[])], "'cnnlib_epoch_seconds' should list positive seconds"),
    ([{k: v for k, v in good_row().items() if k != "d2l_style_epoch_s"}],
     "row 0 \\(lenet\\) has no 'd2l_style_epoch_s'; rerun .* --d2l-epochs"),
])
def test_a_malformed_file_gives_a_clear_error(tmp_path, content, message):
    with pytest.raises(rr.ResultsError, match=message):
        rr.read_rows(write(tmp_path / "gpu.json", content))


def test_full_run_picks_the_complete_file_with_most_seeds(tmp_path):
    write(tmp_path / "a-partial.json", [good_row(m) for m in list(rr.LABELS)[:-1]])
    with pytest.raises(rr.ResultsError, match="a-partial.json lacks full-data rows for densenet"):
        rr.full_run(tmp_path)
    write(tmp_path / "b-one-seed.json", [good_row(m, seeds=(0.8,)) for m in rr.LABELS])
    write(tmp_path / "c-subset.json", [good_row(m, seeds=(0.8, 0.8, 0.8), subset=256) for m in rr.LABELS])
    write(tmp_path / "d-two-seeds.json", [good_row(m) for m in reversed(list(rr.LABELS))])
    path, rows = rr.full_run(tmp_path)
    assert path.name == "d-two-seeds.json" and [r["model"] for r in rows] == list(rr.LABELS)


def test_model_stats_and_commands():
    s = rr.model_stats(good_row(seeds=(0.8, 0.9, 0.7)))
    assert s["accs"] == [0.8, 0.9, 0.7] and abs(s["mean"] - 0.8) < 1e-12 and abs(s["std"] - 0.1) < 1e-12
    assert (s["low"], s["high"], s["speedup"], s["first_epoch_s"], s["label"]) == (0.7, 0.9, 20.0, 0.5, "LeNet")
    assert rr.commands([good_row(), good_row("alexnet")]) == [
        "python benchmarks/train_speed.py --device cuda --epochs 10 --d2l-epochs 1 --seeds 0 1"]
    assert rr.commands([good_row(), good_row("alexnet", graphs=False, epochs=2)]) == [
        "python benchmarks/train_speed.py --models lenet --device cuda --epochs 10 --d2l-epochs 1 --seeds 0 1",
        "python benchmarks/train_speed.py --models alexnet --device cuda --epochs 2 --d2l-epochs 1 --seeds 0 1 --eager"]


def speedrun(seed, acc, seconds, **change):
    run = dict(device="cuda", device_name="nvidia-x", torch="2", seed=seed, seconds=seconds, test_acc=acc,
               epochs=10, batch_size=512, lr=0.2, widths=[32, 64, 128, 256], train_examples=60000,
               test_examples=10000, compile=None, precision="bf16")
    run.update(change)
    return run


def test_speedruns_absent_grouped_and_malformed(tmp_path):
    assert rr.speedruns(tmp_path) == []
    write(tmp_path / "speedrun-nvidia-x.json", [speedrun(0, 0.94, 3.0), speedrun(1, 0.96, 5.0),
                                               speedrun(0, 0.9, 40.0, train_examples=2000, epochs=2)])
    [(path, groups)] = rr.speedruns(tmp_path)
    assert path.name == "speedrun-nvidia-x.json" and [g["runs"] for g in groups] == [2, 1]
    full, small = groups
    assert full["full_size"] and not small["full_size"]
    assert abs(full["mean_acc"] - 0.95) < 1e-12 and abs(full["mean_seconds"] - 4.0) < 1e-12
    assert abs(full["std_acc"] - statistics.stdev([0.94, 0.96])) < 1e-12 and small["std_acc"] == 0.0
    ablation = [speedrun(0, 0.94, 3.0), speedrun(1, 0.96, 5.0, without=[]), speedrun(0, 0.5, 2.0, without=["schedule"])]
    write(tmp_path / "speedrun-nvidia-x.json", ablation)
    [(_, groups)] = rr.speedruns(tmp_path)
    assert [(g["without"], g["runs"]) for g in groups] == [([], 2), (["schedule"], 1)], "an ablation is its own group"
    assert (groups[0]["min_seconds"], groups[0]["max_seconds"]) == (3.0, 5.0)
    write(tmp_path / "speedrun-nvidia-x.json", [speedrun(0, "high", 3.0)])
    with pytest.raises(rr.ResultsError, match="run 0: 'test_acc' should be a number, got 'high'"):
        rr.speedruns(tmp_path)


def test_the_chapter_cells_carry_no_ignore_tags(chapter):
    for lang in LANGS:
        ignored = [i for i, c in enumerate(code_cells(chapter[lang])) if "nbval-ignore-output" in tags(c)]
        assert not ignored, f"{lang}/{NAME}: every cell is deterministic; code cells {ignored} are not compared"
