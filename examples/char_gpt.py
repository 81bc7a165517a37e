"""A character-level GPT, built as in the lecture "Let's build GPT: from scratch, in code, spelled out", trained
on Shakespeare's Sonnets I-LX (examples/data/sonnets.txt, public domain: 38 KB, 61 distinct characters).

    python examples/char_gpt.py                  # the defaults below, on tinygrad_like
    python examples/char_gpt.py --torch          # the same code on PyTorch (or LESSON_BACKEND=torch)
    python examples/char_gpt.py --max-iters 20 --n-layer 1 --n-embd 16 --block-size 8    # a quick look

Token and position embeddings, then Blocks of (LayerNorm, causal self-attention with several heads, LayerNorm,
feed-forward with ReLU), each with a residual connection; a final LayerNorm and a linear head. Each attention
head masks the future with ``tril`` and ``masked_fill(-inf)`` before its softmax. AdamW; batches drawn with
``torch.randint``; ``estimate_loss`` averages a few batches under ``no_grad``; ``generate`` samples with
``torch.multinomial``. The last line is the validation loss over the whole validation split (its last 10%).

Measured at the defaults (1200 steps, seed 1337, one BLAS thread): validation loss 1.872 on tinygrad_like in 171 s
of CPU time (186 s on the clock: about 3 minutes on two cores), 1.819 on PyTorch in 125 s (the two draw different
initial weights, batches and dropout masks). More in docs/lessons.md.
"""

from __future__ import annotations

import argparse
import os
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

TEXT = Path(__file__).resolve().parent / "data" / "sonnets.txt"

# Hyperparameters: the command line's defaults (a GPT small enough to train in minutes on two CPU cores)
DEFAULTS = dict(batch_size=32, block_size=64, max_iters=1200, eval_interval=200, eval_iters=10,
                learning_rate=1e-3, n_embd=64, n_head=4, n_layer=3, dropout=0.2, seed=1337, new_tokens=300)


# -- the data ----------------------------------------------------------------------------------------------------
class Vocabulary:
    """The characters of a text, numbered in sorted order: encode (str -> list of ints) and decode (back)."""

    def __init__(self, text: str) -> None:
        self.chars = sorted(set(text))
        self.stoi = {ch: i for i, ch in enumerate(self.chars)}
        self.itos = dict(enumerate(self.chars))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, s: str) -> list[int]:
        return [self.stoi[c] for c in s]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.itos[i] for i in ids)


def load_splits(text: str, vocab: Vocabulary, train_fraction: float = 0.9):
    """The text as one long tensor of character ids, cut into (train, val): the first 90% and the rest."""
    data = torch.tensor(vocab.encode(text), dtype=torch.long)
    n = int(train_fraction * len(data))
    return data[:n], data[n:]


def get_batch(data, block_size: int, batch_size: int, generator=None):
    """batch_size random windows of the text: inputs x (B, T) and targets y, the same shifted by one."""
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    x = torch.stack([data[i:i + block_size] for i in ix])
    y = torch.stack([data[i + 1:i + block_size + 1] for i in ix])
    return x, y


# -- the model -----------------------------------------------------------------------------------------------------
class Head(nn.Module):
    """One head of causal self-attention: each position mixes the values of itself and the positions before it,
    weighted by softmax(q k^T / sqrt(head_size)) with the future masked out."""

    def __init__(self, n_embd: int, head_size: int, block_size: int, dropout: float) -> None:
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))  # 1 where j <= i
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        B, T, C = x.shape
        k = self.key(x)  # (B, T, head_size)
        q = self.query(x)
        wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5  # (B, T, T): affinities
        wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))  # no looking ahead
        wei = F.softmax(wei, dim=-1)
        wei = self.dropout(wei)
        return wei @ self.value(x)  # (B, T, head_size)


class MultiHeadAttention(nn.Module):
    """Several heads side by side, their outputs concatenated and projected back to n_embd."""

    def __init__(self, n_embd: int, n_head: int, block_size: int, dropout: float) -> None:
        super().__init__()
        head_size = n_embd // n_head
        self.heads = nn.ModuleList([Head(n_embd, head_size, block_size, dropout) for _ in range(n_head)])
        self.proj = nn.Linear(head_size * n_head, n_embd)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        out = torch.cat([h(x) for h in self.heads], dim=-1)
        return self.dropout(self.proj(out))


class FeedForward(nn.Module):
    """Per position: Linear to 4 n_embd, ReLU, Linear back."""

    def __init__(self, n_embd: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd),
            nn.ReLU(),
            nn.Linear(4 * n_embd, n_embd),
            nn.Dropout(dropout),
        )

    def forward(self, x):
        return self.net(x)


class Block(nn.Module):
    """Communication (attention) then computation (feed-forward), each on a LayerNorm-ed residual stream."""

    def __init__(self, n_embd: int, n_head: int, block_size: int, dropout: float) -> None:
        super().__init__()
        self.sa = MultiHeadAttention(n_embd, n_head, block_size, dropout)
        self.ffwd = FeedForward(n_embd, dropout)
        self.ln1 = nn.LayerNorm(n_embd)
        self.ln2 = nn.LayerNorm(n_embd)

    def forward(self, x):
        x = x + self.sa(self.ln1(x))
        x = x + self.ffwd(self.ln2(x))
        return x


