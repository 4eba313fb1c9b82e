"""Read the committed measurements in benchmarks/results/ for the results chapter (chapter 19) and its tests.

- ``results/<device>.json``, written by ``benchmarks/train_speed.py``: a list with one row per model (per-seed
  test accuracies of ``cnnlib.train``, median seconds per epoch of cnnlib and of the d2l-style loop).
- ``results/speedrun-<device>.json``, written by ``benchmarks/speedrun.py``: every run of the speedrun.

Every reader checks what the chapter needs and raises :class:`ResultsError` naming the file, the model and the
field, and the command that writes a good file.
"""
import json
import statistics
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
TRAIN_SPEED = "python benchmarks/train_speed.py"

# cnnlib.models.BOOK_MODELS keys, in chapter order, with the names and chapters the book gives them.
LABELS = {"lenet": "LeNet", "alexnet": "AlexNet", "vgg11_4": "VGG-11/4", "nin": "NiN", "googlenet": "GoogLeNet",
          "bn_lenet": "BN-LeNet", "resnet18": "ResNet-18", "densenet": "DenseNet"}
CHAPTERS = {"lenet": "06-lenet", "alexnet": "07-alexnet", "vgg11_4": "08-vgg", "nin": "09-nin",
            "googlenet": "10-googlenet", "bn_lenet": "11-batch-norm", "resnet18": "12-resnet",
            "densenet": "13-densenet"}
# d2l-zh's test accuracy with the same settings (one run each, as printed in the d2l-zh book), quoted in the
# model's own chapter of this book.
D2L_ZH_TEST_ACC = {"lenet": 0.779, "alexnet": 0.883, "vgg11_4": 0.920, "nin": 0.790, "googlenet": 0.886,
                   "bn_lenet": 0.807, "resnet18": 0.893, "densenet": 0.885}

NUMBER = (int, float)
ROW_FIELDS = {"model": str, "device_name": str, "epochs": int, "d2l_style_epochs": int, "torch": str,
              "precision": str, "cnnlib_test_acc_seeds": dict, "cnnlib_epoch_seconds": list, "cnnlib_epoch_s": NUMBER,
              "d2l_style_epoch_s": NUMBER}


class ResultsError(ValueError):
    """A results file is missing, is not JSON, or lacks what the chapter reads."""


def _load_json(path):
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"{path} not found: it is written by {TRAIN_SPEED} (see its docstring), or fetch "
                           "benchmarks/results/ from the book's repository")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ResultsError(f"{path} is not valid JSON ({err}); restore it with git or rerun the benchmark") from None


def read_rows(path):
    """The rows of one ``train_speed.py`` file: a list of dicts, each checked for the fields the chapter reads."""
    rows = _load_json(path)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ResultsError(f"{path} should hold a list of rows (one object per model), as {TRAIN_SPEED} writes")
    for i, row in enumerate(rows):
        where = f"{path}, row {i} ({row.get('model', 'no model')})"
        for field, kind in ROW_FIELDS.items():
            if field not in row:
                raise ResultsError(f"{where} has no {field!r}; rerun {TRAIN_SPEED} (with --d2l-epochs 1 or more)")
            value = row[field]
            if not isinstance(value, kind) or isinstance(value, bool):
                raise ResultsError(f"{where}: {field!r} should be {getattr(kind, '__name__', 'a number')}, "
                                   f"got {value!r}")
        accs = row["cnnlib_test_acc_seeds"]
        if not accs or not all(isinstance(a, NUMBER) and 0 <= a <= 1 for a in accs.values()):
            raise ResultsError(f"{where}: 'cnnlib_test_acc_seeds' should map each seed to an accuracy in "
                               f"[0, 1], got {accs!r}")
        seconds = row["cnnlib_epoch_seconds"]
        if not seconds or not all(isinstance(t, NUMBER) and t > 0 for t in seconds):
            raise ResultsError(f"{where}: 'cnnlib_epoch_seconds' should list positive seconds, got {seconds!r}")
    return rows


def model_stats(row):
    """One model's numbers: seeds, their accuracies, mean, sample standard deviation, lowest, highest, speeds.

    ``epoch_s`` is cnnlib's median epoch, ``first_epoch_s`` its first (CUDA graph capture included).
    """
    seeds = sorted(row["cnnlib_test_acc_seeds"], key=int)
    accs = [row["cnnlib_test_acc_seeds"][s] for s in seeds]
    return dict(model=row["model"], label=LABELS.get(row["model"], row["model"]), seeds=[int(s) for s in seeds],
                accs=accs, mean=statistics.mean(accs), std=statistics.stdev(accs) if len(accs) > 1 else 0.0,
                low=min(accs), high=max(accs), d2l_zh=D2L_ZH_TEST_ACC.get(row["model"]),
                epoch_s=row["cnnlib_epoch_s"], first_epoch_s=row["cnnlib_epoch_seconds"][0],
                d2l_style_epoch_s=row["d2l_style_epoch_s"],
                speedup=row["d2l_style_epoch_s"] / row["cnnlib_epoch_s"])


