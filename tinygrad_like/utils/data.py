"""Datasets and mini-batches, as ``torch.utils.data``: a ``Dataset`` gives one sample by index, a ``DataLoader``
draws the samples of each epoch in order or shuffled, ``batch_size`` at a time, and stacks them into Tensors.

MNIST or Fashion-MNIST (``tinygrad_like.data.load_mnist()`` gives NumPy arrays) go through it as::

    (x_train, y_train), _ = data.load_mnist()
    dataset = TensorDataset(Tensor(x_train.reshape(-1, 784).astype(np.float32) / 255),
                            Tensor(y_train.astype(np.int64)))
    for xb, yb in DataLoader(dataset, batch_size=64, shuffle=True):
        ...  # xb: (64, 784) float32, yb: (64,) int64
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..pytorch import Generator
from ..tensors import Tensor, default_generator

__all__ = ["DataLoader", "Dataset", "Subset", "TensorDataset", "default_collate", "default_convert", "random_split"]


def _numpy_generator(generator: Generator | np.random.Generator | None, op: str) -> np.random.Generator:
    """The NumPy generator to draw from: ``generator``'s, or the library's (what ``manual_seed`` seeds)."""
    if generator is None:
        return default_generator()
    if isinstance(generator, Generator):
        return generator.numpy
    if isinstance(generator, np.random.Generator):
        return generator
    raise TypeError(f"{op}: generator must be a tinygrad_like Generator or a NumPy Generator, got "
                    f"{type(generator).__name__}")


class Dataset:
    """Base class of map-style datasets: a subclass gives ``__getitem__(index)`` (one sample, e.g. a tuple
    ``(x, label)``) and ``__len__()`` (the number of samples)."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(index), one sample")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__(), the number of samples")


