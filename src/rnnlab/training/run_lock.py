"""One writer per run directory: an exclusive OS lock on ``RUN/.lock``.

The lock is ``flock(2)`` on an open file, held while the file stays open and released by the
kernel when the process ends in any way (a ``kill -9`` leaves no stale lock). The file holds
the holder's pid, so a second writer can be told who it is. Readers (``rnnlab sample``,
``rnnlab eval``) take no lock and work while a run trains.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from rnnlab.errors import CheckpointError

LOCK = ".lock"


class RunLock:
    """Holds the exclusive lock of ``run_dir`` (created if missing) until :meth:`release`
    or until the object is garbage-collected or the process dies.

    Raises ``CheckpointError`` naming the holder's pid when another process writes the run."""

    def __init__(self, run_dir: Path):
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / LOCK
        self._file: IO[str] | None = open(self.path, "a+")  # noqa: SIM115 (held for the run)
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "another process"
            self._file.close()
            self._file = None
            raise CheckpointError(
                f"{run_dir} is being written by process {holder}; wait for it to finish, stop "
                "it, or use another --out"
            ) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"{os.getpid()}\n")
        self._file.flush()
        os.chmod(self.path, 0o644)

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the file releases the lock
            self._file = None
