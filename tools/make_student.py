"""Student copies of the chapters: solutions out, stubs in, explanations and checks kept.

    python tools/make_student.py                    # every chapter, both languages -> _build/student/<lang>/
    python tools/make_student.py 06-lenet           # one chapter (both languages)
    python tools/make_student.py --verify 06-lenet  # and run it (smoke mode): checks fail on the stub, pass
                                                    # on the solution (what tests/test_exercises.py proves)
    python tools/make_student.py --nbgrader _build/nbgrader   # and nbgrader course folders, one per language

The chapter notebooks stay the single source. In a student copy
  * each region between `### BEGIN SOLUTION` and `### END SOLUTION` in a code cell tagged `solution` becomes
    `# YOUR CODE HERE` / `raise NotImplementedError()`, indented like the `### BEGIN SOLUTION` line (the very
    stub nbgrader's ClearSolutions writes), and that cell's outputs are cleared;
  * markdown cells tagged `solution` are removed;
  * everything else (explanations, the exercise statements, `check` cells and their outputs) is kept.
Figures are linked as `../../images/x.svg` from chapters/<lang>/; the copies link `../images/x.svg` and the
figures they use are copied to _build/student/images/, so _build/student/ can be handed out as it is.

Before writing anything the exercise markup of every chapter is validated (CONTRIBUTING.md,
"Exercises"); each problem names the notebook, the cell and what to change, and nothing is written while
there is one.
"""
import argparse
import copy
import os
import re
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tools.nbtools import CHAPTERS, LANGUAGES, ROOT, chapter_paths, load, save, source, tags

OUT = ROOT / "_build" / "student"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
# nbgrader treats any line that *contains* these words as a marker; so do we, and then insist on the exact form.
BEGIN_WORDS, END_WORDS = "BEGIN SOLUTION", "END SOLUTION"
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")  # nbgrader's ClearSolutions.code_stub["python"]
EXERCISE, SOLUTION, CHECK = "exercise", "solution", "check"
EXERCISE_HEAD = {"zh": r"\*\*练习 (\d+)\*\*", "en": r"\*\*Exercise (\d+)\*\*"}
SOLUTION_HEAD = {"zh": "**解答**", "en": "**Solution**"}
IMAGE_LINK = "../../images/"


class MarkupError(ValueError):
    """Exercise markup that cannot be turned into a student copy; the message lists every problem."""


def where(path, index, cell):
    """How a problem names a cell: the notebook, the cell's position and its first line."""
    first = next((line.strip() for line in source(cell).splitlines() if line.strip()), "(empty)")
    first = first if len(first) <= 60 else first[:57] + "..."
    try:
        name = Path(path).resolve().relative_to(ROOT)
    except ValueError:
        name = Path(path)
    return f"{name}, cell {index} (counting from 0; a {cell['cell_type']} cell starting `{first}`)"


# --------------------------------------------------------------------------------------------------------
# Solution regions


def solution_regions(code):
    """Line ranges (begin, end) of the `### BEGIN SOLUTION` ... `### END SOLUTION` regions, markers included.

    Raises MarkupError (without the cell's name; callers add it) when markers are malformed, nested or
    unbalanced.
    """
    regions, begin = [], None
    for i, line in enumerate(code.split("\n")):
        text = line.strip()
        if BEGIN_WORDS in line:
            if text != BEGIN:
                raise MarkupError(f"line {i + 1} `{text}`: write the marker exactly as `{BEGIN}`")
            if begin is not None:
                raise MarkupError(f"line {i + 1}: `{BEGIN}` again before `{END}` of the region opened on "
                                  f"line {begin + 1} (regions cannot nest)")
            begin = i
        elif END_WORDS in line:
            if text != END:
                raise MarkupError(f"line {i + 1} `{text}`: write the marker exactly as `{END}`")
            if begin is None:
                raise MarkupError(f"line {i + 1}: `{END}` without a `{BEGIN}` before it")
            if not any(l.strip() for l in code.split("\n")[begin + 1:i]):
                raise MarkupError(f"lines {begin + 1}-{i + 1}: the solution region is empty")
            regions.append((begin, i))
            begin = None
    if begin is not None:
        raise MarkupError(f"line {begin + 1}: `{BEGIN}` is never closed by `{END}`")
    return regions


def has_markers(text):
    return BEGIN_WORDS in text or END_WORDS in text


