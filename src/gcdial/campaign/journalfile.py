"""The files of a one-file journal: its lock, its side files, and a hot rollback journal."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from pathlib import Path

from gcdial.errors import JournalLockedError, JournalSchemaError
from gcdial.private_files import PRIVATE_MODE, ensure_private

__all__ = ["_FileLock"]


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.new")


def _side_files(path: Path) -> list[Path]:
    """Every file that belongs to the journal at ``path`` besides itself (lock excluded)."""
    sides = [path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal")]
    sides += path.parent.glob(f".{_glob_escape(path.name)}.*.new*")
    return sides


def _glob_escape(name: str) -> str:
    """``name`` with the glob metacharacters made literal."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _unreadable(path: Path, exc: sqlite3.Error) -> JournalSchemaError:
    return JournalSchemaError(
        f"The journal {path} cannot be read: {exc}. It is damaged or not a gcdial journal.",
        hint="Give the path of the journal file the campaign created. If it was damaged (a disk "
        "problem, a copy made while the campaign ran), restore it from a backup, or start the "
        "campaign again with a new journal path (contacts dialed in it would be dialed again).",
    )


def _roll_back_hot(path: Path) -> None:
    """Roll back a rollback journal (``-journal``) left hot by a killed writer, with a writable
    connection under the lock, so that read-only opens (status, report, a run's first look) can
    read the file: a read-only connection cannot roll back, and fails on every read.

    Nothing to do while a campaign holds the lock: its writable connection rolled back the
    journal when it opened. A file that is not a database is left for the open to refuse.
    """
    if not path.with_name(path.name + "-journal").exists():
        return
    lock = _FileLock(path)
    try:
        lock.acquire()
    except JournalLockedError:
        return
    try:
        with contextlib.suppress(sqlite3.Error):
            conn = sqlite3.connect(path, isolation_level=None)
            try:
                conn.execute("PRAGMA busy_timeout = 5000")
                conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            finally:
                conn.close()
    finally:
        lock.release(remove=True)


class _FileLock:
    """An exclusive ``flock`` on a side file; released by the kernel if the process dies."""

    def __init__(self, journal: Path) -> None:
        self.path = _lock_path(journal)
        self._fd: int | None = None

    @staticmethod
    def holder(journal: Path) -> int | None:
        """The pid of the process holding the journal, or None when nobody holds it.

        Probes with a shared lock, so it never disturbs the holder and never blocks.
        """
        try:
            fd = os.open(_lock_path(journal), os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 64).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else 0
        finally:
            os.close(fd)  # closing drops the probe's lock
        return None

    def acquire(self) -> None:
        # The file is removed at a clean exit (see :meth:`release`), so the file locked may be one
        # its holder unlinked just before it let go: lock again until the locked file is the one
        # at the path.
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, PRIVATE_MODE)
            ensure_private(self.path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise JournalLockedError(
                    f"The journal {self.path.with_suffix('')} is in use by another gcdial "
                    f"process (pid {holder}).",
                    hint="Wait for that campaign to finish or stop it (Ctrl-C), then resume. "
                    "`gcdial campaign status` can read the journal meanwhile.",
                ) from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self, *, remove: bool = False) -> None:
        """Let go of the lock; ``remove`` deletes the lock file first (a clean exit), while it is
        still held, so that nobody can lock it in between (see :meth:`acquire`)."""
        if self._fd is not None:
            if remove:
                with contextlib.suppress(OSError):
                    self.path.unlink()
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
