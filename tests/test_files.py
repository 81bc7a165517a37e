"""Safe saving and loading: a module's weights saved and loaded (.npz without pickle, atomic writes, every
mismatch reported, crafted files refused), tinygrad_like._files' atomic_write on real files (links, FIFOs, sockets,
devices, permissions, a SIGKILLed writer), and the bounded readers read_npz / parse_config / data.read_idx on
crafted files that would exhaust memory or the stack if believed, each measured in a child process."""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import socket
import stat
import struct
import subprocess
import sys
import textwrap
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from helpers import listing, run_python

from tinygrad_like import Tensor, _files, data, nn
from tinygrad_like._files import NotARegularFileError, atomic_write, parse_config, read_npz


def write(path: Path | str, content: bytes) -> None:
    with atomic_write(path) as f:
        f.write(content)


def run_child(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return run_python("-c", textwrap.dedent(code), *args, timeout=timeout)


# The child prints one JSON line: what each call raised (type and message) and the process's peak memory.
MEASURE = """
import json, resource, sys
from tinygrad_like import _files, data

def peak_bytes():
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux

results = []
for call in sys.argv[1:]:
    try:
        eval(call)
        results.append(["ok", ""])
    except BaseException as e:
        results.append([type(e).__name__, str(e)])
print(json.dumps({"results": results, "peak": peak_bytes()}))
"""


def measure(*calls: str) -> tuple[list[tuple[str, str]], int]:
    """Run each Python expression in one fresh child; return what each raised and the child's peak RSS."""
    proc = run_child(MEASURE, *calls, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    return [tuple(r) for r in out["results"]], out["peak"]


# =========================================================================================== module weights
def _mlp(sizes=(4, 3, 2), seed=0):
    return nn.MLP(sizes, seed=seed)


def test_round_trip_rebuilds_the_module_with_identical_predictions(tmp_path):
    mlp = _mlp()
    path = mlp.save(tmp_path / "w.npz")
    loaded = nn.Module.load(path)
    assert isinstance(loaded, nn.MLP) and loaded.sizes == [4, 3, 2]
    x = Tensor(np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32))
    np.testing.assert_array_equal(mlp(x).data, loaded(x).data)
    assert nn.MLP.load(path).sizes == [4, 3, 2]
    with pytest.raises(TypeError, match="holds a MLP, not a Linear"):
        nn.Linear.load(path)


def test_saved_file_has_normal_permissions_and_no_temporary_is_left(tmp_path):
    path = _mlp().save(tmp_path / "w.npz")
    mode = stat.S_IMODE(os.stat(path).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    assert listing(tmp_path) == ["w.npz"]


def test_interrupted_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "w.npz"
    first = _mlp(seed=0)
    first.save(path)
    before = path.read_bytes()

    def crash(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        _mlp(seed=1).save(path)
    assert path.read_bytes() == before
    assert listing(tmp_path) == ["w.npz"]
    monkeypatch.undo()
    np.testing.assert_array_equal(nn.Module.load(path).layers[0].weight.data, first.layers[0].weight.data)


def test_every_mismatch_is_reported_at_once(tmp_path):
    path = _mlp((4, 3, 2)).save(tmp_path / "w.npz")
    other = nn.MLP((4, 5, 2), dtype=np.float64)
    with pytest.raises(ValueError) as info:
        other.load_state_dict(nn.read_npz(path))
    message = str(info.value)
    for name in ("layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"):
        assert name in message
    assert "expected (5, 4) float64, got (3, 4) float32" in message
    state = nn.read_npz(path)
    state["extra"] = np.zeros(1)
    del state["layers.1.bias"]
    with pytest.raises(ValueError, match=r"(?s)missing layers.1.bias .*unexpected extra"):
        _mlp().load_state_dict(state)


class _Payload:
    """Unpickling this would create a marker file: proof that loading ran code from the file."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_object_arrays_are_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    _Payload.marker = str(marker)
    path = tmp_path / "evil.npz"
    arrays = {k: v for k, v in _mlp().state_dict().items()}
    arrays["layers.0.weight"] = np.array([_Payload()], dtype=object)
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"evil.npz is not a readable .npz weights file .*[Oo]bject arrays"):
        nn.Module.load(path)
    assert not marker.exists()
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(ValueError, match="raw.pkl is not a readable"):
        nn.read_npz(raw)
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncate", "text", "empty", "zip_without_arrays"])
def test_damaged_files_give_a_clear_error(tmp_path, damage):
    path = _mlp().save(tmp_path / "w.npz")
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "text":
        path.write_text("these are not weights")
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match=r"load: .*w.npz"):
        nn.Module.load(path)


def test_a_tampered_module_description_is_refused(tmp_path):
    path = tmp_path / "w.npz"
    arrays = _mlp().state_dict()
    arrays["__config__"] = np.array('{"class": "os.system", "args": {}}')
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="unusable module description"):
        nn.Module.load(path)
    np.savez(path, **_mlp().state_dict())
    with pytest.raises(ValueError, match="holds no module description"):
        nn.Module.load(path)


def test_loading_a_missing_file_says_it_does_not_exist():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        nn.Module.load("/nonexistent/w.npz")


def test_unwritable_destination_names_the_file_asked_for(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing/w.npz"):
        _mlp().save(tmp_path / "missing" / "w.npz")
    assert not list(tmp_path.iterdir())


def test_saving_to_an_empty_path_is_refused():
    with pytest.raises(ValueError, match=r"save: empty path"):
        nn.Linear(2, 2).save("")


# =============================================================================================== atomic_write
def test_symlink_is_written_through(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "weights.npz"
    target.write_bytes(b"old")
    target.chmod(0o640)
    link = tmp_path / "link.npz"
    link.symlink_to(Path("real") / "weights.npz")  # relative, as users make them
    chain = tmp_path / "chain.npz"
    chain.symlink_to(link)
    write(chain, b"new")
    assert chain.is_symlink() and link.is_symlink() and os.readlink(link) == str(Path("real") / "weights.npz")
    assert target.read_bytes() == b"new" and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert listing(tmp_path / "real") == ["weights.npz"] and listing(tmp_path) == ["chain.npz", "link.npz", "real"]


def test_dangling_symlink_creates_its_target_and_a_loop_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to("target")
    write(link, b"x")
    assert link.is_symlink() and (tmp_path / "target").read_bytes() == b"x"
    loop = tmp_path / "loop"
    loop.symlink_to("loop")
    with pytest.raises(OSError, match=r"atomic_write: .*loop"):
        write(loop, b"x")
    assert loop.is_symlink() and os.readlink(loop) == "loop"


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _socket(path: Path) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()  # the socket file stays


def _char_device(path: Path) -> None:
    try:  # the same device as /dev/null, but a node in tmp_path: no real /dev file is ever at risk
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs root")


@pytest.mark.parametrize(("make", "kind", "check"), [
    (_fifo, "a FIFO", stat.S_ISFIFO),
    (_socket, "a socket", stat.S_ISSOCK),
    (_char_device, "a character device", stat.S_ISCHR),
], ids=["fifo", "socket", "char-device"])
def test_special_files_are_refused_and_left_alone(tmp_path: Path, make, kind: str, check) -> None:
    special = tmp_path / "special"
    make(special)
    link = tmp_path / "link"
    link.symlink_to(special)
    for path in (special, link):
        with pytest.raises(NotARegularFileError, match=f"atomic_write: refusing to replace {kind}.*'{path}'"):
            write(path, b"data")
        assert check(os.lstat(special).st_mode) and link.is_symlink()
    assert listing(tmp_path) == ["link", "special"]  # no temporary either
    err = pytest.raises(OSError, write, special, b"")
    assert isinstance(err.value, ValueError) and err.value.filename == str(special)


def test_a_directory_is_refused_and_left_alone(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "keep").write_text("x")
    with pytest.raises(IsADirectoryError, match=f"refusing to replace a directory.*'{d}'"):
        write(d, b"data")
    with pytest.raises(IsADirectoryError, match="names a directory"):
        write(f"{tmp_path}/new/", b"data")
    assert listing(d) == ["keep"] and listing(tmp_path) == ["d"]


def test_empty_path_is_refused() -> None:
    with pytest.raises(ValueError, match="atomic_write: empty path"):
        write("", b"x")


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o755])
def test_an_existing_files_permissions_are_kept(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "secret"
    path.write_bytes(b"old")
    path.chmod(mode)
    write(path, b"new")
    assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == mode


def test_a_new_file_gets_the_umask_default(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write(tmp_path / "new", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o640


def test_an_error_in_the_block_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(path) as f:
        f.write(b"half")
        raise RuntimeError
    assert path.read_bytes() == b"old" and listing(tmp_path) == ["f"]


KILLED_MID_SAVE = """
import os, sys
from tinygrad_like._files import atomic_write
with atomic_write(sys.argv[1]) as f:
    f.write(b"half of the new content")
    f.flush()
    os.kill(os.getpid(), 9)
"""


def test_a_sigkilled_save_leaves_the_old_file_and_the_next_save_cleans_up(tmp_path: Path) -> None:
    path = tmp_path / "weights.npz"
    path.write_bytes(b"old")
    proc = run_child(KILLED_MID_SAVE, str(path))
    assert proc.returncode == -9, proc.stderr
    leftovers = [p for p in tmp_path.iterdir() if p != path]
    assert len(leftovers) == 1 and leftovers[0].read_bytes() == b"half of the new content"
    assert _files._TEMP_PATTERN.fullmatch(leftovers[0].name)
    assert path.read_bytes() == b"old"
    write(tmp_path / "other.txt", b"x")  # any save into the directory
    assert listing(tmp_path) == ["other.txt", "weights.npz"]


def test_only_our_own_stale_temporaries_are_removed(tmp_path: Path) -> None:
    me, hour_ago = os.getpid(), time.time() - 3600
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout.strip()
        removed = [
            f".a.npz.{dead}.0123abcd.tmp",  # its writer is gone
            f".b.{me}.0123abcd.tmp",  # our pid, but older than this process: an earlier process had the pid
            ".c.4294967296.0123abcd.tmp",  # beyond any pid
        ]
        kept = [
            f".d.{me}.89abcdef.tmp",  # ours, fresh: another thread of this process may be writing it
            f".e.{sleeper.pid}.89abcdef.tmp",  # a live writer
            f".f.{dead}.0123ABCD.tmp", f".g.{dead}.0123abc.tmp", f"h.{dead}.0123abcd.tmp",  # not our pattern
            f".i.{dead}.0123abcd.tmp.bak", f"..{dead}.0123abcd.tmp", ".notes.txt", "data.tmp",
        ]
        for name in removed + kept:
            (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / removed[1], (hour_ago, hour_ago))
        (tmp_path / f".j.{dead}.0123abcd.tmp").symlink_to("elsewhere")  # only regular files are deleted
        (tmp_path / f".k.{dead}.0123abcd.tmp").mkdir()
        kept += [f".j.{dead}.0123abcd.tmp", f".k.{dead}.0123abcd.tmp"]
        write(tmp_path / "new", b"x")
        assert listing(tmp_path) == sorted([*kept, "new"])
    finally:
        sleeper.kill()
        sleeper.wait()


def test_errors_name_the_requested_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing/f"):
        write(tmp_path / "missing" / "f", b"x")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"file/f"):
        write(tmp_path / "file" / "f", b"x")


# ==================================================================================================== read_npz
def npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def zip_by_hand(path: Path, name: str, payload: bytes, *, method: int, crc: int, file_size: int) -> Path:
    """A one-member zip whose directory says whatever we like (zip64 sizes when they need it)."""
    fname = name.encode()
    extra = b""
    size_field = file_size
    if file_size >= 0xFFFFFFFF:
        extra, size_field = struct.pack("<HHQ", 1, 8, file_size), 0xFFFFFFFF
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 45, 0, method, 0, 0x21, crc, len(payload), size_field,
                        len(fname), 0) + fname
    central = struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 45, 3, 45, 0, 0, method, 0, 0x21, crc, len(payload),
                          size_field, len(fname), len(extra), 0, 0, 0, 0o644 << 16, 0) + fname + extra
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local) + len(payload), 0)
    path.write_bytes(local + payload + central + end)
    return path


def zeros_deflate(prefix: bytes, mib_of_zeros: int) -> bytes:
    """A raw deflate stream of ``prefix`` then that many MiB of zeros, built without compressing them all:
    one compressed MiB, ended by a full flush (byte-aligned, no history), repeated."""
    def segment(raw: bytes) -> bytes:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return c.compress(raw) + c.flush(zlib.Z_FULL_FLUSH)
    return segment(prefix) + segment(bytes(2**20)) * mib_of_zeros + b"\x03\x00"  # then an empty final block


def test_read_npz_reads_what_np_savez_writes(tmp_path: Path) -> None:
    arrays = {
        "w": np.arange(12, dtype=np.float32).reshape(3, 4), "f": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "big_endian": np.arange(5, dtype=">i4"), "scalar": np.array(3.5), "empty": np.zeros((0, 3), np.int16),
        "text": np.array('{"class": "MLP"}'), "rec": np.array([(1, 2.0)], dtype=[("a", "<i4"), ("b", "<f8")]),
        "flags": np.array([True, False]),
    }
    for save in (np.savez, np.savez_compressed):
        save(tmp_path / "a.npz", **arrays)
        got = read_npz(tmp_path / "a.npz")
        assert list(got) == list(arrays)
        for name, array in arrays.items():
            assert got[name].dtype == array.dtype and got[name].shape == array.shape
            np.testing.assert_array_equal(got[name], array)
            assert got[name].flags.writeable
        assert got["f"].flags.f_contiguous


def test_read_npz_refusals_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "w.npz"
    with pytest.raises(FileNotFoundError, match="load: .*w.npz does not exist"):
        read_npz(path)
    np.savez(path, x=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match=r"load: .*w.npz is not a readable .npz weights file .*object arrays"):
        read_npz(path)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match=r"w.npz is not a readable .*'readme.txt' is not a .npy array"):
        read_npz(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_BZIP2) as z:
        z.writestr("x.npy", npy_header((1,)) + bytes(8))
    with pytest.raises(ValueError, match=r"w.npz is not a readable .*compression method 12"):
        read_npz(path)
    with zipfile.ZipFile(path, "w") as z, pytest.warns(UserWarning, match="Duplicate name"):
        z.writestr("x.npy", npy_header((1,)) + bytes(8))
        z.writestr("x.npy", npy_header((1,)) + bytes(8))
    with pytest.raises(ValueError, match=r"w.npz is not a readable .*'x.npy' appears twice"):
        read_npz(path)
    np.savez(path, a=np.zeros(100), b=np.zeros(100))
    assert len(read_npz(path, max_bytes=1600)) == 2
    with pytest.raises(ValueError, match=r"w.npz is not a readable .*'b.npy' .*exceed the limit of 1599 bytes"):
        read_npz(path, max_bytes=1599)
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match=r"w.npz is not a readable"):
        read_npz(path)


def test_read_npz_bounds_the_zip_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.npz"
    np.savez(path, **{f"a{i}": np.zeros(1) for i in range(20)})
    monkeypatch.setattr(_files, "_MAX_ZIP_DIRECTORY", 1000)  # 20 members: about 1,900 bytes of directory
    with pytest.raises(ValueError, match=r"w.npz is not a readable .*zip directory is \d+ bytes, more than"):
        read_npz(path)


def test_npz_declaring_a_trillion_floats_is_refused_before_allocating(tmp_path: Path) -> None:
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", npy_header((10**12,)) + bytes(8))
    assert path.stat().st_size < 400
    dataset = tmp_path / "mnist.npz"  # the same trap as a dataset
    with zipfile.ZipFile(dataset, "w") as z:
        for key in data.NPZ_KEYS:
            z.writestr(f"{key}.npy", npy_header((10**12,)) + bytes(8))
    results, peak = measure(f"_files.read_npz({str(path)!r})", f"data.load_mnist({str(dataset)!r}, download=False)")
    (t1, m1), (t2, m2) = results
    assert t1 == "ValueError"
    assert re.fullmatch(rf"load: {re.escape(str(path))} is not a readable .npz weights file \(member 'x.npy' declares "
                        r"shape \(1000000000000,\) float64 \(8000000000000 bytes of data\) but the zip directory "
                        r"lists 8 bytes of data\)", m1)
    assert t2 == "DatasetError"
    assert m2.startswith(f"{dataset}: not a readable .npz file (member 'x_train.npy' declares shape (1000000000000,)")
    assert peak < 1e9


def test_deflate_bombs_are_refused_within_bounded_memory(tmp_path: Path) -> None:
    mib = 13 * 1024 - 80  # about 13 GiB of zeros behind 13 MB of deflate
    header = npy_header((mib * 2**20 // 8,))
    bomb = zeros_deflate(header, mib)
    assert 12e6 < len(bomb) < 15e6
    real_size = len(header) + mib * 2**20
    honest = zip_by_hand(tmp_path / "honest.npz", "x.npy", bomb, method=8, crc=0, file_size=real_size)
    small = npy_header((2**20,))  # the directory and the .npy header agree on 8 MiB; the stream holds 13 GiB
    lying = zip_by_hand(tmp_path / "lying.npz", "x.npy", zeros_deflate(small, mib), method=8, crc=0,
                        file_size=len(small) + 2**23)
    mismatch = zip_by_hand(tmp_path / "mismatch.npz", "x.npy", zeros_deflate(small, mib), method=8, crc=0,
                           file_size=real_size)
    started = time.monotonic()
    results, peak = measure(*(f"_files.read_npz({str(p)!r})" for p in (honest, lying, mismatch)))
    assert time.monotonic() - started < 10
    (t1, m1), (t2, m2), (t3, m3) = results
    assert t1 == t2 == t3 == "ValueError"
    assert "honest.npz is not a readable .npz weights file" in m1 and "exceed the limit of 536870912 bytes" in m1
    assert "lying.npz is not a readable" in m2 and "Bad CRC-32" in m2
    assert "mismatch.npz is not a readable" in m3 and f"zip directory lists {real_size - len(small)} bytes" in m3
    assert peak < 1e9


# ================================================================================================ parse_config
def test_parse_config_refuses_deep_nesting_without_recursion_error() -> None:
    for text in ("[" * 100000, "[" * 100000 + "]" * 100000, '{"a":' * 50000 + "1" + "}" * 50000):
        with pytest.raises(ValueError, match=r"config in w.npz: nested deeper than 32 levels"):
            parse_config(text, "w.npz")
    nested: object = []
    for _ in range(31):
        nested = [nested]
    assert parse_config(json.dumps(nested), "w.npz") == nested


def test_parse_config_counts_only_real_brackets() -> None:
    text = json.dumps({"class": "MLP", "args": {"note": "[[[[{{{{" * 100 + '\\"[[[', "layers": [784, 10]}})
    assert parse_config(text, "w.npz")["args"]["layers"] == [784, 10]
    assert parse_config(r'["\\", [[1]]]', "w.npz") == ["\\", [[1]]]  # an escaped backslash ends the escape


def test_parse_config_other_refusals_name_the_source() -> None:
    with pytest.raises(ValueError, match=r"config in w.npz: 2000001 characters, more than the limit of 2000000"):
        parse_config(" " * 2_000_001, "w.npz", max_chars=2_000_000)
    with pytest.raises(ValueError, match=r"config in w.npz: not valid JSON"):
        parse_config('{"class": ', "w.npz")
    with pytest.raises(ValueError, match=r"config in w.npz: not valid JSON .*digits"):
        parse_config("1" * 100_000, "w.npz")
    with pytest.raises(ValueError, match=r"config in w.npz: nested deeper than 2 levels"):
        parse_config("[[[1]]]", "w.npz", max_depth=2)


# ================================================================================================== read_idx
def gzip_by_hand(path: Path, deflate: bytes) -> Path:
    """A gz file around a raw deflate stream (CRC and length left zero: readers must stop long before)."""
    path.write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + deflate + bytes(8))
    return path


def test_gz_idx_bombs_are_refused_within_bounded_memory(tmp_path: Path) -> None:
    images = bytes([0, 0, 0x08, 3])
    # A valid MNIST header, then 2 GiB of zeros instead of 47 MB.
    valid = gzip_by_hand(tmp_path / "train-images-idx3-ubyte.gz",
                         zeros_deflate(images + b"".join(n.to_bytes(4, "big") for n in (60000, 28, 28)), 2048))
    # A header honestly declaring the 2 GiB that follow.
    honest = gzip_by_hand(tmp_path / "honest.gz",
                          zeros_deflate(images + b"".join(n.to_bytes(4, "big") for n in (32768, 256, 256)), 2048))
    assert valid.stat().st_size < 10e6
    for stem in data.IDX_FILES[1:]:
        data.write_idx(tmp_path / f"{stem}.gz", np.zeros((1,) if "labels" in stem else (1, 28, 28), np.uint8))
    started = time.monotonic()
    results, peak = measure(f"data.read_idx({str(valid)!r})", f"data.read_idx({str(honest)!r})",
                            f"data.load_mnist({str(tmp_path)!r}, download=False)")
    assert time.monotonic() - started < 10
    (t1, m1), (t2, m2), (t3, m3) = results
    assert t1 == t2 == t3 == "DatasetError"
    assert m1 == f"{valid}: at least 65536 unexpected bytes after the data of shape (60000, 28, 28)"
    assert m2.startswith(f"{honest}: IDX header declares shape (32768, 256, 256) (2147483648 bytes of data), "
                         f"more than the limit of {data.MAX_IDX_BYTES} bytes; refused before reading")
    assert m3 == m1
    assert peak < 1e9