class TensorDataset(Dataset):
    """Samples are rows: sample i is ``tuple(t[i] for t in tensors)``; every tensor holds the same number of
    samples along its first dimension."""

    def __init__(self, *tensors: Tensor) -> None:
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset: argument {i} is a {type(t).__name__}, not a Tensor (wrap it: "
                                "Tensor(array))")
            if t.ndim == 0:
                raise ValueError(f"TensorDataset: tensor {i} is a scalar (shape ()): it has no samples")
        sizes = [t.shape[0] for t in tensors]
        if len(set(sizes)) > 1:
            raise ValueError(f"TensorDataset: the tensors must hold the same number of samples (first dimension), "
                             f"got {', '.join(map(str, sizes))} (shapes {', '.join(str(t.shape) for t in tensors)})")
        self.tensors = tensors

    def __getitem__(self, index: Any) -> tuple[Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order: sample i is ``dataset[indices[i]]``."""

    def __init__(self, dataset: Dataset, indices: Sequence[int]) -> None:
        self.dataset, self.indices = dataset, indices

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, list):
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(dataset: Dataset, lengths: Sequence[int | float],
                 generator: Generator | np.random.Generator | None = None) -> list[Subset]:
    """Split ``dataset`` at random into ``Subset``s of the given ``lengths`` (numbers of samples summing to
    ``len(dataset)``, or fractions summing to 1: the samples left over by rounding down go one each to the first
    subsets, as PyTorch). Drawn from ``generator`` (ours or NumPy's), else from the one ``manual_seed`` seeds."""
    n, lengths = len(dataset), list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        for i, fraction in enumerate(lengths):
            if not 0 <= fraction <= 1:
                raise ValueError(f"random_split: fraction {i} is {fraction}, not in [0, 1]")
        lengths = [math.floor(n * fraction) for fraction in lengths]
        for i in range(n - sum(lengths)):
            lengths[i % len(lengths)] += 1
    if any(isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0 for k in lengths):
        raise ValueError(f"random_split: lengths must be counts >= 0 or fractions summing to 1, got {lengths}")
    if sum(lengths) != n:
        raise ValueError(f"random_split: the lengths {lengths} sum to {sum(lengths)}, the dataset holds {n} samples")
    order = _numpy_generator(generator, "random_split").permutation(n).tolist()
    return [Subset(dataset, order[end - length:end]) for end, length in zip(itertools.accumulate(lengths), lengths)]


# ------------------------------------------------------------------------------------------------ collating
def _is_namedtuple(value: Any) -> bool:
    return isinstance(value, tuple) and hasattr(value, "_fields")


def default_collate(batch: list) -> Any:
    """Samples into one batch, as PyTorch's: Tensors and NumPy arrays stacked along a new first dimension,
    Python ints into an int64 Tensor, floats into a float64 one, and tuples, lists, dicts and named tuples
    collated field by field (a tuple of fields gives a list, as PyTorch's); strings stay a list."""
    first = batch[0]
    if isinstance(first, Tensor):
        shapes = {t.shape for t in batch}
        if len(shapes) > 1:
            raise ValueError(f"default_collate: the samples' tensors have different shapes {sorted(shapes)}: pad "
                             "them to one shape, or pass a collate_fn")
        if any(t.requires_grad for t in batch):  # keep the graph
            return Tensor.stack(*batch)
        return Tensor(np.stack([t.data for t in batch]))
    if isinstance(first, np.ndarray | np.generic) and first.dtype.kind in "biufc":
        return default_collate([Tensor(np.asarray(a)) for a in batch])
    if isinstance(first, bool):
        return Tensor(np.array(batch, dtype=np.bool_))
    if isinstance(first, int):
        return Tensor(np.array(batch, dtype=np.int64))
    if isinstance(first, float):
        return Tensor(np.array(batch, dtype=np.float64))
    if isinstance(first, str | bytes):
        return batch
    if isinstance(first, Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in first}
    if isinstance(first, Sequence):
        if len({len(sample) for sample in batch}) > 1:
            raise ValueError(f"default_collate: the samples hold different numbers of fields "
                             f"{sorted({len(sample) for sample in batch})}")
        fields = [default_collate(list(field)) for field in zip(*batch)]
        return type(first)(*fields) if _is_namedtuple(first) else fields
    raise TypeError(f"default_collate: a sample must hold Tensors, NumPy arrays, numbers, strings, dicts or "
                    f"sequences, got {type(first).__name__}")


def default_convert(sample: Any) -> Any:
    """One sample as ``DataLoader(batch_size=None)`` gives it (no batching): NumPy arrays become Tensors, inside
    tuples (then a list, as PyTorch's), lists, dicts and named tuples too; anything else stays as it is."""
    if isinstance(sample, np.ndarray | np.generic) and sample.dtype.kind in "biufc":
        return Tensor(np.asarray(sample))
    if isinstance(sample, Mapping):
        return {key: default_convert(value) for key, value in sample.items()}
    if _is_namedtuple(sample):
        return type(sample)(*(default_convert(value) for value in sample))
    if isinstance(sample, tuple | list):
        return [default_convert(value) for value in sample]
    return sample


def _stacked_rows(dataset: Dataset, indices: list[int]) -> list[Tensor] | None:
    """The batch ``default_collate`` would make from a ``TensorDataset`` (or a ``Subset`` of one), by indexing
    each tensor once instead of sample by sample; None for any other dataset."""
    while type(dataset) is Subset:
        indices = [dataset.indices[i] for i in indices]
        dataset = dataset.dataset
    if type(dataset) is not TensorDataset:
        return None
    rows = np.asarray(indices, dtype=np.int64)
    return [t[rows] for t in dataset.tensors]


class DataLoader:
    """Mini-batches of ``dataset``, as PyTorch's ``DataLoader``: ``for xb, yb in loader:`` gives one batch per
    ``batch_size`` samples, every sample once per epoch (pass over the loader), the last batch smaller unless
    ``drop_last``; ``len(loader)`` is the number of batches.

    ``shuffle``: a new order every epoch, drawn from ``generator`` (``tinygrad_like.Generator`` or a NumPy
    Generator: reproducible from its seed), else from the generator ``manual_seed`` seeds. ``sampler`` (an
    iterable of indices) or ``batch_sampler`` (an iterable of lists of indices) choose the samples instead.
    ``collate_fn`` makes a batch from a list of samples (default: ``default_collate``, which stacks them into
    Tensors); ``batch_size=None`` gives the samples one by one, unbatched (``default_convert``).

    ``num_workers``, ``pin_memory``, ``timeout``, ``worker_init_fn`` and ``multiprocessing_context`` are taken for
    PyTorch code and change nothing: batches are made in this process, on the CPU.
    """

    def __init__(self, dataset: Dataset, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler: Iterable[int] | None = None, batch_sampler: Iterable[list[int]] | None = None,
                 num_workers: int = 0, collate_fn: Callable[[list], Any] | None = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn: Callable[[int], None] | None = None,
                 multiprocessing_context: Any = None,
                 generator: Generator | np.random.Generator | None = None) -> None:
        if not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: the dataset ({type(dataset).__name__}) has no __getitem__: a dataset gives "
                            "samples by index (see Dataset, TensorDataset)")
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer)
                                       or batch_size < 1):
            raise ValueError(f"DataLoader: batch_size must be a positive int or None, got {batch_size!r}")
        if shuffle not in (None, True, False):
            raise TypeError(f"DataLoader: shuffle must be True or False, got {shuffle!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler is mutually exclusive with shuffle (the sampler gives the order)")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None or drop_last):
            raise ValueError("DataLoader: batch_sampler is mutually exclusive with batch_size, shuffle, sampler and "
                             "drop_last (it gives the batches)")
        if batch_size is None and drop_last:
            raise ValueError("DataLoader: batch_size=None (no batching) is mutually exclusive with drop_last")
        if num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be >= 0, got {num_workers}")
        if timeout < 0:
            raise ValueError(f"DataLoader: timeout must be >= 0, got {timeout}")
        if generator is not None:
            _numpy_generator(generator, "DataLoader")  # refuse a wrong type now, not at the first batch
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, bool(drop_last)
        self.shuffle, self.sampler, self.batch_sampler = bool(shuffle), sampler, batch_sampler
        self.generator, self.num_workers = generator, num_workers
        self.collate_fn = collate_fn if collate_fn is not None else (
            default_collate if batch_size is not None or batch_sampler is not None else default_convert)

    def _order(self) -> Iterable[int]:
        """This epoch's indices, one per sample."""
        if self.sampler is not None:
            return self.sampler
        if self.shuffle:
            return _numpy_generator(self.generator, "DataLoader").permutation(len(self.dataset)).tolist()
        return range(len(self.dataset))

    def _batches(self) -> Iterator[list[int]]:
        if self.batch_sampler is not None:
            yield from (list(batch) for batch in self.batch_sampler)
            return
        order = iter(self._order())
        while batch := list(itertools.islice(order, self.batch_size)):
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch

    def __iter__(self) -> Iterator[Any]:
        if self.batch_size is None and self.batch_sampler is None:
            for i in self._order():
                yield self.collate_fn(self.dataset[i])
            return
        for indices in self._batches():
            batch = _stacked_rows(self.dataset, indices) if self.collate_fn is default_collate else None
            yield batch if batch is not None else self.collate_fn([self.dataset[i] for i in indices])

    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        samples = len(self.sampler) if self.sampler is not None else len(self.dataset)
        if self.batch_size is None:
            return samples
        return samples // self.batch_size if self.drop_last else -(-samples // self.batch_size)
