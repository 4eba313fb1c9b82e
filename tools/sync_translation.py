"""Copy code cells and their stored outputs from one language's chapters to the other's.

    python tools/sync_translation.py              # zh -> en, every chapter
    python tools/sync_translation.py --from en 06-lenet

Code cells are paired in order. For each pair the target gets the source's outputs, execution count and
tags; where the code differs (comments aside) it also gets the source's code, and the tool lists those cells
so their comments can be translated. Markdown is never touched. Both notebooks must have the same number
of code cells: add a new cell to both by hand first, with its translated text around it.
"""
import argparse
import sys

if __package__ in (None, ""):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
from tools.nbtools import CHAPTERS, chapter_paths, code_cells, load, save, source, strip_comments


def sync_pair(src_path, dst_path):
    """Sync one chapter; return the indices of code cells whose code was replaced."""
    src, dst = load(src_path), load(dst_path)
    src_code, dst_code = code_cells(src), code_cells(dst)
    if len(src_code) != len(dst_code):
        raise SystemExit(f"{src_path.name}: {len(src_code)} code cells in {src_path.parent.name}, "
                         f"{len(dst_code)} in {dst_path.parent.name}. Add or remove cells by hand so both "
                         f"have the same code cells in the same order, then run this again.")
    replaced = []
    for i, (a, b) in enumerate(zip(src_code, dst_code)):
        if strip_comments(source(a)) != strip_comments(source(b)):
            b["source"] = a["source"]
            replaced.append(i)
        b["outputs"] = a["outputs"]
        b["execution_count"] = a["execution_count"]
        b.setdefault("metadata", {})["tags"] = a.get("metadata", {}).get("tags", [])
        if not b["metadata"]["tags"]:
            del b["metadata"]["tags"]
    save(dst, dst_path)
    return replaced


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="*", help="chapter names such as 06-lenet (default: all)")
    parser.add_argument("--from", dest="source", choices=("zh", "en"), default="zh")
    args = parser.parse_args(argv)
    target = "en" if args.source == "zh" else "zh"
    paths = chapter_paths(args.source)
    if args.chapters:
        wanted = {c.removesuffix(".ipynb") for c in args.chapters}
        paths = [p for p in paths if p.stem in wanted]
        missing = wanted - {p.stem for p in paths}
        if missing:
            raise SystemExit(f"no such chapter in chapters/{args.source}: {', '.join(sorted(missing))}")
    for path in paths:
        dst = CHAPTERS / target / path.name
        if not dst.exists():
            raise SystemExit(f"{dst} does not exist: write the {target} chapter first (copy the notebook and "
                             f"translate its text), then sync.")
        replaced = sync_pair(path, dst)
        note = f"; code replaced in cells {replaced}: translate their comments" if replaced else ""
        print(f"{path.name}: {args.source} -> {target} synced{note}")


if __name__ == "__main__":
    main()
