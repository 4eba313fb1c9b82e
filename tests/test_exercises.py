"""Exercises (CONTRIBUTING.md, "Exercises"): student copies hold no solution, checks fail on the stub and pass on
the solution, nbgrader makes the same stubs, and the site shows each solution collapsed under its exercise.

Every chapter in chapters/<lang>/ is covered as soon as it exists. What runs where, and why:
  * Static tests (markup, student copy, nbgrader's ClearSolutions) run for every chapter in both languages.
  * Execution happens once per chapter, in nbval's run of the zh notebook: tests/nbval_exercises.py adds
    an item after its last cell that, in the same kernel, runs each exercise's cells with the stubs in
    (every check must fail) and again with the solutions in. The code cells of the two languages are
    identical but for comments (tests/test_translation.py), and the stubs are made from the code alone
    (test_student_code_same_in_both_languages), so running en too would repeat the same computation.
    nbval's run proves the student copy runs up to its first exercise (the same cells) and every solution
    runs; the item proves each check fails on its own stub. Here that item is tested on the fixtures.
"""
import copy
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import nbformat
import pytest

from tools import make_student as ms
from tools.nbtools import LANGUAGES, ROOT, chapter_paths, load, source, strip_comments, tags

FIXTURES = Path(__file__).parent / "fixtures"
GOOD, WEAK, GOOD_ZH = FIXTURES / "exercises.ipynb", FIXTURES / "weak-checks.ipynb", FIXTURES / "exercises-zh.ipynb"
SITE = ROOT / "_build" / "html"

CHAPTERS = [pytest.param(lang, p, id=f"{lang}/{p.stem}") for lang in LANGUAGES for p in chapter_paths(lang)]
NAMES = sorted({p.stem for lang in LANGUAGES for p in chapter_paths(lang)})


def strip(text):
    return [line.strip() for line in text.splitlines() if line.strip()]


def secret_and_allowed(nb):
    """Lines only a solution holds (solution regions, solution markdown), and every other line with counts."""
    secret, allowed = Counter(), Counter()
    for cell in nb["cells"]:
        text = source(cell)
        if ms.SOLUTION not in tags(cell):
            allowed.update(strip(text))
        elif cell["cell_type"] == "markdown":
            secret.update(strip(text))
        else:
            inside = set()
            for b, e in ms.solution_regions(text):
                inside.update(range(b, e + 1))
            for i, line in enumerate(text.split("\n")):
                if line.strip():
                    (secret if i in inside else allowed).update([line.strip()])
    return secret, allowed


def leaks(copy, nb):
    """Solution lines that a copy holds more often than the source holds them outside its solutions."""
    secret, allowed = secret_and_allowed(nb)
    present = Counter(line for cell in copy["cells"] for line in strip(source(cell)))
    return sorted(line for line in secret if present[line] > allowed[line])


def assert_no_solution_in(student, nb):
    """The student copy holds no solution line (any line of a solution region or of a solution markdown
    cell) more often than the source holds that line outside the solutions, no marker and no solution
    markdown; every other cell is kept as it is, in order."""
    leaked = leaks(student, nb)
    assert not leaked, f"solution lines in the student copy: {leaked[:5]}"
    secret, allowed = secret_and_allowed(nb)
    text = "\n".join(source(c) for c in student["cells"])
    assert ms.BEGIN_WORDS not in text and ms.END_WORDS not in text, "a solution marker is left"
    kept = [c for c in nb["cells"] if not (c["cell_type"] == "markdown" and ms.SOLUTION in tags(c))]
    assert len(student["cells"]) == len(kept), "only the solution markdown cells may be removed"
    for before, after in zip(kept, student["cells"]):
        assert tags(before) == tags(after)
        if ms.SOLUTION in tags(before):
            assert after["outputs"] == [] and after["execution_count"] is None, "solution outputs are cleared"
            stub = [line for line in strip(source(after)) if line not in ms.STUB]
            outside = [line for line in strip(source(before)) if line in allowed and line not in secret]
            assert set(outside) <= set(stub), "code outside the solution markers must stay"
        elif before["cell_type"] == "markdown":
            assert source(after) == source(before).replace(ms.IMAGE_LINK, "../images/")
        else:
            assert after == before, "cells outside the solutions are kept as they are"


