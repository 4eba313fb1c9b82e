"""The Chinese chapters use one term per idea, the ones CONTRIBUTING.md ("Language and figures") settles.

Each pattern below is a variant the book has replaced; the test names the file and the term to use instead.
It reads every zh chapter (markdown and code comments alike) and the zh pages, in well under a second.
"""
import functools
import re

import pytest

from tools.nbtools import CHAPTERS, chapter_paths, load, source

REPLACED = {
    r"准确率": "精度 (accuracy)",
    r"墙上时钟": "墙钟时间 (wall-clock time)",
    r"压过": "支配 (Pareto dominance)",
    r"数据增强": "数据增广 (augmentation)",
    r"(代码|检查|训练|解答|Markdown ?)单元(?!格)": "单元格 (a notebook cell)",
}


@functools.cache
def zh_texts():
    """(file name, its whole text) for every zh chapter and page, read once."""
    texts = [(path.name, "\n".join(source(cell) for cell in load(path)["cells"])) for path in chapter_paths("zh")]
    return texts + [(path.name, path.read_text(encoding="utf-8")) for path in sorted((CHAPTERS / "zh").glob("*.md"))]


@pytest.mark.parametrize("pattern, term", REPLACED.items())
def test_zh_pages_use_the_settled_term(pattern, term):
    found = [f"{name}: ...{text[max(m.start() - 15, 0):m.end() + 5]}..."
             for name, text in zh_texts() for m in re.finditer(pattern, text)]
    assert not found, f"use {term} instead of {pattern!r} (CONTRIBUTING.md):\n" + "\n".join(found)
