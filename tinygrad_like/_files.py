"""Files: written so that nothing is ever half-written, read so that a crafted file cannot exhaust memory.

``atomic_write`` is the one writer every save goes through. ``read_npz`` and ``parse_config`` are the readers of
untrusted input (weights files and the constructor arguments saved in them): every size is checked against a cap
before anything is allocated, and every refusal is a ``ValueError`` naming the file.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import secrets
import stat
import time
import zipfile
import zlib
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = ["MAX_NPZ_BYTES", "NotARegularFileError", "atomic_write", "parse_config", "read_npz"]

# ----------------------------------------------------------------------------------------------- atomic_write
# The temporary's name: ".{name}.{pid}.{8 hex digits}.tmp". Only files matching this exactly are ever cleaned up.
_TEMP_PATTERN = re.compile(r"\.(?P<name>.+)\.(?P<pid>[0-9]{1,10})\.[0-9a-f]{8}\.tmp")
_IMPORTED_AT = time.time()  # where /proc is missing: no temporary of ours can be older than this module
_CLOCK_SLACK = 2.0  # seconds: /proc/stat's boot time is rounded to the second


class NotARegularFileError(OSError, ValueError):
    """``atomic_write`` refused a path holding a FIFO, device or socket (left as it was)."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _refuse_special(path: Path, st: os.stat_result) -> None:
    if stat.S_ISREG(st.st_mode):
        return
    what = _kind(st.st_mode)
    message = f"atomic_write: refusing to replace {what}, which is not a regular file (left as it was)"
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, message, str(path))
    raise NotARegularFileError(errno.EINVAL, message, str(path))


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None if unknown; raises ProcessLookupError
    when there is no such process or it is a zombie (dead, not yet reaped)."""
    if not os.path.isdir("/proc/self"):  # no procfs: the kernel can still say whether the pid exists
        os.kill(pid, 0)
        return _IMPORTED_AT if pid == os.getpid() else None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()  # the command name in (...) may hold spaces
    except FileNotFoundError:  # gone, or hidden by procfs's hidepid: the kernel tells which
        os.kill(pid, 0)
        return None
    if fields[0] in (b"Z", b"X"):
        raise ProcessLookupError(pid)
    try:
        with open("/proc/stat", "rb") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith(b"btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, StopIteration):
        return None


def _is_stale(pid: int, mtime: float) -> bool:
    """True when no live process can still be writing a temporary that ``pid`` created and last touched at ``mtime``:
    the pid is gone, or the process now holding it started after that (the pid was reused, e.g. after a reboot)."""
    if pid <= 0:
        return True
    try:
        started = _process_start(pid)
    except ProcessLookupError:
        return True
    except OverflowError:  # a pid beyond the kernel's range belongs to no process
        return True
    except (OSError, IndexError, ValueError):  # another user's live process, or an unreadable /proc entry
        return False
    return started is not None and started > mtime + _CLOCK_SLACK


def _remove_stale_temporaries(directory: Path) -> None:
    """Delete what interrupted saves (a crash, SIGKILL, power loss) left in ``directory``: only regular files named
    exactly as our temporaries, whose writer is dead. Best effort: a file that cannot be checked is kept."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        match = _TEMP_PATTERN.fullmatch(entry.name)
        if match is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and _is_stale(int(match["pid"]), st.st_mtime):
                os.unlink(entry.path)
        except OSError:
            continue