# --------------------------------------------------------------------------------------------------------
# Every chapter, both languages: markup and student copy (no kernel, fast)


@pytest.mark.parametrize("lang, path", CHAPTERS)
def test_exercise_markup(lang, path):
    exercises, problems = ms.parse(load(path), path, lang)
    assert not problems, "\n".join(problems)
    assert exercises, f"{path.name}: no exercises (a markdown cell tagged `exercise` starting with " \
                      f"{ms.EXERCISE_HEAD[lang].replace(chr(92), '').replace('(d+)', 'N')})"


@pytest.mark.parametrize("lang, path", CHAPTERS)
def test_student_copy_has_no_solutions(lang, path):
    nb = load(path)
    assert_no_solution_in(ms.student_notebook(nb, path, lang), nb)


@pytest.mark.parametrize("name", [n for n in NAMES if all((ROOT / "chapters" / l / f"{n}.ipynb").exists()
                                                          for l in LANGUAGES)])
def test_student_code_same_in_both_languages(name):
    code = {}
    for lang in LANGUAGES:
        path = ROOT / "chapters" / lang / f"{name}.ipynb"
        student = ms.student_notebook(load(path), path, lang)
        code[lang] = [strip_comments(source(c)) for c in student["cells"] if c["cell_type"] == "code"]
    assert code[LANGUAGES[0]] == code[LANGUAGES[1]]


def test_make_student_writes_every_chapter(tmp_path):
    (tmp_path / "zh").mkdir()
    (tmp_path / "zh" / "00-renamed-since.ipynb").write_text("{}")
    ms.main(["--out", str(tmp_path)])
    for lang in LANGUAGES:
        written = sorted(p.name for p in (tmp_path / lang).glob("*.ipynb"))
        assert written == [p.name for p in chapter_paths(lang)]
        for path in (tmp_path / lang).glob("*.ipynb"):
            nb = nbformat.read(path, as_version=4)
            if nbformat.validator.isvalid(nbformat.read(ROOT / "chapters" / lang / path.name, as_version=4)):
                nbformat.validate(nb)  # a valid chapter gives a valid student copy
            for image in re.findall(r"\.\./images/([\w./-]+)", "\n".join(c.source for c in nb.cells)):
                if (ROOT / "images" / image).exists():
                    assert (tmp_path / "images" / image).is_file(), f"{path.name}: {image} not copied"


# --------------------------------------------------------------------------------------------------------
# Every chapter, executed once (smoke mode): nbval runs it, then tests/nbval_exercises.py checks in the
# same kernel that every check fails on its stub and passes on its solution (`<chapter>.ipynb::exercises`).


def test_nbval_run_checks_the_exercises_in_its_kernel(tmp_path):
    """The plugin adds one item per chapter after its last cell: it passes on good checks, fails on a check
    that passes on the stub (even though the full run left the solution's value behind), and is skipped when
    a cell of the chapter failed."""
    nb = load(GOOD)
    (tmp_path / "01-good.ipynb").write_text(json.dumps(nb))
    weak = copy.deepcopy(nb)
    check = next(c for c in weak["cells"] if source(c).startswith("assert squares == [9, 1, 4]"))
    check["source"], check["outputs"] = 'assert isinstance(squares, list), "a list"\nprint("ok")', []
    (tmp_path / "02-weak.ipynb").write_text(json.dumps(weak))
    broken = copy.deepcopy(nb)
    next(c for c in broken["cells"] if c["cell_type"] == "code")["source"] = "data = undefined_name"
    (tmp_path / "03-broken.ipynb").write_text(json.dumps(broken))
    (tmp_path / "conftest.py").write_text(f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
                                          f"pytest_plugins = ['tests.nbval_exercises']\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--nbval-lax", "-v",
                          "--color=no", "-rs", str(tmp_path)], cwd=tmp_path, capture_output=True, text=True)
    results = dict(re.findall(r"^(\S+::exercises) (PASSED|FAILED|SKIPPED)", run.stdout, re.M))
    assert results == {"01-good.ipynb::exercises": "PASSED", "02-weak.ipynb::exercises": "FAILED",
                       "03-broken.ipynb::exercises": "SKIPPED"}, run.stdout[-3000:]
    assert "the check of exercise 2 passes on the student stub" in run.stdout
    assert "the chapter failed before its exercises could be checked" in run.stdout


