"""Each Part 2 chapter builds the same network that cnnlib.models keeps (CONTRIBUTING.md, "Adding a chapter").

A chapter marks the code cells that define its trained network (blocks, classes and the final ``net = ...``)
with the cell tag ``model``. Run in order after ``import torch`` / ``from torch import nn`` /
``from torch.nn import functional as F``, those cells must leave a ``net`` whose ``str`` (layer order, attribute
names, class names, hyperparameters) and parameter count equal the ``cnnlib.models`` builder's, and which
computes the same function once it holds the same weights. Chapters not written yet are skipped.
"""
import pytest
import torch

from cnnlib import models
from tools.nbtools import CHAPTERS, LANGUAGES, code_cells, load, source, tags

PRELUDE = "import torch\nfrom torch import nn\nfrom torch.nn import functional as F\n"

# chapter stem, cnnlib builder, input shape (B, C, H, W) the chapter trains with
CHAPTER_MODELS = [
    ("06-lenet", models.lenet, (2, 1, 28, 28)),
    ("07-alexnet", models.alexnet, (2, 1, 224, 224)),
    ("08-vgg", lambda: models.vgg(ratio=4), (2, 1, 224, 224)),
    ("09-nin", models.nin, (2, 1, 224, 224)),
    ("10-googlenet", models.googlenet, (2, 1, 96, 96)),
    ("11-batch-norm", models.bn_lenet, (2, 1, 28, 28)),
    ("12-resnet", models.resnet18, (2, 1, 96, 96)),
    ("13-densenet", models.densenet, (2, 1, 96, 96)),
]
CASES = [pytest.param(stem, build, shape, lang, id=f"{lang}/{stem}")
         for stem, build, shape in CHAPTER_MODELS for lang in LANGUAGES]


def chapter_net(stem, lang):
    """Run the chapter's ``model`` cells in a fresh namespace and return its ``net``; skip unwritten chapters."""
    path = CHAPTERS / lang / f"{stem}.ipynb"
    if not path.exists():
        pytest.skip(f"{path.relative_to(CHAPTERS.parent)} is not written yet")
    cells = [source(c) for c in code_cells(load(path)) if "model" in tags(c)]
    assert cells, (f"{path.name} has no code cell tagged 'model': tag the cells that define the trained network "
                   f"(its blocks/classes and the `net = ...` line)")
    namespace = {"__name__": f"chapter_{stem.replace('-', '_')}"}
    exec(compile(PRELUDE, "<prelude>", "exec"), namespace)
    for i, code in enumerate(cells):
        try:
            exec(compile(code, f"{lang}/{path.name} model cell {i}", "exec"), namespace)
        except Exception as err:  # name the cell: a model cell may only use torch, nn, F and earlier model cells
            raise AssertionError(f"{lang}/{path.name}: model cell {i} fails on its own ({type(err).__name__}: "
                                 f"{err}). Model cells may only use torch, nn, F and earlier model cells.\n"
                                 f"{code}") from err
    assert "net" in namespace, f"{lang}/{path.name}: the model cells never define `net`"
    return namespace["net"]


@pytest.mark.parametrize("stem, build, shape, lang", CASES)
def test_chapter_defines_the_cnnlib_model(stem, build, shape, lang):
    net, reference = chapter_net(stem, lang), build()
    assert str(net) == str(reference), (
        f"{lang}/{stem}: the chapter's net differs from cnnlib.models (layer order, attribute names, class names "
        f"or arguments).\n--- chapter ---\n{net}\n--- cnnlib.models ---\n{reference}")
    count = sum(p.numel() for p in net.parameters())
    expected = sum(p.numel() for p in reference.parameters())
    assert count == expected, f"{lang}/{stem}: {count:,} parameters in the chapter, {expected:,} in cnnlib.models"


@pytest.mark.parametrize("stem, build, shape, lang", CASES)
def test_chapter_model_computes_the_same_function(stem, build, shape, lang):
    """Same weights, same input, same output: catches a forward() that differs while str() agrees."""
    net = chapter_net(stem, lang)
    torch.manual_seed(0)
    reference = build()
    net.load_state_dict(reference.state_dict())
    net.eval(), reference.eval()
    X = torch.randn(shape)
    with torch.no_grad():
        expected, got = reference(X), net(X)
    assert got.shape == expected.shape == (shape[0], 10), f"{lang}/{stem}: output shape {tuple(got.shape)}"
    torch.testing.assert_close(got, expected, msg=lambda m: f"{lang}/{stem}: the chapter's forward pass differs "
                               f"from cnnlib.models with the same weights. {m}")
