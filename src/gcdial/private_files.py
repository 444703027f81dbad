"""Files that hold secrets or customer data are the owner's alone (mode 0600).

The service store, the campaign journals and their SQLite side files (``-wal``, ``-shm``,
``-journal``), campaign uploads and reports: created 0600, and put back to 0600 with a warning when
found readable by others (made by an older gcdial, or copied with a loose umask). SQLite gives a
database's side files the database file's own mode, so creating the main file 0600 first is what
keeps the ``-wal`` private too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path
from typing import IO, Any

__all__ = [
    "PRIVATE_MODE",
    "create_private",
    "ensure_private",
    "open_private",
    "secure_sqlite",
    "write_private_text",
]

PRIVATE_MODE = 0o600
SQLITE_SIDE_SUFFIXES = ("-wal", "-shm", "-journal")

logger = logging.getLogger("gcdial.files")


def ensure_private(path: Path) -> bool:
    """Make ``path`` 0600 if group or others may read or write it; True when it was fixed.
    A missing file, or one this user cannot change, is left as it is (with a warning)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return False
    if not mode & 0o077:
        return False
    try:
        path.chmod(PRIVATE_MODE)
    except OSError as exc:
        logger.warning("%s is readable by other users (mode %o) and cannot be fixed: %s",
                       path, mode, exc.strerror)  # fmt: skip
        return False
    logger.warning("%s was readable by other users (mode %o); it is now 0600", path, mode)
    return True


def create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist; fix its mode if it does."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:
        ensure_private(path)
        return
    os.close(fd)


def open_private(
    path: Path, mode: str = "w", *, encoding: str | None = "utf-8", newline: str | None = None
) -> IO[Any]:
    """``open(path, mode)`` for writing text, the file created (or truncated) with mode 0600."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE_MODE)
    # An existing file keeps its mode through O_CREAT; a device (/dev/stdout) is left alone.
    if stat.S_ISREG(os.fstat(fd).st_mode) and stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
        with contextlib.suppress(OSError):
            os.fchmod(fd, PRIVATE_MODE)
    return os.fdopen(fd, mode, encoding=encoding, newline=newline)


def write_private_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, mode 0600."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open_private(temp) as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def secure_sqlite(path: Path) -> None:
    """Fix the mode of an SQLite database and of each side file it has now."""
    ensure_private(path)
    for suffix in SQLITE_SIDE_SUFFIXES:
        ensure_private(path.with_name(path.name + suffix))