def _resolve(path: Path) -> tuple[Path, os.stat_result | None]:
    """The file a write to ``path`` lands in (symbolic links followed) and its status, None if it does not exist."""
    real = Path(os.path.realpath(path))
    try:
        return real, os.stat(real)
    except FileNotFoundError:
        return real, None
    except OSError as e:  # a loop of links, a file used as a directory, ...: name the path asked for
        raise type(e)(e.errno, f"atomic_write: {e.strerror}", str(path)) from None


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Write to a temporary file beside ``path``, renamed over it only when the block ends without error.

    - An interrupted write leaves the previous file intact and, when Python unwinds, no temporary behind. What a
      killed process leaves (the temporary is named ``.{name}.{pid}.{8 hex digits}.tmp``) is removed by the next
      save into that directory, once no live process can own it: its pid is gone, or was reused by a process
      started after the file was last written. Nothing else is ever deleted. (Pids are this machine's: in a
      directory shared with other machines or containers, their savers' temporaries look abandoned.)
    - A symbolic link at ``path`` is written through: it stays a link and its target gets the new content,
      atomically (the temporary is made beside the target and renamed over it).
    - Anything at ``path`` that is not a regular file is refused and left untouched: a directory raises
      ``IsADirectoryError``, a FIFO, device or socket ``NotARegularFileError`` (an ``OSError`` and a ``ValueError``),
      so that e.g. saving to ``/dev/null`` never replaces it.
    - An existing file keeps its permission bits (a 0600 file stays private) and, where allowed, its owner and
      group. A new file gets the permissions the user's umask gives any new file: the temporary is opened with
      mode "xb" rather than by ``tempfile.mkstemp``, whose files are always 0600.
    - An empty path raises ``ValueError``; every error names the path asked for, not the temporary.
    """
    if os.fspath(path) in ("", b""):
        raise ValueError("atomic_write: empty path; give the name of the file to write")
    requested = Path(path)
    if os.fspath(path).endswith(os.sep):  # "name/" can only name a directory
        raise IsADirectoryError(errno.EISDIR, "atomic_write: a path ending in a separator names a directory",
                                str(requested))
    target, st = _resolve(requested)
    if st is not None:
        _refuse_special(requested, st)
    _remove_stale_temporaries(target.parent)  # first: leftovers may be what filled the disk
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        try:
            f = open(tmp, "xb")
        except OSError as e:  # name the file the caller asked for, not the temporary
            raise type(e)(e.errno, e.strerror, str(requested)) from None
        with f:
            if st is not None:
                if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                    try:
                        os.fchown(f.fileno(), st.st_uid, st.st_gid)  # first: chown may clear mode bits
                    except OSError:
                        pass  # only root may give a file away; the content matters more than the owner
                os.fchmod(f.fileno(), st.st_mode & 0o777)
            yield f
            f.flush()
            os.fsync(f.fileno())  # the bytes reach the disk before the rename makes them the file
        try:  # the path may have changed while the block ran: never rename over a FIFO, device or directory
            _refuse_special(requested, os.stat(target))
        except FileNotFoundError:
            pass
        os.replace(tmp, target)
        _sync_directory(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _sync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (where the system allows opening a directory for that)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the rename itself is still atomic
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------------- read_npz
MAX_NPZ_BYTES = 512 * 2**20  # default cap on the array data of one .npz (all members together)
_MAX_ZIP_DIRECTORY = 4 * 2**20  # bytes of zip central directory: ~40,000 members, far beyond any weights file
_MAX_DIMS = 64  # NumPy's own limit
_CHUNK = 1 << 20


class _Refused(ValueError):
    """Why an .npz was refused (a phrase; the caller names the file)."""


class _MissingArrays(_Refused):
    def __init__(self, missing: list[str], found: list[str]) -> None:
        super().__init__(f"missing arrays {missing} (found {found})")
        self.missing, self.found = missing, found


def _header(fp: BinaryIO, name: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fp)
    except ValueError as e:
        raise _Refused(f"member {name!r} is not a .npy array ({e})") from None
    if version == (1, 0):
        shape, fortran, dtype = fmt.read_array_header_1_0(fp)
    elif version == (2, 0):
        shape, fortran, dtype = fmt.read_array_header_2_0(fp)
    elif version == (3, 0) and hasattr(fmt, "_read_array_header"):  # 3.0 is 2.0 with a UTF-8 header
        shape, fortran, dtype = fmt._read_array_header(fp, version)
    else:
        raise _Refused(f"member {name!r} has unsupported .npy format version {version}")
    if dtype.hasobject:
        raise _Refused(f"member {name!r} holds object arrays, which only unpickling could read (refused: "
                       "allow_pickle=False)")
    if len(shape) > _MAX_DIMS or any(n < 0 for n in shape):
        raise _Refused(f"member {name!r} declares an impossible shape {shape}")
    return shape, fortran, dtype


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int, max_bytes: int) -> np.ndarray:
    """One member's array, read only after its declared size passed every check; ``budget`` is what is left
    of ``max_bytes``."""
    name = info.filename
    if info.flag_bits & 0x1:
        raise _Refused(f"member {name!r} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):  # what np.savez writes
        raise _Refused(f"member {name!r} uses compression method {info.compress_type}; "
                       "only stored and deflated members are read")
    with zf.open(info) as fp:
        shape, fortran, dtype = _header(fp, name)
        count = math.prod(shape)  # Python ints: a huge declared shape must not wrap around
        nbytes = count * dtype.itemsize
        header_size = fp.tell()
        if header_size + nbytes != info.file_size:
            raise _Refused(f"member {name!r} declares shape {shape} {dtype} ({nbytes} bytes of data) but the "
                           f"zip directory lists {info.file_size - header_size} bytes of data")
        if nbytes > budget:
            raise _Refused(f"member {name!r} declares shape {shape} {dtype} ({nbytes} bytes): the arrays exceed "
                           f"the limit of {max_bytes} bytes (max_bytes)")
        flat = np.empty(count, dtype=dtype)
        if nbytes:
            view = memoryview(flat.view(np.uint8))
            done = 0
            while done < nbytes:  # bounded reads: never more than the declared size comes out of the stream
                n = fp.readinto(view[done:done + _CHUNK])
                if not n:
                    raise _Refused(f"member {name!r} ends after {done} of its {nbytes} bytes of data")
                done += n
        if fp.read(1):  # also makes zipfile check the CRC
            raise _Refused(f"member {name!r} holds more data than declared")
    if fortran:  # as numpy.lib.format.read_array
        return flat.reshape(shape[::-1]).transpose()
    return flat.reshape(shape)


def _read_npz(path: str | os.PathLike[str], max_bytes: int, keys: Collection[str] | None = None
              ) -> dict[str, np.ndarray]:
    """The arrays of an .npz (only ``keys``, all required, when given); raises ``_Refused`` (``_MissingArrays``)
    or the zip, zlib or OS error."""
    arrays: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise _Refused("not a regular file")
        # zipfile reads the whole central directory into memory before anything else: bound it first.
        end = getattr(zipfile, "_EndRecData", None)
        record = end(f) if end is not None else None
        if record is not None and record[zipfile._ECD_SIZE] > _MAX_ZIP_DIRECTORY:
            raise _Refused(f"its zip directory is {record[zipfile._ECD_SIZE]} bytes, more than the limit of "
                           f"{_MAX_ZIP_DIRECTORY}")
        f.seek(0)
        with zipfile.ZipFile(f) as zf:
            members = [(info.filename[:-4] if info.filename.endswith(".npy") else info.filename, info)
                       for info in zf.infolist()]
            names = [key for key, _ in members]
            if keys is not None and (missing := [k for k in keys if k not in names]):
                raise _MissingArrays(missing, names)
            budget = max_bytes
            for key, info in members:
                if key in arrays:
                    raise _Refused(f"member {info.filename!r} appears twice")
                if keys is not None and key not in keys:
                    continue
                arrays[key] = _read_member(zf, info, budget, max_bytes)
                budget -= arrays[key].nbytes
    return arrays


# What a damaged or crafted zip can raise from zipfile, zlib or numpy's header parser.
_NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError,
               OverflowError, SyntaxError)


def read_npz(path: str | os.PathLike[str], max_bytes: int = MAX_NPZ_BYTES) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, as ``{name: ndarray}``; a drop-in for ``np.load`` without its risks.

    Never unpickles (a crafted file cannot run code). Before allocating a member, checks the shape and dtype its
    .npy header declares against its uncompressed size in the zip directory and against ``max_bytes`` (all
    members together); decompression never yields more than that declared size, so neither a header declaring
    10**12 floats nor a deflate bomb can exhaust memory. Raises ``FileNotFoundError`` for a missing file and
    ``ValueError("load: {path} is not a readable .npz weights file (...)")`` for anything else.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"load: {path} does not exist or is not a file")
    try:
        return _read_npz(path, max_bytes)
    except _NPZ_ERRORS as e:
        raise ValueError(f"load: {path} is not a readable .npz weights file ({e})") from None


# ------------------------------------------------------------------------------------------------ parse_config
_STRUCTURE = re.compile(r'[\[\]{}"\\]')


def _max_depth(text: str, limit: int) -> int | None:
    """The offset where ``text`` nests deeper than ``limit`` arrays/objects (strings skipped), or None."""
    depth, in_string, escaped_at = 0, False, -1
    for m in _STRUCTURE.finditer(text):
        c, at = m.group(), m.start()
        if at == escaped_at:  # the character after a backslash
            continue
        if in_string:
            if c == "\\":
                escaped_at = at + 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            if depth > limit:
                return at
        elif c in "]}":
            depth -= 1
    return None


def parse_config(text: str, source: str | os.PathLike[str], *, max_depth: int = 32,
                 max_chars: int = 1 << 20) -> Any:
    """Parse the JSON ``text`` read from ``source`` (named in errors), refusing more than ``max_chars`` characters
    or more than ``max_depth`` nested arrays and objects with a ``ValueError``, never a ``RecursionError``.

    Used for the constructor arguments saved in a weights file, which are untrusted input like the file itself.
    """
    if len(text) > max_chars:
        raise ValueError(f"config in {source}: {len(text)} characters, more than the limit of {max_chars}")
    at = _max_depth(text, max_depth)
    if at is not None:
        raise ValueError(f"config in {source}: nested deeper than {max_depth} levels (at character {at})")
    try:
        return json.loads(text)
    except RecursionError:  # cannot happen below the depth limit; kept so no input can ever raise it
        raise ValueError(f"config in {source}: nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, and int() refusing a number of thousands of digits
        raise ValueError(f"config in {source}: not valid JSON ({e})") from None
