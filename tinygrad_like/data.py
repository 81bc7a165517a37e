"""MNIST and Fashion-MNIST: find, verify, download, cache and load, as ``(x_train, y_train), (x_test, y_test)``
uint8 arrays (Keras' layout). Looked for in ``path``, ``$TINYGRAD_LIKE_DATA``, the user cache, Keras' cache and
Debian's ``dataset-fashion-mnist``; otherwise downloaded, checked against pinned SHA-256 digests and renamed into
the cache only when whole. Local files are validated structurally, within caps. See docs/training.md.

Mini-batches: ``batches`` (NumPy arrays), or ``DataLoader`` with ``TensorDataset`` (Tensors, as PyTorch's; the
names of ``tinygrad_like.utils.data``, also here).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import socket
import stat
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from ._files import _NPZ_ERRORS, _MissingArrays, _read_npz, atomic_write
from ._progress import progress_bar
from .tensors import default_generator
from .utils.data import DataLoader, Dataset, Subset, TensorDataset, random_split  # also here, as data.DataLoader

__all__ = [
    "DATASETS",
    "DataLoader",
    "DataSource",
    "Dataset",
    "DatasetError",
    "DatasetNotFoundError",
    "DownloadError",
    "cache_dir",
    "download_dataset",
    "find_dataset",
    "load_dataset",
    "load_fashion_mnist",
    "load_mnist",
    "read_idx",
    "random_split",
    "search_locations",
    "Subset",
    "TensorDataset",
    "write_idx",
]

DATASETS = ("mnist", "fashion-mnist")
TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
# Order matters: it is the order of the returned arrays (train images, train labels, test images, test labels).
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
NPZ_FILES = {"mnist": "mnist.npz", "fashion-mnist": "fashion-mnist.npz"}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10

DATA_ENV = "TINYGRAD_LIKE_DATA"
# Comma or space separated base URLs replacing MIRRORS; "{dataset}" in a URL is replaced by the dataset name.
MIRRORS_ENV = "TINYGRAD_LIKE_MIRRORS"
DEFAULT_TIMEOUT = 30.0  # seconds of silence allowed while connecting or reading
DEFAULT_DEADLINE = 600.0  # seconds for one whole file, however the server paces it
# Caps on what a local file may make us allocate. MNIST's largest array is 47 MB; these leave room for
# MNIST-like sets (EMNIST's largest is 547 MB) while refusing a crafted header before it costs memory.
MAX_IDX_BYTES = 768 * 2**20
MAX_NPZ_DATASET_BYTES = 768 * 2**20
MAX_IDX_DIMS = 64  # NumPy's limit on the number of dimensions
# A download whose size is neither pinned (SIZES) nor announced (Content-Length) is cut off here.
MAX_DOWNLOAD_BYTES = 256 * 2**20
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": (
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}

# SHA-256 of the original gz files, as pinned by tensorflow-datasets (url_checksums/mnist.txt and
# url_checksums/fashion_mnist.txt). Checksums are deliberately not overridable from the environment:
# they are what makes an untrusted mirror safe to use.
SHA256: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}

# Exact byte counts of the same original gz files: a download is refused as soon as it exceeds them.
SIZES: dict[str, dict[str, int]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": 9912422,
        "train-labels-idx1-ubyte.gz": 28881,
        "t10k-images-idx3-ubyte.gz": 1648877,
        "t10k-labels-idx1-ubyte.gz": 4542,
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": 26421880,
        "train-labels-idx1-ubyte.gz": 29515,
        "t10k-images-idx3-ubyte.gz": 4422102,
        "t10k-labels-idx1-ubyte.gz": 5148,
    },
}

Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
PathArg = str | os.PathLike[str]


class DatasetError(ValueError):
    """A dataset file is unreadable or inconsistent; the message names the file and what is wrong."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """No copy of the dataset was found (and none downloaded); the message lists every place searched."""


class DownloadError(DatasetNotFoundError):
    """Every mirror failed for a file (HTTP error, timeout, dropped connection or checksum mismatch)."""


# --------------------------------------------------------------------------------------------------- IDX files
# IDX header: two zero bytes, a type code, the number of dimensions, then one big-endian uint32 per dimension.
_IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_IDX_CODES = {dtype.newbyteorder("="): code for code, dtype in _IDX_TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801  # 2051 and 2049: uint8 with 3 and 1 dimensions


_CHUNK = 1 << 20
_TRAILING_PROBE = 1 << 16  # how far past the declared data a gz stream is read to report trailing bytes


def _read_into(f: IO[bytes], array: np.ndarray) -> int:
    """Fill ``array``'s memory from ``f`` in bounded chunks (no second copy); the number of bytes read."""
    if not array.nbytes:
        return 0
    view, done = memoryview(array.view(np.uint8)), 0
    while done < len(view):
        n = f.readinto(view[done:done + _CHUNK])
        if not n:
            break
        done += n
    return done


