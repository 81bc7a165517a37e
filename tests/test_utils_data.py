"""tinygrad_like.utils.data: Dataset, TensorDataset, Subset, random_split and DataLoader (batches of Tensors,
every sample once per epoch, seeded shuffles, PyTorch's collation), against torch.utils.data where PyTorch's
numbers are not random, and the way lectures use them."""

from collections import namedtuple

import numpy as np
import pytest
from helpers import write_learnable_idx

import tinygrad_like
from tinygrad_like import Generator, Tensor, data, manual_seed, nn, optim
from tinygrad_like.utils.data import (
    DataLoader,
    Dataset,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
)

N = 10


def _dataset(n=N):
    """Sample i: x = [i, i + 0.5, -i] (float32) and label i % 3 (int64), so a batch tells which samples it holds."""
    x = np.stack([np.arange(n), np.arange(n) + 0.5, -np.arange(n)], axis=1).astype(np.float32)
    return TensorDataset(Tensor(x), Tensor(np.arange(n) % 3))


def _ids(loader):
    return [int(i) for xb, _ in loader for i in xb.numpy()[:, 0]]


def test_batches_have_the_right_shapes_and_dtypes():
    loader = DataLoader(_dataset(), batch_size=4)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert [(tuple(xb.shape), tuple(yb.shape)) for xb, yb in batches] == [((4, 3), (4,)), ((4, 3), (4,)),
                                                                           ((2, 3), (2,))]
    xb, yb = batches[0]
    assert isinstance(xb, Tensor) and xb.dtype == np.float32 and yb.dtype == np.int64
    assert xb.tolist()[1] == [1.0, 1.5, -1.0] and yb.tolist() == [0, 1, 2, 0]
    assert _ids(loader) == list(range(N))  # in order without shuffle
    dropped = DataLoader(_dataset(), batch_size=4, drop_last=True)
    assert len(dropped) == 2 and _ids(dropped) == list(range(8))
    assert len(DataLoader(_dataset(), batch_size=5, drop_last=True)) == 2  # an exact fit drops nothing
    assert len(DataLoader(_dataset())) == N  # batch_size=1 by default, as PyTorch


@pytest.mark.parametrize("drop_last", [False, True])
def test_a_shuffled_epoch_holds_every_sample_once(drop_last):
    loader = DataLoader(_dataset(), batch_size=3, shuffle=True, drop_last=drop_last,
                        generator=Generator().manual_seed(0))
    for _ in range(3):
        ids = _ids(loader)
        assert len(ids) == (9 if drop_last else N) and len(set(ids)) == len(ids)
        if not drop_last:
            assert sorted(ids) == list(range(N))
        for xb, yb in loader:  # the rows of a sample stay together
            np.testing.assert_array_equal(yb.numpy(), xb.numpy()[:, 0].astype(np.int64) % 3)


@pytest.mark.parametrize("make_generator", [lambda: Generator().manual_seed(7), lambda: np.random.default_rng(7)])
def test_a_seeded_generator_reproduces_the_epochs_each_in_a_new_order(make_generator):
    def epochs(generator):
        loader = DataLoader(_dataset(), batch_size=4, shuffle=True, generator=generator)
        return [_ids(loader) for _ in range(3)]

    first, again = epochs(make_generator()), epochs(make_generator())
    assert first == again
    assert first[0] != first[1] != first[2]  # a new permutation each epoch
    assert epochs(Generator().manual_seed(8)) != first


def test_without_a_generator_the_shuffle_follows_manual_seed():
    loader = DataLoader(_dataset(), batch_size=4, shuffle=True)
    manual_seed(0)
    first = [_ids(loader), _ids(loader)]
    manual_seed(0)
    assert [_ids(loader), _ids(loader)] == first and first[0] != first[1]


class Squares(Dataset):
    """A dataset written as lectures write them: NumPy features and a Python int label."""

    def __init__(self, n):
        self.n = n

    def __getitem__(self, i):
        return np.array([i, i * i], dtype=np.float32), i % 2

    def __len__(self):
        return self.n


def _torch_values(batch):
    if isinstance(batch, dict):
        return {k: _torch_values(v) for k, v in batch.items()}
    if isinstance(batch, tuple | list):
        return type(batch)(_torch_values(v) for v in batch)
    return batch.numpy() if hasattr(batch, "numpy") else batch


