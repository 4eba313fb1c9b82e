"""Where data sets live on disk, and writing there safely while other processes do the same.

A data set is looked for in ``root=...``, else in every folder of ``$CNNLIB_DATA``, else in the per-user cache;
it is downloaded into the first writable one. Under ``torchrun`` every process loads the data at once, so a
download happens under a lock on the folder, into a temporary file of its own, renamed into place only when
complete: nothing half-written is ever left where a loader would read it.
"""
import contextlib
import os
import uuid
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks (see one_process_at_a_time)
    fcntl = None


class DatasetError(RuntimeError):
    """A data set (Fashion-MNIST, CIFAR-10) is missing, cannot be downloaded, or a file of it is damaged."""


def cache_dir(dataset="fashion-mnist"):
    """The per-user folder where cnnlib downloads a data set (``$XDG_CACHE_HOME/cnnlib/<dataset>``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cnnlib" / dataset


def data_dirs(root=None, dataset="fashion-mnist"):
    """The folders a data set is looked for in, in order: ``[root]``, else every folder listed in
    ``$CNNLIB_DATA``, else ``[cache_dir(dataset)]``.

    ``CNNLIB_DATA`` is one folder or several separated by ``os.pathsep`` (``:`` on Linux and macOS, like
    ``PATH``), e.g. ``/data/fashion-mnist:/data``; each loader looks in every one for its own files.
    """
    if root is not None:
        return [Path(root).expanduser()]
    listed = [Path(p).expanduser() for p in os.environ.get("CNNLIB_DATA", "").split(os.pathsep) if p]
    return listed or [cache_dir(dataset)]


def writable_folder(folders, dataset):
    """Where ``dataset`` is downloaded: the first of ``folders`` that exists and is writable, or can be created;
    else the per-user cache. A read-only data folder listed first (a shared copy) is passed over."""
    for folder in folders:
        existing = next((p for p in [folder, *folder.parents] if p.exists()), None)
        if existing is not None and existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
            return folder
    return cache_dir(dataset)


def temporary_sibling(path):
    """A new, unique name in ``path``'s folder to write ``path``'s content under before renaming it into place.

    Unique per call, so processes writing the same file at once never share a temporary file.
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.part")


def write_atomically(path, write):
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it to ``path``.

    The rename is atomic, so ``path`` is either the old file or the complete new one, never half-written; when
    ``write`` fails the temporary file is removed.
    """
    tmp = temporary_sibling(path)
    try:
        with open(tmp, "xb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def one_process_at_a_time(folder):
    """Hold an exclusive lock on ``folder`` (created if missing) for the ``with`` block.

    Under ``torchrun`` every process loads the data at the same moment; so do two notebooks started together.
    Each downloads inside this block after checking again whether the data is there: the first to get the lock
    downloads, the others wait here, then find the data complete. The lock is on the folder itself, so no lock
    file is left behind. Where no lock can be taken (Windows, some network file systems) the processes download
    side by side, each into its own temporary file, and the last complete rename wins.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # a file system without locks: side by side, as above
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
