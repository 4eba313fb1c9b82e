"""The Colab path: a chapter's first cell installs cnnlib where it is missing, and never touches torch.

Colab has torch, torchvision and matplotlib but not cnnlib. The test builds such an environment without
copying torch (5 GB): a new virtual environment whose only addition is a .pth file naming a folder of
symlinks to everything in this project's .venv except cnnlib (a .pth line adds a folder to sys.path but does
not run the .pth files inside it, so cnnlib's editable finder stays out). A second environment also lacks
torchvision, as a plain Jupyter or a fresh Python does: cnnlib must install there without resolving it (a
torchvision pulled in could pin another torch and replace the user's).

A Jupyter kernel on that environment runs the chapter's first cell, which finds no cnnlib and runs
`pip install $CNNLIB_INSTALL_SOURCE`, here a copy of this checkout's package files (as `pip install git+URL`
would clone it), offline: no index, no build isolation (setuptools is already there, as in Colab). Then, in
the same kernel, a small network trains for one smoke epoch through cnnlib. The chapters themselves run under
nbval; running one again here would only repeat that.
"""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tools.nbtools import chapter_paths, code_cells, source

ROOT = Path(__file__).resolve().parent.parent
PREFERRED = ("06-lenet", "02-conv-layer")  # a chapter that trains with cnnlib, else one that uses its ops
# After the install cell, in the same kernel (so the freshly installed package must import without a restart).
TRAINS = """
import cnnlib
from torch import nn
train_iter, test_iter = cnnlib.load_fashion_mnist(batch_size=64)
net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2), nn.Flatten(),
                    nn.Linear(6 * 14 * 14, 10))
history = cnnlib.train(net, train_iter, test_iter, 1, 0.9)
assert history.epochs == 1 and 0 <= history.test_acc[-1] <= 1
from cnnlib import d2l  # the d2l compatibility package is installed too
assert d2l.train_ch6 and d2l.Trainer
"""
TORCH_PROBE = ("import importlib.util, json, os, torch, matplotlib; "
               "f = os.path.realpath(torch.__file__); "
               "print(json.dumps({'version': torch.__version__, 'file': torch.__file__, 'real': f, "
               "'mtime': os.stat(f).st_mtime_ns, 'cnnlib': importlib.util.find_spec('cnnlib') is not None}))")


def chapter():
    paths = {p.stem: p for p in chapter_paths("en")}
    for name in PREFERRED:
        if name in paths:
            return paths[name]
    if not paths:
        pytest.skip("no chapter written yet")
    return paths[sorted(paths)[0]]


def clean_env(**extra):
    """The environment of a fresh Colab-like machine: this machine's pip settings and caches left out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV", "CNNLIB_"))}
    env.update({
        "PIP_CONFIG_FILE": os.devnull,          # no pip.conf: no local wheel folders or extra indexes
        "PIP_NO_INDEX": "1",                    # offline: pip must not fetch anything
        "PIP_NO_BUILD_ISOLATION": "0",          # pip reads "0" here as --no-build-isolation
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_CACHE_DIR": "1",
    })
    env.update(extra)
    return env


def probe(python, env, cwd):
    out = subprocess.run([str(python), "-c", TORCH_PROBE], env=env, cwd=cwd, check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module", params=["colab", "without-torchvision"])
def colab_env(request, tmp_path_factory):
    """A virtual environment with torch, torchvision, matplotlib (and Jupyter) but without cnnlib; in the
    second variant without torchvision either."""
    tmp = tmp_path_factory.mktemp(request.param)
    left_out = ("cnnlib", "__editable__") + (("torchvision",) if request.param == "without-torchvision" else ())
    base_site = Path(sysconfig.get_path("purelib"))
    assert (base_site / "torch").is_dir(), f"torch is not in {base_site}"
    linked = tmp / "colab-site-packages"
    linked.mkdir()
    for entry in base_site.iterdir():
        name = entry.name
        if name.startswith(left_out) or name.endswith(".pth") or name == "__pycache__":
            continue
        (linked / name).symlink_to(entry)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, stdout=subprocess.PIPE, text=True).stdout.strip())
    (site / "colab-base.pth").write_text(f"{linked}\n")

    # The kernel the chapter runs in, registered in a Jupyter path of its own.
    kernels = tmp / "jupyter" / "kernels" / "colab"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab-like", "language": "python"}))

    # What `pip install git+<repository.url>` would see: the package files of this checkout.
    source_copy = tmp / "cnn-book"
    source_copy.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, source_copy / name)
    shutil.copytree(ROOT / "cnnlib", source_copy / "cnnlib", ignore=shutil.ignore_patterns("__pycache__"))

    work = tmp / "work"  # the notebook's working folder: no cnnlib/ beside it
    work.mkdir()
    return {"python": python, "site": site, "jupyter": tmp / "jupyter", "source": source_copy, "work": work,
            "torchvision": request.param != "without-torchvision"}


def test_first_cell_installs_cnnlib_and_it_trains(colab_env, monkeypatch):
    python, work = colab_env["python"], colab_env["work"]
    env = clean_env(CNNLIB_INSTALL_SOURCE=str(colab_env["source"]), CNNLIB_SMOKE="1", MPLBACKEND="Agg",
                    JUPYTER_PATH=str(colab_env["jupyter"]))
    if os.environ.get("CNNLIB_DATA"):
        env["CNNLIB_DATA"] = os.environ["CNNLIB_DATA"]

    before = probe(python, env, work)
    assert not before["cnnlib"], "the Colab-like environment must start without cnnlib"

    path = chapter()
    first = source(code_cells(nbformat.read(path, as_version=4))[0])
    assert 'os.environ.get("CNNLIB_INSTALL_SOURCE"' in first, f"{path.name}: first cell is not the install cell"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(first), nbformat.v4.new_code_cell(TRAINS)])

    monkeypatch.setenv("JUPYTER_PATH", str(colab_env["jupyter"]))  # where nbclient finds the "colab" kernel
    client = NotebookClient(nb, kernel_name="colab", timeout=600, allow_errors=False,
                            resources={"metadata": {"path": str(work)}})
    client.execute(env=env)  # the kernel's environment

    after = probe(python, env, work)
    assert after["cnnlib"], "the first cell did not install cnnlib"
    installed = subprocess.run([str(python), "-c", "import cnnlib; print(cnnlib.__file__)"], env=env, cwd=work,
                               check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
    assert Path(installed).is_relative_to(colab_env["site"]), f"cnnlib came from {installed}"
    for key in ("version", "file", "real", "mtime"):
        assert after[key] == before[key], f"torch changed: {key} {before[key]!r} -> {after[key]!r}"
    assert not (colab_env["site"] / "torch").exists(), "pip installed a second torch into the environment"
    assert not list(colab_env["site"].glob("torch-*.dist-info"))
    has_torchvision = subprocess.run([str(python), "-c", "import torchvision"], env=env, cwd=work).returncode == 0
    assert has_torchvision == colab_env["torchvision"], "installing cnnlib must not add or remove torchvision"
