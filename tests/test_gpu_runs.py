"""The list of chapters still waiting for their full GPU run (chapters/pending-gpu-runs.txt) stays true.

A chapter leaves the list once its stored training output comes from a full run on CUDA; DESIGN section 5.
"""
import re

from tools.nbtools import CHAPTERS, LANGUAGES, chapter_paths, code_cells, load

PENDING = CHAPTERS / "pending-gpu-runs.txt"
RUN_LINE = re.compile(r"examples/sec on (\S+)")


def pending():
    if not PENDING.exists():
        return set()
    return {line.strip() for line in PENDING.read_text().splitlines() if line.strip() and not line.startswith("#")}


def stored_text(path):
    texts = []
    for cell in code_cells(load(path)):
        for out in cell.get("outputs", []):
            texts.append("".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)


def test_every_pending_chapter_exists():
    names = {p.stem for p in chapter_paths("zh")}
    assert pending() <= names, f"listed but no such chapter: {sorted(pending() - names)}"


def test_training_outputs_not_from_a_full_gpu_run_are_listed_as_pending():
    for lang in LANGUAGES:
        for path in chapter_paths(lang):
            text = stored_text(path)
            devices = RUN_LINE.findall(text)
            full_gpu = devices and all(d.startswith("cuda") for d in devices) and "smoke run" not in text
            if devices and not full_gpu:
                assert path.stem in pending(), (f"{path} shows a training run on {devices} (or a smoke run): "
                                                f"add {path.stem} to {PENDING.name} until its GPU run")
            if full_gpu:
                assert path.stem not in pending(), f"{path} has its GPU run: remove it from {PENDING.name}"