def is_train_speed_file(path):
    """Whether ``path`` holds ``train_speed.py`` rows (other benchmarks write other JSON into results/ too)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(data, list) and bool(data) and all(
        isinstance(r, dict) and "cnnlib_test_acc_seeds" in r for r in data)


def full_run(results_dir=RESULTS):
    """The ``train_speed.py`` file that has every book model trained on all of Fashion-MNIST, with the most seeds.

    Returns ``(path, rows)`` with ``rows`` in chapter order. Ties go to the first file name. Files that other
    benchmarks wrote (speedrun, augmentation cost) are left alone.
    """
    results_dir = Path(results_dir)
    paths = [p for p in sorted(results_dir.glob("*.json")) if is_train_speed_file(p)]
    if not paths:
        raise ResultsError(f"no {TRAIN_SPEED} results in {results_dir}: run {TRAIN_SPEED} --device cuda "
                           "--epochs 10 --seeds 0 1 2")
    best, lacking = None, []
    for path in paths:
        rows = {r["model"]: r for r in read_rows(path) if r.get("subset") is None}
        missing = [m for m in LABELS if m not in rows]
        if missing:
            lacking.append(f"{path.name} lacks full-data rows for {', '.join(missing)}")
            continue
        seeds = min(len(rows[m]["cnnlib_test_acc_seeds"]) for m in LABELS)
        if best is None or seeds > best[0]:
            best = (seeds, path, [rows[m] for m in LABELS])
    if best is None:
        raise ResultsError(f"no file in {results_dir} covers every model on full data ({'; '.join(lacking)}); run "
                           f"{TRAIN_SPEED} --epochs 10 --seeds 0 1 2 without --subset")
    return best[1], best[2]


def commands(rows):
    """The ``train_speed.py`` command lines that produce ``rows`` (one per group of rows run together)."""
    groups = {}
    for r in rows:
        device = r.get("device", "cuda")
        args = [f"--device {device}", f"--epochs {r['epochs']}", f"--d2l-epochs {r['d2l_style_epochs']}",
                "--seeds " + " ".join(sorted(r["cnnlib_test_acc_seeds"], key=int))]
        if r.get("subset"):
            args.append(f"--subset {r['subset']}")
        if r.get("compile"):
            args.append(f"--compile {r['model']}")
        if device.startswith("cuda") and r.get("graphs") is False and not r.get("compile"):
            args.append("--eager")
        groups.setdefault(" ".join(args), []).append(r["model"])
    if len(groups) == 1:
        return [f"{TRAIN_SPEED} {next(iter(groups))}"]
    return [f"{TRAIN_SPEED} --models {' '.join(models)} {args}" for args, models in groups.items()]


SPEEDRUN = "python benchmarks/speedrun.py"
SPEEDRUN_FIELDS = {"device_name": str, "seed": int, "seconds": NUMBER, "test_acc": NUMBER, "epochs": int,
                   "train_examples": int, "test_examples": int}
SETTINGS = ("device_name", "precision", "epochs", "batch_size", "lr", "widths", "compile", "train_examples",
            "test_examples", "without")
FULL_SIZE = (60000, 10000)  # Fashion-MNIST's training and test examples


def _setting(run, key):
    """One setting of a run; ``without`` (the parts an ablation leaves out) is a sorted list, [] when absent."""
    return sorted(run.get("without") or []) if key == "without" else run.get(key)


def read_speedrun(path):
    """The runs of one ``speedrun.py`` file, grouped by settings (the ablation's ``without`` included, so an
    ablation never averages into the full recipe): a list of dicts with the settings, ``runs``, ``mean_acc``,
    ``std_acc``, ``mean_seconds``, ``min_seconds``, ``max_seconds`` and ``full_size`` (all of Fashion-MNIST,
    not a subset)."""
    runs = _load_json(path)
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        raise ResultsError(f"{path} should hold a list of runs (one object per seed), as {SPEEDRUN} --json writes")
    groups = {}
    for i, run in enumerate(runs):
        for field, kind in SPEEDRUN_FIELDS.items():
            if not isinstance(run.get(field), kind) or isinstance(run.get(field), bool):
                raise ResultsError(f"{path}, run {i}: {field!r} should be {getattr(kind, '__name__', 'a number')}, "
                                   f"got {run.get(field)!r}; rerun {SPEEDRUN} --json")
        key = tuple(str(_setting(run, k)) for k in SETTINGS)
        groups.setdefault(key, []).append(run)
    summaries = []
    for group in groups.values():
        accs, seconds = [r["test_acc"] for r in group], [r["seconds"] for r in group]
        first = group[0]
        summaries.append(dict({k: _setting(first, k) for k in SETTINGS}, runs=len(group),
                              mean_acc=statistics.mean(accs),
                              std_acc=statistics.stdev(accs) if len(accs) > 1 else 0.0,
                              mean_seconds=statistics.mean(seconds), min_seconds=min(seconds),
                              max_seconds=max(seconds),
                              full_size=(first["train_examples"], first["test_examples"]) == FULL_SIZE))
    return summaries


def speedruns(results_dir=RESULTS):
    """Every ``speedrun-<device>.json`` in ``results_dir`` as ``(path, groups)``; an empty list if there is none."""
    return [(path, read_speedrun(path)) for path in sorted(Path(results_dir).glob("speedrun-*.json"))]
