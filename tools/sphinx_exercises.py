"""Sphinx extension: on the site, each exercise's worked solution is collapsed under the exercise.

The chapters mark exercises with cell tags (README, "Exercises"): a markdown cell tagged `exercise`, then
markdown and/or code cells tagged `solution`, then maybe a code cell tagged `check`. MyST-NB turns a code cell
into a container with the class `tag_<tag>`, but passes a markdown cell through without any trace of its
tags, so tags on markdown cells alone cannot hide anything. This extension therefore works in two steps:

1. `source-read` (before MyST-NB parses a notebook): the text of each markdown cell tagged `solution` or
   `exercise` is wrapped in a `{container}` directive with a marker class, and the nbgrader lines
   `### BEGIN SOLUTION` / `### END SOLUTION` are taken out of code cells (readers see the solution only).
   Only the copy Sphinx parses changes; the notebook on disk (which keeps the markers for nbgrader and the
   student copies), the page's download button and Colab see the clean source.
2. `doctree-read`: every run of consecutive solution elements (marked markdown, code cells tagged
   `solution`, with their outputs) is moved into one `<details class="cnn-solution">`, collapsed, whose
   summary is the solution's own heading (**解答** / **Solution**). Each exercise statement gets the
   anchor `exercise-N` (N from its **练习 N** / **Exercise N**), so exercises are numbered per chapter.

Check cells stay visible: they tell the reader what a correct answer has to satisfy.
Register it in _config.yml:  sphinx: local_extensions: {sphinx_exercises: tools/}
"""
import json
import re
from pathlib import Path

from docutils import nodes

__version__ = "1.0"

MD_SOLUTION, MD_EXERCISE = "cnn-solution-md", "cnn-exercise-md"
SOLUTION_CLASS, EXERCISE_CLASS = "cnn-solution", "cnn-exercise"
TITLES = ("解答", "Solution")
EXERCISE_NUMBER = re.compile(r"(?:练习|Exercise)\s*(\d+)")
SOLUTION_MARKER = re.compile(r"^[ \t]*### (?:BEGIN|END) SOLUTION[ \t]*$")

CSS = """\
details.cnn-solution {
  border: 1px solid var(--pst-color-border, #ccc);
  border-radius: .25rem;
  margin: .25rem 0 1rem;
  padding: 0 .75rem;
}
details.cnn-solution > summary {
  cursor: pointer;
  font-weight: 600;
  padding: .4rem 0;
}
details.cnn-solution[open] > summary {
  border-bottom: 1px solid var(--pst-color-border, #ccc);
  margin-bottom: .5rem;
}
"""


class solution_details(nodes.container):  # noqa: N801 (docutils node naming)
    """Collapsed solution: <details><summary>title</summary>...</details> in HTML, a plain container
    elsewhere (Sphinx's translators fall back to the base class, `container`)."""


def visit_solution_html(self, node):
    self.body.append(self.starttag(node, "details"))
    self.body.append(f'<summary>{self.encode(node["title"])}</summary>\n')


def depart_solution_html(self, node):
    self.body.append("</details>\n")


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def _wrap(text, cls):
    ticks = max([3] + [len(m) + 1 for m in re.findall(r"`{3,}", text)])
    fence = "`" * ticks
    return f"{fence}{{container}} {cls}\n{text}\n{fence}\n"


def without_solution_markers(src):
    """A code cell's source (str or list of lines) as one str, less nbgrader's solution marker lines."""
    lines = ("".join(src) if isinstance(src, list) else src).splitlines(keepends=True)
    return "".join(line for line in lines if not SOLUTION_MARKER.match(line)).rstrip("\n")


def mark_notebook(text):
    """The notebook JSON with exercise and solution markdown wrapped in marker containers and code cells
    without nbgrader's solution markers."""
    nb = json.loads(text)
    changed = False
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            src = cell.get("source", "")
            if any(SOLUTION_MARKER.match(line) for line in "".join(src).splitlines()):
                cell["source"] = without_solution_markers(src)
                changed = True
            continue
        if cell.get("cell_type") != "markdown":
            continue
        cls = MD_SOLUTION if "solution" in _tags(cell) else MD_EXERCISE if "exercise" in _tags(cell) else None
        if cls:
            src = cell["source"]
            cell["source"] = _wrap("".join(src) if isinstance(src, list) else src, cls)
            changed = True
    return json.dumps(nb, ensure_ascii=False) if changed else text


def on_source_read(app, docname, source):
    if str(app.env.doc2path(docname)).endswith(".ipynb"):
        source[0] = mark_notebook(source[0])


def _is_solution(node):
    if not isinstance(node, nodes.container) or isinstance(node, solution_details):
        return False
    classes = node.get("classes", [])
    return MD_SOLUTION in classes or (node.get("nb_element") == "cell_code" and "tag_solution" in classes)


def _take_title(container):
    """Remove a leading **解答** / **Solution** from a marked markdown solution; return that title."""
    para = container.children[0] if container.children else None
    if not isinstance(para, nodes.paragraph):
        return None
    while para.children and isinstance(para.children[0], nodes.Text) and not para.children[0].strip():
        para.remove(para.children[0])  # MyST leaves an empty text node before inline markup
    strong = para.children[0] if para.children else None
    if not isinstance(strong, nodes.strong) or strong.astext().strip() not in TITLES:
        return None
    title = strong.astext().strip()
    para.remove(strong)
    if para.children and isinstance(para.children[0], nodes.Text):
        rest = para.children[0].astext().lstrip(" \u3000\n")
        if rest:
            para.replace(para.children[0], nodes.Text(rest))
        else:
            para.remove(para.children[0])
    if not para.children:
        container.remove(para)
    return title


def on_doctree_read(app, doctree):
    default = TITLES[0] if str(app.config.language or "").startswith("zh") else TITLES[1]
    done = set()
    for node in list(doctree.findall(_is_solution)):
        if id(node) in done:
            continue
        parent = node.parent
        run = [node]
        position = parent.index(node)
        while position + len(run) < len(parent.children) and _is_solution(parent[position + len(run)]):
            run.append(parent[position + len(run)])
        details = solution_details(classes=[SOLUTION_CLASS], title=default)
        titled = False
        for member in run:
            done.add(id(member))
            parent.remove(member)
            if MD_SOLUTION in member["classes"]:
                title = _take_title(member)
                if title and not titled:
                    details["title"], titled = title, True
                details.extend(member.children)
            else:
                details.append(member)
        parent.insert(position, details)
    for node in list(doctree.findall(nodes.container)):
        if MD_EXERCISE in node.get("classes", []):
            node["classes"] = [c for c in node["classes"] if c != MD_EXERCISE] + [EXERCISE_CLASS]
            m = EXERCISE_NUMBER.search(node.astext()[:40])
            if m and not node["ids"]:
                anchor = f"exercise-{m.group(1)}"
                if anchor not in doctree.ids:
                    node["ids"].append(anchor)
                    doctree.ids[anchor] = node


def on_build_finished(app, exception):
    if exception is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        (static / "cnn-exercises.css").write_text(CSS, encoding="utf-8")


def setup(app):
    app.add_node(solution_details, html=(visit_solution_html, depart_solution_html))
    app.connect("source-read", on_source_read)
    app.connect("doctree-read", on_doctree_read)
    app.connect("build-finished", on_build_finished)
    app.add_css_file("cnn-exercises.css")
    return {"version": __version__, "env_version": 1, "parallel_read_safe": True, "parallel_write_safe": True}