def test_plan_after_a_full_run_forgets_what_each_exercise_binds():
    plan = ms.run_plan(load(GOOD), GOOD, after_full_run=True)
    assert plan[0][0] == "forget" and not [p for p in plan if p[0] == "start"]
    forget = next(source(cell) for phase, number, _, cell in plan if phase == "forget" and number == 2)
    assert "globals().pop('squares', None)" in forget and "globals().pop('total', None)" in forget
    assert ms.bound_names("!pip install x\nimport numpy as np\nfor i, (a, b) in enumerate(z):\n    c = 1\n"
                          "def f(): pass\nclass K: pass\nx += 1") == {"np", "i", "a", "b", "c", "f", "K", "x"}


# --------------------------------------------------------------------------------------------------------
# The tool itself, on the fixtures


def test_fixture_student_copy():
    nb = load(GOOD)
    student = ms.student_notebook(nb, GOOD)
    assert_no_solution_in(student, nb)
    code = {source(c).split("\n")[0]: source(c) for c in student["cells"] if ms.SOLUTION in tags(c)}
    assert code["def mean(xs):"] == ("def mean(xs):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\n"
                                     "print(mean(data))")
    assert code["squares = []"] == ("squares = []\nfor x in data:\n    # YOUR CODE HERE\n    raise "
                                    "NotImplementedError()\n# YOUR CODE HERE\nraise NotImplementedError()\n"
                                    "print(squares, total)")
    assert not [c for c in student["cells"] if c["cell_type"] == "markdown" and "Solution" in source(c)]
    assert "](../images/02-correlation.svg)" in source(student["cells"][0])
    checks = [c for c in student["cells"] if ms.CHECK in tags(c)]
    assert len(checks) == 3 and all(c["outputs"] for c in checks), "check cells are kept with their outputs"


def cell(kind, text, *tag_list):
    c = nbformat.v4.new_markdown_cell(text) if kind == "md" else nbformat.v4.new_code_cell(text)
    if tag_list:
        c.metadata["tags"] = list(tag_list)
    return c


