"""Execute chapter notebooks top to bottom and save them with their outputs (what a full run commits).

    python tools/run_chapters.py                  # every zh chapter, at full size (CNNLIB_SMOKE unset)
    python tools/run_chapters.py --lang en 06-lenet

Each notebook runs in its own folder with a fresh kernel; the time per notebook is printed. Afterwards run
``python tools/sync_translation.py`` to copy the outputs to the other language.
"""
import argparse
import sys
import time

import nbformat
from nbclient import NotebookClient

if __package__ in (None, ""):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
from tools.nbtools import chapter_paths


def run(path, timeout):
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    nbformat.write(nb, path)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="*", help="chapter names such as 06-lenet (default: all)")
    parser.add_argument("--lang", choices=("zh", "en"), default="zh")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args(argv)
    paths = [p for p in chapter_paths(args.lang) if not args.chapters or p.stem in args.chapters]
    if args.chapters and len(paths) != len(set(args.chapters)):
        raise SystemExit(f"unknown chapter among {args.chapters}")
    for path in paths:
        print(f"{path.name}: {run(path, args.timeout):.1f} s", flush=True)


if __name__ == "__main__":
    main()
