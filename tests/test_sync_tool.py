"""tools/sync_translation.py copies code outputs between languages and keeps translated comments."""
import nbformat
import pytest

from tools.nbtools import load, save, strip_comments
from tools.sync_translation import sync_pair


def notebook(cells):
    nb = nbformat.v4.new_notebook(cells=cells)
    return nbformat.from_dict(nb)


def test_strip_comments_ignores_comments_and_blank_lines():
    assert strip_comments("x = 1  # 中文注释\n\n# note\ny = x") == strip_comments("x = 1  # a comment\ny = x")
    assert strip_comments("x = 1") != strip_comments("x = 2")


def test_sync_copies_outputs_tags_and_changed_code(tmp_path):
    out = nbformat.v4.new_output("stream", name="stdout", text="3\n")
    zh = notebook([nbformat.v4.new_markdown_cell("# 标题"),
                   nbformat.v4.new_code_cell("x = 1  # 一\nprint(x + 2)", outputs=[out], execution_count=1,
                                             metadata={"tags": ["nbval-ignore-output"]}),
                   nbformat.v4.new_code_cell("y = 5", execution_count=2)])
    en = notebook([nbformat.v4.new_markdown_cell("# Title"),
                   nbformat.v4.new_code_cell("x = 1  # one\nprint(x + 2)"),
                   nbformat.v4.new_code_cell("y = 4")])
    save(zh, tmp_path / "zh.ipynb")
    save(en, tmp_path / "en.ipynb")
    replaced = sync_pair(tmp_path / "zh.ipynb", tmp_path / "en.ipynb")
    synced = load(tmp_path / "en.ipynb")
    assert replaced == [1], "only the cell whose code changed is replaced"
    assert synced["cells"][0]["source"] == "# Title", "markdown is never touched"
    first = synced["cells"][1]
    assert first["source"] == "x = 1  # one\nprint(x + 2)", "translated comments are kept"
    assert first["outputs"][0]["text"] == "3\n" and first["execution_count"] == 1
    assert first["metadata"]["tags"] == ["nbval-ignore-output"]
    assert synced["cells"][2]["source"] == "y = 5"


def test_sync_refuses_different_cell_counts(tmp_path):
    save(notebook([nbformat.v4.new_code_cell("a = 1"), nbformat.v4.new_code_cell("b = 2")]), tmp_path / "zh.ipynb")
    save(notebook([nbformat.v4.new_code_cell("a = 1")]), tmp_path / "en.ipynb")
    with pytest.raises(SystemExit, match="2 code cells in .*, 1 in"):
        sync_pair(tmp_path / "zh.ipynb", tmp_path / "en.ipynb")
