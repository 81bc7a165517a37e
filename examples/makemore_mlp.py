"""makemore, parts 2 and 3: a character-level MLP that makes up words, with batch normalisation.

    python examples/makemore_mlp.py                     # Debian's word list, the network of part 3, on tinygrad_like
    python examples/makemore_mlp.py --torch             # the same code on PyTorch (or LESSON_BACKEND=torch)
    python examples/makemore_mlp.py --model nn          # the same network from nn.Embedding, nn.BatchNorm1d, ...
    python examples/makemore_mlp.py --steps 200 --words my_words.txt   # a quick look, on a word list of your own

The words are Debian's wamerican list (/usr/share/dict/words: `apt-get install wamerican`) kept to the lowercase
a-z ones; without it, the distinct words of Shakespeare's Sonnets I-LX (examples/data/sonnets.txt). Each word
ends with '.', and every character is predicted from the three before it ('.' pads the start): an embedding table
``C = torch.randn((27, n_embd), generator=g)`` looked up as ``emb = C[Xb]``, a hidden layer of tanh units with
batch normalisation written out as in part 3 (``bngain``, ``bnbias``, running mean and std updated under
``no_grad``, used at evaluation), and a linear output; ``F.cross_entropy``; plain SGD ``p.data += -lr * p.grad``
with the learning rate divided by 10 halfway. It prints the losses of the train, dev and test splits (80/10/10%
of the shuffled words) and 20 made-up words sampled with ``torch.multinomial``.

Measured at the defaults (20000 steps, seed 2147483647, Debian's 63875 words): dev loss 2.1475 on tinygrad_like
(under a minute), 2.1497 on PyTorch; with --model nn 2.1214 and 2.1197. More in docs/lessons.md.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import time
from pathlib import Path

BACKEND = "torch" if os.environ.get("LESSON_BACKEND") == "torch" or (
    __name__ == "__main__" and "--torch" in sys.argv) else "tinygrad_like"
if BACKEND == "tinygrad_like":
    import tinygrad_like as torch
    from tinygrad_like import nn
    from tinygrad_like.nn import functional as F
else:  # the very same lesson on real PyTorch
    import torch
    from torch import nn
    from torch.nn import functional as F

DICTIONARY = Path("/usr/share/dict/words")
SONNETS = Path(__file__).resolve().parent / "data" / "sonnets.txt"
DEFAULTS = dict(block_size=3, n_embd=10, n_hidden=200, batch_size=32, steps=20000, lr=0.1, seed=2147483647,
                samples=20)


# -- the data ----------------------------------------------------------------------------------------------------
def load_words(path: Path | None = None) -> tuple[list[str], str]:
    """The distinct lowercase a-z words of a word list (one a line), of the dictionary if there is one, else of
    the Sonnets; and where they came from."""
    if path is None:
        path = DICTIONARY if DICTIONARY.exists() else SONNETS
    text = path.read_text(encoding="utf-8")
    words = sorted({w for w in text.split() if re.fullmatch("[a-z]+", w)})
    return words, str(path)


def build_vocab(words: list[str]) -> tuple[dict[str, int], dict[int, str]]:
    """'.' is 0 (the start and the end of a word), the letters 1..26 (those that occur, in order)."""
    chars = sorted(set("".join(words)))
    stoi = {s: i + 1 for i, s in enumerate(chars)}
    stoi["."] = 0
    itos = {i: s for s, i in stoi.items()}
    return stoi, itos


def build_dataset(words: list[str], stoi: dict[str, int], block_size: int):
    """X: every context of block_size characters (int64, (N, block_size)); Y: the character that follows."""
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return torch.tensor(X), torch.tensor(Y)


# -- the network -------------------------------------------------------------------------------------------------
class MLP:
    """Part 3's network as plain tensors: embedding C, hidden layer W1 (no bias: batch norm's bnbias is one),
    batch norm (bngain, bnbias; running statistics for evaluation), tanh, output layer W2, b2.

    Kaiming's scale for tanh, (5/3) / sqrt(fan_in), keeps the hidden units from saturating at the start; W2 and
    b2 start near 0 so the first loss is near -log(1/27)."""

    def __init__(self, vocab_size: int, block_size: int, n_embd: int, n_hidden: int, generator) -> None:
        g = generator
        self.C = torch.randn((vocab_size, n_embd), generator=g)
        self.W1 = torch.randn((n_embd * block_size, n_hidden), generator=g) * (5 / 3) / (n_embd * block_size) ** 0.5
        self.W2 = torch.randn((n_hidden, vocab_size), generator=g) * 0.01
        self.b2 = torch.randn(vocab_size, generator=g) * 0
        self.bngain = torch.ones((1, n_hidden))
        self.bnbias = torch.zeros((1, n_hidden))
        self.bnmean_running = torch.zeros((1, n_hidden))
        self.bnstd_running = torch.ones((1, n_hidden))
        self.training = True
        for p in self.parameters():
            p.requires_grad = True

    def parameters(self) -> list:
        return [self.C, self.W1, self.W2, self.b2, self.bngain, self.bnbias]

    def train(self, mode: bool = True) -> MLP:
        self.training = mode
        return self

    def eval(self) -> MLP:
        return self.train(False)

    def __call__(self, X):
        """Logits (N, vocab_size) of the contexts X (N, block_size). In training, batch norm uses the batch's
        mean and std and moves the running ones towards them; in evaluation, it uses the running ones."""
        emb = self.C[X]  # (N, block_size, n_embd)
        embcat = emb.view(emb.shape[0], -1)  # (N, block_size * n_embd)
        hpreact = embcat @ self.W1
        if self.training:
            bnmeani = hpreact.mean(0, keepdim=True)
            bnstdi = hpreact.std(0, keepdim=True)
            with torch.no_grad():
                self.bnmean_running = 0.999 * self.bnmean_running + 0.001 * bnmeani
                self.bnstd_running = 0.999 * self.bnstd_running + 0.001 * bnstdi
        else:
            bnmeani, bnstdi = self.bnmean_running, self.bnstd_running
        hpreact = self.bngain * (hpreact - bnmeani) / bnstdi + self.bnbias
        h = torch.tanh(hpreact)
        return h @ self.W2 + self.b2


def nn_mlp(vocab_size: int, block_size: int, n_embd: int, n_hidden: int):
    """The same network from torch.nn's layers (as at the end of part 3): BatchNorm1d keeps the running
    statistics (as a mean and a variance, with momentum 0.001 as above)."""
    return nn.Sequential(
        nn.Embedding(vocab_size, n_embd),
        nn.Flatten(),
        nn.Linear(n_embd * block_size, n_hidden, bias=False),
        nn.BatchNorm1d(n_hidden, momentum=0.001),
        nn.Tanh(),
        nn.Linear(n_hidden, vocab_size),
    )


# -- training, evaluation, sampling ---------------------------------------------------------------------------------
def sgd_step(model, Xb, Yb, lr: float) -> float:
    """One step of plain gradient descent on one batch: the batch's loss before the step."""
    logits = model(Xb)
    loss = F.cross_entropy(logits, Yb)
    for p in model.parameters():
        p.grad = None
    loss.backward()
    for p in model.parameters():
        p.data += -lr * p.grad
    return loss.item()


