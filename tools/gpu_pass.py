"""Every GPU check of the book in one call, in order of value, inside a time limit; one archive of what it found.

    python tools/gpu_pass.py OUT                           # on a GPU machine: 9 minutes at most
    python tools/gpu_pass.py OUT --budget 1800 --wheels ~/wheels
    python tools/gpu_pass.py OUT --smoke                   # the same sections on a CPU, tiny, in about a minute

Sections, most valuable first:

 1. environment   GPU name, compute capability, memory; torch, CUDA and cuDNN versions; the data found
 2. cuda-tests    the tests of tests/ marked needs_cuda (graphs with momentum and weight decay, the precision
                  choice on the real card, the capture fallback)
 3. t4-path       LeNet and ResNet-18, one epoch each in fp16 with a GradScaler (Colab's T4 path) with graphs
                  asked for and off, against the same epoch in bf16 (fp32 on cards below compute capability 8.0)
 4. nccl          cnnlib.run lenet under torchrun --standalone with nccl, 1 process and one per GPU, against
                  one plain process
 5. chapters      the chapters of chapters/pending-gpu-runs.txt at full size, Chinese first, each then copied
                  to its English twin by tools/sync_translation.py
 6. speedrun      benchmarks/speedrun.py, 5 seeds, then one run of each ablation
 7. benchmarks    benchmarks/train_speed.py (model by model) and benchmarks/augment_cost.py
 8. nbval         the Chinese chapters at full size under nbval, one by one, with the time left

Every section runs in child processes under a time limit: its own budget (BUDGETS, estimated from the stored
H200 timings), cut to what is left of ``--budget`` less a reserve for the archive. A section that cannot get its
minimum is skipped with the reason; one that runs out of time stops, keeping what it finished (a chapter is
written only when it ran to the end). Sections the CPU cannot run are skipped with the reason under ``--smoke``
or on a machine without a GPU. Nothing is downloaded: Fashion-MNIST comes from ``$CNNLIB_DATA``, missing Python
packages from ``--wheels DIR`` (``pip install --no-index --find-links DIR``).

OUT receives ``gpu-pass.tar.gz``: ``summary.md`` and ``summary.json`` (one row per section), ``logs/`` (each
command's output), ``json/`` (results) and ``notebooks/`` (the executed chapters, zh and en).
"""
import argparse
import ast
import importlib
import importlib.util
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tools.nbtools import pending_chapters  # noqa: E402  (run as a script from any folder)

PENDING = ROOT / "chapters" / "pending-gpu-runs.txt"
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_BUDGET = 9 * 60
RESERVE = 15  # seconds kept back for the summary and the archive
# Seconds per section on a GPU, estimated from benchmarks/results/nvidia-h200.json (epoch times) plus process
# start, data loading and graph capture; the last section takes whatever is left.
BUDGETS = {"environment": 20, "cuda-tests": 60, "t4-path": 75, "nccl": 60, "chapters": 240, "speedrun": 120,
           "benchmarks": 150, "nbval": None}
MINIMUM = 10  # a section offered less than this is skipped
# Python modules a section needs, and the distribution that brings each (for --wheels).
NEEDS = {"pytest": "pytest", "nbval": "nbval", "nbclient": "nbclient", "nbformat": "nbformat",
         "ipykernel": "ipykernel", "matplotlib": "matplotlib", "numpy": "numpy", "torchvision": "torchvision"}
SECTION_NEEDS = {"cuda-tests": ["pytest", "matplotlib", "numpy"], "t4-path": ["matplotlib", "numpy"],
                 "nccl": ["matplotlib", "numpy"], "chapters": ["nbclient", "nbformat", "ipykernel", "matplotlib"],
                 "speedrun": ["matplotlib", "numpy"], "benchmarks": ["matplotlib", "numpy", "torchvision"],
                 "nbval": ["pytest", "nbval", "ipykernel", "matplotlib"]}
PASS, FAIL, SKIP, TIMEOUT = "passed", "failed", "skipped", "out of time"


