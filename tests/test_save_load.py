"""Saving and loading weights: .npz without pickle, atomic writes, every mismatch reported, crafted files refused."""

import os
import pickle
import stat
import zipfile

import numpy as np
import pytest

from tinygrad_like import Tensor, nn


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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]


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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]
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


def test_tampered_module_description(tmp_path):
    path = tmp_path / "w.npz"
    arrays = _mlp().state_dict()
    arrays["__config__"] = np.array('{"class": "os.system", "args": {}}')
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="unusable module description"):
        nn.Module.load(path)
    np.savez(path, **_mlp().state_dict())
    with pytest.raises(ValueError, match="holds no module description"):
        nn.Module.load(path)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        nn.Module.load("/nonexistent/w.npz")


def test_unwritable_destination_names_the_file_asked_for(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing/w.npz"):
        _mlp().save(tmp_path / "missing" / "w.npz")
    assert not list(tmp_path.iterdir())
