"""Files: written so that nothing is ever half-written, read so that a crafted file cannot exhaust memory.

``atomic_write`` is the one writer every save goes through. ``read_npz``, ``read_safetensors`` and ``parse_config``
are the readers of untrusted input (weights files and the constructor arguments saved in them): the headers are read
first (``npz_headers``, ``safetensors_headers``), every size is checked against the file and a cap before anything
is allocated, and every refusal is a ``ValueError`` naming the file and the entry. Safetensors files are read and
written by the safetensors package (optional: the ``export`` extra).
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

__all__ = ["CONFIG_KEY", "MAX_NPZ_BYTES", "NotARegularFileError", "atomic_write", "npz_headers", "parse_config",
           "read_npz", "read_safetensors", "safetensors_headers", "write_safetensors"]

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
_MAX_DEFLATE_RATIO = 1032  # deflate's best: a 258-byte match per 2 bits; more output per input byte is a lie
_CHUNK = 1 << 20

Header = tuple[tuple[int, ...], np.dtype]  # an array's shape and dtype, as a file declares them
CONFIG_KEY = "__config__"  # the array holding a module's description (``Module.save``): not state


class _Refused(ValueError):
    """Why a weights file was refused (a phrase; the caller names the file)."""


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


class _Member:
    """One array of an .npz as its zip directory and .npy header declare it, every declared size checked."""

    def __init__(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
        name = self.name = info.filename
        if info.flag_bits & 0x1:
            raise _Refused(f"member {name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):  # what np.savez writes
            raise _Refused(f"member {name!r} uses compression method {info.compress_type}; "
                           "only stored and deflated members are read")
        most = info.compress_size if info.compress_type == zipfile.ZIP_STORED else (
            _MAX_DEFLATE_RATIO * info.compress_size + 1024)
        if info.file_size > most:  # a small file cannot hold it: refused before anything is allocated for it
            raise _Refused(f"member {name!r} declares {info.file_size} bytes stored in {info.compress_size}, more "
                           "than its compression can give")
        with zf.open(info) as fp:  # decompresses only the header's first bytes
            self.shape, self.fortran, self.dtype = _header(fp, name)
            header_size = fp.tell()
        self.count = math.prod(self.shape)  # Python ints: a huge declared shape must not wrap around
        self.nbytes = self.count * self.dtype.itemsize
        if header_size + self.nbytes != info.file_size:
            raise _Refused(f"member {name!r} declares shape {self.shape} {self.dtype} ({self.nbytes} bytes of data) "
                           f"but the zip directory lists {info.file_size - header_size} bytes of data")
        self.info = info

    def read(self, zf: zipfile.ZipFile) -> np.ndarray:
        """The array, read in bounded chunks: never more than the declared size comes out of the stream."""
        flat = np.empty(self.count, dtype=self.dtype)
        with zf.open(self.info) as fp:
            _header(fp, self.name)
            if self.nbytes:
                view = memoryview(flat.view(np.uint8))
                done = 0
                while done < self.nbytes:
                    n = fp.readinto(view[done:done + _CHUNK])
                    if not n:
                        raise _Refused(f"member {self.name!r} ends after {done} of its {self.nbytes} bytes of data")
                    done += n
            if fp.read(1):  # also makes zipfile check the CRC
                raise _Refused(f"member {self.name!r} holds more data than declared")
        if self.fortran:  # as numpy.lib.format.read_array
            return flat.reshape(self.shape[::-1]).transpose()
        return flat.reshape(self.shape)


@contextmanager
def _open_npz(path: str | os.PathLike[str]) -> Iterator[tuple[zipfile.ZipFile, dict[str, _Member]]]:
    """The open zip and its members by key (".npy" left out), every header read and checked, no data read."""
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise _Refused("not a regular file")
        # zipfile reads the whole central directory into memory before anything else: bound it first.
        end = getattr(zipfile, "_EndRecData", None)
        record = end(f) if end is not None else None
        if record is not None and record[zipfile._ECD_SIZE] > _MAX_ZIP_DIRECTORY:
            raise _Refused(f"its zip directory is {record[zipfile._ECD_SIZE]} bytes, more than the limit of "
                           f"{_MAX_ZIP_DIRECTORY}")
        f.seek(0)
        with zipfile.ZipFile(f) as zf:
            members: dict[str, _Member] = {}
            for info in zf.infolist():
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if key in members:
                    raise _Refused(f"member {info.filename!r} appears twice")
                members[key] = _Member(zf, info)
            if sum(m.info.compress_size for m in members.values()) > st.st_size:
                raise _Refused(f"its zip directory lists more compressed data than the file's {st.st_size} bytes")
            yield zf, members


def _chosen(members: dict[str, _Member], keys: Collection[str] | None, max_bytes: int) -> list[str]:
    """``keys`` (all of them when None), each present, their declared data within ``max_bytes`` together."""
    names = list(members)
    if keys is not None and (missing := [k for k in keys if k not in members]):
        raise _MissingArrays(missing, names)
    chosen = [k for k in names if keys is None or k in keys]
    total = 0
    for key in chosen:
        m = members[key]
        total += m.nbytes
        if total > max_bytes:
            raise _Refused(f"member {m.name!r} declares shape {m.shape} {m.dtype} ({m.nbytes} bytes): the arrays "
                           f"exceed the limit of {max_bytes} bytes (max_bytes)")
    return chosen


def _read_npz(path: str | os.PathLike[str], max_bytes: int, keys: Collection[str] | None = None
              ) -> dict[str, np.ndarray]:
    """The arrays of an .npz (only ``keys``, all required, when given), read only after every header and the
    total declared size passed the checks; raises ``_Refused`` (``_MissingArrays``) or the zip, zlib or OS error."""
    with _open_npz(path) as (zf, members):
        return {key: members[key].read(zf) for key in _chosen(members, keys, max_bytes)}


# What a damaged or crafted zip can raise from zipfile, zlib or numpy's header parser.
_NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError,
               OverflowError, SyntaxError)


@contextmanager
def _readable(path: str | os.PathLike[str], what: str, op: str = "load",
              errors: tuple[type[BaseException], ...] = _NPZ_ERRORS) -> Iterator[None]:
    """``errors`` raised reading ``path`` as ``ValueError("{op}: {path} is not a readable {what} (...)")``; a
    missing file as ``FileNotFoundError``. MemoryError and the like pass unchanged."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{op}: {path} does not exist or is not a file")
    try:
        yield
    except errors as e:
        raise ValueError(f"{op}: {path} is not a readable {what} ({e})") from None


