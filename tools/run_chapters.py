"""Execute chapter notebooks top to bottom and save them with their outputs (what a full run commits).

    python tools/run_chapters.py                  # every zh chapter, at full size (CNNLIB_SMOKE unset)
    python tools/run_chapters.py --lang en 06-lenet
    python tools/run_chapters.py --only-tag cpu-run 06-lenet

Each notebook runs in its own folder with a fresh kernel; the time per notebook is printed. Afterwards run
``python tools/sync_translation.py`` to copy the outputs to the other language.

``--only-tag TAG`` still executes the whole notebook (later cells need the state of earlier ones), but writes
back only the outputs of the code cells tagged TAG; every other cell keeps the output it had stored. This is
how a chapter whose training outputs come from a GPU gets fresh outputs for its cells tagged ``cpu-run`` on a
machine without one.
"""
import argparse
import copy
import sys
import time

import nbformat
from nbclient import NotebookClient

if __package__ in (None, ""):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
from tools.nbtools import chapter_paths, tags


def keep_only_tagged_outputs(stored, executed, tag):
    """Copy the outputs of the code cells tagged ``tag`` from ``executed`` into ``stored``; return how many.

    Both notebooks must have the same cells in the same order (``executed`` is a run of ``stored``).
    """
    if len(stored.cells) != len(executed.cells):
        raise ValueError(f"the executed notebook has {len(executed.cells)} cells, the stored one "
                         f"{len(stored.cells)}: they are not the same notebook")
    copied = 0
    for old, new in zip(stored.cells, executed.cells):
        if old.cell_type == "code" and tag in tags(old):
            old.outputs, old.execution_count = new.outputs, new.execution_count
            copied += 1
    return copied


def run(path, timeout, only_tag=None):
    """Execute the notebook at ``path`` and write it back (all outputs, or only those of cells tagged ``only_tag``).

    Returns the seconds it took, or None when ``only_tag`` is given and no code cell carries it (nothing runs).
    """
    stored = nbformat.read(path, as_version=4)
    nb = copy.deepcopy(stored) if only_tag else stored
    if only_tag and not any(c.cell_type == "code" and only_tag in tags(c) for c in nb.cells):
        return None
    start = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    if only_tag:
        keep_only_tagged_outputs(stored, nb, only_tag)
    nbformat.write(stored, path)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="*", help="chapter names such as 06-lenet (default: all)")
    parser.add_argument("--lang", choices=("zh", "en"), default="zh")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument("--only-tag", metavar="TAG",
                        help="execute everything, but store only the outputs of code cells with this tag")
    args = parser.parse_args(argv)
    paths = [p for p in chapter_paths(args.lang) if not args.chapters or p.stem in args.chapters]
    if args.chapters and len(paths) != len(set(args.chapters)):
        raise SystemExit(f"unknown chapter among {args.chapters}")
    for path in paths:
        seconds = run(path, args.timeout, args.only_tag)
        done = f"{seconds:.1f} s" if seconds is not None else f"skipped, no code cell tagged {args.only_tag}"
        print(f"{path.name}: {done}", flush=True)


if __name__ == "__main__":
    main()
