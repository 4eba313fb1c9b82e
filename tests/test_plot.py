"""cnnlib.plot: the live plot in a real Jupyter kernel and in a terminal, and the image helpers."""
import nbformat
import pytest
import torch
from nbclient import NotebookClient

import cnnlib
from cnnlib import plot


def test_animator_prints_text_lines_without_a_notebook(capsys):
    assert not plot.in_notebook()
    animator = cnnlib.Animator(xlabel="epoch", legend=["train loss", "test acc"])
    animator.add(1, (0.5, 0.8))
    animator.add(2, (0.25, None))
    assert capsys.readouterr().out.splitlines() == ["epoch 1: train loss 0.500, test acc 0.800",
                                                   "epoch 2: train loss 0.250"]
    with pytest.raises(ValueError, match="draws 2 curves, add\\(\\) got 3"):
        animator.add(3, (1, 2, 3))


def test_animator_leaves_one_figure_in_a_saved_notebook():
    code = ("import cnnlib\n"
            "animator = cnnlib.Animator(xlabel='epoch', legend=['a', 'b'])\n"
            "for x in range(1, 6):\n"
            "    animator.add(x, (1 / x, x / 5))\n"
            "print('done')")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    figures = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(figures) == 1, f"expected one figure updated in place, got outputs {[o.output_type for o in outputs]}"
    assert figures[0].data["image/png"], "the figure must hold the final PNG"
    assert [o.text for o in outputs if o.output_type == "stream"] == ["done\n"]


def test_show_images_grid_and_titles():
    images = torch.rand(5, 1, 8, 8)
    axes = cnnlib.show_images(images, 2, 3, titles=["a", "b", "c", "d", "e"])
    assert len(axes) == 6 and axes[0].get_title() == "a" and axes[5].get_title() == ""
    with pytest.raises(ValueError, match="do not fit a 2x2 grid"):
        cnnlib.show_images(images, 2, 2)
    with pytest.raises(ValueError, match="only 1 titles"):
        cnnlib.show_images(images, 2, 3, titles=["x"])
    with pytest.raises(ValueError, match="each image must be"):
        cnnlib.show_images(torch.rand(2, 2, 2, 8, 8), 1, 2)


def test_show_feature_maps():
    axes = cnnlib.show_feature_maps(torch.rand(6, 5, 5), num_cols=4)
    assert len(axes) == 8
    with pytest.raises(ValueError, match="pick one example"):
        cnnlib.show_feature_maps(torch.rand(1, 6, 5, 5))


def test_chinese_text_renders_when_a_cjk_font_is_installed(recwarn):
    from matplotlib import font_manager

    if not any(font.name in plot.CJK_FONTS for font in font_manager.fontManager.ttflist):
        pytest.skip("no CJK font installed (Debian: fonts-noto-cjk)")
    axes = cnnlib.show_images(torch.zeros(2, 28, 28), 1, 2, titles=["T 恤", "裤子"])
    axes[0].figure.canvas.draw()
    missing = [w for w in recwarn if "missing from font" in str(w.message)]
    assert not missing, f"CJK glyphs did not render: {missing[0].message}"
    assert __import__("matplotlib").rcParams["font.family"][0] == "sans-serif", "Latin text keeps its font"
