"""Both languages teach the same code: every chapter exists in zh and en with equal code and outputs.

Only the Chinese notebooks run under nbval (pyproject.toml). What could still break in English alone is its
comments, so every English code cell is compiled here as IPython would run it (shell and magic lines included).
"""
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from tools.nbtools import CHAPTERS, chapter_paths, code_cells, load, source, strip_comments, tags

ZH = {p.name for p in chapter_paths("zh")}
EN = {p.name for p in chapter_paths("en")}


def test_every_chapter_exists_in_both_languages():
    assert ZH, "no chapters found in chapters/zh"
    assert ZH == EN, f"only in zh: {sorted(ZH - EN)}; only in en: {sorted(EN - ZH)}"


@pytest.mark.parametrize("name", sorted(ZH & EN))
def test_same_code_tags_and_outputs(name):
    zh, en = load(CHAPTERS / "zh" / name), load(CHAPTERS / "en" / name)
    a, b = code_cells(zh), code_cells(en)
    assert len(a) == len(b), f"{name}: {len(a)} code cells in zh, {len(b)} in en"
    for i, (x, y) in enumerate(zip(a, b)):
        hint = f"{name}, code cell {i}: run `python tools/sync_translation.py {name[:-6]}`"
        assert strip_comments(source(x)) == strip_comments(source(y)), f"code differs. {hint}"
        assert tags(x) == tags(y), f"tags differ ({tags(x)} vs {tags(y)}). {hint}"
        assert x["outputs"] == y["outputs"], f"stored outputs differ. {hint}"


@pytest.mark.parametrize("name", sorted(EN))
def test_english_code_cells_compile(name):
    to_python = TransformerManager().transform_cell
    for i, cell in enumerate(code_cells(load(CHAPTERS / "en" / name))):
        try:
            compile(to_python(source(cell)), f"en/{name}, code cell {i}", "exec")
        except SyntaxError as err:
            pytest.fail(f"en/{name}, code cell {i} does not compile: {err}")