STATEMENT = cell("md", "**Exercise 1** Do it.", "exercise")
BAD = {
    "solution code without markers": (
        [STATEMENT, cell("code", "x = 1", "solution")], "needs its solution lines between"),
    "BEGIN never closed": (
        [STATEMENT, cell("code", "### BEGIN SOLUTION\nx = 1", "solution")], "is never closed"),
    "END without BEGIN": (
        [STATEMENT, cell("code", "x = 1\n### END SOLUTION", "solution")], "without a `### BEGIN SOLUTION`"),
    "nested BEGIN": (
        [STATEMENT, cell("code", "### BEGIN SOLUTION\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION",
                         "solution")], "cannot nest"),
    "marker not written exactly": (
        [STATEMENT, cell("code", "# BEGIN SOLUTION\nx = 1\n# END SOLUTION", "solution")], "exactly as"),
    "empty region": (
        [STATEMENT, cell("code", "### BEGIN SOLUTION\n### END SOLUTION", "solution")], "region is empty"),
    "stub breaks the syntax": (
        [STATEMENT, cell("code", "if True:\n### BEGIN SOLUTION\n    x = 1\n### END SOLUTION", "solution")],
        "no longer valid Python"),
    "markers in an untagged cell": (
        [STATEMENT, cell("code", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION")], "not tagged `solution`"),
    "markers in a check": (
        [STATEMENT, cell("code", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "solution"),
         cell("code", "### BEGIN SOLUTION\nassert x\n### END SOLUTION", "check")], "check cell cannot hold"),
    "markers in solution markdown": (
        [STATEMENT, cell("md", "**Solution**\n### BEGIN SOLUTION\n42\n### END SOLUTION", "solution")],
        "belong in code cells"),
    "check without a solution code cell": (
        [STATEMENT, cell("md", "**Solution** 42.", "solution"), cell("code", "assert True", "check")],
        "must follow a code cell tagged"),
    "exercise without a solution": ([STATEMENT], "has no solution"),
    "solution before any exercise": (
        [cell("code", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "solution")], "before the first exercise"),
    "numbering": (
        [STATEMENT, cell("md", "**Solution** 1.", "solution"), cell("md", "**Exercise 3** Next.", "exercise"),
         cell("md", "**Solution** 3.", "solution")], "exercise number 3, expected 2"),
    "statement heading": (
        [cell("md", "Exercise 1: do it.", "exercise"), cell("md", "**Solution** 1.", "solution")], "starts with"),
    "solution heading": ([STATEMENT, cell("md", "It is 42.", "solution")], "starts with"),
    "two roles": ([cell("md", "**Exercise 1** x", "exercise", "solution")], "give it one of them"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_markup_is_an_error_that_names_the_cell(case, tmp_path):
    cells, message = BAD[case]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title")] + list(cells))
    path = tmp_path / "en" / "99-bad.ipynb"
    with pytest.raises(ms.MarkupError) as err:
        ms.student_notebook(nb, path)
    assert message in str(err.value)
    assert "99-bad.ipynb, cell " in str(err.value), "the error names the notebook and the cell"


def test_make_student_refuses_bad_markup_and_writes_nothing(tmp_path, monkeypatch):
    chapters = tmp_path / "chapters"
    for lang, good in zip(LANGUAGES, (GOOD_ZH, GOOD)):
        (chapters / lang).mkdir(parents=True)
        for name in ("01-good.ipynb", "02-bad.ipynb"):
            shutil.copy(good, chapters / lang / name)
    nb = load(GOOD_ZH)
    nb["cells"][5]["source"] = "def mean(xs):\n    return sum(xs) / len(xs)"  # markers forgotten
    nbformat.write(nbformat.from_dict(nb), chapters / "zh" / "02-bad.ipynb")
    monkeypatch.setattr(ms, "chapter_paths", lambda lang: sorted((chapters / lang).glob("[0-9][0-9]-*.ipynb")))
    with pytest.raises(SystemExit) as err:
        ms.main(["--out", str(tmp_path / "out")])
    assert "zh/02-bad.ipynb, cell 5" in str(err.value) and "needs its solution lines between" in str(err.value)
    assert "01-good" not in str(err.value) and "en/02-bad" not in str(err.value)
    assert not (tmp_path / "out").exists()
    ms.main(["--out", str(tmp_path / "out"), "01-good"])
    assert sorted(p.name for p in (tmp_path / "out").glob("*/*.ipynb")) == ["01-good.ipynb"] * 2


def test_verify_accepts_the_good_fixtures():
    for path in (GOOD, GOOD_ZH):
        assert ms.verify(load(path), path) == []


def test_verify_reports_weak_checks():
    problems = ms.verify(load(WEAK), WEAK)
    assert len(problems) == 4, "\n".join(problems)
    assert "cell 4 " in problems[0] and "passes on the student stub" in problems[0]
    assert "cell 7 " in problems[1] and "crashes with TypeError" in problems[1]
    assert "cell 9 " in problems[2] and "exercise 3 with its solution raised ZeroDivisionError" in problems[2]
    assert "cell 10 " in problems[3] and "NameError" in problems[3], "and so its check fails"


def test_verify_reports_a_start_that_fails():
    nb = load(GOOD)
    nb["cells"][1]["source"] = "data = undefined_name"
    problems = ms.verify(nb, GOOD)
    assert problems and "start of the chapter (before exercise 1) raised NameError" in problems[0]
    assert problems[-1] == "the exercises were not run: the chapter fails before them" and len(problems) == 2


# --------------------------------------------------------------------------------------------------------
# nbgrader: its ClearSolutions preprocessor makes exactly our stubs


def clear_solutions(nb):
    pytest.importorskip("nbgrader", reason="nbgrader is a test-only dependency (requirements-test.txt)")
    from nbgrader.preprocessors import ClearSolutions
    nb = nbformat.reads(json.dumps(nb), as_version=4)  # as nbgrader reads it: sources joined
    # Our chapters carry tags, not nbgrader's cell metadata; nbgrader's own switch for that case.
    out, _ = ClearSolutions(enforce_metadata=False).preprocess(nb, {})
    return out


@pytest.mark.parametrize("lang, path", CHAPTERS + [pytest.param("en", GOOD, id="fixture")])
def test_nbgrader_clear_solutions_makes_the_same_stubs(lang, path):
    nb = load(path)
    ours = ms.student_notebook(nb, path, lang if path != GOOD else None)
    theirs = clear_solutions(nb)
    assert [source(c) for c in theirs.cells if c.cell_type == "code"] == \
           [source(c) for c in ours["cells"] if c["cell_type"] == "code"]
    # nbgrader keeps markdown it has no metadata for; ours drops the solution markdown, nothing else.
    assert [source(c) for c in theirs.cells if c.cell_type == "markdown" and ms.SOLUTION not in tags(c)] == \
           [source(c).replace("../images/", ms.IMAGE_LINK) for c in ours["cells"] if c["cell_type"] == "markdown"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning",
                            "ignore:Object of type:Warning")
def test_nbgrader_course_generates_and_autogrades(tmp_path, monkeypatch):
    """`make_student.py --nbgrader` gives notebooks nbgrader takes as they are (its metadata checks on):
    generate_assignment releases the same code as our student copies (every zh chapter, and the fixture),
    and autograde gives the stubbed fixture 0 points and the solved one every check's point."""
    pytest.importorskip("nbgrader", reason="nbgrader is a test-only dependency (requirements-test.txt)")
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])  # alembic
    course = tmp_path / "course"
    sources = [(p.stem, p, "zh") for p in chapter_paths("zh")] + [("fixture", GOOD, None)]
    for name, path, lang in sources:
        (course / "source" / name).mkdir(parents=True)
        nbformat.write(nbformat.from_dict(ms.nbgrader_notebook(load(path), path, lang)),
                       course / "source" / name / f"{name}.ipynb")
    config = Config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.course_id = "cnn-book"
    api = NbGraderAPI(config=config)
    for name, path, lang in sources:
        result = api.generate_assignment(name)
        assert result["success"], result.get("error")
        release = load(course / "release" / name / f"{name}.ipynb")
        ours = ms.student_notebook(load(path), path, lang)
        assert [source(c) for c in release["cells"] if c["cell_type"] == "code"] == \
               [source(c) for c in ours["cells"] if c["cell_type"] == "code"], name
        assert not leaks(release, load(path)), f"{name}: solution released"
    for student, notebook in [("stub", course / "release"), ("solved", course / "source")]:
        target = course / "submitted" / student / "fixture"
        target.mkdir(parents=True)
        shutil.copy(notebook / "fixture" / "fixture.ipynb", target / "fixture.ipynb")
        result = api.autograde("fixture", student, force=True, create=True)
        assert result["success"], result.get("error")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        scores = {student: {g.name: g.score for nb in gradebook.find_submission("fixture", student).notebooks
                            for g in nb.grades if "check" in g.name} for student in ("stub", "solved")}
    assert scores["stub"] == {"ex1-check1": 0, "ex2-check1": 0, "ex4-check1": 0}
    assert scores["solved"] == {"ex1-check1": 1, "ex2-check1": 1, "ex4-check1": 1}


# --------------------------------------------------------------------------------------------------------
# The site: solutions collapsed under their exercise


def solution_runs(nb):
    """How many <details> a page should have: runs of consecutive cells tagged solution."""
    runs, previous = 0, False
    for c in nb["cells"]:
        now = ms.SOLUTION in tags(c)
        runs += now and not previous
        previous = now
    return runs


def check_page(html_path, nb):
    """Every solution is inside a closed <details class="cnn-solution">; statements and checks are not."""
    from bs4 import BeautifulSoup
    soup = BeautifulSoup(Path(html_path).read_text(encoding="utf-8"), "html.parser")
    details = soup.select("details.cnn-solution")
    assert len(details) == solution_runs(nb), f"{html_path.name}: one collapsed solution per exercise"
    assert not [d for d in details if d.has_attr("open")], "solutions are collapsed"
    inside = "\n".join(d.get_text() for d in details)
    for d in details:
        d.decompose()
    outside = soup.get_text()
    exercises = ms.exercises_of(nb, html_path)
    for ex in exercises:
        assert soup.find(id=f"exercise-{ex.number}"), f"anchor exercise-{ex.number}"
    for c in nb["cells"]:
        if ms.SOLUTION in tags(c) and c["cell_type"] == "code":
            for line in ms.solution_lines(source(c)):
                assert line.strip() in inside
            assert ms.BEGIN not in outside
        if ms.CHECK in tags(c):
            assert strip(source(c))[0] in outside, "checks stay visible"
    return inside, outside


@pytest.fixture(scope="module")
def fixture_site(tmp_path_factory):
    """A tiny Sphinx + MyST-NB site from the fixtures, with our extension."""
    src = tmp_path_factory.mktemp("book")
    (src / "chapters").mkdir()
    for path in (GOOD, GOOD_ZH):
        shutil.copy(path, src / "chapters" / path.name)
    (src / "index.md").write_text("# Book\n\n```{toctree}\nchapters/exercises\nchapters/exercises-zh\n```\n")
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT / 'tools')!r})\n"
        "extensions = ['myst_nb', 'sphinx_exercises']\nnb_execution_mode = 'off'\n"
        "myst_enable_extensions = ['dollarmath']\nsuppress_warnings = ['image.not_readable']\n")
    out = src / "_build"
    run = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", str(src), str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    return out


