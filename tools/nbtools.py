"""Reading, comparing and writing the chapter notebooks (shared by the tools and the tests)."""
import io
import json
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"
LANGUAGES = ("zh", "en")


def chapter_paths(lang):
    """The chapter notebooks of one language, sorted by file name (``NN-slug.ipynb``)."""
    return sorted((CHAPTERS / lang).glob("[0-9][0-9]-*.ipynb"))


def pending_chapters():
    """The chapters of ``chapters/pending-gpu-runs.txt`` in its order: one name a line, ``# why`` comments and
    blank lines dropped (an empty list when the file does not exist)."""
    path = CHAPTERS / "pending-gpu-runs.txt"
    if not path.exists():
        return []
    names = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [name for name in names if name]


def load(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def save(nb, path):
    """Write a notebook the way Jupyter does (one-space indent, UTF-8 kept readable, final newline)."""
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def source(cell):
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def strip_comments(code):
    """Code tokens without comments and blank lines, so translated comments do not count as a change."""
    try:
        toks = tokenize.generate_tokens(io.StringIO(code).readline)
        return " ".join(t.string for t in toks if t.type not in (
            tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return "\n".join(line for line in code.splitlines() if line.strip() and not line.strip().startswith("#"))