class Pass:
    """The state of one pass: options, output folders, the clock, and the facts the environment found."""

    def __init__(self, args):
        self.args, self.smoke = args, args.smoke
        self.out = Path(args.out).resolve()
        self.work = self.out / "gpu-pass"
        for sub in ("logs", "json", "notebooks"):
            (self.work / sub).mkdir(parents=True, exist_ok=True)
        self.started = time.time()
        self.deadline = time.monotonic() + args.budget - RESERVE
        self.env = {}  # what the environment section found: gpus, capability, data
        self.missing = []  # Python modules still missing after --wheels

    def left(self):
        return self.deadline - time.monotonic()

    def child_env(self, smoke=None):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                   MPLBACKEND="Agg", CNNLIB_SMOKE="1" if (self.smoke if smoke is None else smoke) else "0")
        for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
            env.pop(name, None)
        return env

    def run(self, name, command, limit, smoke=None):
        """Run ``command`` (a list) with its output in ``logs/<name>.log``, killed (with every process it
        started) after ``limit`` seconds. Returns ``(returncode or None when killed, seconds, output)``."""
        log = self.work / "logs" / f"{name}.log"
        start = time.monotonic()
        with open(log, "w") as f:
            f.write(f"$ {shlex.join(str(c) for c in command)}\n")
            f.flush()
            proc = subprocess.Popen([str(c) for c in command], cwd=ROOT, env=self.child_env(smoke), stdout=f,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                code = proc.wait(timeout=max(limit, 1))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: torchrun's workers and kernels go too
                proc.wait()
                code = None
        seconds = time.monotonic() - start
        if code is None:
            with open(log, "a") as f:
                f.write(f"\n[gpu_pass] stopped after {seconds:.0f} s: the section's time was up\n")
        return code, seconds, log.read_text(errors="replace")

    def worker(self, name, what, limit, *extra):
        """Run one of this script's own workers (``--worker what``); returns (returncode, seconds, its JSON)."""
        path = self.work / "json" / f"{name}.json"
        code, seconds, _ = self.run(name, [sys.executable, __file__, "--worker", what, "--json", path,
                                           *(["--smoke"] if self.smoke else []), *extra], limit)
        return code, seconds, json.loads(path.read_text()) if path.exists() else None


# --- sections -----------------------------------------------------------------------------------------------

def environment(p, limit):
    code, seconds, found = p.worker("environment", "environment", limit)
    if code != 0 or found is None:
        return FAIL, "could not start torch (see logs/environment.log)", {}
    p.env = found
    gpu = found["gpus"][0] if found["gpus"] else None
    line = (f"{gpu['name']}, compute capability {gpu['capability']}, {gpu['memory_gib']:.0f} GiB"
            if gpu else "no CUDA GPU") + f"; torch {found['torch']}, CUDA {found['cuda']}, cuDNN {found['cudnn']}"
    if not found["data"]:
        line += "; Fashion-MNIST not found (set CNNLIB_DATA to the folder of its .gz files)"
    if p.missing:
        line += f"; missing {', '.join(p.missing)} (bring their wheels, --wheels DIR)"
    return PASS, line, {**found, "missing": p.missing}


def cuda_tests(p, limit):
    files = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "tests").glob("test_*.py")
                   if "needs_cuda" in path.read_text(encoding="utf-8"))
    report = p.work / "json" / "cuda-tests.xml"
    code, seconds, out = p.run("cuda-tests", [sys.executable, "-m", "pytest", "-m", "needs_cuda", *files,
                                              "-p", "no:cacheprovider", "-rA", f"--junitxml={report}"], limit,
                               smoke=True)
    counts = _junit_counts(report)
    if code is None:
        return TIMEOUT, "stopped before the tests finished", counts
    status = PASS if code == 0 and counts.get("tests", 0) > counts.get("skipped", 0) else FAIL
    return status, f"{counts} in {', '.join(files)}", counts


def _junit_counts(path):
    if not path.exists():
        return {}
    import xml.etree.ElementTree as ET

    suite = ET.parse(path).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    return {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}


