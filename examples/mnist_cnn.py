"""A small convolutional network on MNIST-format images, written as one would in PyTorch: two conv + pool
blocks, dropout, two linear layers, Adam with a cosine learning-rate schedule, mini-batches reshuffled every epoch.

    python examples/mnist_cnn.py                          # Fashion-MNIST, 8 epochs
    python examples/mnist_cnn.py --dataset mnist           # the digits (found locally or downloaded)
    python examples/mnist_cnn.py --subset 2000 --epochs 1  # a quick run on the first 2000 images

Prints, per epoch, the mean training loss, the test accuracy and the training time.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from tinygrad_like import Tensor, data, manual_seed, nn, no_grad, optim
from tinygrad_like.nn import functional as F

try:
    from tqdm.auto import tqdm
except ImportError:  # progress bars are optional

    def tqdm(iterable, **kwargs):
        return iterable


class CNN(nn.Module):
    """(N, 1, 28, 28) images -> (N, 10) logits."""

    def __init__(self, dropout: float = 0.25) -> None:
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)   # 28x28, pooled to 14x14
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)  # 14x14, pooled to 7x7
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.dropout(F.relu(self.fc1(x.flatten(1))))
        return self.fc2(x)  # logits


class Images:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28), standardised with the training set's mean and deviation."""

    def __init__(self, train: np.ndarray) -> None:
        self.mean, self.std = float(train.mean()), float(train.std())

    def __call__(self, x: np.ndarray) -> Tensor:
        return Tensor(((x.astype(np.float32) - self.mean) / self.std)[:, None])


def accuracy(model: nn.Module, images: Images, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()  # dropout off
    correct = 0
    with no_grad():
        for xb, yb in data.batches(x, y, 1000):
            correct += int((model(images(xb)).argmax(axis=1).numpy() == yb).sum())
    model.train()
    return correct / len(y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--dataset", default="fashion-mnist", choices=data.DATASETS)
    parser.add_argument("--data-dir", metavar="DIR", help="directory with the IDX files (searched first)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--subset", type=int, default=None, help="use only the first N training and test images")
    parser.add_argument("--seed", type=int, default=0, help="initial weights, dropout masks and shuffling")
    args = parser.parse_args()
    for name in ("epochs", "batch_size", "subset"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {value}")

    try:
        (x_train, y_train), (x_test, y_test) = data.load_dataset(args.dataset, args.data_dir)
    except data.DatasetError as err:
        sys.exit(str(err))
    if args.subset:
        x_train, y_train, x_test, y_test = x_train[:args.subset], y_train[:args.subset], x_test[:args.subset], \
            y_test[:args.subset]

    images = Images(x_train)
    manual_seed(args.seed)
    model = CNN()
    opt = optim.Adam(model.parameters(), lr=args.lr)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)  # lr from args.lr down to 0
    steps = math.ceil(len(x_train) / args.batch_size)
    print(f"{args.dataset}: {len(x_train)} training and {len(x_test)} test images, "
          f"{sum(p.numel() for p in model.parameters())} parameters")
    for epoch in range(1, args.epochs + 1):
        start, total = time.perf_counter(), 0.0
        bar = tqdm(data.batches(x_train, y_train, args.batch_size, shuffle=True), total=steps,
                   desc=f"epoch {epoch}", leave=False, disable=None)  # None: shown on terminals only
        for xb, yb in bar:
            loss = F.cross_entropy(model(images(xb)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(yb)
        seconds = time.perf_counter() - start
        scheduler.step()
        print(f"Epoch {epoch}: loss {total / len(x_train):.4f}, test accuracy "
              f"{100 * accuracy(model, images, x_test, y_test):.2f}%, {seconds:.1f} s")


if __name__ == "__main__":
    main()