def _our_values(batch):
    if isinstance(batch, dict):
        return {k: _our_values(v) for k, v in batch.items()}
    if isinstance(batch, tuple | list):
        return type(batch)(_our_values(v) for v in batch)
    return batch.numpy() if isinstance(batch, Tensor) else batch


def _assert_same(ours, theirs):
    assert type(ours) is type(theirs)
    if isinstance(ours, dict):
        assert ours.keys() == theirs.keys()
        for k in ours:
            _assert_same(ours[k], theirs[k])
    elif isinstance(ours, tuple | list):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _assert_same(a, b)
    elif isinstance(ours, np.ndarray):
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        np.testing.assert_array_equal(ours, theirs)
    else:
        assert ours == theirs


Pair = namedtuple("Pair", "a b")
SAMPLES = {
    "tuple_numpy_int": [(np.array([1.0, 2.0], dtype=np.float32), 1), (np.array([3.0, 4.0], dtype=np.float32), 0)],
    "floats_and_bools": [(0.5, True), (1.5, False)],
    "dict": [{"x": np.ones(2), "label": 3, "name": "a"}, {"x": np.zeros(2), "label": 4, "name": "b"}],
    "list": [[np.int32(1), 2.0], [np.int32(3), 4.0]],
    "namedtuple": [Pair(np.ones((2, 2)), 1), Pair(np.zeros((2, 2)), 2)],
}


@pytest.mark.parametrize("case", sorted(SAMPLES))
def test_collation_is_pytorchs(case, torch):
    from torch.utils.data import default_collate as torch_collate

    samples = SAMPLES[case]
    ours, theirs = default_collate(samples), torch_collate(samples)
    if case == "namedtuple":
        assert type(ours) is Pair and type(theirs) is Pair
        ours, theirs = list(ours), list(theirs)
    _assert_same(_our_values(ours), _torch_values(theirs))


def test_a_custom_dataset_loads_as_in_pytorch(torch):
    import torch.utils.data as tud

    for kwargs in [{"batch_size": 3}, {"batch_size": 4, "drop_last": True}, {"batch_size": None},
                   {"sampler": [5, 1, 3], "batch_size": 2}, {"batch_sampler": [[0, 6], [2], [4, 4, 1]]}]:
        ours, theirs = list(DataLoader(Squares(7), **kwargs)), list(tud.DataLoader(Squares(7), **kwargs))
        assert len(DataLoader(Squares(7), **kwargs)) == len(tud.DataLoader(Squares(7), **kwargs)) == len(ours)
        _assert_same(_our_values(ours), _torch_values(theirs))