def test_fixture_site_collapses_solutions(fixture_site):
    inside, outside = check_page(fixture_site / "chapters" / "exercises.html", load(GOOD))
    assert "Add them up and divide" in inside and "Add them up and divide" not in outside
    assert "It would divide by zero" in inside and "It would divide by zero" not in outside
    assert "Write mean(xs)" in " ".join(outside.split()), "statements stay visible"
    page = (fixture_site / "chapters" / "exercises.html").read_text(encoding="utf-8")
    assert page.count("<summary>Solution</summary>") == 4
    assert "cnn-exercises.css" in page and (fixture_site / "_static" / "cnn-exercises.css").is_file()
    zh = (fixture_site / "chapters" / "exercises-zh.html").read_text(encoding="utf-8")
    assert "<summary>解答</summary>" in zh and zh.count("解答") == 1, "the heading moves into the summary"
    # The notebook on disk stays clean: only Sphinx's copy of the text is wrapped.
    assert "{container}" not in GOOD.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def built_site():
    """The real sites, built by tools/build_book.py exactly as tests/test_site.py builds them (`--if-changed`:
    one build per change of any input, this extension included, shared by both test files)."""
    proc = subprocess.run([sys.executable, "tools/build_book.py", "--if-changed"], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        pytest.skip("the site does not build; tests/test_site.py reports why")
    return SITE


@pytest.mark.parametrize("lang, path", CHAPTERS)
def test_built_site_collapses_solutions(built_site, lang, path):
    page = built_site / lang / f"{path.stem}.html"
    if not page.exists():
        pytest.skip(f"{path.stem} is not on the {lang} site (not in _toc.yml yet)")
    check_page(page, load(path))