def read_npz(path: str | os.PathLike[str], max_bytes: int = MAX_NPZ_BYTES, keys: Collection[str] | None = None
             ) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file (only ``keys`` when given), as ``{name: ndarray}``; a drop-in for
    ``np.load`` without its risks.

    Never unpickles (a crafted file cannot run code). Before allocating anything, checks the shape and dtype each
    .npy header declares against its uncompressed size in the zip directory, that size against what its
    compressed bytes can give, and the total against ``max_bytes``; decompression never yields more than the
    declared size, so neither a header declaring 10**12 floats nor a deflate bomb can exhaust memory. Raises
    ``FileNotFoundError`` for a missing file and ``ValueError("load: {path} is not a readable .npz weights file
    (...)")`` for anything else.
    """
    with _readable(path, ".npz weights file"):
        return _read_npz(path, max_bytes, keys)


def npz_headers(path: str | os.PathLike[str], max_bytes: int = MAX_NPZ_BYTES) -> dict[str, Header]:
    """The (shape, dtype) of every array of an ``.npz``, from the headers alone (no data read or allocated),
    with every check of ``read_npz`` that needs no data; errors as ``read_npz``'s."""
    with _readable(path, ".npz weights file"), _open_npz(path) as (_, members):
        _chosen(members, None, max_bytes)
        return {key: (m.shape, m.dtype) for key, m in members.items()}


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


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) < len(keys):  # json.loads would keep the last silently: one file, two readings
        raise ValueError(f"the key {next(k for k in keys if keys.count(k) > 1)!r} appears twice in one object")
    return dict(pairs)


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_config(text: str, source: str | os.PathLike[str], *, max_depth: int = 32,
                 max_chars: int = 1 << 20) -> Any:
    """Parse the JSON ``text`` read from ``source`` (named in errors), refusing more than ``max_chars`` characters,
    more than ``max_depth`` nested arrays and objects, a key repeated in one object, and NaN or Infinity with a
    ``ValueError`` (``"config in {source}: ..."``), never a ``RecursionError``.

    Used for the constructor arguments saved in a weights file, which are untrusted input like the file itself.
    """
    if len(text) > max_chars:
        raise ValueError(f"config in {source}: {len(text)} characters, more than the limit of {max_chars}")
    at = _max_depth(text, max_depth)
    if at is not None:
        raise ValueError(f"config in {source}: nested deeper than {max_depth} levels (at character {at})")
    try:
        return json.loads(text, object_pairs_hook=_object, parse_constant=_constant)
    except RecursionError:  # cannot happen below the depth limit; kept so no input can ever raise it
        raise ValueError(f"config in {source}: nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, int() refusing a number of thousands of digits, the hooks' refusals
        raise ValueError(f"config in {source}: not valid JSON ({e})") from None


# ------------------------------------------------------------------------------------------------- safetensors
# The safetensors package does the format's work (an optional dependency: the ``export`` extra): it checks the header
# against the file (dtypes, shapes, offsets tiling the data, sizes) before giving any name, and reads one tensor at a
# time. Added here: the dtypes a Tensor holds, every name and size checked before any data is read, and a name given
# twice in the header refused (the package keeps the last one silently: one file, two readings).
_SAFETENSORS_DTYPES = {code: np.dtype(t) for code, t in (
    ("BOOL", "?"), ("U8", "u1"), ("I8", "i1"), ("U16", "u2"), ("I16", "i2"), ("F16", "f2"), ("U32", "u4"),
    ("I32", "i4"), ("F32", "f4"), ("U64", "u8"), ("I64", "i8"), ("F64", "f8"))}
_MAX_SAFETENSORS_HEADER = 16 * 2**20  # bytes of JSON (~150,000 tensors) parsed again here; the package allows 100 MB


def _safetensors(op: str) -> Any:
    """The safetensors package, or ImportError saying how to install it."""
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError(f"{op}: safetensors files need the safetensors package: pip install safetensors (or pip "
                          'install "tinygrad_like[export]")') from None
    return safetensors


def _refuse_repeated_names(path: str | os.PathLike[str]) -> None:
    """Refuse a header (already checked by the package) that gives a name twice in one JSON object."""
    with open(path, "rb") as f:
        length = int.from_bytes(f.read(8), "little")
        if length > _MAX_SAFETENSORS_HEADER:
            raise _Refused(f"a header of {length} bytes, more than the limit of {_MAX_SAFETENSORS_HEADER}")
        text = f.read(length)
    json.loads(text, object_pairs_hook=_object)


@contextmanager
def _open_safetensors(path: str | os.PathLike[str], op: str) -> Iterator[tuple[Any, dict[str, Header]]]:
    """The file opened by the package, and the (shape, dtype) of every tensor from its header (no data read).
    Errors as ``ValueError("{op}: {path} is not a readable safetensors file (...)")``; a MemoryError stays one."""
    st = _safetensors(op)
    # backend="pread": a file cut short while it is read is an error, where a memory map would crash (SIGBUS)
    with _readable(path, "safetensors file", op, (OSError, ValueError, RecursionError, st.SafetensorError)), \
            st.safe_open(path, framework="numpy", backend="pread") as f:
        _refuse_repeated_names(path)
        headers = {}
        for name in f.keys():
            entry = f.get_slice(name)
            code = entry.get_dtype()
            if code not in _SAFETENSORS_DTYPES:
                raise _Refused(f"entry {name!r} has dtype {code!r}; readable: {', '.join(_SAFETENSORS_DTYPES)} "
                               "(convert bfloat16 and float8 tensors to float32 in PyTorch first)")
            headers[name] = (tuple(entry.get_shape()), _SAFETENSORS_DTYPES[code])
        yield f, headers


def safetensors_headers(path: str | os.PathLike[str], op: str = "load") -> dict[str, Header]:
    """The (shape, dtype) of every tensor of a safetensors file, from its header alone (no data read), the file
    checked by the safetensors package. Errors as ``read_safetensors``'s."""
    with _open_safetensors(path, op) as (_, headers):
        return headers


def read_safetensors(path: str | os.PathLike[str], max_bytes: int = MAX_NPZ_BYTES,
                     keys: Collection[str] | None = None, op: str = "load") -> dict[str, np.ndarray]:
    """The tensors of a safetensors file (only ``keys`` when given: the others are never read), as NumPy arrays
    read by the safetensors package.

    Every name, dtype and shape comes from the header first, and the chosen tensors' total size is checked against
    ``max_bytes``; only then is each tensor read, one at a time. ``ImportError`` without the package,
    ``FileNotFoundError`` for a missing file, ``ValueError("{op}: {path} is not a readable safetensors file
    (...)")`` for anything else; a MemoryError stays one.
    """
    with _open_safetensors(path, op) as (f, headers):
        if keys is not None and (missing := [k for k in keys if k not in headers]):
            raise _MissingArrays(missing, list(headers))
        chosen = [name for name in headers if keys is None or name in keys]
        total = sum(math.prod(shape) * dtype.itemsize for shape, dtype in map(headers.get, chosen))
        if total > max_bytes:
            raise _Refused(f"its tensors hold {total} bytes, more than the limit of {max_bytes} bytes (max_bytes)")
        return {name: f.get_tensor(name) for name in chosen}


def write_safetensors(path: str | os.PathLike[str], arrays: dict[str, np.ndarray],
                      metadata: dict[str, str] | None = None, op: str = "save") -> None:
    """Write ``arrays`` to ``path`` in the safetensors format (by the safetensors package), atomically. Dtypes:
    bool, (unsigned) ints of 8 to 64 bits, float16/32/64; any byte order and memory layout (written little-endian,
    C order)."""
    st = _safetensors(op)
    for name, a in arrays.items():
        if a.dtype.newbyteorder("=") not in _SAFETENSORS_DTYPES.values():
            raise TypeError(f"{op}: {name} has dtype {a.dtype}, which is not a tensor of numbers a safetensors file "
                            f"holds; written: {', '.join(_SAFETENSORS_DTYPES)}")
    # the package writes an array's memory as it lies: C order, little-endian (np.asarray keeps 0-d arrays 0-d)
    little = {name: np.asarray(a, a.dtype.newbyteorder("<"), order="C") for name, a in arrays.items()}
    data = st.numpy.save(little, metadata=metadata)
    with atomic_write(path) as f:
        f.write(data)