def test_tensor_dataset_batches_equal_sample_by_sample_collation():
    class Plain(TensorDataset):  # a subclass: batches made sample by sample
        pass

    x, y = _dataset().tensors
    for make in [lambda d: d, lambda d: Subset(d, [9, 0, 4, 4, 2, -1])]:
        fast = list(DataLoader(make(TensorDataset(x, y)), batch_size=4))
        slow = list(DataLoader(make(Plain(x, y)), batch_size=4))
        assert len(fast) == len(slow)
        for a, b in zip(fast, slow):
            assert isinstance(a, list) and isinstance(b, list)  # PyTorch's list for tuple samples
            for p, q in zip(a, b):
                assert p.dtype == q.dtype
                np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_gradients_flow_back_to_a_dataset_tensor():
    t = Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    (xb,) = next(iter(DataLoader(TensorDataset(t), batch_size=2)))
    (xb * Tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    assert t.grad.tolist() == [[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]]


def test_random_split_covers_the_dataset_once(torch):
    dataset = _dataset()
    parts = random_split(dataset, [0.33, 0.33, 0.34], generator=Generator().manual_seed(0))
    lengths = [len(p) for p in torch.utils.data.random_split(range(N), [0.33, 0.33, 0.34])]
    assert [len(p) for p in parts] == lengths == [4, 3, 3]  # the left-over samples go to the first, as PyTorch
    ids = [int(x[0].item()) for part in parts for x, _ in part]
    assert sorted(ids) == list(range(N))
    again = random_split(dataset, [6, 4], generator=np.random.default_rng(1))
    assert [p.indices for p in again] == [p.indices for p in random_split(dataset, [6, 4],
                                                                          generator=np.random.default_rng(1))]
    train, val = again
    assert isinstance(train, Subset) and len(DataLoader(train, batch_size=4)) == 2
    assert sorted(_ids(DataLoader(val, batch_size=4)) + _ids(DataLoader(train, batch_size=4))) == list(range(N))


@pytest.mark.parametrize("make, exc, pattern", [
    (lambda: TensorDataset(Tensor(np.ones((5, 2))), Tensor(np.ones(4))), ValueError,
     r"TensorDataset: the tensors must hold the same number of samples \(first dimension\), got 5, 4 "
     r"\(shapes \(5, 2\), \(4,\)\)"),
    (lambda: TensorDataset(Tensor(np.ones(3)), np.ones(3)), TypeError,
     "TensorDataset: argument 1 is a ndarray, not a Tensor"),
    (lambda: TensorDataset(), ValueError, "TensorDataset: needs at least one tensor"),
    (lambda: TensorDataset(Tensor(1.0)), ValueError, r"TensorDataset: tensor 0 is a scalar \(shape \(\)\)"),
    (lambda: DataLoader(_dataset(), batch_size=0), ValueError, "DataLoader: batch_size must be a positive int or None"),
    (lambda: DataLoader(_dataset(), batch_size=None, drop_last=True), ValueError,
     r"batch_size=None \(no batching\) is mutually exclusive with drop_last"),
    (lambda: DataLoader(_dataset(), shuffle=True, sampler=[0, 1]), ValueError,
     "sampler is mutually exclusive with shuffle"),
    (lambda: DataLoader(_dataset(), batch_size=2, batch_sampler=[[0, 1]]), ValueError,
     "batch_sampler is mutually exclusive with batch_size"),
    (lambda: DataLoader(_dataset(), shuffle=True, generator=42), TypeError,
     "DataLoader: generator must be a tinygrad_like Generator or a NumPy Generator, got int"),
    (lambda: DataLoader([1, 2, 3], shuffle="yes"), TypeError, "DataLoader: shuffle must be True or False"),
    (lambda: DataLoader(5), TypeError, r"DataLoader: the dataset \(int\) has no __getitem__"),
    (lambda: random_split(_dataset(), [5, 4]), ValueError,
     r"random_split: the lengths \[5, 4\] sum to 9, the dataset holds 10 samples"),
    (lambda: random_split(_dataset(), [1.5, -0.5]), ValueError, "random_split: fraction 0 is 1.5"),
    (lambda: len(Dataset()), NotImplementedError, r"Dataset must define __len__\(\)"),
    (lambda: list(DataLoader([np.ones(2), np.ones(3)], batch_size=2)), ValueError,
     r"default_collate: the samples' tensors have different shapes \[\(2,\), \(3,\)\]"),
    (lambda: default_collate([object()]), TypeError, "default_collate: a sample must hold Tensors"),
])
def test_misuse_is_refused_clearly(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


def test_reachable_under_pytorchs_path_and_from_data():
    import tinygrad_like.utils.data as tud

    torch = tinygrad_like  # import tinygrad_like as torch
    assert torch.utils.data.DataLoader is tud.DataLoader is data.DataLoader
    assert (data.TensorDataset, data.Dataset, data.random_split, data.Subset) == (
        TensorDataset, Dataset, random_split, Subset)


def test_a_lecture_style_training_loop_on_mnist_files(tmp_path):
    """MNIST's arrays (here a small learnable set in MNIST's files) through TensorDataset and DataLoader."""
    (x_train, y_train), (x_test, y_test) = data.load_mnist(write_learnable_idx(tmp_path, 400, 100), download=False)
    train_set = TensorDataset(Tensor(x_train.reshape(-1, 784).astype(np.float32) / 255),
                              Tensor(y_train.astype(np.int64)))
    loader = DataLoader(train_set, batch_size=32, shuffle=True, generator=Generator().manual_seed(0))
    manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _epoch in range(3):
        total = 0.0
        for xb, yb in loader:
            loss = nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(yb)
        losses.append(total / len(train_set))
    assert len(loader) == 13 and losses[-1] < 0.5 * losses[0]
    predicted = model(Tensor(x_test.reshape(-1, 784).astype(np.float32) / 255)).argmax(axis=1).numpy()
    assert (predicted == y_test).mean() > 0.8
