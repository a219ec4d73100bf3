"""Safe file output: atomic writes, and paths that stay inside the output folder.

:func:`atomic_path` writes to a temporary name in the same folder, then renames: a crash
or a full disk leaves either the old file or no file, never half of one. The rename
replaces a symbolic link planted at the target instead of writing through it.
:func:`ensure_inside` refuses a path that resolves outside the output folder, and
:func:`open_append_no_follow` opens a log for appending without following a link.

Example:
    >>> from pathlib import Path
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from medmm.errors import ExportError

__all__ = ["atomic_path", "ensure_inside", "open_append_no_follow"]

# The process umask, read once at import (reading it means setting it; doing that later,
# with threads writing files, could race).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary name keeps the target's suffixes (``.nii.gz`` stays ``.nii.gz``) so
    that libraries choosing a format by extension behave the same. The file gets the
    permissions a plain ``open(path, "w")`` would give (``0o666`` less the umask), whatever
    the writing library chose (``safetensors`` creates its files ``0o600``).
    """
    target = Path(path)
    tmp = target.with_name(f".tmp-{uuid.uuid4().hex[:12]}-{target.name}")
    try:
        yield tmp
        if tmp.is_file():  # a file only: a directory keeps its search bits
            os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def ensure_inside(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Return ``path`` after checking it resolves inside ``root`` (links resolved).

    Raises:
        ExportError: The path (or a link on the way to it) leads outside ``root``.
    """
    base = Path(root).resolve()
    target = Path(path)
    resolved = target.parent.resolve() / target.name
    if target.is_symlink():
        resolved = target.resolve()
    if resolved != base and base not in resolved.parents:
        raise ExportError(
            f"refusing to write {target}: it resolves to {resolved}, outside the output folder {base}",
            path=target,
            hint="Remove the symbolic link (or the '..' component) that leads out of the output folder.",
        )
    return target


def open_append_no_follow(path: str | os.PathLike[str]) -> io.TextIOWrapper:
    """Open a UTF-8 text file for appending, refusing to follow a symbolic link at ``path``.

    Raises:
        ExportError: ``path`` is a symbolic link, or cannot be opened.
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ExportError(
                "is a symbolic link; refusing to append through it",
                path=p,
                hint="Remove the link; medmm writes only real files inside its output folder.",
            ) from exc
        raise ExportError(f"cannot open for writing: {exc.strerror or exc}", path=p) from exc
    return io.TextIOWrapper(io.FileIO(fd, "a"), encoding="utf-8")
