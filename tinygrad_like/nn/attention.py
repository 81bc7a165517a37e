"""Attention, as PyTorch's: ``F.scaled_dot_product_attention`` and ``nn.MultiheadAttention``.

Both are composed of Tensor operations (linear, matmul, masked_fill, softmax, reshape, permute), so gradients of
every order come from the engine. Masks follow PyTorch, whose two conventions differ: in
``scaled_dot_product_attention`` a boolean ``attn_mask`` is True where a key *takes part*; in
``MultiheadAttention`` a boolean ``attn_mask`` or ``key_padding_mask`` is True where a key is *left out*. A float
mask is added to the scores in both.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..tensors import Tensor
from . import functional as F
from . import init
from .args import check_flag, check_int, check_probability, dtype_config, factory_dtype, parameter_dtype
from .layers import Linear
from .module import Module

__all__ = ["MultiheadAttention", "scaled_dot_product_attention"]

_SDPA = "scaled_dot_product_attention"


def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _mask_values(mask: Any) -> np.ndarray:
    return np.asarray(mask.data if isinstance(mask, Tensor) else mask)


def _attention_weights(query: Tensor, key: Tensor, mask: np.ndarray | Tensor | None, scale: float,
                       fully_masked: float, op: str) -> Tensor:
    """softmax(scale * query @ key^T + mask) over the keys (the last axis).

    ``mask``: None, a boolean array (True where a key takes part; the others get -inf, by ``masked_fill``) or a
    float Tensor added to the scores. A row whose every score is -inf has no softmax: its weights are
    ``fully_masked`` instead (PyTorch gives 0 in ``scaled_dot_product_attention`` and nan in
    ``MultiheadAttention``'s weights), and it gets no gradient.
    """
    scores = (query * scale) @ key.transpose(dim0=-2, dim1=-1)
    if mask is not None:
        shape = np.shape(mask.data if isinstance(mask, Tensor) else mask)
        try:
            fits = np.broadcast_shapes(shape, scores.shape) == scores.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"{op}: a mask of shape {shape} does not broadcast to the attention scores' shape "
                             f"{scores.shape} (query {query.shape}, key {key.shape})")
        scores = scores + mask if isinstance(mask, Tensor) else scores.masked_fill(~mask, -math.inf)
    dead = np.isneginf(scores.data).all(axis=-1, keepdims=True)
    if not dead.any():
        return scores.softmax(-1)
    # softmax of a row of -inf is 0/0: give those rows finite scores, then their weights by hand (no warning)
    return scores.masked_fill(dead, 0.0).softmax(-1).masked_fill(dead, fully_masked)


def _sdpa_mask(attn_mask: Any, query: Tensor) -> np.ndarray | Tensor | None:
    """A boolean array (True = take part) or a float Tensor in the query's dtype, as PyTorch accepts."""
    if attn_mask is None:
        return None
    dtype = _mask_values(attn_mask).dtype
    if dtype == np.bool_:
        return _mask_values(attn_mask)
    if dtype != query.dtype:
        raise TypeError(f"{_SDPA}: attn_mask must be boolean or of the query's dtype ({query.dtype}), got {dtype}")
    return _tensor(attn_mask)


def _repeat_heads(t: Tensor, heads: int, name: str) -> Tensor:
    """(..., h, S, E) -> (..., heads, S, E), each of the h heads repeated heads / h times in place (grouped-query
    attention: a key/value head serves several query heads)."""
    if t.ndim < 3 or heads % t.shape[-3]:
        raise ValueError(f"{_SDPA}: with enable_gqa the number of heads of {name} (dim -3 of {t.shape}) must "
                         f"divide the query's ({heads})")
    h, (s, e) = t.shape[-3], t.shape[-2:]
    return t.unsqueeze(-3).expand(*t.shape[:-3], h, heads // h, s, e).reshape(*t.shape[:-3], heads, s, e)


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Any = None,
                                 dropout_p: float = 0.0, is_causal: bool = False, *, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(query @ key^T * scale + mask) @ value, as ``torch.nn.functional.scaled_dot_product_attention``.

    query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev); ``scale`` defaults to 1/sqrt(E).
    ``attn_mask``: boolean, True where a query may attend to a key, or float, added to the scores; broadcast to
    (..., L, S). ``is_causal``: query i attends to keys 0..i only (a lower triangular mask from the top left;
    refused together with ``attn_mask``). A query that may attend to no key gets zeros. ``dropout_p``: dropout on
    the attention weights, applied whenever it is above 0 (pass 0 outside training). ``enable_gqa``: key and
    value may have fewer heads (dim -3) than the query, each serving a group of query heads.
    """
    query, key, value = _tensor(query), _tensor(key), _tensor(value)
    if min(query.ndim, key.ndim, value.ndim) < 2:
        raise ValueError(f"{_SDPA}: query, key and value must all be at least 2-D, got shapes {query.shape}, "
                         f"{key.shape} and {value.shape}")
    if is_causal and attn_mask is not None:
        raise ValueError(f"{_SDPA}: an explicit attn_mask should not be given with is_causal=True")
    mask = np.tril(np.ones((query.shape[-2], key.shape[-2]), bool)) if is_causal else _sdpa_mask(attn_mask, query)
    if enable_gqa and query.ndim >= 3 and key.shape[-3:-2] != query.shape[-3:-2]:
        key, value = _repeat_heads(key, query.shape[-3], "key"), _repeat_heads(value, query.shape[-3], "value")
    weights = _attention_weights(query, key, mask, 1 / math.sqrt(query.shape[-1]) if scale is None else scale, 0.0,
                                 _SDPA)
    return F.dropout(weights, dropout_p) @ value


class MultiheadAttention(Module):
    """Multi-head attention, as ``torch.nn.MultiheadAttention``: out_proj(concat over heads of
    softmax(q_h k_h^T / sqrt(head_dim) + mask) v_h), with q, k, v the input projections of query, key and value
    split into ``num_heads`` heads of ``head_dim = embed_dim / num_heads``.

    Parameters as PyTorch's: ``in_proj_weight`` (3 * embed_dim, embed_dim), the q, k and v projections stacked
    (or ``q_proj_weight``, ``k_proj_weight`` (embed_dim, kdim), ``v_proj_weight`` (embed_dim, vdim) when ``kdim`` or
    ``vdim`` differ from embed_dim), ``in_proj_bias`` (3 * embed_dim,), ``bias_k`` and ``bias_v`` (1, 1,
    embed_dim) with ``add_bias_kv`` (appended to the keys and values), and ``out_proj`` (a Linear). Initialised as
    PyTorch does: xavier_uniform_ projections, zero biases, xavier_normal_ bias_k and bias_v.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, *, device: Any = None,
                 dtype: Any = None) -> None:
        owner = "MultiheadAttention"
        self.embed_dim = check_int(embed_dim, "embed_dim", owner)
        self.num_heads = check_int(num_heads, "num_heads", owner)
        if embed_dim % num_heads:
            raise ValueError(f"{owner}: embed_dim must be divisible by num_heads, got {embed_dim} and {num_heads}")
        self.dropout = check_probability(dropout, "dropout", owner)
        self.bias = check_flag(bias, "bias", owner)
        self.add_bias_kv = check_flag(add_bias_kv, "add_bias_kv", owner)
        self.add_zero_attn = check_flag(add_zero_attn, "add_zero_attn", owner)
        self.kdim = embed_dim if kdim is None else check_int(kdim, "kdim", owner)
        self.vdim = embed_dim if vdim is None else check_int(vdim, "vdim", owner)
        self.batch_first = check_flag(batch_first, "batch_first", owner)
        self.head_dim, dtype = embed_dim // num_heads, factory_dtype(dtype, device, owner)
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim

        def weight(*shape: int) -> Tensor:
            return init.xavier_uniform_(Tensor.zeros(*shape, dtype=dtype, requires_grad=True))

        # attributes in PyTorch's state_dict order
        if self._qkv_same_embed_dim:
            self.in_proj_weight = weight(3 * embed_dim, embed_dim)
        else:
            self.q_proj_weight = weight(embed_dim, embed_dim)
            self.k_proj_weight = weight(embed_dim, self.kdim)
            self.v_proj_weight = weight(embed_dim, self.vdim)
        self.in_proj_bias = Tensor.zeros(3 * embed_dim, dtype=dtype, requires_grad=True) if bias else None
        self.bias_k = self.bias_v = None
        if add_bias_kv:  # xavier_normal_ of a (1, 1, E) tensor: fan_in = fan_out = E, std = sqrt(2 / (2 E))
            self.bias_k, self.bias_v = (init.normal_(Tensor.zeros(1, 1, embed_dim, dtype=dtype,
                                                                  requires_grad=True), 0.0, math.sqrt(1 / embed_dim))
                                        for _ in range(2))
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        if bias:
            init.zeros_(self.out_proj.bias)

    def _projections(self) -> list[tuple[Tensor, Tensor | None]]:
        """(weight, bias) of the q, k and v projections."""
        e = self.embed_dim
        weights = ([self.in_proj_weight[i * e:(i + 1) * e] for i in range(3)] if self._qkv_same_embed_dim
                   else [self.q_proj_weight, self.k_proj_weight, self.v_proj_weight])
        biases = [None] * 3 if self.in_proj_bias is None else [self.in_proj_bias[i * e:(i + 1) * e] for i in range(3)]
        return list(zip(weights, biases))

    def _check_shapes(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Any,
                      attn_mask: Any) -> bool:
        """True for batched (3-D) input, False for unbatched (2-D); anything else is refused."""
        owner, batched = "MultiheadAttention", query.ndim == 3
        if query.ndim not in (2, 3):
            raise ValueError(f"{owner}: query should be unbatched 2D or batched 3D tensor but received "
                             f"{query.ndim}-D query tensor")
        if key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(f"{owner}: for {query.ndim}-D query, key and value should be {query.ndim}-D, got "
                             f"{key.ndim}-D and {value.ndim}-D")
        if key_padding_mask is not None and np.ndim(_mask_values(key_padding_mask)) != query.ndim - 1:
            raise ValueError(f"{owner}: for {query.ndim}-D query, key_padding_mask should be {query.ndim - 1}-D, got "
                             f"shape {np.shape(_mask_values(key_padding_mask))}")
        if attn_mask is not None and np.ndim(_mask_values(attn_mask)) not in (2, 3):
            raise ValueError(f"{owner}: attn_mask should be 2-D or 3-D, got shape {np.shape(_mask_values(attn_mask))}")
        sizes = (query.shape[-1], key.shape[-1], value.shape[-1])
        if sizes != (self.embed_dim, self.kdim, self.vdim):
            raise ValueError(f"{owner}: query, key and value must have {self.embed_dim}, {self.kdim} and "
                             f"{self.vdim} features, got shapes {query.shape}, {key.shape} and {value.shape}")
        batch_axis = 0 if self.batch_first else 1
        if key.shape[:-1] != value.shape[:-1] or (batched and query.shape[batch_axis] != key.shape[batch_axis]):
            raise ValueError(f"{owner}: key of shape {key.shape} and value of shape {value.shape} do not fit each "
                             f"other or the query's batch (query shape {query.shape})")
        dtype = parameter_dtype(self)
        for t in (query, key, value):
            if t.dtype != dtype:
                raise ValueError(f"{owner}: input dtype ({t.dtype}) does not match the parameters' ({dtype})")
        return batched

    def _additive_mask(self, mask: Any, name: str) -> Tensor | None:
        """A float Tensor added to the scores: -inf where a boolean mask is True, a float mask as it is."""
        if mask is None:
            return None
        values = _mask_values(mask)
        if values.dtype == np.bool_:
            return Tensor(np.where(values, -np.inf, 0.0).astype(parameter_dtype(self)))
        if values.dtype.kind != "f":
            raise TypeError(f"MultiheadAttention: only bool and floating types of masks are supported, got {name} "
                            f"of dtype {values.dtype}")
        return _tensor(mask)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Any = None,
                need_weights: bool = True, attn_mask: Any = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        """(attn_output, attn_weights) as PyTorch's.

        query (L, N, embed_dim), key (S, N, kdim), value (S, N, vdim), batch first with ``batch_first``, or
        unbatched (L, embed_dim), ... . ``key_padding_mask`` (N, S): True (or -inf) for keys to leave out, e.g.
        padding. ``attn_mask`` (L, S) or (N * num_heads, L, S): True where query i may not attend to key j, or a
        float added to the scores. ``is_causal``: a hint that ``attn_mask`` is the causal mask (which must then be
        given). attn_output is (L, N, embed_dim) (batch first with ``batch_first``); attn_weights (N, L, S),
        averaged over heads, or (N, num_heads, L, S) with ``average_attn_weights=False``, or None unless
        ``need_weights``. Queries that may attend to no key give nan weights and output with ``need_weights``, zero
        attention without (as PyTorch).
        """
        owner = "MultiheadAttention"
        query, key, value = _tensor(query), _tensor(key), _tensor(value)
        batched = self._check_shapes(query, key, value, key_padding_mask, attn_mask)
        if is_causal and attn_mask is None:
            raise ValueError(f"{owner}: Need attn_mask if specifying the is_causal hint (the causal mask itself, "
                             "e.g. a boolean mask that is True above the diagonal)")
        if not batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            key_padding_mask = None if key_padding_mask is None else _mask_values(key_padding_mask)[None]
        elif self.batch_first:
            query, key, value = query.permute(1, 0, 2), key.permute(1, 0, 2), value.permute(1, 0, 2)
        (length, batch, e), heads, source = query.shape, self.num_heads, key.shape[0]
        # PyTorch's fast path: the causal hint replaces the mask when nothing else needs it
        causal = is_causal and key_padding_mask is None and not need_weights
        mask = None if causal else self._additive_mask(attn_mask, "attn_mask")
        if mask is not None:
            expected = (length, source) if mask.ndim == 2 else (batch * heads, length, source)
            if mask.shape != expected:
                raise ValueError(f"{owner}: The shape of the {mask.ndim}D attn_mask is {mask.shape}, but should be "
                                 f"{expected}.")
            mask = mask.reshape(-1, heads if mask.ndim == 3 else 1, length, source)
        padding = self._additive_mask(key_padding_mask, "key_padding_mask")
        if padding is not None:
            if padding.shape != (batch, source):
                raise ValueError(f"{owner}: expecting key_padding_mask shape of {(batch, source)}, but got "
                                 f"{padding.shape}")
            padding = padding.reshape(batch, 1, 1, source)
        (w_q, b_q), (w_k, b_k), (w_v, b_v) = self._projections()
        q, k, v = F.linear(query, w_q, b_q), F.linear(key, w_k, b_k), F.linear(value, w_v, b_v)
        if self.bias_k is not None:  # one more key and value, learnt, for every sample
            k = Tensor.cat([k, self.bias_k.expand(1, batch, e)], dim=0)
            v = Tensor.cat([v, self.bias_v.expand(1, batch, e)], dim=0)
        # (sequence, batch, embed) -> (batch, heads, sequence, head_dim)
        q, k, v = (t.reshape(t.shape[0], batch, heads, self.head_dim).permute(1, 2, 0, 3) for t in (q, k, v))
        if self.add_zero_attn:  # one more key and value of zeros
            zeros = Tensor.zeros(batch, heads, 1, self.head_dim, dtype=q.dtype)
            k, v = Tensor.cat([k, zeros], dim=2), Tensor.cat([v, zeros], dim=2)
        added = k.shape[2] - source  # keys appended above: no mask leaves them out
        if added:
            mask, padding = (None if m is None else Tensor.cat([m, Tensor.zeros(*m.shape[:-1], added, dtype=m.dtype)],
                                                                dim=-1) for m in (mask, padding))
        if mask is not None and padding is not None:
            mask = mask + padding
        mask = padding if mask is None else mask
        dropout = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            weights = F.dropout(_attention_weights(q, k, mask, 1 / math.sqrt(self.head_dim), math.nan, owner),
                                dropout)  # PyTorch returns the weights after dropout, as used
            out = weights @ v
        else:
            out = scaled_dot_product_attention(q, k, v, mask, dropout, causal)
        out = self.out_proj(out.permute(2, 0, 1, 3).reshape(length, batch, e))
        if weights is not None and average_attn_weights:
            weights = weights.mean(1)
        if not batched:
            return out.squeeze(1), None if weights is None else weights.squeeze(0)
        return (out.permute(1, 0, 2) if self.batch_first else out), weights

    def config(self) -> dict[str, Any]:
        """The constructor arguments, saved with the weights."""
        return {"embed_dim": self.embed_dim, "num_heads": self.num_heads, "dropout": self.dropout, "bias": self.bias,
                "add_bias_kv": self.add_bias_kv, "add_zero_attn": self.add_zero_attn, "kdim": self.kdim,
                "vdim": self.vdim, "batch_first": self.batch_first, **dtype_config(self)}
