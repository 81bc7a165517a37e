"""tinygrad_like.data: IDX/npz loading, validation errors, search order, downloads, and batches.

Every test runs with HOME, XDG_CACHE_HOME, the Debian path and the mirror list pointed into tmp_path, so nothing
is read from or written to the real machine (except the one test on the installed Fashion-MNIST, read-only), and
downloads only ever reach a local http.server on 127.0.0.1.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import listing, random_digits, write_idx_dataset

from tinygrad_like import data, manual_seed
from tinygrad_like.data import DatasetError, DatasetNotFoundError, DownloadError

GZ_NAMES = [f"{stem}.gz" for stem in data.IDX_FILES]
REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")


pytestmark = pytest.mark.usefixtures("offline_data")  # see conftest.py


def write_npz(path: Path, arrays: data.Arrays) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = arrays
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def assert_same(got: data.Arrays, want: data.Arrays) -> None:
    for g, w in zip((*got[0], *got[1]), (*want[0], *want[1]), strict=True):
        assert g.dtype == np.uint8
        np.testing.assert_array_equal(g, w)


# ------------------------------------------------------------------------------------------------- loading
@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "raw"])
def test_idx_files_load_gzipped_or_raw(tmp_path: Path, gz: bool) -> None:
    arrays = random_digits()
    write_idx_dataset(tmp_path / "d", arrays, gz=gz)
    got = data.load_mnist(tmp_path / "d", download=False)
    assert_same(got, arrays)
    (x_train, y_train), (x_test, y_test) = got
    assert x_train.shape == (6, 28, 28) and y_train.shape == (6,) and x_test.shape == (4, 28, 28)
    assert x_train.flags.writeable  # in-place shuffles must work


def test_load_npz_directory_and_file(tmp_path: Path) -> None:
    arrays = random_digits()
    npz = write_npz(tmp_path / "keras" / "mnist.npz", arrays)
    assert_same(data.load_mnist(npz.parent, download=False), arrays)
    assert_same(data.load_mnist(npz, download=False), arrays)
    assert data.find_dataset("mnist", npz).kind == "npz"


def test_idx_roundtrip_other_dtypes_and_gzip_sniffing(tmp_path: Path) -> None:
    for array in (np.arange(12, dtype=np.int32).reshape(3, 4), np.linspace(-1, 1, 5, dtype=np.float32)):
        np.testing.assert_array_equal(data.read_idx(data.write_idx(tmp_path / "a.gz", array)), array)
    # The gzip magic decides, not the file name.
    data.write_idx(tmp_path / "plain-name", np.arange(5, dtype=np.uint8), compress=True)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "plain-name"), np.arange(5))
    with pytest.raises(TypeError, match="bool"):
        data.write_idx(tmp_path / "b", np.zeros(3, dtype=bool))


def test_write_idx_is_deterministic(tmp_path: Path) -> None:
    array = np.arange(100, dtype=np.uint8)
    first, second = data.write_idx(tmp_path / "a.gz", array), data.write_idx(tmp_path / "b.gz", array)
    assert first.read_bytes() == second.read_bytes()


def test_write_idx_replaces_a_file_only_when_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = data.write_idx(tmp_path / "a.gz", np.arange(5, dtype=np.uint8))
    old = path.read_bytes()

    def interrupted(self: gzip.GzipFile, payload: bytes) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(gzip.GzipFile, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        data.write_idx(path, np.arange(100, dtype=np.uint8))
    assert path.read_bytes() == old and listing(tmp_path) == ["a.gz"]  # no temporary left


# --------------------------------------------------------------------------------------------------- errors
def corrupt(directory: Path, stem: str, content: bytes) -> Path:
    """Replace one file of a raw dataset with ``content``."""
    target = directory / stem
    target.write_bytes(content)
    return target


def test_a_bad_magic_number_is_named(tmp_path: Path) -> None:
    d = write_idx_dataset(tmp_path / "d", random_digits(), gz=False)
    labels = (d / "train-labels-idx1-ubyte").read_bytes()
    corrupt(d, "train-images-idx3-ubyte", labels)  # a label file where images belong
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte: bad magic number 0x00000801"):
        data.load_mnist(d, download=False)
    corrupt(d, "train-images-idx3-ubyte", b"GIF89a" + bytes(100))
    with pytest.raises(DatasetError, match="bad magic number"):
        data.load_mnist(d, download=False)


def test_a_truncated_file_is_named_with_its_shape(tmp_path: Path) -> None:
    d = write_idx_dataset(tmp_path / "d", random_digits(), gz=False)
    images = (d / "t10k-images-idx3-ubyte").read_bytes()
    corrupt(d, "t10k-images-idx3-ubyte", images[:-100])
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte: truncated IDX file.*\(4, 28, 28\)"):
        data.load_mnist(d, download=False)
    corrupt(d, "t10k-images-idx3-ubyte", images[:10])  # ends inside the dimensions
    with pytest.raises(DatasetError, match="truncated IDX file"):
        data.load_mnist(d, download=False)
    corrupt(d, "t10k-images-idx3-ubyte", images[:2])
    with pytest.raises(DatasetError, match="truncated IDX file"):
        data.load_mnist(d, download=False)


def test_huge_dimensions_in_a_corrupt_header_are_reported_as_truncation(tmp_path: Path) -> None:
    path = tmp_path / "huge"
    path.write_bytes(bytes([0, 0, 0x08, 3]) + (2**21).to_bytes(4, "big") * 3)  # 2**63 bytes: int64 would wrap
    with pytest.raises(DatasetError, match=r"huge: truncated IDX file: header says shape \(2097152, 2097152, 2097152\) "
                                           r"\(9223372036854775808 bytes of data\) but only 0 bytes follow"):
        data.read_idx(path)


def test_trailing_bytes_are_counted(tmp_path: Path) -> None:
    d = write_idx_dataset(tmp_path / "d", random_digits(), gz=False)
    corrupt(d, "t10k-labels-idx1-ubyte", (d / "t10k-labels-idx1-ubyte").read_bytes() + b"xx")
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte: 2 unexpected bytes"):
        data.load_mnist(d, download=False)


def test_more_than_64_dimensions(tmp_path: Path) -> None:
    path = tmp_path / "deep"
    path.write_bytes(bytes([0, 0, 0x08, 65]) + (1).to_bytes(4, "big") * 65 + b"x")
    with pytest.raises(DatasetError, match=r"deep: IDX header declares 65 dimensions; at most 64 are supported"):
        data.read_idx(path)


def test_gz_stream_ending_early_is_truncation(tmp_path: Path) -> None:
    path = tmp_path / "short.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 0x08, 1]) + (100).to_bytes(4, "big") + bytes(50), mtime=0))
    with pytest.raises(DatasetError, match=r"short.gz: truncated IDX file: header says shape \(100,\) \(100 bytes "
                                           r"of data\) but only 50 bytes follow the header"):
        data.read_idx(path)
    data.write_idx(path, np.arange(10, dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-8] + gzip.compress(b"xyz")[-8:])  # same stream, the wrong CRC
    with pytest.raises(DatasetError, match="short.gz: corrupt gzip data"):
        data.read_idx(path)


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "raw"])
def test_declared_size_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gz: bool) -> None:
    path = data.write_idx(tmp_path / ("a.gz" if gz else "a"), np.arange(100, dtype=np.uint8))
    assert len(data.read_idx(path, max_bytes=100)) == 100
    with pytest.raises(DatasetError, match=r"a(.gz)?: IDX header declares shape \(100,\) \(100 bytes of data\), "
                                           r"more than the limit of 99 bytes; refused before reading"):
        data.read_idx(path, max_bytes=99)
    # The cap holds for the four files of a dataset together: a crafted set must not cost four times as much.
    d = write_idx_dataset(tmp_path / "d", random_digits(n_train=6, n_test=4), gz=gz)
    monkeypatch.setattr(data, "MAX_IDX_BYTES", 6 * 784 + 6 + 4 * 784)
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte(.gz)?: .* more than the limit left for the "
                                           r"dataset \(MAX_IDX_BYTES for all four files\) of 0 bytes"):
        data.load_mnist(d, download=False)


def test_every_idx_type_reads_back_native_and_writable(tmp_path: Path) -> None:
    for dtype in ("u1", "i1", "i2", "i4", "f4", "f8"):
        array = (np.arange(-6, 6) * 1000).astype(dtype).reshape(3, 2, 2)
        got = data.read_idx(data.write_idx(tmp_path / f"{dtype}.gz", array))
        assert got.dtype == np.dtype(dtype) and got.dtype.isnative and got.flags.writeable
        np.testing.assert_array_equal(got, array)


def test_images_and_labels_that_disagree_in_number_are_refused(tmp_path: Path) -> None:
    (x_train, y_train), test = random_digits()
    d = write_idx_dataset(tmp_path / "d", ((x_train, y_train[:5]), test))
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.gz has 6 images but .*"
                                           r"train-labels-idx1-ubyte.gz has 5 labels"):
        data.load_mnist(d, download=False)


def test_labels_out_of_range(tmp_path: Path) -> None:
    train, (x_test, y_test) = random_digits()
    y_test = y_test.copy()
    y_test[2] = 10
    d = write_idx_dataset(tmp_path / "d", (train, (x_test, y_test)))
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte.gz: label out of range.*index 2 \(value 10\)"):
        data.load_mnist(d, download=False)


def test_images_of_the_wrong_size_are_refused(tmp_path: Path) -> None:
    (x_train, y_train), test = random_digits()
    d = write_idx_dataset(tmp_path / "d", ((x_train[:, :, :27], y_train), test))
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.gz: wrong image size: shape \(6, 28, 27\)"):
        data.load_mnist(d, download=False)


@pytest.mark.parametrize("damage", ["cut", "flip"])
def test_a_corrupt_gzip_is_refused(tmp_path: Path, damage: str) -> None:
    d = write_idx_dataset(tmp_path / "d", random_digits())
    target = d / "train-images-idx3-ubyte.gz"
    raw = bytearray(target.read_bytes())
    if damage == "cut":
        raw = raw[: len(raw) // 2]
    else:
        raw[len(raw) // 2: len(raw) // 2 + 8] = bytes(8)  # breaks the deflate stream or its CRC
    target.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.gz: corrupt gzip data"):
        data.load_mnist(d, download=False)


def test_npz_files_with_missing_or_wrong_arrays_are_refused(tmp_path: Path) -> None:
    (x_train, y_train), (x_test, y_test) = random_digits()
    npz = tmp_path / "mnist.npz"
    np.savez(npz, x_train=x_train, y_train=y_train, x_test=x_test)
    with pytest.raises(DatasetError, match=r"mnist.npz: missing arrays \['y_test'\]"):
        data.load_mnist(npz, download=False)
    np.savez(npz, x_train=x_train.astype(np.float32), y_train=y_train, x_test=x_test, y_test=y_test)
    with pytest.raises(DatasetError, match=r"mnist.npz\[x_train\].*expected uint8"):
        data.load_mnist(npz, download=False)
    np.savez(npz, x_train=np.array([object()]), y_train=y_train, x_test=x_test, y_test=y_test)
    with pytest.raises(DatasetError, match="mnist.npz: not a readable .npz file"):  # no pickles, ever
        data.load_mnist(npz, download=False)
    npz.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DatasetError, match="mnist.npz: not a readable .npz file"):
        data.load_mnist(npz, download=False)


def test_not_found_lists_every_place_and_remedy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "env"))
    assert data.find_dataset("fashion-mnist", tmp_path / "given") is None
    with pytest.raises(DatasetNotFoundError) as info:
        data.load_fashion_mnist(tmp_path / "given", download=False)
    message = str(info.value)
    for place in (tmp_path / "given", tmp_path / "env", tmp_path / "xdg-cache" / "tinygrad_like" / "fashion-mnist",
                  tmp_path / "home" / ".keras" / "datasets" / "fashion-mnist", tmp_path / "debian"):
        assert str(place) in message
    for remedy in ("--data-dir", data.DATA_ENV, "apt-get install dataset-fashion-mnist", "download=False"):
        assert remedy in message
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, DatasetError)
    with pytest.raises(DatasetNotFoundError) as info:
        data.load_mnist(download=False)
    assert "apt-get" not in str(info.value) and "mnist.npz" in str(info.value)


def test_incomplete_directory_is_reported(tmp_path: Path) -> None:
    d = write_idx_dataset(tmp_path / "d", random_digits())
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"incomplete, missing t10k-labels-idx1-ubyte\[.gz\]"):
        data.load_mnist(d, download=False)


def test_an_unknown_dataset_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        data.load_dataset("cifar")
    assert data.cache_dir("Fashion_MNIST").name == "fashion-mnist"


def test_corrupt_cache_suggests_deleting_it(tmp_path: Path) -> None:
    (x_train, y_train), test = random_digits()
    cache = write_idx_dataset(data.cache_dir("mnist"), ((x_train, y_train + 10), test))
    with pytest.raises(DatasetError, match=f"label out of range(.|\n)*delete {re.escape(str(cache))}"):
        data.load_mnist(download=False)


# ----------------------------------------------------------------------------------------------- search order
def test_places_are_searched_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """path > $TINYGRAD_LIKE_DATA > user cache > Keras cache > Debian; each copy has its own training-set size."""
    home = tmp_path / "home"
    places = [
        ("path", tmp_path / "given"),
        (f"${data.DATA_ENV}", tmp_path / "env" / "fashion-mnist"),  # a per-dataset subfolder of the variable
        ("cache", tmp_path / "xdg-cache" / "tinygrad_like" / "fashion-mnist"),
        ("keras", home / ".keras" / "datasets" / "fashion-mnist"),
        ("debian", tmp_path / "debian"),
    ]
    for size, (_, place) in enumerate(places, 1):
        write_idx_dataset(place, random_digits(n_train=size), gz=size % 2 == 0)
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "env"))
    for size, (origin, place) in enumerate(places, 1):
        source = data.find_dataset("fashion-mnist", tmp_path / "given")
        assert source is not None and (source.origin, source.directory) == (origin, place)
        assert origin in str(source)
        (x_train, _), _ = data.load_fashion_mnist(tmp_path / "given", download=False)
        assert len(x_train) == size
        for f in place.iterdir():  # remove this copy: the next place must win
            f.unlink()
    assert data.find_dataset("fashion-mnist", tmp_path / "given") is None


def test_cache_defaults_to_home_and_keras_home_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data.cache_dir("mnist") == tmp_path / "home" / ".cache" / "tinygrad_like" / "mnist"
    write_npz(tmp_path / "home" / ".keras" / "datasets" / "mnist.npz", random_digits(n_train=2))
    assert data.find_dataset("mnist").origin == "keras"
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert data.find_dataset("mnist") is None
    write_npz(tmp_path / "kh" / "datasets" / "mnist.npz", random_digits(n_train=3))
    (x_train, _), _ = data.load_mnist(download=False)
    assert len(x_train) == 3


def test_env_root_serves_each_dataset_from_its_subfolder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_idx_dataset(tmp_path / "root" / "mnist", random_digits(n_train=2))
    write_idx_dataset(tmp_path / "root" / "fashion-mnist", random_digits(n_train=3))
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "root"))
    assert len(data.load_mnist(download=False)[0][0]) == 2
    assert len(data.load_fashion_mnist(download=False)[0][0]) == 3


# ------------------------------------------------------------------------------------------------- downloads
class Handler(BaseHTTPRequestHandler):
    """Serves ``server.routes[path]``: ("body", bytes), ("status", code), ("drop", bytes), ("stall", None),
    ("drip", bytes): one byte every 0.5 s, ("drip-headers", None): a header one byte every 0.5 s, or
    ("flood", bytes): the bytes over and over without a Content-Length, until the client hangs up."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        state = self.server.state  # type: ignore[attr-defined]
        state.hits.append(self.path)
        kind, payload = state.routes.get(self.path, ("status", 404))
        if kind == "status":
            self.send_error(payload)
            return
        if kind == "stall":
            state.release.wait(10)
            return
        try:
            if kind == "drip-headers":
                self.wfile.write(b"HTTP/1.0 200 OK\r\nX-Slow: ")
                while not state.release.wait(0.5):
                    self.wfile.write(b"a")
                return
            if kind in ("drip", "flood"):
                self.send_response(200)
                if kind == "drip":
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                for i in range(len(payload) if kind == "drip" else 1000):
                    if kind == "drip" and state.release.wait(0.5):
                        return
                    self.wfile.write(payload[i:i + 1] if kind == "drip" else payload)
                return
        except OSError:  # the client hung up, as it should
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        # "drop" announces the whole file, sends half, then closes the connection (HTTP/1.0 closes on return).
        self.wfile.write(payload if kind == "body" else payload[: len(payload) // 2])

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[SimpleNamespace]:
    state = SimpleNamespace(routes={}, hits=[], release=threading.Event())
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    state.release.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def served(tmp_path: Path) -> SimpleNamespace:
    """A small generated dataset as gz files: their bytes and SHA-256 checksums."""
    arrays = random_digits(n_train=5, n_test=3, seed=1)
    d = write_idx_dataset(tmp_path / "served", arrays)
    blobs = {name: (d / name).read_bytes() for name in GZ_NAMES}
    sums = {name: hashlib.sha256(blob).hexdigest() for name, blob in blobs.items()}
    return SimpleNamespace(arrays=arrays, blobs=blobs, sums=sums)


def serve(server: SimpleNamespace, prefix: str, blobs: dict[str, bytes], kind: str = "body") -> str:
    for name, blob in blobs.items():
        server.routes[f"/{prefix}/{name}"] = (kind, blob)
    return f"{server.url}/{prefix}/"


def cache_listing() -> list[str]:
    cache = data.cache_dir("mnist")
    return listing(cache) if cache.exists() else []


def test_a_download_with_the_right_checksum_fills_the_cache(server: SimpleNamespace, served: SimpleNamespace) -> None:
    mirror = serve(server, "m1", served.blobs)
    got = data.load_mnist(mirrors=[mirror], checksums=served.sums, progress=False)
    assert_same(got, served.arrays)
    assert cache_listing() == sorted(GZ_NAMES)
    hits = len(server.hits)
    assert data.find_dataset("mnist").origin == "cache"
    assert_same(data.load_mnist(mirrors=[mirror], checksums=served.sums), served.arrays)
    assert len(server.hits) == hits  # the second load reads the cache


def test_download_bad_checksum_leaves_nothing(server: SimpleNamespace, served: SimpleNamespace) -> None:
    mirror = serve(server, "m1", served.blobs)
    sums = {**served.sums, "train-images-idx3-ubyte.gz": "0" * 64}
    with pytest.raises(DownloadError, match=r"train-images-idx3-ubyte.gz: checksum mismatch: expected SHA-256 0{64}"):
        data.load_mnist(mirrors=[mirror], checksums=sums, progress=False)
    assert cache_listing() == []


def test_download_connection_dropped_leaves_nothing(server: SimpleNamespace, served: SimpleNamespace) -> None:
    mirror = serve(server, "m1", served.blobs)
    serve(server, "m1", {"t10k-images-idx3-ubyte.gz": served.blobs["t10k-images-idx3-ubyte.gz"]}, kind="drop")
    with pytest.raises(DownloadError, match=r"t10k-images-idx3-ubyte.gz: connection dropped: received \d+ of \d+"):
        data.load_mnist(mirrors=[mirror], checksums=served.sums, progress=False)
    # The files verified before the failure stay; the broken one and its temporary file do not.
    assert cache_listing() == sorted(["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"])


def test_download_falls_back_to_second_mirror(server: SimpleNamespace, served: SimpleNamespace) -> None:
    first = serve(server, "m1", {name: 500 for name in GZ_NAMES}, kind="status")
    second = serve(server, "m2", served.blobs)
    assert_same(data.load_mnist(mirrors=[first, second], checksums=served.sums, progress=False), served.arrays)
    assert server.hits[:2] == ["/m1/train-images-idx3-ubyte.gz", "/m2/train-images-idx3-ubyte.gz"]
    assert cache_listing() == sorted(GZ_NAMES)


def test_download_all_mirrors_fail(server: SimpleNamespace, served: SimpleNamespace) -> None:
    first = serve(server, "m1", {name: 500 for name in GZ_NAMES}, kind="status")
    with pytest.raises(DownloadError) as info:
        data.load_mnist(mirrors=[first, f"{server.url}/missing/"], checksums=served.sums, progress=False)
    message = str(info.value)
    assert f"{first}train-images-idx3-ubyte.gz: HTTP 500" in message
    assert f"{server.url}/missing/train-images-idx3-ubyte.gz: HTTP 404" in message
    assert "Searched, in order" in message and "--data-dir" in message
    assert isinstance(info.value, DatasetNotFoundError)
    assert cache_listing() == []


def test_a_stalled_download_times_out_and_leaves_nothing(server: SimpleNamespace, served: SimpleNamespace) -> None:
    mirror = serve(server, "m1", served.blobs, kind="stall")
    with pytest.raises(DownloadError, match="timed out"):
        data.download_dataset("mnist", mirrors=[mirror], checksums=served.sums, timeout=0.2, progress=False)
    assert cache_listing() == []


def test_mirrors_from_environment_and_kept_files(
    server: SimpleNamespace, served: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve(server, "mnist", served.blobs)
    monkeypatch.setenv(data.MIRRORS_ENV, f"{server.url}/nowhere/, {server.url}/{{dataset}}/")
    target = tmp_path / "target"
    target.mkdir()
    (target / "train-images-idx3-ubyte.gz").write_bytes(served.blobs["train-images-idx3-ubyte.gz"])
    source = data.download_dataset("mnist", target, checksums=served.sums, progress=False)
    assert source.directory == target
    assert_same(source.load(), served.arrays)
    assert "/mnist/train-images-idx3-ubyte.gz" not in server.hits  # a verified file is not fetched again
    assert "/mnist/train-labels-idx1-ubyte.gz" in server.hits


def test_download_needs_a_pinned_checksum(server: SimpleNamespace, served: SimpleNamespace) -> None:
    mirror = serve(server, "m1", served.blobs)
    with pytest.raises(DatasetError, match="no pinned SHA-256"):
        data.load_mnist(mirrors=[mirror], checksums={}, progress=False)
    assert server.hits == []


@pytest.mark.parametrize("tqdm_available", [True, False])
def test_download_progress_bar_is_optional(
    server: SimpleNamespace, served: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, tqdm_available: bool
) -> None:
    if tqdm_available:
        pytest.importorskip("tqdm")
    else:
        monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `import tqdm` raise ImportError
    mirror = serve(server, "m1", served.blobs)
    assert_same(data.load_mnist(mirrors=[mirror], checksums=served.sums, progress=True), served.arrays)


def pin(monkeypatch: pytest.MonkeyPatch, served: SimpleNamespace) -> None:
    """Make the served files the pinned ones, with their exact sizes, as the real files are."""
    monkeypatch.setattr(data, "SHA256", {**data.SHA256, "mnist": served.sums})
    monkeypatch.setattr(data, "SIZES", {**data.SIZES, "mnist": {n: len(b) for n, b in served.blobs.items()}})


def test_download_dripping_body_fails_at_the_deadline(server: SimpleNamespace, served: SimpleNamespace) -> None:
    mirror = serve(server, "m1", served.blobs, kind="drip")  # a byte every 0.5 s: no single wait times out
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"train-images-idx3-ubyte.gz: deadline of 1.5 s exceeded after \d+ bytes"):
        data.load_mnist(mirrors=[mirror], checksums=served.sums, timeout=1, deadline=1.5, progress=False)
    assert 1.5 <= time.monotonic() - started < 3
    assert cache_listing() == []


def test_download_dripping_headers_fail_at_the_deadline(server: SimpleNamespace, served: SimpleNamespace) -> None:
    mirror = serve(server, "m1", {name: None for name in GZ_NAMES}, kind="drip-headers")
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"deadline of 1.5 s exceeded"):
        data.download_dataset("mnist", mirrors=[mirror], checksums=served.sums, timeout=1, deadline=1.5,
                              progress=False)
    assert time.monotonic() - started < 3
    assert cache_listing() == []


def test_download_beyond_the_pinned_size_is_cut_off(
    server: SimpleNamespace, served: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    pin(monkeypatch, served)
    written = []
    real_atomic_write = data.atomic_write

    @contextmanager
    def recording(path: Path) -> Iterator[SimpleNamespace]:
        with real_atomic_write(path) as f:
            yield SimpleNamespace(write=lambda block: written.append(len(block)) or f.write(block))

    monkeypatch.setattr(data, "atomic_write", recording)
    name = "train-images-idx3-ubyte.gz"
    cap = len(served.blobs[name])
    mirror = serve(server, "m1", {name: bytes(range(256)) * 64}, kind="flood")  # 16 KiB, 1000 times, no length
    with pytest.raises(DownloadError, match=rf"{name}: too large: more than {cap} bytes \(the pinned size\)"):
        data.download_dataset("mnist", mirrors=[mirror], progress=False)
    assert sum(written) <= cap  # the block that would cross the cap is not written
    assert cache_listing() == []


def test_download_announcing_the_wrong_size_is_refused_at_once(
    server: SimpleNamespace, served: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    pin(monkeypatch, served)
    blobs = {**served.blobs, "train-images-idx3-ubyte.gz": bytes(10**6)}
    mirror = serve(server, "m1", blobs)
    with pytest.raises(DownloadError, match=r"wrong size: the server announces 1000000 bytes, the pinned file has"):
        data.download_dataset("mnist", mirrors=[mirror], progress=False)
    # Unpinned files are capped at what the server announced, and at MAX_DOWNLOAD_BYTES without an announcement.
    monkeypatch.setattr(data, "MAX_DOWNLOAD_BYTES", 1000)
    mirror = serve(server, "m2", {"train-images-idx3-ubyte.gz": bytes(100)}, kind="flood")
    with pytest.raises(DownloadError, match=r"too large: more than 1000 bytes \(MAX_DOWNLOAD_BYTES\)"):
        data.download_dataset("mnist", mirrors=[mirror], checksums={n: "0" * 64 for n in GZ_NAMES}, progress=False)
    mirror = serve(server, "m3", {"train-images-idx3-ubyte.gz": bytes(2000)})
    with pytest.raises(DownloadError, match=r"too large: the server announces 2000 bytes, more than the limit of 1000"):
        data.download_dataset("mnist", mirrors=[mirror], checksums={n: "0" * 64 for n in GZ_NAMES}, progress=False)


def test_pinned_downloads_still_work(
    server: SimpleNamespace, served: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    pin(monkeypatch, served)
    mirror = serve(server, "m1", served.blobs)
    assert_same(data.load_mnist(mirrors=[mirror], progress=False), served.arrays)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal(
    server: SimpleNamespace, served: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    pytest.importorskip("tqdm")
    mirror = serve(server, "m1", served.blobs)
    data.download_dataset("mnist", data.cache_dir("mnist") / "a", mirrors=[mirror], checksums=served.sums,
                          progress=True)
    assert capsys.readouterr().err == ""  # captured stderr is not a terminal
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    data.download_dataset("mnist", data.cache_dir("mnist") / "b", mirrors=[mirror], checksums=served.sums,
                          progress=True)
    assert "train-images-idx3-ubyte.gz" in terminal.getvalue()


def test_pinned_checksums_are_well_formed() -> None:
    for name in data.DATASETS:
        assert sorted(data.SHA256[name]) == sorted(GZ_NAMES)
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in data.SHA256[name].values())
        assert sorted(data.SIZES[name]) == sorted(GZ_NAMES) and all(n > 0 for n in data.SIZES[name].values())


# ------------------------------------------------------------------------------------------- the real dataset
@pytest.mark.skipif(not REAL_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_from_debian(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST_DIR", REAL_FASHION)
    source = data.find_dataset("fashion-mnist")
    assert source is not None and source.origin == "debian"
    (x_train, y_train), (x_test, y_test) = data.load_fashion_mnist(download=False)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert y_train.max() == 9 and y_test.max() == 9
    # Fashion-MNIST is balanced: 6000 training and 1000 test images per class.
    assert np.bincount(y_train).tolist() == [6000] * 10 and np.bincount(y_test).tolist() == [1000] * 10
    with gzip.open(REAL_FASHION / "t10k-labels-idx1-ubyte.gz") as f:
        assert f.read(4) == b"\x00\x00\x08\x01"


# -------------------------------------------------------------------------------------------------- batches


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drop_last", [False, True])
def test_batches_give_every_sample_once_per_pass(shuffle, drop_last):
    x, y = np.arange(23)[:, None] * np.ones(3), np.arange(23)
    out = list(data.batches(x, y, 5, shuffle=shuffle, seed=1, drop_last=drop_last))
    assert [len(yb) for _, yb in out] == [5, 5, 5, 5] + ([] if drop_last else [3])
    seen = np.concatenate([yb for _, yb in out])
    for xb, yb in out:
        np.testing.assert_array_equal(xb[:, 0], yb)  # x and y stay paired
    assert len(set(seen.tolist())) == len(seen) == (20 if drop_last else 23)
    assert (seen.tolist() == list(range(len(seen)))) == (not shuffle)


def test_batches_shuffle_reproducibly_from_a_seed_or_from_manual_seed():
    x = y = np.arange(50)

    def order(**kwargs):
        return np.concatenate([yb for _, yb in data.batches(x, y, 7, shuffle=True, **kwargs)])

    np.testing.assert_array_equal(order(seed=3), order(seed=3))
    assert not np.array_equal(order(seed=3), order(seed=4))
    manual_seed(9)
    first = order()
    manual_seed(9)
    np.testing.assert_array_equal(first, order())
    assert not np.array_equal(order(), order())  # one generator: a new order each pass


@pytest.mark.parametrize("args, pattern", [
    ((np.zeros(4), np.zeros(3), 2), r"batches: x and y must hold the same number of samples, got shapes \(4,\) and"),
    ((np.zeros(4), np.zeros(4), 0), "batches: batch_size must be a positive int, got 0"),
    ((np.zeros(4), np.zeros(4), 2.0), "batches: batch_size must be a positive int, got 2.0"),
])
def test_batches_refuse_bad_arguments_at_the_call(args, pattern):
    with pytest.raises(ValueError, match=pattern):
        data.batches(*args)