def t4_path(p, limit):
    code, seconds, found = p.worker("t4-path", "t4-path", limit)
    if found is None:
        return (TIMEOUT if code is None else FAIL), "no result (see logs/t4-path.log)", {}
    runs = found["runs"]
    bad = [r for r in runs if not r["within_noise"]]
    done = f"{len(runs)} of {found['planned']} runs"
    if code is None or len(runs) < found["planned"]:
        return TIMEOUT, done + " finished", found
    if code != 0 or bad:
        return FAIL, done + "; outside the noise: " + ", ".join(f"{r['model']} {r['precision']} graphs="
                                                                  f"{r['graphs']}" for r in bad), found
    return PASS, done + f", fp16 within noise of {found['reference']}", found


def nccl(p, limit):
    gpus = len(p.env.get("gpus", []))
    # one global batch for every run, divisible by each process count (LeNet's 256, or 768 on 3 or 6 GPUs)
    batch = math.lcm(256, max(gpus, 1))
    common = ["lenet", "--epochs", "2", "--seed", "0", "--no-progress", "--batch-size", str(batch)]
    plans = [("single", [sys.executable, "-m", "cnnlib.run"])]
    for n in sorted({1, gpus}):
        plans.append((f"torchrun-{n}", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                        f"--nproc_per_node={n}", "-m", "cnnlib.run"]))
    results = {}
    for name, launcher in plans:
        path = p.work / "json" / f"nccl-{name}.json"
        code, seconds, _ = p.run(f"nccl-{name}", [*launcher, *common, "--json", path], min(limit, p.left()))
        limit -= seconds
        if code != 0 or not path.exists():
            return (TIMEOUT if code is None else FAIL), f"{name} did not finish (see logs/nccl-{name}.log)", results
        history = json.loads(path.read_text())
        results[name] = {"world_size": history["world_size"], "test_acc": history["test_acc"][-1],
                         "seconds": seconds}
    reference = results["single"]["test_acc"]
    n_test = 10_000
    tolerance = _noise(reference, n_test)
    off = {k: r["test_acc"] - reference for k, r in results.items() if abs(r["test_acc"] - reference) > tolerance}
    summary = ", ".join(f"{k} {r['test_acc']:.4f}" for k, r in results.items())
    return (FAIL if off else PASS), summary + f" (tolerance {tolerance:.3f})", results


def _noise(acc, n):
    """How far two runs' test accuracies may lie apart and still count as the same: 2 points, or 4 binomial
    standard deviations of an accuracy measured on ``n`` examples, whichever is larger."""
    return max(0.02, 4 * math.sqrt(max(acc * (1 - acc), 0.01) / n))


def chapters(p, limit):
    names = pending_chapters()
    missing = [n for n in names if not (ROOT / "chapters" / "zh" / f"{n}.ipynb").exists()]
    if missing:
        return FAIL, f"{PENDING.name} names chapters that do not exist: {missing}", {}
    if p.smoke:
        return SKIP, f"full-size chapters need a GPU ({', '.join(names)} would run)", {"chapters": names}
    done = {}
    for name in names:
        left = min(limit, p.left())
        if left < MINIMUM:
            break
        if name == "16-cifar10" and not p.env.get("cifar10"):
            done[name] = {"status": SKIP, "reason": "CIFAR-10 not found: put cifar-10-python.tar.gz in CNNLIB_DATA"}
            continue
        code, seconds, _ = p.run(f"chapter-{name}", [sys.executable, "tools/run_chapters.py", "--timeout",
                                                     int(left), name], left)
        limit -= seconds
        if code != 0:
            done[name] = {"status": TIMEOUT if code is None else FAIL, "seconds": seconds}
            continue
        sync, _, _ = p.run(f"sync-{name}", [sys.executable, "tools/sync_translation.py", name], 60)
        for lang in ("zh", "en"):
            shutil.copy2(ROOT / "chapters" / lang / f"{name}.ipynb", p.work / "notebooks" / f"{lang}-{name}.ipynb")
        done[name] = {"status": PASS if sync == 0 else FAIL, "seconds": seconds}
    ran = [n for n, r in done.items() if r["status"] == PASS]
    status = (FAIL if any(r["status"] == FAIL for r in done.values()) else TIMEOUT if len(done) < len(names)
              else PASS)
    return status, f"{len(ran)} of {len(names)} chapters executed and synced", done