def stub_code(code):
    """The cell's code with each solution region replaced by the stub, indented like its BEGIN line."""
    lines = code.split("\n")
    out, last = [], 0
    for begin, end in solution_regions(code):
        out += lines[last:begin]
        indent = re.match(r"\s*", lines[begin]).group(0)
        out += [indent + s for s in STUB]
        last = end + 1
    return "\n".join(out + lines[last:])


def solution_lines(code):
    """The non-blank lines inside the regions (what a student copy must not contain)."""
    lines = code.split("\n")
    return [lines[i] for b, e in solution_regions(code) for i in range(b + 1, e) if lines[i].strip()]


def compiles(code):
    """Whether code is valid Python once IPython's own syntax (magics, `!cmd`) is translated."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        code = TransformerManager().transform_cell(code)
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        pass
    try:
        compile(code, "<cell>", "exec")
        return True
    except SyntaxError:
        return False


# --------------------------------------------------------------------------------------------------------
# The exercises of a chapter


@dataclass
class Exercise:
    number: int
    statement: int                                  # cell index of the statement
    cells: list = field(default_factory=list)       # indices of every cell up to the next statement
    solutions: list = field(default_factory=list)   # indices of cells tagged solution (markdown and code)
    checks: list = field(default_factory=list)      # indices of cells tagged check


def language_of(path):
    lang = Path(path).parent.name
    return lang if lang in LANGUAGES else None


def _has_heading(markdown):
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and re.match(r" {0,3}#{1,6}(\s|$)", line):
            return True
    return False


def parse(nb, path, lang=None):
    """Validate a chapter's exercise markup; return (exercises, problems).

    lang ("zh"/"en") selects the statement and solution headings to expect; None accepts either.
    """
    lang = lang or language_of(path)
    heads = [EXERCISE_HEAD[lang]] if lang else list(EXERCISE_HEAD.values())
    sol_heads = [SOLUTION_HEAD[lang]] if lang else list(SOLUTION_HEAD.values())
    exercises, problems = [], []
    for i, cell in enumerate(nb["cells"]):
        t, kind, text = tags(cell), cell["cell_type"], source(cell)
        at = where(path, i, cell)
        roles = [r for r in (EXERCISE, SOLUTION, CHECK) if r in t]
        if len(roles) > 1:
            problems.append(f"{at}: tagged {' and '.join(roles)}; give it one of them")
            continue
        role = roles[0] if roles else None
        if role == EXERCISE:
            m = next((re.match(h, text.lstrip()) for h in heads if re.match(h, text.lstrip())), None)
            if kind != "markdown":
                problems.append(f"{at}: an exercise statement must be a markdown cell")
            elif not m:
                want = " / ".join(h.replace("\\", "").replace("(d+)", "N") for h in heads)
                problems.append(f"{at}: an exercise statement starts with {want}")
            else:
                n = int(m.group(1))
                if n != len(exercises) + 1:
                    problems.append(f"{at}: exercise number {n}, expected {len(exercises) + 1} "
                                    f"(exercises are numbered 1, 2, ... per chapter)")
                if _has_heading(text):
                    problems.append(f"{at}: no headings inside an exercise statement (the site wraps it)")
            exercises.append(Exercise(len(exercises) + 1, i))
            exercises[-1].cells.append(i)
            continue
        if exercises:
            exercises[-1].cells.append(i)
        if role is None:
            if has_markers(text):
                problems.append(f"{at}: has solution markers but is not tagged `{SOLUTION}`; tag it, or "
                                f"remove the markers (a student copy would keep this cell's solution)")
            continue
        if not exercises:
            problems.append(f"{at}: tagged `{role}` before the first exercise statement (a markdown cell "
                            f"tagged `{EXERCISE}`)")
            continue
        ex = exercises[-1]
        if role == SOLUTION:
            ex.solutions.append(i)
            if kind == "markdown":
                if has_markers(text):
                    problems.append(f"{at}: solution markers belong in code cells; a markdown solution cell "
                                    f"is removed from the student copy as a whole")
                if not any(text.lstrip().startswith(h) for h in sol_heads):
                    problems.append(f"{at}: a solution markdown cell starts with {' / '.join(sol_heads)}")
                if _has_heading(text):
                    problems.append(f"{at}: no headings inside a solution (the site collapses it)")
            elif kind == "code":
                try:
                    regions = solution_regions(text)
                except MarkupError as e:
                    problems.append(f"{at}: {e}")
                    continue
                if not regions:
                    problems.append(f"{at}: a code cell tagged `{SOLUTION}` needs its solution lines between "
                                    f"`{BEGIN}` and `{END}` (code outside the markers stays in the student "
                                    f"copy; put signatures and names the check needs there)")
                elif compiles(text) and not compiles(stub_code(text)):
                    problems.append(f"{at}: with the region replaced by the stub the cell is no longer valid "
                                    f"Python; put the markers around whole statements")
            else:
                problems.append(f"{at}: only markdown and code cells can be tagged `{SOLUTION}`")
        elif role == CHECK:
            ex.checks.append(i)
            if kind != "code":
                problems.append(f"{at}: a check must be a code cell (plain asserts)")
            elif has_markers(text):
                problems.append(f"{at}: a check cell cannot hold solution markers")
            elif not any(nb["cells"][j]["cell_type"] == "code" for j in ex.solutions):
                problems.append(f"{at}: a check must follow a code cell tagged `{SOLUTION}` of the same "
                                f"exercise (it has to fail on the student's stub)")
    for ex in exercises:
        if not ex.solutions:
            cell = nb["cells"][ex.statement]
            problems.append(f"{where(path, ex.statement, cell)}: exercise {ex.number} has no solution (markdown "
                            f"and/or code cells tagged `{SOLUTION}` after the statement)")
    return exercises, problems


def exercises_of(nb, path, lang=None):
    exercises, problems = parse(nb, path, lang)
    if problems:
        raise MarkupError("\n".join(problems))
    return exercises


# --------------------------------------------------------------------------------------------------------
# The student copy


def student_notebook(nb, path, lang=None):
    """The student copy of one chapter (a new notebook; nb is not changed). Raises MarkupError."""
    exercises_of(nb, path, lang)
    out = copy.deepcopy(nb)
    cells = []
    for cell in out["cells"]:
        if SOLUTION in tags(cell):
            if cell["cell_type"] != "code":
                continue
            cell["source"] = stub_code(source(cell))
            cell["outputs"] = []
            cell["execution_count"] = None
        elif cell["cell_type"] == "markdown" and IMAGE_LINK in source(cell):
            cell["source"] = source(cell).replace(IMAGE_LINK, "../images/")
        cells.append(cell)
    out["cells"] = cells
    return out


def nbgrader_notebook(nb, path, lang=None):
    """The chapter with nbgrader's cell metadata, for the source/ folder of an nbgrader course.

    Code cells tagged solution become nbgrader solution cells (the same stubs as ours), check cells become
    locked autograder tests worth 1 point each, markdown solutions become written answers worth 1 point,
    graded by hand (nbgrader shows "YOUR ANSWER HERE" where our student copy has nothing).
    """
    exercises = exercises_of(nb, path, lang)
    out = copy.deepcopy(nb)
    for ex in exercises:
        counts = Counter()
        for i in sorted(ex.solutions + ex.checks):
            cell = out["cells"][i]
            kind = "check" if CHECK in tags(cell) else "answer" if cell["cell_type"] == "markdown" else "solution"
            counts[kind] += 1
            meta = {"grade": kind != "solution", "grade_id": f"ex{ex.number}-{kind}{counts[kind]}",
                    "locked": kind == "check", "schema_version": 3, "solution": kind != "check", "task": False}
            if meta["grade"]:
                meta["points"] = 1
            cell.setdefault("metadata", {})["nbgrader"] = meta
    return out


def make_nbgrader(pairs, out):
    """nbgrader course folders, one per language: <out>/<lang>/source/<NN-slug>/<NN-slug>.ipynb."""
    written = []
    for lang, path in pairs:
        nb = load(path)
        target = Path(out) / lang / "source" / path.stem / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        save(nbgrader_notebook(nb, path, lang), target)
        written.append(target)
        for image in images_used(nb):  # ../../images/ from source/<ch>/ and release/<ch>/ is <out>/<lang>/images/
            if (ROOT / "images" / image).is_file():
                (Path(out) / lang / "images" / image).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(ROOT / "images" / image, Path(out) / lang / "images" / image)
    return written


def images_used(nb):
    """The files under images/ that the markdown of a source notebook links to."""
    return sorted(set(re.findall(re.escape(IMAGE_LINK) + r"([\w./-]+)", "\n".join(
        source(c) for c in nb["cells"] if c["cell_type"] == "markdown"))))


def select(names):
    """(lang, path) of the chapters to process: every chapter, or those named (NN-slug)."""
    pairs = [(lang, p) for lang in LANGUAGES for p in chapter_paths(lang)]
    if names:
        wanted = {n.removesuffix(".ipynb") for n in names}
        missing = wanted - {p.stem for _, p in pairs}
        if missing:
            raise SystemExit(f"no such chapter in chapters/: {', '.join(sorted(missing))}")
        pairs = [(lang, p) for lang, p in pairs if p.stem in wanted]
    return pairs


def make_student(pairs, out=OUT):
    """Validate every chapter first, then write the student copies; return the written paths."""
    copies, problems = [], []
    for lang, path in pairs:
        nb = load(path)
        try:
            copies.append((lang, path, student_notebook(nb, path, lang), images_used(nb)))
        except MarkupError as e:
            problems.append(str(e))
    if problems:
        raise MarkupError("\n".join(problems))
    written = []
    for lang, path, nb, images in copies:
        target = Path(out) / lang / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        save(nb, target)
        written.append(target)
        for image in images:
            src, dst = ROOT / "images" / image, Path(out) / "images" / image
            if src.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
    return written


# --------------------------------------------------------------------------------------------------------
# Running the exercises: the checks fail on the stub and pass on the solution

ACCEPTED_STUB_ERRORS = ("AssertionError", "NameError", "UnboundLocalError", "NotImplementedError")


def run_plan(nb, path, lang=None, after_full_run=False):
    """The cells to execute in one kernel, each with its role, to verify a chapter's exercises.

    Every code cell before the first exercise runs once; it is the same in the student copy, so this is
    the student copy's start. Then, per exercise: its code cells as in the student copy (stubs in),
    then the same cells again as in the source (solutions in). So each exercise is stubbed with every
    earlier exercise solved: a check must fail because of its own exercise's stub, not an earlier one.
    ``after_full_run=True`` plans for a kernel that has already run the whole chapter (nbval's, in the test
    suite): the start is left out, and each exercise's stubs are preceded by a ``forget`` step that deletes
    the names its cells bind, so a check cannot pass on a value its solution left behind.
    Returns a list of (phase, exercise number or None, source cell index, cell to run); a ``forget`` step's
    cell holds the code that deletes the names.
    """
    exercises = exercises_of(nb, path, lang)
    first = exercises[0].statement if exercises else len(nb["cells"])
    plan = [] if after_full_run else [("start", None, i, c) for i, c in enumerate(nb["cells"][:first])
                                       if c["cell_type"] == "code"]
    for ex in exercises:
        code = [i for i in ex.cells if nb["cells"][i]["cell_type"] == "code"]
        if after_full_run and code:
            names = sorted(set().union(*(bound_names(source(nb["cells"][i])) for i in code)))
            forget = "".join(f"globals().pop({n!r}, None)\n" for n in names) or "pass\n"
            plan.append(("forget", ex.number, code[0], {"cell_type": "code", "metadata": {}, "source": forget,
                                                        "outputs": [], "execution_count": None}))
        for i in code:
            cell = copy.deepcopy(nb["cells"][i])
            if SOLUTION in tags(cell):
                cell["source"] = stub_code(source(cell))
            plan.append(("stub", ex.number, i, cell))
        plan += [("solution", ex.number, i, copy.deepcopy(nb["cells"][i])) for i in code]
    return plan


def bound_names(code):
    """The names a cell binds at the top level (assignments, for targets, defs, classes, imports)."""
    import ast

    from IPython.core.inputtransformer2 import TransformerManager

    try:
        tree = ast.parse(TransformerManager().transform_cell(code))  # `!pip` and `%magic` lines made Python
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        else:
            targets = [n for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]
            names.update(n.id for n in targets)
    return names


def _error_of(cell):
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return out.get("ename", "Error"), out.get("evalue", "")
    return None


def judge(plan, nb, path, run):
    """Run ``plan`` (see :func:`run_plan`) cell by cell with ``run(cell, k)``, which executes a cell in the
    chapter's kernel and returns its error as ``(name, message)`` or None; return a list of problems (empty
    when every exercise behaves).

    Rules: the start of the chapter runs without error; for each exercise, with its solution regions
    stubbed, every check cell raises AssertionError, NameError or NotImplementedError (the student sees
    the check fail, not crash on something unrelated); with the solutions in, every code cell of the
    exercise runs without error. Cells run one by one, so one bad exercise does not hide the next (a chapter
    that fails before its first exercise stops there: nothing after it would mean much).
    """
    problems = []
    for k, (phase, number, index, cell) in enumerate(plan):
        if phase != "start" and problems and plan[k - 1][0] == "start":
            problems.append("the exercises were not run: the chapter fails before them")
            break
        error = run(cell, k)
        at = where(path, index, nb["cells"][index])
        if phase in ("start", "solution", "forget") and error:
            what = {"start": "the start of the chapter (before exercise 1)",
                    "solution": f"exercise {number} with its solution",
                    "forget": f"forgetting the names of exercise {number}"}[phase]
            problems.append(f"{at}: {what} raised {error[0]}: {error[1]}")
        elif phase == "stub" and CHECK in tags(cell):
            if error is None:
                problems.append(f"{at}: the check of exercise {number} passes on the student stub; it "
                                f"must test what the solution computes")
            elif error[0] not in ACCEPTED_STUB_ERRORS:
                problems.append(f"{at}: on the student stub the check of exercise {number} crashes with "
                                f"{error[0]}: {error[1]} instead of failing with AssertionError, NameError "
                                f"or NotImplementedError")
    return problems


def verify(nb, path, lang=None, timeout=600):
    """Execute a chapter's run plan in a new kernel (see :func:`judge`); return a list of problems."""
    import nbformat
    from nbclient import NotebookClient

    plan = run_plan(nb, path, lang)
    runnable = nbformat.v4.new_notebook(metadata=copy.deepcopy(nb.get("metadata", {})))
    for _, _, _, cell in plan:
        cell = nbformat.from_dict(cell)
        cell["source"], cell["outputs"], cell["execution_count"] = source(cell), [], None
        runnable.cells.append(cell)
    client = NotebookClient(runnable, timeout=timeout, allow_errors=True, kernel_name="python3",
                            resources={"metadata": {"path": str(Path(path).resolve().parent)}})

    def run(_, k):
        client.execute_cell(runnable.cells[k], k)
        return _error_of(runnable.cells[k])

    with client.setup_kernel():
        return judge(plan, nb, path, run)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="*", help="chapter names such as 06-lenet (default: all)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"output folder (default {OUT.relative_to(ROOT)})")
    parser.add_argument("--nbgrader", type=Path, metavar="DIR",
                        help="also write nbgrader course folders DIR/<lang>/ (source/<chapter>/<chapter>.ipynb "
                             "with nbgrader cell metadata), for `nbgrader generate_assignment <chapter>`")
    parser.add_argument("--list", action="store_true",
                        help="only print each chapter's exercises, code solutions and checks (zh)")
    parser.add_argument("--verify", action="store_true",
                        help="also execute each chapter (zh; the code is the same in en) and check that its "
                             "checks fail on the stub and pass on the solution")
    args = parser.parse_args(argv)
    pairs = select(args.chapters)
    if not pairs:
        raise SystemExit(f"no chapters in {CHAPTERS.relative_to(ROOT)}/<lang>/")
    if args.list:
        print(f"{'chapter':<20} exercises  code solutions  checks")
        for lang, path in pairs:
            if lang == LANGUAGES[0]:
                nb = load(path)
                exercises, problems = parse(nb, path, lang)
                code = sum(nb["cells"][i]["cell_type"] == "code" for ex in exercises for i in ex.solutions)
                print(f"{path.stem:<20} {len(exercises):>9}  {code:>14}  {sum(len(ex.checks) for ex in exercises):>6}"
                      + (f"  ({len(problems)} markup problems)" if problems else ""))
        return
    try:
        written = make_student(pairs, args.out)
    except MarkupError as e:
        raise SystemExit(f"make_student: fix the exercise markup first:\n{e}") from None
    if not args.chapters:  # a chapter renamed or removed leaves no stale copy behind
        for stale in {p for lang in LANGUAGES for p in (args.out / lang).glob("*.ipynb")} - set(written):
            stale.unlink()
    for lang in LANGUAGES:
        n = sum(1 for p in written if p.parent.name == lang)
        print(f"{n} student notebooks in {args.out / lang}")
    if args.nbgrader:
        written = make_nbgrader(pairs, args.nbgrader)
        for lang in LANGUAGES:
            print(f"{sum(1 for p in written if p.parents[2].name == lang)} nbgrader source notebooks in "
                  f"{args.nbgrader / lang / 'source'}")
    if args.verify:
        os.environ.setdefault("CNNLIB_SMOKE", "1")  # checks must pass in smoke mode; it is also quick
        os.environ.setdefault("MPLBACKEND", "Agg")
        failed = False
        for lang, path in pairs:
            if lang != LANGUAGES[0]:
                continue
            problems = verify(load(path), path, lang)
            print(f"{path.stem}: " + ("exercises ok" if not problems else "\n  ".join(["FAILED"] + problems)))
            failed |= bool(problems)
        if failed:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
