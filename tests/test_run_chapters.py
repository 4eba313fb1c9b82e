"""tools/run_chapters.py --only-tag: a run writes back the outputs of the tagged cells and keeps all others."""
import nbformat
import pytest

from tools.run_chapters import keep_only_tagged_outputs, run


def notebook(outputs):
    """A notebook of three code cells, the middle one tagged cpu-run, each printing its given text."""
    nb = nbformat.v4.new_notebook()
    for i, text in enumerate(outputs):
        cell = nbformat.v4.new_code_cell(f"print({text!r})", execution_count=i + 1,
                                         outputs=[nbformat.v4.new_output("stream", text=text + "\n")])
        if i == 1:
            cell.metadata["tags"] = ["cpu-run"]
        nb.cells.append(cell)
    return nb


def test_only_the_tagged_cells_take_the_new_outputs():
    stored, executed = notebook(["gpu 0", "old", "gpu 2"]), notebook(["cpu 0", "new", "cpu 2"])
    assert keep_only_tagged_outputs(stored, executed, "cpu-run") == 1
    assert [c.outputs[0].text for c in stored.cells] == ["gpu 0\n", "new\n", "gpu 2\n"]


def test_notebooks_of_different_length_are_refused():
    executed = notebook(["a", "b", "c"])
    executed.cells.pop()
    with pytest.raises(ValueError, match="not the same notebook"):
        keep_only_tagged_outputs(notebook(["a", "b", "c"]), executed, "cpu-run")


def test_a_real_run_rewrites_only_the_tagged_output(tmp_path):
    path = tmp_path / "00-demo.ipynb"
    stored = notebook(["stored 0", "stored 1", "stored 2"])
    for cell in stored.cells:  # what the cells print now differs from what they stored
        cell.source = cell.source.replace("stored", "fresh")
    nbformat.write(stored, path)
    assert run(path, timeout=60, only_tag="cpu-run") is not None
    texts = [c.outputs[0].text for c in nbformat.read(path, as_version=4).cells]
    assert texts == ["stored 0\n", "fresh 1\n", "stored 2\n"]
    assert run(path, timeout=60, only_tag="no-such-tag") is None