def speedrun(p, limit):
    path = p.work / "json" / "speedrun.json"
    sizes = ["--device", "cpu", "--subset", "64", "--epochs", "1", "--batch-size", "32"] if p.smoke else []
    seeds = ["0"] if p.smoke else ["0", "1", "2", "3", "4"]
    code, seconds, out = p.run("speedrun", [sys.executable, "benchmarks/speedrun.py", "--seeds", *seeds,
                                            "--json", path, *sizes], limit)
    finished = [line for line in out.splitlines() if line.startswith("seed ")]
    results = {"recipe": finished}
    if code != 0:
        return (TIMEOUT if code is None else FAIL), f"{len(finished)} of {len(seeds)} seeds finished", results
    ablations = _speedrun_ablations()[:1] if p.smoke else _speedrun_ablations()
    limit -= seconds
    results["ablations"] = {}
    for part in ablations:
        left = min(limit, p.left())
        if left < MINIMUM:
            break
        code, seconds, out = p.run(f"speedrun-without-{part}", [sys.executable, "benchmarks/speedrun.py", "--seeds",
                                                                "0", "--without", part, "--json", path, *sizes], left)
        limit -= seconds
        results["ablations"][part] = [line for line in out.splitlines() if line.startswith("seed ")] or code
    complete = len(results["ablations"]) == len(ablations)
    return (PASS if complete else TIMEOUT), (f"{len(finished)} seeds, {len(results['ablations'])} of "
                                             f"{len(ablations)} ablations"), results