def _read_idx(path: Path, expected_magic: int | None = None, max_bytes: int = MAX_IDX_BYTES,
              limit: str = "limit") -> np.ndarray:
    """Read an IDX file, allocating only what its header declares, and only once that passed ``max_bytes``."""
    try:
        with open(path, "rb") as raw:
            st = os.fstat(raw.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise DatasetError(f"{path}: not a regular file")
            gzipped = raw.read(2) == _GZIP_MAGIC  # sniff the gzip magic rather than trust the file name
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw as f:
                return _read_idx_stream(path, f, None if gzipped else st.st_size, expected_magic, max_bytes,
                                        limit)
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise DatasetError(f"{path}: corrupt gzip data ({err})") from err
    except OSError as err:
        raise DatasetError(f"{path}: cannot read ({err})") from err


def _read_idx_stream(path: Path, f: IO[bytes], size: int | None, expected_magic: int | None, max_bytes: int,
                     limit: str) -> np.ndarray:
    """``size``: the file's size when ``f`` is the raw file (then the data's length is known before reading)."""
    head = f.read(4)
    if len(head) < 4:
        raise DatasetError(f"{path}: truncated IDX file: {len(head)} bytes, too short for a header")
    magic = int.from_bytes(head, "big")
    if expected_magic is not None and magic != expected_magic:
        kind = "image" if expected_magic == IMAGES_MAGIC else "label"
        raise DatasetError(f"{path}: bad magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
                           f"({expected_magic}) for an IDX {kind} file")
    if head[:2] != b"\0\0" or head[2] not in _IDX_TYPES:
        raise DatasetError(f"{path}: bad magic number 0x{magic:08x}: not an IDX file")
    dtype, ndim = _IDX_TYPES[head[2]], head[3]
    if ndim > MAX_IDX_DIMS:
        raise DatasetError(f"{path}: IDX header declares {ndim} dimensions; at most {MAX_IDX_DIMS} are supported")
    dims_raw = f.read(4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise DatasetError(f"{path}: truncated IDX file: header announces {ndim} dimensions "
                           "but the file ends inside the header")
    shape = tuple(int.from_bytes(dims_raw[4 * i:4 * i + 4], "big") for i in range(ndim))
    expected = math.prod(shape) * dtype.itemsize  # Python ints: a corrupt header's huge dims must not overflow
    if size is not None:  # a raw file: its size says at once whether the header is right
        available = size - 4 - 4 * ndim
        if available < expected:
            raise DatasetError(f"{path}: truncated IDX file: header says shape {shape} ({expected} bytes of data) "
                               f"but only {available} bytes follow the header")
        if available > expected:
            raise DatasetError(f"{path}: {available - expected} unexpected bytes after the data of shape {shape}")
    if expected > max_bytes:
        raise DatasetError(f"{path}: IDX header declares shape {shape} ({expected} bytes of data), more than the "
                           f"{limit} of {max_bytes} bytes; refused before reading (pass max_bytes= to read_idx "
                           "for a larger file)")
    # np.empty commits memory only as the data arrives, so a header lying about a short file costs nothing.
    array = np.empty(math.prod(shape), dtype=dtype)
    got = _read_into(f, array)  # never decompresses more than the declared size
    if got < expected:
        raise DatasetError(f"{path}: truncated IDX file: header says shape {shape} ({expected} bytes of data) "
                           f"but only {got} bytes follow the header")
    if size is None:
        extra = len(f.read(_TRAILING_PROBE))  # also makes gzip check its CRC
        if extra:
            many = f"{extra}" if extra < _TRAILING_PROBE else f"at least {extra}"
            raise DatasetError(f"{path}: {many} unexpected bytes after the data of shape {shape}")
    if not dtype.isnative:  # the result is writable (in-place shuffles work) and in native byte order
        array = array.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return array.reshape(shape)


def read_idx(path: PathArg, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read one IDX file (gzipped or raw, any IDX element type) into a native-endian NumPy array.

    Raises ``DatasetError`` naming the file on a bad magic number, a truncated file, trailing bytes, corrupt
    gzip data, more than 64 dimensions, or a header declaring more than ``max_bytes`` of data (checked before
    anything is allocated; gz data is never decompressed beyond the declared size).
    """
    return _read_idx(Path(path), max_bytes=max_bytes)


def write_idx(path: PathArg, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file; gzipped when ``compress`` is true or, by default, when the name ends in .gz.

    Element types: uint8, int8, int16, int32, float32, float64 (stored big-endian, as the format requires).
    The gzip header carries no name or time, so equal arrays give byte-identical files. The file is replaced
    atomically: an interrupted write leaves the previous one intact.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _IDX_CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"write_idx: dtype {array.dtype} has no IDX type code "
                        f"(use one of {', '.join(str(t.newbyteorder('=')) for t in _IDX_TYPES.values())})")
    if array.ndim > 255:
        raise ValueError(f"write_idx: {array.ndim} dimensions, IDX allows at most 255")
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    body = array.astype(_IDX_TYPES[code], copy=False).tobytes()
    if compress is None:
        compress = path.suffix == ".gz"
    with atomic_write(path) as raw:
        if compress:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
                f.write(header + body)
        else:
            raw.write(header + body)
    return path


# ------------------------------------------------------------------------------------------ checks and loading
def _check_pair(images: np.ndarray, labels: np.ndarray, image_file: str, label_file: str) -> None:
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise DatasetError(f"{image_file} / {label_file}: expected uint8 images and labels, "
                           f"found {images.dtype} and {labels.dtype}")
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise DatasetError(f"{image_file}: wrong image size: shape {images.shape}, expected (N, 28, 28)")
    if labels.ndim != 1:
        raise DatasetError(f"{label_file}: labels have shape {labels.shape}, expected (N,)")
    if len(images) != len(labels):
        raise DatasetError(f"{image_file} has {len(images)} images but {label_file} has {len(labels)} labels")
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise DatasetError(f"{label_file}: label out of range: {bad.size} labels >= {NUM_CLASSES}, "
                           f"first at index {bad[0]} (value {labels[bad[0]]})")


def _load_idx_files(files: Sequence[Path]) -> Arrays:
    magics = (IMAGES_MAGIC, LABELS_MAGIC, IMAGES_MAGIC, LABELS_MAGIC)
    arrays = []
    budget = MAX_IDX_BYTES  # for the four files together: a crafted set must not cost four times the cap
    for f, m in zip(files, magics, strict=True):
        arrays.append(_read_idx(f, m, budget, "limit left for the dataset (MAX_IDX_BYTES for all four files)"))
        budget -= arrays[-1].nbytes
    x_train, y_train, x_test, y_test = arrays
    _check_pair(x_train, y_train, str(files[0]), str(files[1]))
    _check_pair(x_test, y_test, str(files[2]), str(files[3]))
    return (x_train, y_train), (x_test, y_test)


def _load_npz(path: Path) -> Arrays:
    try:
        # bounded: no pickles, and each member's declared size is checked before it is allocated
        arrays = _read_npz(path, MAX_NPZ_DATASET_BYTES, NPZ_KEYS)
    except _MissingArrays as err:
        raise DatasetError(f"{path}: missing arrays {err.missing}; an .npz needs {list(NPZ_KEYS)} "
                           f"(found {err.found})") from None
    except _NPZ_ERRORS as err:
        raise DatasetError(f"{path}: not a readable .npz file ({err})") from err
    x_train, y_train, x_test, y_test = (arrays[k] for k in NPZ_KEYS)
    _check_pair(x_train, y_train, f"{path}[x_train]", f"{path}[y_train]")
    _check_pair(x_test, y_test, f"{path}[x_test]", f"{path}[y_test]")
    return (x_train, y_train), (x_test, y_test)


# ------------------------------------------------------------------------------------------------- searching
@dataclass(frozen=True)
class DataSource:
    """Where a dataset was found: ``files`` are the four IDX files (in IDX_FILES order) or one .npz."""

    dataset: str
    origin: str  # "path", "$TINYGRAD_LIKE_DATA", "cache", "keras" or "debian"
    files: tuple[Path, ...]

    @property
    def kind(self) -> str:
        """``"npz"`` or ``"idx"``."""
        return "npz" if len(self.files) == 1 else "idx"

    @property
    def directory(self) -> Path:
        """The directory holding the files."""
        return self.files[0].parent

    def load(self) -> Arrays:
        """Read and validate the files: ``(x_train, y_train), (x_test, y_test)``."""
        return _load_npz(self.files[0]) if self.kind == "npz" else _load_idx_files(self.files)

    def __str__(self) -> str:
        what = self.files[0].name if self.kind == "npz" else "IDX files"
        return f"{TITLES[self.dataset]}: {what} in {self.directory} ({self.origin})"


def _canonical(name: str) -> str:
    key = name.lower().replace("_", "-")
    key = {"fashion": "fashion-mnist", "fashionmnist": "fashion-mnist"}.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return key


def cache_dir(name: str) -> Path:
    """The per-user cache for a dataset: ``$XDG_CACHE_HOME/tinygrad_like/<name>``, default ``~/.cache/...``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tinygrad_like" / _canonical(name)


def _keras_dir(name: str) -> Path:
    # Keras puts mnist.npz directly in datasets/, Fashion-MNIST's gz files in datasets/fashion-mnist/.
    datasets = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "datasets"
    return datasets if name == "mnist" else datasets / name


def search_locations(name: str, path: PathArg | None = None) -> list[tuple[str, Path | None]]:
    """The places searched for dataset ``name``, in order, as ``(origin, directory)``.

    ``directory`` is None for an unset ``$TINYGRAD_LIKE_DATA`` (kept so error messages can say so).
    """
    name = _canonical(name)
    env = os.environ.get(DATA_ENV)
    places: list[tuple[str, Path | None]] = []
    if path is not None:
        places.append(("path", Path(path).expanduser()))
    places.append((f"${DATA_ENV}", Path(env).expanduser() if env else None))
    places.append(("cache", cache_dir(name)))
    places.append(("keras", _keras_dir(name)))
    if name == "fashion-mnist":
        places.append(("debian", DEBIAN_FASHION_MNIST_DIR))
    return places


def _idx_file(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _look_in(name: str, origin: str, place: Path) -> tuple[DataSource | None, str]:
    """Check one place; return the source found, or None and a note on why not (for the error message)."""
    if place.is_file():
        if origin == "path" and place.suffix == ".npz":
            return DataSource(name, origin, (place,)), ""
        return None, "is a file, not a directory"
    if not place.is_dir():
        return None, "no such directory"
    # The user-given roots may hold several datasets in subfolders: prefer <root>/<dataset>.
    dirs = [place / name, place] if origin in ("path", f"${DATA_ENV}") else [place]
    notes = []
    for d in dirs:
        if not d.is_dir():
            continue
        found = [_idx_file(d, stem) for stem in IDX_FILES]
        if all(found):
            return DataSource(name, origin, tuple(f for f in found if f is not None)), ""
        npz = d / NPZ_FILES[name]
        if npz.is_file():
            return DataSource(name, origin, (npz,)), ""
        missing = [f"{stem}[.gz]" for stem, f in zip(IDX_FILES, found, strict=True) if f is None]
        if len(missing) < len(IDX_FILES):
            notes.append(f"{d}: incomplete, missing {', '.join(missing)}")
    return None, "; ".join(notes) or f"no IDX files or {NPZ_FILES[name]}"


def find_dataset(name: str, path: PathArg | None = None) -> DataSource | None:
    """Where dataset ``name`` ("mnist" or "fashion-mnist") would be loaded from, or None if nowhere.

    Only looks for the files (see ``search_locations`` for the order); ``DataSource.load()`` validates them.
    """
    name = _canonical(name)
    for origin, place in search_locations(name, path):
        if place is not None:
            source, _ = _look_in(name, origin, place)
            if source is not None:
                return source
    return None


def _not_found_message(name: str, path: PathArg | None, reason: str) -> str:
    title = TITLES[name]
    lines = [f"{title} not found. {reason}", "Searched, in order:"]
    labels = {"path": "path argument / --data-dir", f"${DATA_ENV}": f"${DATA_ENV}", "cache": "user cache",
              "keras": "Keras cache", "debian": "Debian package dataset-fashion-mnist"}
    for i, (origin, place) in enumerate(search_locations(name, path), 1):
        if place is None:
            lines.append(f"  {i}. {labels[origin]}: not set")
            continue
        shown = place / NPZ_FILES[name] if origin == "keras" and name == "mnist" else place
        lines.append(f"  {i}. {labels[origin]}: {shown} ({_look_in(name, origin, place)[1]})")
    files = ", ".join(f"{stem}.gz" for stem in IDX_FILES)
    lines += [
        f"To provide the files ({files}, gzipped or not, or {NPZ_FILES[name]}), do one of:",
        "  - pass --data-dir DIR (path=DIR in Python) pointing to a directory that holds them",
        f"  - set {DATA_ENV}=DIR (files directly in DIR or in DIR/{name})",
        f"  - copy them to {cache_dir(name)}",
    ]
    if name == "fashion-mnist":
        lines.append("  - install Debian's package: sudo apt-get install dataset-fashion-mnist")
    lines.append("  - run once with network access so they are downloaded (download=True)")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- downloading
def _mirrors_for(name: str, mirrors: Sequence[str] | None) -> list[str]:
    if mirrors is None:
        env = os.environ.get(MIRRORS_ENV, "")
        mirrors = env.replace(",", " ").split() or MIRRORS[name]
    return [m.replace("{dataset}", name) for m in mirrors]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _DeadlineExceeded(TimeoutError):
    """A download took longer than its deadline."""


class _Watchdog:
    """Shuts down the sockets of one download when its deadline passes, whatever they are blocked in.

    A socket timeout only bounds one silent wait: a server sending a byte just often enough (while the headers,
    the TLS handshake or the body arrive) would keep urllib reading forever.
    """

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._lock = threading.Lock()
        self._connections: list[http.client.HTTPConnection] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            connections = list(self._connections)
        for conn in connections:
            self._shut(conn)

    @staticmethod
    def _shut(conn: http.client.HTTPConnection) -> None:
        sock = conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes up a blocked recv in the downloading thread
            except OSError:
                pass

    def connection_class(self, http_class: Any) -> Any:
        """A stand-in for ``http_class`` whose connections this watchdog can cut."""

        def make(host: str, **kwargs: Any) -> http.client.HTTPConnection:
            conn = http_class(host, **kwargs)
            connect = conn.connect

            def watched_connect() -> None:
                with self._lock:
                    self._connections.append(conn)
                connect()
                if self.expired:  # expired while connecting, before there was a socket to shut
                    self._shut(conn)

            conn.connect = watched_connect
            return conn

        return make


class _WatchedHandler:
    watchdog: _Watchdog

    def do_open(self, http_class: Any, req: urllib.request.Request, **kwargs: Any) -> Any:
        return super().do_open(self.watchdog.connection_class(http_class), req, **kwargs)  # type: ignore[misc]


class _WatchedHTTP(_WatchedHandler, urllib.request.HTTPHandler):
    pass


class _WatchedHTTPS(_WatchedHandler, urllib.request.HTTPSHandler):
    pass


def _opener(watchdog: _Watchdog) -> urllib.request.OpenerDirector:
    handlers = []
    for cls in (_WatchedHTTP, _WatchedHTTPS):
        handler = cls()
        handler.watchdog = watchdog
        handlers.append(handler)
    return urllib.request.build_opener(*handlers)  # the default handlers for everything else (proxies, redirects)


def _fetch(url: str, dest: Path, sha256: str, timeout: float, progress: bool, deadline: float,
           size: int | None) -> None:
    """Download ``url`` to a temporary file next to ``dest``; rename it to ``dest`` only once the digest matches.

    ``size``: the file's exact size when known (the pinned files'), else MAX_DOWNLOAD_BYTES, caps what is accepted
    (http.client itself never reads past a Content-Length). ``deadline`` bounds the whole transfer, ``timeout``
    each wait.
    """
    received = 0
    started = time.monotonic()

    def check_deadline() -> None:
        if watchdog.expired or time.monotonic() - started > deadline:
            raise _DeadlineExceeded(f"deadline of {deadline:g} s exceeded after {received} bytes")

    request = urllib.request.Request(url, headers={"User-Agent": "tinygrad_like (python urllib)"})
    with _Watchdog(deadline) as watchdog:
        try:
            # a failed or rejected download leaves nothing behind: atomic_write renames only on success
            with atomic_write(dest) as out:
                with _opener(watchdog).open(request, timeout=timeout) as response:
                    check_deadline()
                    length = response.headers.get("Content-Length")
                    total = int(length) if length and length.isdigit() else None
                    if size is not None and total is not None and total != size:
                        raise DatasetError(f"wrong size: the server announces {total} bytes, the pinned file "
                                           f"has {size}")
                    cap = size if size is not None else MAX_DOWNLOAD_BYTES
                    if total is not None and total > cap:
                        raise DatasetError(f"too large: the server announces {total} bytes, more than the limit "
                                           f"of {cap}")
                    digest = hashlib.sha256()
                    bar = progress_bar(total, dest.name, "B", progress)
                    # read1: at most one wait per call, so the deadline is checked as the bytes trickle in
                    read = getattr(response, "read1", response.read)
                    try:
                        while block := read(1 << 16):
                            check_deadline()
                            if received + len(block) > cap:  # refused before a byte beyond the cap is written
                                raise DatasetError(f"too large: more than {cap} bytes "
                                                   + ("(the pinned size)" if size is not None else
                                                      "(MAX_DOWNLOAD_BYTES)"))
                            out.write(block)
                            digest.update(block)
                            received += len(block)
                            if bar is not None:
                                bar.update(len(block))
                    finally:
                        if bar is not None:
                            bar.close()
                check_deadline()
                # urllib returns a short body without complaint when the server closes early: check the length.
                expected_total = size if size is not None else total
                if expected_total is not None and received != expected_total:
                    raise DatasetError(f"connection dropped: received {received} of {expected_total} bytes")
                if digest.hexdigest() != sha256:
                    raise DatasetError(f"checksum mismatch: expected SHA-256 {sha256}, got {digest.hexdigest()} "
                                       f"({received} bytes)")
        except (OSError, http.client.HTTPException, DatasetError, ValueError) as err:
            if watchdog.expired and not isinstance(err, _DeadlineExceeded):  # the watchdog cut the connection
                raise _DeadlineExceeded(f"deadline of {deadline:g} s exceeded after {received} bytes") from err
            raise


def _describe(err: BaseException) -> str:
    if isinstance(err, _DeadlineExceeded):
        return str(err)
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, TimeoutError):
        return "timed out"
    if isinstance(err, urllib.error.URLError):
        if isinstance(err.reason, TimeoutError):
            return "timed out"
        return f"cannot connect ({err.reason})"
    if isinstance(err, http.client.IncompleteRead | ConnectionError | http.client.HTTPException):
        return f"connection dropped ({err!r})"
    return str(err)


def download_dataset(
    name: str,
    directory: PathArg | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    checksums: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
    deadline: float = DEFAULT_DEADLINE,
) -> DataSource:
    """Download the four IDX .gz files of ``name`` into ``directory`` (default: ``cache_dir(name)``).

    Each file is tried on every mirror in turn (``mirrors`` > ``$TINYGRAD_LIKE_MIRRORS`` > ``MIRRORS[name]``;
    a mirror is a base URL the file name is appended to) and must match its SHA-256 in ``checksums``
    (default ``SHA256[name]``). Files already present with the right digest are kept. ``timeout`` bounds each
    wait for the server, ``deadline`` the whole transfer of one file from one mirror (then the next is tried).
    A pinned file is refused when the server announces another size than its size in ``SIZES``, and cut off as
    soon as more arrives (any other file: beyond its Content-Length or ``MAX_DOWNLOAD_BYTES``). A progress bar
    is shown when ``progress``, stderr is a terminal and tqdm is installed. Raises ``DownloadError`` listing
    every mirror's failure.
    """
    name = _canonical(name)
    dest_dir = Path(directory) if directory is not None else cache_dir(name)
    checksums = SHA256[name] if checksums is None else checksums
    urls = _mirrors_for(name, mirrors)
    if not urls:
        raise DownloadError(f"no download mirrors configured for {TITLES[name]}")
    dest_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for stem in IDX_FILES:
        filename = f"{stem}.gz"
        dest = dest_dir / filename
        files.append(dest)
        expected = checksums.get(filename)
        if expected is None:
            raise DatasetError(f"{filename}: no pinned SHA-256 checksum for {TITLES[name]}; refusing to download")
        expected = expected.lower()
        if dest.is_file() and _sha256(dest) == expected:
            continue
        size = SIZES.get(name, {}).get(filename) if expected == SHA256.get(name, {}).get(filename) else None
        failures = []
        for base in urls:
            url = base.rstrip("/") + "/" + filename
            try:
                _fetch(url, dest, expected, timeout, progress, deadline, size)
                break
            except (DatasetError, OSError, http.client.HTTPException, ValueError) as err:
                # OSError covers URLError, HTTPError, timeouts and resets; ValueError a malformed mirror URL.
                failures.append(f"  {url}: {_describe(err)}")
        else:
            raise DownloadError(f"could not download {filename} for {TITLES[name]} from any mirror:\n"
                                + "\n".join(failures))
    return DataSource(name, "cache", tuple(files))


# ------------------------------------------------------------------------------------------------ public API
def load_dataset(
    name: str,
    path: PathArg | None = None,
    download: bool = True,
    *,
    mirrors: Sequence[str] | None = None,
    checksums: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
    deadline: float = DEFAULT_DEADLINE,
) -> Arrays:
    """Load ``"mnist"`` or ``"fashion-mnist"`` as ``(x_train, y_train), (x_test, y_test)`` uint8 arrays.

    Searches ``path``, ``$TINYGRAD_LIKE_DATA``, the user cache, Keras' cache and (Fashion-MNIST) Debian's
    location; if nothing is found and ``download`` is true, downloads into the user cache (see
    ``download_dataset`` for ``mirrors``, ``checksums``, ``timeout``, ``progress``, ``deadline``).

    Raises ``DatasetNotFoundError`` (listing every place searched and how to provide the files) when nothing is
    found and downloading is off, ``DownloadError`` (a subclass) when downloading failed, and ``DatasetError``
    naming the file and the problem when a file is corrupt or inconsistent.
    """
    name = _canonical(name)
    source = find_dataset(name, path)
    if source is None:
        if not download:
            raise DatasetNotFoundError(_not_found_message(name, path, "Downloading is off (download=False)."))
        try:
            source = download_dataset(name, mirrors=mirrors, checksums=checksums, timeout=timeout,
                                      progress=progress, deadline=deadline)
        except DownloadError as err:
            raise DownloadError(_not_found_message(name, path, f"Downloading failed: {err}")) from None
    try:
        return source.load()
    except DatasetError as err:
        if source.origin != "cache":
            raise
        raise DatasetError(f"{err}\n(delete {source.directory} to download the files again)") from err


def load_mnist(
    path: PathArg | None = None,
    download: bool = True,
    *,
    mirrors: Sequence[str] | None = None,
    checksums: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
    deadline: float = DEFAULT_DEADLINE,
) -> Arrays:
    """MNIST as ``(x_train, y_train), (x_test, y_test)``: (60000, 28, 28), (60000,), (10000, 28, 28), (10000,)
    uint8. See ``load_dataset`` for the search order, the keyword arguments and the errors.

    Into a ``DataLoader`` (pixels scaled to [0, 1] as float32, labels int64 as ``cross_entropy`` expects)::

        (x_train, y_train), _ = load_mnist()
        train_set = TensorDataset(Tensor(x_train.reshape(-1, 784).astype(np.float32) / 255),
                                  Tensor(y_train.astype(np.int64)))
        for xb, yb in DataLoader(train_set, batch_size=64, shuffle=True): ...
    """
    return load_dataset("mnist", path, download, mirrors=mirrors, checksums=checksums, timeout=timeout,
                        progress=progress, deadline=deadline)


def load_fashion_mnist(
    path: PathArg | None = None,
    download: bool = True,
    *,
    mirrors: Sequence[str] | None = None,
    checksums: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
    deadline: float = DEFAULT_DEADLINE,
) -> Arrays:
    """Fashion-MNIST, same layout as ``load_mnist`` (and into a ``DataLoader`` the same way); also found in
    Debian's ``dataset-fashion-mnist`` package. See ``load_dataset`` for the search order, the keyword arguments
    and the errors."""
    return load_dataset("fashion-mnist", path, download, mirrors=mirrors, checksums=checksums, timeout=timeout,
                        progress=progress, deadline=deadline)


# ------------------------------------------------------------------------------------------------ batches
def batches(x: Any, y: Any, batch_size: int, shuffle: bool = False, seed: int | np.random.Generator | None = None,
            drop_last: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """An iterator of ``(x_batch, y_batch)`` NumPy arrays of ``batch_size`` samples (the first axis), every sample
    once per pass; the last batch is smaller unless ``drop_last`` (then it is left out).

    In order, the batches are views (no copy). ``shuffle`` draws a new order at each call: from ``seed`` when
    given (an int gives the same order every call, so pass e.g. ``seed=epoch``, or one ``np.random.Generator``),
    else from the generator ``Tensor.manual_seed`` seeds (as PyTorch's ``DataLoader(shuffle=True)``).
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ValueError(f"batches: x and y must hold the same number of samples, got shapes {x.shape} and {y.shape}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batches: batch_size must be a positive int, got {batch_size!r}")
    order = None
    if shuffle:
        order = (default_generator() if seed is None else np.random.default_rng(seed)).permutation(len(x))
    stop = len(x) - len(x) % batch_size if drop_last else len(x)

    def generate() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, stop, batch_size):
            index = slice(start, start + batch_size) if order is None else order[start:start + batch_size]
            yield x[index], y[index]

    return generate()  # an inner generator, so bad arguments are refused at the call, not at the first batch
