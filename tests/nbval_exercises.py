"""A pytest plugin: each chapter's exercises are checked in the kernel nbval has just run the chapter in.

nbval runs every cell of a chapter in one kernel and compares the outputs. That run also proves what a student
copy needs up to its first exercise (the cells are the same, cell for cell) and that every solution runs. What
it cannot prove is that each check *fails* on the student's stub. Running the chapter a second time for that
would double the suite's time, so after the chapter's last cell one more item, ``<notebook>::exercises``,
reuses nbval's kernel: for each exercise it deletes the names the exercise's cells bind, runs its cells with
the stubs in (every check must fail with AssertionError, NameError or NotImplementedError), then again with
the solutions in (tools/make_student.py: ``run_plan(after_full_run=True)`` and ``judge``). So each chapter
runs once.
"""
import re
from pathlib import Path

import pytest

from tools import make_student as ms
from tools.nbtools import load

CHAPTER = re.compile(r"^\d\d-.+\.ipynb$")
_failed_chapters = set()  # node ids of the notebooks with a failing cell in this session


class ExerciseChecks(pytest.Item):
    """Checks fail on the stubs and pass on the solutions, in the kernel of the nbval run just before."""

    def runtest(self):
        notebook = self.parent
        if notebook.nodeid in _failed_chapters:
            pytest.skip("the chapter failed before its exercises could be checked (see the failing cell)")
        kernel = notebook.kernel
        if kernel is None or not kernel.is_alive():
            pytest.fail("nbval's kernel for this chapter is not running")
        path = Path(notebook.path)
        nb = load(path)

        def run(cell, _):
            reply = kernel.kc.execute_interactive(ms.source(cell), timeout=600, store_history=False,
                                                  output_hook=lambda msg: None, allow_stdin=False)
            content = reply["content"]
            return (content["ename"], content["evalue"]) if content["status"] == "error" else None

        problems = ms.judge(ms.run_plan(nb, path, after_full_run=True), nb, path, run)
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    """After the last cell of every chapter nbval collected, one :class:`ExerciseChecks` item."""
    last = {}
    for i, item in enumerate(items):
        if type(item).__name__ == "IPyNbCell" and CHAPTER.match(item.parent.path.name):
            last[item.parent] = i
    for parent, i in sorted(last.items(), key=lambda kv: -kv[1]):
        items.insert(i + 1, ExerciseChecks.from_parent(parent, name="exercises"))


def pytest_runtest_logreport(report):
    if report.failed and "::Cell " in report.nodeid:
        _failed_chapters.add(report.nodeid.split("::")[0])