class GPTLanguageModel(nn.Module):
    def __init__(self, vocab_size: int, n_embd: int, n_head: int, n_layer: int, block_size: int,
                 dropout: float) -> None:
        super().__init__()
        self.block_size = block_size
        self.token_embedding_table = nn.Embedding(vocab_size, n_embd)
        self.position_embedding_table = nn.Embedding(block_size, n_embd)
        self.blocks = nn.Sequential(*[Block(n_embd, n_head, block_size, dropout) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module) -> None:
        """Small normal weights (std 0.02) and zero biases: the loss starts near -log(1/vocab_size)."""
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None):
        B, T = idx.shape
        tok_emb = self.token_embedding_table(idx)  # (B, T, C)
        pos_emb = self.position_embedding_table(torch.arange(T))  # (T, C)
        x = tok_emb + pos_emb
        x = self.blocks(x)
        x = self.ln_f(x)
        logits = self.lm_head(x)  # (B, T, vocab_size)
        if targets is None:
            return logits, None
        B, T, C = logits.shape
        loss = F.cross_entropy(logits.view(B * T, C), targets.view(B * T))
        return logits, loss

    def generate(self, idx, max_new_tokens: int, generator=None):
        """Extend idx (B, T) by max_new_tokens characters, each sampled from the model's next-character
        distribution given (at most) the last block_size characters."""
        for _ in range(max_new_tokens):
            logits, _ = self(idx[:, -self.block_size:])
            probs = F.softmax(logits[:, -1, :], dim=-1)  # (B, vocab_size)
            idx_next = torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)
            idx = torch.cat((idx, idx_next), dim=1)
        return idx


# -- training --------------------------------------------------------------------------------------------------------
@torch.no_grad()
def estimate_loss(model, splits: dict, eval_iters: int, block_size: int, batch_size: int, generator=None) -> dict:
    """The mean loss of eval_iters random batches of each split, in eval mode (no dropout), without a graph."""
    out = {}
    model.eval()
    for name, data in splits.items():
        losses = torch.zeros(eval_iters)
        for k in range(eval_iters):
            X, Y = get_batch(data, block_size, batch_size, generator)
            _, loss = model(X, Y)
            losses[k] = loss.item()
        out[name] = losses.mean().item()
    model.train()
    return out


@torch.no_grad()
def split_loss(model, data, block_size: int) -> float:
    """The loss over a whole split, cut into consecutive windows of block_size (no randomness: the number to
    report)."""
    model.eval()
    n = (len(data) - 1) // block_size
    X = data[:n * block_size].view(n, block_size)
    Y = data[1:n * block_size + 1].view(n, block_size)
    _, loss = model(X, Y)
    model.train()
    return loss.item()


def train_step(model, optimizer, xb, yb) -> float:
    """One step of AdamW on one batch; returns the batch's loss before the step."""
    _, loss = model(xb, yb)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, value in DEFAULTS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value,
                            help=f"(default {value})")
    parser.add_argument("--text", type=Path, default=TEXT, help="a UTF-8 text file to learn (default: the Sonnets)")
    parser.add_argument("--torch", action="store_true", help="run on PyTorch (decided at import: see the top)")
    a = parser.parse_args(argv)
    for name in ("batch_size", "block_size", "max_iters", "eval_interval", "eval_iters", "n_embd", "n_head",
                 "n_layer"):
        if getattr(a, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(a, name)}")
    if a.n_embd % a.n_head:
        parser.error(f"--n-embd ({a.n_embd}) must be a multiple of --n-head ({a.n_head})")

    torch.manual_seed(a.seed)
    text = a.text.read_text(encoding="utf-8")
    vocab = Vocabulary(text)
    train_data, val_data = load_splits(text, vocab)
    if len(val_data) <= a.block_size + 1:
        parser.error(f"--block-size {a.block_size} is too long for {a.text}'s validation split "
                     f"({len(val_data)} characters)")
    model = GPTLanguageModel(len(vocab), a.n_embd, a.n_head, a.n_layer, a.block_size, a.dropout)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"backend {BACKEND}: {len(text)} characters, vocabulary {len(vocab)}, {n_params} parameters")
    optimizer = torch.optim.AdamW(model.parameters(), lr=a.learning_rate)

    splits = {"train": train_data, "val": val_data}
    start, start_cpu = time.perf_counter(), time.process_time()
    elapsed = lambda: f"{time.perf_counter() - start:.0f} s, {time.process_time() - start_cpu:.0f} s CPU"
    for it in range(a.max_iters):
        if it % a.eval_interval == 0:
            losses = estimate_loss(model, splits, a.eval_iters, a.block_size, a.batch_size)
            print(f"step {it}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f} "
                  f"({elapsed()})", flush=True)
        xb, yb = get_batch(train_data, a.block_size, a.batch_size)
        train_step(model, optimizer, xb, yb)

    context = torch.zeros((1, 1), dtype=torch.long)  # start from character 0, the newline
    print("--- sample ---")
    print(vocab.decode(model.generate(context, max_new_tokens=a.new_tokens)[0].tolist()))
    print("---")
    train_loss, val_loss = (split_loss(model, data, a.block_size) for data in (train_data, val_data))
    print(f"after {a.max_iters} steps ({elapsed()}): train loss {train_loss:.4f}, val loss {val_loss:.4f}")


if __name__ == "__main__":
    main()