@torch.no_grad()
def split_loss(model, X, Y) -> float:
    """The loss over a whole split, batch norm in evaluation mode."""
    model.eval()
    loss = F.cross_entropy(model(X), Y)
    model.train()
    return loss.item()


@torch.no_grad()
def sample(model, itos: dict[int, str], block_size: int, generator, max_length: int = 30) -> str:
    """One made-up word: characters drawn one at a time from the model's softmax until '.' (or max_length)."""
    model.eval()
    out, context = [], [0] * block_size
    while len(out) < max_length:
        logits = model(torch.tensor([context]))
        probs = F.softmax(logits, dim=1)
        ix = torch.multinomial(probs, num_samples=1, generator=generator).item()
        if ix == 0:
            break
        context = context[1:] + [ix]
        out.append(itos[ix])
    model.train()
    return "".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, value in DEFAULTS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value,
                            help=f"(default {value})")
    parser.add_argument("--words", type=Path, help=f"a word list, one a line (default {DICTIONARY}, else the "
                        "words of the Sonnets)")
    parser.add_argument("--model", choices=("manual", "nn"), default="manual",
                        help="manual: part 3's tensors (default); nn: nn.Embedding, nn.BatchNorm1d, ...")
    parser.add_argument("--torch", action="store_true", help="run on PyTorch (decided at import: see the top)")
    a = parser.parse_args(argv)
    for name in ("block_size", "n_embd", "n_hidden", "batch_size", "steps"):
        if getattr(a, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(a, name)}")

    words, source = load_words(a.words)
    if len(words) < 10:
        parser.error(f"{source} has {len(words)} lowercase a-z words; at least 10 are needed")
    stoi, itos = build_vocab(words)
    random.seed(42)
    random.shuffle(words)
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    Xtr, Ytr = build_dataset(words[:n1], stoi, a.block_size)
    Xdev, Ydev = build_dataset(words[n1:n2], stoi, a.block_size)
    Xte, Yte = build_dataset(words[n2:], stoi, a.block_size)

    torch.manual_seed(a.seed)  # nn's initial weights
    g = torch.Generator().manual_seed(a.seed)
    if a.model == "manual":
        model = MLP(len(stoi), a.block_size, a.n_embd, a.n_hidden, g)
    else:
        model = nn_mlp(len(stoi), a.block_size, a.n_embd, a.n_hidden)
    print(f"backend {BACKEND}, model {a.model}: {len(words)} words from {source}, {len(Xtr)} training examples, "
          f"{sum(p.nelement() for p in model.parameters())} parameters")

    start = time.perf_counter()
    for i in range(a.steps):
        ix = torch.randint(0, Xtr.shape[0], (a.batch_size,), generator=g)
        lr = a.lr if i < a.steps // 2 else a.lr / 10  # step learning rate decay
        loss = sgd_step(model, Xtr[ix], Ytr[ix], lr)
        if i % max(a.steps // 10, 1) == 0:
            print(f"{i:7d}/{a.steps:7d}: {loss:.4f}", flush=True)

    print(f"after {a.steps} steps ({time.perf_counter() - start:.0f} s): train loss "
          f"{split_loss(model, Xtr, Ytr):.4f}, dev loss {split_loss(model, Xdev, Ydev):.4f}, test loss "
          f"{split_loss(model, Xte, Yte):.4f}")
    g = torch.Generator().manual_seed(a.seed + 10)
    print("samples:", " ".join(sample(model, itos, a.block_size, g) for _ in range(a.samples)))


if __name__ == "__main__":
    main()
