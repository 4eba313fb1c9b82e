"""Several processes that find a data set missing at the same moment, and a slow local server they download from.

``torchrun`` starts one process per GPU, and each calls the loader at the same time; so do two notebooks opened
together. :func:`run_together` starts ``n`` Python processes that all wait until every one of them has started,
then run the same code, so their downloads overlap for certain. :class:`SlowServer` serves a folder in small
chunks with a pause between them, so that a download lasts long enough for the others to start theirs, and counts
the requests per file.
"""
import collections
import functools
import http.server
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class _SlowHandler(http.server.SimpleHTTPRequestHandler):
    chunk, pause, requests = 4096, 0.02, None

    def copyfile(self, source, outputfile):
        while data := source.read(self.chunk):
            outputfile.write(data)
            outputfile.flush()
            time.sleep(self.pause)

    def do_GET(self):
        self.requests[self.path.lstrip("/")] += 1
        super().do_GET()

    def log_message(self, *args):
        pass


class SlowServer:
    """``with SlowServer(folder) as server``: ``server.url`` serves ``folder``; ``server.requests[name]`` counts
    the GET requests of each file."""

    def __init__(self, folder, chunk=4096, pause=0.02):
        self.requests = collections.Counter()
        handler = type("Handler", (_SlowHandler,), {"chunk": chunk, "pause": pause, "requests": self.requests})
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler,
                                                                                          directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


_START_TOGETHER = """\
import sys, time
from pathlib import Path
rank, n, folder = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
{setup}
(folder / f"ready-{{rank}}").touch()
deadline = time.monotonic() + 60
while len(list(folder.glob("ready-*"))) < n and time.monotonic() < deadline:
    time.sleep(0.005)
{body}
"""


def run_together(setup, body, tmp_path, n=2, env=None, timeout=120):
    """Run ``setup`` (imports: slow, done first) then ``body`` in ``n`` processes, the bodies started together.

    Each process sees ``rank`` (0 .. n-1) and ``n``. Returns the ``subprocess.CompletedProcess`` of each, in
    rank order, with stdout and stderr as text.
    """
    folder = tmp_path / "start-together"
    folder.mkdir()
    script = folder / "child.py"
    script.write_text(_START_TOGETHER.format(setup=textwrap.dedent(setup), body=textwrap.dedent(body)))
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **(env or {}))
    procs = [subprocess.Popen([sys.executable, str(script), str(rank), str(n), str(folder)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in range(n)]
    results = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results