def _literal(path, name):
    """The value of ``name = <literal>`` at the top of the Python file ``path``, read without importing it
    (this process stays free of torch). A dict literal gives its keys."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            if isinstance(node.value, ast.Dict):
                return [ast.literal_eval(key) for key in node.value.keys]
            return list(ast.literal_eval(node.value))
    raise LookupError(f"{path} has no {name} = ...")


def _speedrun_ablations():
    return _literal(ROOT / "benchmarks" / "speedrun.py", "ABLATIONS")


def benchmarks(p, limit):
    if p.smoke:
        models, device = ["lenet"], ["--device", "cpu", "--subset", "64", "--epochs", "1", "--d2l-epochs", "0",
                                     "--no-save"]
    else:
        models, device = _book_models(), ["--device", "cuda"]
    results = {}
    for model in models:
        left = min(limit, p.left())
        if left < MINIMUM:
            break
        code, seconds, _ = p.run(f"train-speed-{model}", [sys.executable, "benchmarks/train_speed.py", "--models",
                                                          model, *device], left)
        limit -= seconds
        results[f"train_speed {model}"] = PASS if code == 0 else TIMEOUT if code is None else FAIL
    left = min(limit, p.left())
    if p.smoke:
        results["augment_cost"] = "skipped: it augments all 60,000 training images, minutes on a CPU"
    elif left >= MINIMUM:
        code, _, _ = p.run("augment-cost", [sys.executable, "benchmarks/augment_cost.py", "--device", "cuda"], left)
        results["augment_cost"] = PASS if code == 0 else TIMEOUT if code is None else FAIL
    for path in RESULTS.glob("*.json"):
        if path.stat().st_mtime >= p.started:  # written by this pass
            shutil.copy2(path, p.work / "json" / f"results-{path.name}")
    planned = len(models) + 1
    ran = sum(v == PASS for v in results.values())
    status = (FAIL if FAIL in results.values() else TIMEOUT if len(results) < planned or TIMEOUT in results.values()
              else PASS)
    skipped = [k for k, v in results.items() if str(v).startswith("skipped")]
    return status, f"{ran} of {planned} runs finished" + (f" ({', '.join(skipped)} skipped)" if skipped else ""), \
        results


def _book_models():
    return _literal(ROOT / "cnnlib" / "models.py", "BOOK_MODELS")


def nbval(p, limit):
    if p.smoke:
        return SKIP, "nbval at full size needs a GPU (CI runs it in smoke mode)", {}
    results = {}
    for path in sorted((ROOT / "chapters" / "zh").glob("[0-9][0-9]-*.ipynb")):
        left = min(limit, p.left())
        if left < MINIMUM:
            break
        code, seconds, _ = p.run(f"nbval-{path.stem}", [sys.executable, "-m", "pytest", str(path.relative_to(ROOT)),
                                                        "-p", "no:cacheprovider", "--nbval-cell-timeout",
                                                        int(left)], left)
        limit -= seconds
        results[path.stem] = PASS if code == 0 else TIMEOUT if code is None else FAIL
    total = len(list((ROOT / "chapters" / "zh").glob("[0-9][0-9]-*.ipynb")))
    status = FAIL if FAIL in results.values() else PASS if len(results) == total and all(
        v == PASS for v in results.values()) else TIMEOUT
    return status, f"{sum(v == PASS for v in results.values())} of {total} chapters passed", results


SECTIONS = [("environment", environment, False), ("cuda-tests", cuda_tests, True), ("t4-path", t4_path, False),
            ("nccl", nccl, True), ("chapters", chapters, False), ("speedrun", speedrun, False),
            ("benchmarks", benchmarks, False), ("nbval", nbval, False)]


# --- workers: the parts that import torch, run as children ---------------------------------------------------

def environment_worker(args):
    import torch

    gpus = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        gpus.append({"name": props.name, "capability": f"{props.major}.{props.minor}",
                     "memory_gib": props.total_memory / 2 ** 30})
    data = cifar10 = None
    try:
        import cnnlib

        data = {k: str(v) for k, v in cnnlib.fashion_mnist.dataset_files(download=False).items()}
        cifar10 = str(cnnlib.cifar.cifar10_dir(download=False))
    except Exception as err:  # DatasetError, or cnnlib's own dependencies missing
        print(f"data: {err}")
    smi = shutil.which("nvidia-smi")
    found = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.version.cuda,
             "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
             "gpus": gpus, "data": data, "cifar10": cifar10,
             "nvidia_smi": subprocess.run([smi], capture_output=True, text=True).stdout if smi else None}
    print(json.dumps(found, indent=1))
    return found


def t4_path_worker(args):
    """One epoch per (model, precision, graphs) with train(); fp16 is checked against the reference precision."""
    import torch

    import cnnlib
    from cnnlib.models import BOOK_MODELS

    device = torch.device("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    reference = "bf16" if device.type == "cpu" or torch.cuda.get_device_capability(device)[0] >= 8 else "fp32"
    graph_choices = (True, False) if device.type == "cuda" else (False,)  # a CPU has no graphs to turn on
    plan = [(model, precision, graphs) for model in ("lenet", "resnet18") for precision in (reference, "fp16")
            for graphs in graph_choices]
    found = {"device": str(device), "reference": reference, "planned": len(plan), "runs": []}
    references = {}
    for model, precision, graphs in plan:
        spec = BOOK_MODELS[model]
        resize = 32 if args.smoke and spec["resize"] else spec["resize"]  # ResNet-18 in fp16 is slow on a CPU
        train_iter, test_iter = cnnlib.load_fashion_mnist(spec["batch_size"], resize, device=device,
                                                          subset=16 if args.smoke else None)
        start = time.perf_counter()
        history = cnnlib.train(spec["build"](), train_iter, test_iter, 1, spec["lr"], device, precision=precision,
                               graphs=graphs, plot=False, progress=False)
        acc = history.test_acc[-1]
        references.setdefault(model, acc)  # the first run of a model is the reference precision, graphs on
        tolerance = _noise(references[model], test_iter.num_examples)
        found["runs"].append({"model": model, "precision": history.precision, "graphs": graphs, "test_acc": acc,
                              "seconds": time.perf_counter() - start, "tolerance": tolerance,
                              "within_noise": abs(acc - references[model]) <= tolerance})
        Path(args.json).write_text(json.dumps(found, indent=1) + "\n")  # what finished survives a time-out
    return found


WORKERS = {"environment": environment_worker, "t4-path": t4_path_worker}


# --- the pass -----------------------------------------------------------------------------------------------

def _missing():
    importlib.invalidate_caches()
    return sorted(m for m in NEEDS if importlib.util.find_spec(m) is None)


def install_wheels(p):
    """Install what the sections need and this Python lacks from ``--wheels DIR`` (no network); torchvision
    only if torch came without it, from a wheel built for this torch. Returns the modules still missing."""
    missing = _missing()
    if missing and p.args.wheels:
        p.run("install-wheels", [sys.executable, "-m", "pip", "install", "--no-index", "--find-links",
                                 p.args.wheels, *(NEEDS[m] for m in missing)], max(min(120, p.left()), 1))
        missing = _missing()
    return missing


def run_pass(args):
    p = Pass(args)
    p.missing = install_wheels(p)
    gpu = None
    rows = []
    for name, section, gpu_only in SECTIONS:
        budget = BUDGETS[name]
        limit = p.left() if budget is None or args.smoke else min(budget, p.left())
        start = time.monotonic()
        lacking = [m for m in SECTION_NEEDS.get(name, []) if m in p.missing]
        if gpu_only and gpu is False:
            status, summary, details = SKIP, ("needs a CUDA GPU; --smoke runs on the CPU" if args.smoke
                                              else "needs a CUDA GPU, and this machine has none"), {}
        elif name != "environment" and not p.env:
            status, summary, details = SKIP, "the environment section failed (torch could not start)", {}
        elif name != "environment" and p.env.get("data") is None:
            status, summary, details = SKIP, "Fashion-MNIST not found: set CNNLIB_DATA", {}
        elif lacking:
            status, summary, details = SKIP, f"missing {', '.join(lacking)}: bring wheels and pass --wheels DIR", {}
        elif limit < MINIMUM:
            status, summary, details = SKIP, f"out of time ({max(limit, 0):.0f} s left)", {}
        else:
            status, summary, details = section(p, limit)
        if name == "environment":
            gpu = bool(p.env.get("gpus")) and not args.smoke
        rows.append({"section": name, "status": status, "seconds": round(time.monotonic() - start, 1),
                     "budget": budget, "summary": summary, "details": details})
        print(f"[gpu_pass] {name}: {status} ({rows[-1]['seconds']:.0f} s): {summary}", flush=True)
    return write_archive(p, rows)


def write_archive(p, rows):
    facts = {"smoke": p.smoke, "budget": p.args.budget, "seconds": round(time.time() - p.started, 1),
             "command": shlex.join([Path(sys.executable).name, *sys.argv]), "sections": rows}
    (p.work / "summary.json").write_text(json.dumps(facts, indent=1, default=str) + "\n")
    lines = [f"# GPU pass{' (smoke, CPU)' if p.smoke else ''}", "",
             f"{facts['seconds']:.0f} s of a {p.args.budget} s budget. Command: `{facts['command']}`", "",
             "| section | status | seconds | budget | result |", "|---|---|---|---|---|"]
    for r in rows:
        summary = str(r["summary"]).replace("|", "/")
        lines.append(f"| {r['section']} | {r['status']} | {r['seconds']:.0f} | {r['budget'] or 'rest'} | {summary} |")
    (p.work / "summary.md").write_text("\n".join(lines) + "\n")
    archive = p.out / "gpu-pass.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(p.work, arcname="gpu-pass")
    print(f"[gpu_pass] wrote {archive}")
    return 1 if any(r["status"] == FAIL for r in rows) else 0


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", help="folder for gpu-pass.tar.gz (created if missing)")
    parser.add_argument("--budget", type=int, default=DEFAULT_BUDGET,
                        help=f"seconds for the whole pass, archive included (default {DEFAULT_BUDGET})")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU: the same code path, no GPU")
    parser.add_argument("--wheels", metavar="DIR", help="install missing packages from the wheels in DIR")
    parser.add_argument("--worker", choices=list(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.worker:
        found = WORKERS[args.worker](args)
        Path(args.json).write_text(json.dumps(found, indent=1) + "\n")
        return 0
    if not args.out:
        parser.error("give the output folder, e.g. python tools/gpu_pass.py out/")
    if args.budget < MINIMUM + RESERVE:
        parser.error(f"--budget {args.budget}: give at least {MINIMUM + RESERVE} seconds")
    if args.wheels and not Path(args.wheels).is_dir():
        parser.error(f"--wheels {args.wheels}: no such folder")
    return run_pass(args)


if __name__ == "__main__":
    sys.exit(main())
