"""GitHub Actions workflows cannot run here: check they parse and say what they must.

- site.yml builds both sites with `make book` on pushes to main and publishes _build/html on GitHub Pages.
- gpu-notebooks.yml runs tools/gpu_pass.py (every GPU check, nbval at full size among them) on a self-hosted
  GPU runner within the job's time and keeps its archive.
"""
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))


def load(name):
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def needs(job):
    value = job.get("needs", [])
    return [value] if isinstance(value, str) else value


def steps(job):
    return job.get("steps", [])


def uses(job, action):
    return [s for s in steps(job) if s.get("uses", "").split("@")[0] == action]


def runs(job):
    return "\n".join(s.get("run", "") for s in steps(job))


def test_there_are_two_workflows():
    assert {p.name for p in FILES} >= {"site.yml", "gpu-notebooks.yml"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_workflow_is_well_formed(path):
    wf = load(path.name)
    assert wf.get("name") and wf.get("on") and wf.get("jobs"), f"{path.name}: needs name, on and jobs"
    for job_id, job in wf["jobs"].items():
        assert job.get("runs-on"), f"{path.name}: job {job_id} has no runs-on"
        assert steps(job), f"{path.name}: job {job_id} has no steps"
        for step in steps(job):
            assert ("run" in step) != ("uses" in step), f"{path.name}/{job_id}: a step needs run or uses: {step}"
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@v\d+(\.\d+)*", step["uses"]), (
                    f"{path.name}/{job_id}: pin actions to a release: {step['uses']}")
        for need in needs(job):
            assert need in wf["jobs"], f"{path.name}/{job_id} needs an unknown job {need}"
    text = path.read_text(encoding="utf-8")
    repo = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]["url"]
    assert repo not in text, f"{path.name} names the repository; it lives in _config.yml only"


def test_site_workflow_builds_and_publishes_on_pushes_to_main():
    wf = load("site.yml")
    assert wf["on"]["push"]["branches"] == ["main"]
    jobs = wf["jobs"]
    build = next(job for job in jobs.values() if uses(job, "actions/upload-pages-artifact"))
    assert "make book" in runs(build), "the site is built by the README's command"
    assert uses(build, "actions/checkout")
    assert uses(build, "actions/upload-pages-artifact")[0]["with"]["path"] == "_build/html"
    deploy = next(job for job in jobs.values() if uses(job, "actions/deploy-pages"))
    build_id = next(k for k, job in jobs.items() if job is build)
    assert build_id in needs(deploy)
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert wf["permissions"] == {"contents": "read"}, "least privilege outside the deploy job"


def test_gpu_workflow_runs_the_gpu_pass_within_the_job_and_keeps_its_archive():
    """The runner runs tools/gpu_pass.py, the procedure CONTRIBUTING.md gives for any GPU machine: full size
    (no --smoke), a budget that ends before the job's time-out, and its archive uploaded even when a check fails."""
    from tools import gpu_pass

    wf = load("gpu-notebooks.yml")
    (job,) = wf["jobs"].values()
    assert set(job["runs-on"]) == {"self-hosted", "gpu"}
    assert uses(job, "actions/checkout")
    assert "make venv" in runs(job), "the runner installs what the README installs"
    commands = [shlex.split(s["run"]) for s in steps(job) if "tools/gpu_pass.py" in s.get("run", "")]
    assert len(commands) == 1, "one GPU procedure: the job calls tools/gpu_pass.py once"
    (command,) = commands
    args = gpu_pass.build_parser().parse_args(command[command.index("tools/gpu_pass.py") + 1:])
    assert not args.smoke and args.out, "full size, into a folder"
    assert args.budget + 5 * 60 <= job["timeout-minutes"] * 60, "the pass must end (and archive) before the job"
    (upload,) = uses(job, "actions/upload-artifact")
    assert upload.get("if") == "always()", "the archive is kept when a check fails too"
    assert Path(upload["with"]["path"]) == Path(args.out) / "gpu-pass.tar.gz"
    env = {**wf.get("env", {}), **job.get("env", {})}
    assert "CNNLIB_SMOKE" not in env, "gpu_pass sets the size of every child itself"
    # nbval runs under pyproject.toml's addopts, the same options (sanitize file included) as CI's smoke run
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert "--nbval " in pyproject and "--nbval-sanitize-with tests/nbval_sanitize.cfg" in pyproject
