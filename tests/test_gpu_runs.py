"""The list of chapters still waiting for their full GPU run (chapters/pending-gpu-runs.txt) stays true.

A chapter leaves the list once its stored training output comes from a full run on CUDA. Each line of the
list is a chapter name, optionally followed by ``# why it waits``. A code cell tagged ``cpu-run`` is a run
that belongs on the CPU by design (a one-epoch comparison, the gloo data-parallel run): its stored output
must say ``on cpu`` and must not be a smoke run, and it does not count as the chapter's GPU run. A code cell
tagged ``needs-gpu-run`` (a lab or an experiment that only a GPU can run at full size) stores no output until
that run, and its chapter stays on the list.
"""
import re

from tools.nbtools import CHAPTERS, LANGUAGES, chapter_paths, code_cells, load, pending_chapters, tags

PENDING = CHAPTERS / "pending-gpu-runs.txt"
RUN_LINE = re.compile(r"examples/sec on (\S+)")
CPU_RUN = "cpu-run"
NEEDS_GPU = "needs-gpu-run"


def pending():
    return set(pending_chapters())


def output_text(cell):
    return "\n".join("".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
                     for out in cell.get("outputs", []))


def stored_text(path, cpu_runs=False):
    """The stored outputs of a chapter's code cells: those tagged ``cpu-run`` only, or all others."""
    return "\n".join(output_text(cell) for cell in code_cells(load(path)) if (CPU_RUN in tags(cell)) == cpu_runs)


def test_every_pending_chapter_exists():
    names = {p.stem for p in chapter_paths("zh")}
    assert pending() <= names, f"listed but no such chapter: {sorted(pending() - names)}"


def test_training_outputs_not_from_a_full_gpu_run_are_listed_as_pending():
    for lang in LANGUAGES:
        for path in chapter_paths(lang):
            text = stored_text(path)
            devices = RUN_LINE.findall(text)
            waiting = any(NEEDS_GPU in tags(cell) for cell in code_cells(load(path)))
            full_gpu = (devices and all(d.startswith("cuda") for d in devices) and "smoke run" not in text
                        and not waiting)
            if waiting:
                assert path.stem in pending(), (f"{path} has cells tagged {NEEDS_GPU}: add {path.stem} to "
                                                f"{PENDING.name} until their GPU run")
            if devices and not full_gpu:
                assert path.stem in pending(), (f"{path} shows a training run on {devices} (or a smoke run): "
                                                f"add {path.stem} to {PENDING.name} until its GPU run")
            if full_gpu:
                assert path.stem not in pending(), f"{path} has its GPU run: remove it from {PENDING.name}"


def test_cells_tagged_cpu_run_hold_a_full_cpu_run():
    for lang in LANGUAGES:
        for path in chapter_paths(lang):
            text = stored_text(path, cpu_runs=True)
            if path.stem in pending() or not text:
                continue
            devices = RUN_LINE.findall(text)
            assert "smoke run" not in text, f"{path}: a cell tagged {CPU_RUN} stores a smoke run"
            assert all(d == "cpu" for d in devices), f"{path}: a cell tagged {CPU_RUN} ran on {devices}"


def test_cells_waiting_for_a_gpu_store_no_output():
    for lang in LANGUAGES:
        for path in chapter_paths(lang):
            for i, cell in enumerate(code_cells(load(path))):
                if NEEDS_GPU in tags(cell):
                    assert not cell.get("outputs"), (f"{path}, code cell {i}: tagged {NEEDS_GPU} but stores an "
                                                     f"output; outputs come from its GPU run (drop the tag then)")
