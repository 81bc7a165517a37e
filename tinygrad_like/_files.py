"""Writing files so that nothing is ever half-written."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Write to a temporary file beside ``path``, renamed over it only when the block ends without error.

    An interrupted write leaves the previous file intact and no temporary behind. Opened with mode "xb"
    rather than ``tempfile.mkstemp``, whose files are private (0600): the result gets the permissions the
    user's umask gives any new file.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        try:
            f = open(tmp, "xb")
        except OSError as e:  # name the file the caller asked for, not the temporary
            raise type(e)(e.errno, e.strerror, str(path)) from None
        with f:
            yield f
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
