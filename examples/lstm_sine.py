"""An LSTM learns to continue a sine wave: from the last 20 samples, predict the next one.

    python examples/lstm_sine.py              # on tinygrad_like
    python examples/lstm_sine.py --torch      # the same code on PyTorch (or LESSON_BACKEND=torch)
    python examples/lstm_sine.py --epochs 2   # a quick look

The wave is sin(2 pi k / 25), 25 samples a period, k = 0..999 (no noise, so both libraries see the same data).
Every window of 20 consecutive samples is an input (batch_first: (N, 20, 1)) and the sample after it the target;
the first 80% of the windows train, the last 20% test. nn.LSTM (batch_first=True) reads a window, nn.Linear maps
its last hidden state to the prediction; Adam, nn.MSELoss, mini-batches from a DataLoader over a TensorDataset.
It prints the test loss (mean squared error), next to that of repeating the last value as the prediction, and then
lets the model run free: each prediction fed back as the next input, for one period.

Measured at the defaults (25 epochs of 13 batches: 325 steps): test loss 3.3e-6 on tinygrad_like (8 s), 3.2e-6 on
PyTorch (2 s), where repeating the last value gives 3.1e-2. More in docs/lessons.md.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

BACKEND = "torch" if os.environ.get("LESSON_BACKEND") == "torch" or (
    __name__ == "__main__" and "--torch" in sys.argv) else "tinygrad_like"
if BACKEND == "tinygrad_like":
    import tinygrad_like as torch
    from tinygrad_like import nn
    from tinygrad_like.utils.data import DataLoader, TensorDataset
else:  # the very same lesson on real PyTorch
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

DEFAULTS = dict(samples=1000, period=25, window=20, hidden_size=32, num_layers=1, batch_size=64, epochs=25,
                lr=0.01, seed=0)


def sine_windows(samples: int, period: int, window: int):
    """Inputs (N, window, 1): each run of ``window`` samples of sin(2 pi k / period); targets (N, 1): the next."""
    wave = torch.sin(2 * math.pi * torch.arange(samples, dtype=torch.float32) / period)
    X = torch.stack([wave[i:i + window] for i in range(samples - window)]).unsqueeze(-1)
    y = wave[window:].unsqueeze(-1)
    return X, y


class SineLSTM(nn.Module):
    def __init__(self, hidden_size: int, num_layers: int = 1) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size=1, hidden_size=hidden_size, num_layers=num_layers, batch_first=True)
        self.linear = nn.Linear(hidden_size, 1)

    def forward(self, x):
        out, _ = self.lstm(x)  # (B, T, hidden_size): the hidden state after each step
        return self.linear(out[:, -1, :])  # (B, 1): the next value, from the last hidden state


def train_epoch(model, batches, optimizer, loss_fn) -> float:
    """One pass over the batches (Adam steps); the mean of the batch losses."""
    total, n = 0.0, 0
    for xb, yb in batches:
        loss = loss_fn(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total, n = total + loss.item(), n + 1
    return total / n


@torch.no_grad()
def free_run(model, start, steps: int):
    """Predict ``steps`` values, each fed back as the newest input (start: (1, window, 1))."""
    x, out = start, []
    for _ in range(steps):
        nxt = model(x)  # (1, 1)
        out.append(nxt.item())
        x = torch.cat([x[:, 1:, :], nxt.unsqueeze(1)], dim=1)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, value in DEFAULTS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value,
                            help=f"(default {value})")
    parser.add_argument("--torch", action="store_true", help="run on PyTorch (decided at import: see the top)")
    a = parser.parse_args(argv)
    for name in ("period", "window", "hidden_size", "num_layers", "batch_size", "epochs"):
        if getattr(a, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(a, name)}")
    if a.samples < a.window + 10:
        parser.error(f"--samples ({a.samples}) must exceed --window ({a.window}) by at least 10")

    torch.manual_seed(a.seed)
    X, y = sine_windows(a.samples, a.period, a.window)
    n_train = int(0.8 * len(X))
    X_train, y_train, X_test, y_test = X[:n_train], y[:n_train], X[n_train:], y[n_train:]
    loader = DataLoader(TensorDataset(X_train, y_train), batch_size=a.batch_size, shuffle=True)

    model = SineLSTM(a.hidden_size, a.num_layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=a.lr)
    loss_fn = nn.MSELoss()
    print(f"backend {BACKEND}: {len(X_train)} training and {len(X_test)} test windows of {a.window}; "
          f"{sum(p.numel() for p in model.parameters())} parameters")

    start = time.perf_counter()
    for epoch in range(1, a.epochs + 1):
        train_loss = train_epoch(model, loader, optimizer, loss_fn)
        if epoch % max(a.epochs // 5, 1) == 0 or epoch == a.epochs:
            print(f"epoch {epoch:3d}: train loss {train_loss:.3e}", flush=True)

    with torch.no_grad():
        test_loss = loss_fn(model(X_test), y_test).item()
        baseline = loss_fn(X_test[:, -1, :], y_test).item()
    print(f"test loss {test_loss:.3e} (repeating the last value: {baseline:.3e}) after {a.epochs} epochs, "
          f"{a.epochs * len(loader)} steps ({time.perf_counter() - start:.0f} s)")
    predicted = free_run(model, X_test[:1], a.period)
    truth = [math.sin(2 * math.pi * (n_train + a.window + k) / a.period) for k in range(a.period)]
    worst = max(abs(p - t) for p, t in zip(predicted, truth))
    print(f"running free for one period ({a.period} steps, each prediction fed back): largest error {worst:.4f}")


if __name__ == "__main__":
    main()
