"""The report of ``check_gradients``: one ``GradientEntry`` per compared value, the ``GradientReport`` with its
table, verdict and diagnosis in words, and the formatting helpers they use."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..tensors import Tensor
from .run import relative_difference

TITLE = "check_gradients: hand-written backward vs autograd vs finite differences, in float64"


@dataclass
class GradientEntry:
    """One compared value: a parameter or a watched intermediate.

    ``max_abs`` / ``max_rel`` / ``agree``: hand-written vs autograd (``max_rel`` normwise, divided by ``scale`` =
    max|autograd|); ``fd_*``: finite differences on ``fd_entries`` sampled entries vs autograd. ``floor``: the
    largest |autograd| over the whole report; agreement is max|hand - autograd| <= rtol * ``reference`` (the
    floor, at least ``scale``): an absolute floor as gradcheck's atol, so a true zero gradient agrees with a
    rounding-level one. ``cause_kind``
    (one of ``CAUSE_KINDS``), ``cause_op`` and ``factor`` identify the computed cause, ``cause`` says it in a few
    words and ``advice`` in a sentence (what to change, and where); all None when the entry agrees.
    ``explained_max_rel`` is what is left of the difference once the cause is applied. ``hand`` and
    ``autograd`` are the two arrays.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    scale: float
    max_abs: float
    max_rel: float
    agree: bool
    fd_entries: int
    fd_max_abs: float
    fd_max_rel: float
    fd_agree: bool
    cause_kind: str | None = None
    cause_op: str | None = None
    factor: float | None = None
    cause: str | None = None
    advice: str | None = None
    explained_max_rel: float | None = None
    hand_shape: tuple[int, ...] | None = None
    floor: float = 0.0
    hand: np.ndarray | None = field(default=None, repr=False, compare=False)
    autograd: np.ndarray | None = field(default=None, repr=False, compare=False)

    @classmethod
    def compare(cls, name: str, is_parameter: bool, hand: np.ndarray | None, auto: np.ndarray, rtol: float,
                fd_rtol: float, fd: tuple[np.ndarray, np.ndarray], floor: float = 0.0) -> GradientEntry:
        """The entry of ``name`` from its three sources; ``fd``: (flat indices, finite differences there);
        ``floor``: the report's largest gradient magnitude."""
        scale = float(np.max(np.abs(auto))) if auto.size else 0.0
        reference = max(scale, floor)
        picks, numeric = fd
        fd_abs, fd_rel = relative_difference(numeric, auto.reshape(-1)[picks], scale)
        if hand is None:
            max_abs = max_rel = float("nan")
        else:
            max_abs, max_rel = relative_difference(hand, auto, scale)
        agree = hand is not None and relative_difference(hand, auto, reference)[1] <= rtol
        fd_agree = relative_difference(numeric, auto.reshape(-1)[picks], reference)[1] <= fd_rtol
        return cls(name, "parameter" if is_parameter else "intermediate", tuple(auto.shape), scale, max_abs, max_rel,
                   agree, len(picks), fd_abs, fd_rel, fd_agree, hand_shape=None if hand is None else tuple(hand.shape),
                   floor=floor, hand=hand, autograd=auto)

    @property
    def reference(self) -> float:
        """The gradient size differences are measured against: max|autograd|, at least the report's floor."""
        return max(self.scale, self.floor)

    @property
    def ok(self) -> bool:
        """Hand-written, autograd and finite differences all agree."""
        return self.agree and self.fd_agree

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (the arrays left out; non-finite numbers become None)."""
        skip = {"hand", "autograd"}
        data = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in skip}
        return json_safe({**data, "ok": self.ok})


@dataclass
class GradientReport:
    """The three-way comparison; ``print(report)`` shows an aligned table, the verdict and the diagnosis.

    ``entries``: one ``GradientEntry`` per parameter and per watched intermediate with a hand-written gradient,
    in backward order (nearest the loss first); ``report[name]`` looks one up. ``rtol``, ``fd_rtol``: the
    agreement tolerances. ``notes``: what the check did to the input (float32 checked in float64, ...).
    ``loss`` (the Tensor run's loss, with its graph) and ``tensors`` (name -> Tensor, parameters and watched
    values) are there to draw: ``draw(report.loss, params=report.tensors, report=report)``. ``title`` heads the
    printed report and ``context`` (JSON-able) opens ``to_dict()``: what a caller checked, in its own words.
    """

    entries: list[GradientEntry]
    rtol: float
    fd_rtol: float
    loss_value: float
    diagnosis: str = ""
    notes: list[str] = field(default_factory=list)
    loss: Tensor | None = field(default=None, repr=False)
    tensors: dict[str, Tensor] = field(default_factory=dict, repr=False)
    title: str = TITLE
    context: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> GradientEntry:
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(f"GradientReport: no entry {name!r}; have {', '.join(e.name for e in self.entries)}")

    @property
    def ok(self) -> bool:
        """Every entry agrees in all three sources."""
        return all(e.ok for e in self.entries)

    @property
    def disagreeing(self) -> list[str]:
        """Names of the entries where any source disagrees, nearest the loss first."""
        return [e.name for e in self.entries if not e.ok]

    @property
    def first_disagreeing(self) -> GradientEntry | None:
        """The disagreeing entry nearest the loss (where to start looking), or None."""
        return next((e for e in self.entries if not e.ok), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data: ``context``, then the report's own figures."""
        first = self.first_disagreeing
        return json_safe({
            **self.context, "ok": self.ok, "loss": self.loss_value, "rtol": self.rtol, "fd_rtol": self.fd_rtol,
            "disagreeing": self.disagreeing, "first_disagreeing": None if first is None else first.name,
            "diagnosis": self.diagnosis, "notes": self.notes, "entries": [e.to_dict() for e in self.entries],
        })

    def __str__(self) -> str:
        floor = max((e.floor for e in self.entries), default=0.0)
        note = (f"rel = max|x - autograd| / max|autograd| per entry; agreement: hand <= {self.rtol:g}, "
                f"finite differences <= {self.fd_rtol:g}, or max|x - autograd| within those times {floor:.1e}, the "
                "largest gradient here")
        rows = [["name", "kind", "shape", "max|grad|", "hand rel", "hand", "fd n", "fd rel", "fd", "cause"]]
        for e in self.entries:
            rows.append([e.name, "param" if e.kind == "parameter" else "inter", "x".join(map(str, e.shape)) or "()",
                         format_number(e.scale), format_number(e.max_rel), "ok" if e.agree else "DIFF",
                         str(e.fd_entries), format_number(e.fd_max_rel), "ok" if e.fd_agree else "DIFF",
                         e.cause or ""])
        wrong = [e for e in self.entries if not e.ok and not (_up_to_epsilon(e) and e.fd_agree)]
        verdict = ("all sources agree" if self.ok else f"DISAGREE (first from the loss: {wrong[0].name})" if wrong
                   else "the hand-written gradients agree up to a constant in the loss (an epsilon they leave out)")
        lines = [self.title, note, *(f"note: {n}" for n in self.notes), "", format_table(rows, left=(0, 1, 2, 9)),
                 "", f"verdict: {verdict}"]
        return "\n".join(lines + _wrap(f"diagnosis: {self.diagnosis}"))


def diagnosis_text(report: GradientReport) -> str:
    """The verdict in words, from the entries' numbers and computed causes."""
    entries = report.entries
    if report.ok:
        # relative to what agreement is measured against: a true zero's rounding noise is no large relative error
        worst = max((e.max_abs / e.reference for e in entries if e.reference), default=0.0)
        worst_fd = max((e.fd_max_abs / e.reference for e in entries if e.reference), default=0.0)
        return (f"all {len(entries)} entries agree: hand-written vs autograd max rel diff {worst:.1e} "
                f"(<= {report.rtol:g}), finite differences vs autograd {worst_fd:.1e} (<= {report.fd_rtol:g}).")
    parts = []
    fd_bad = [e.name for e in entries if not e.fd_agree]
    if fd_bad:
        parts.append(f"autograd disagrees with finite differences for {_and(fd_bad)}: the forward may not be "
                     "differentiable at these values (relu at 0, tied maxima) or autograd is wrong there, so the "
                     "hand-written comparison proves nothing for them.")
    bad = [e for e in entries if not e.agree and not _up_to_epsilon(e)]
    near = [e for e in entries if _up_to_epsilon(e)]
    if bad:
        first = bad[0]
        parts.append(f"The hand-written gradients of {_and([e.name for e in bad])} disagree with autograd; the first "
                     f"from the loss is {first.name}.")
        above = [e for e in entries[:entries.index(first)] if e.kind == "intermediate" and e.agree]
        if above:
            parts.append(f"The watched value {above[-1].name} agrees, so the mistake lies between {above[-1].name} "
                         f"and {first.name}.")
        by_cause: dict[tuple[str | None, str], list[str]] = {}
        for e in bad:
            by_cause.setdefault((e.cause, e.advice or ""), []).append(e.name)
        parts += [f"{_and(names)} ({cause}): {advice}." for (cause, advice), names in by_cause.items()]
    if near:
        parts.append(f"{_and([e.name for e in near])} agree{'s' if len(near) == 1 else ''} with autograd up to a "
                     f"constant in the loss: {near[0].advice}.")
    return " ".join(parts)


def _up_to_epsilon(e: GradientEntry) -> bool:
    """The hand-written gradient is autograd's once the forward's small constants are left out (cause "epsilon")."""
    return e.cause_kind == "epsilon"


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _wrap(text: str, width: int = 116) -> list[str]:
    return textwrap.wrap(text, width, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False)


def format_number(value: float | None) -> str:
    """A figure of a report table: ``1.2e-15``; ``-`` when there is none."""
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.1e}"


def format_table(rows: list[list[str]], left: tuple[int, ...] = (0, 1)) -> str:
    """Aligned columns with a rule under the header row; columns in ``left`` (and the last) align left."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [cell.ljust(w) if i in left or i == len(row) - 1 else cell.rjust(w)
                 for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def json_safe(value: Any) -> Any:
    """``value`` with NumPy numbers as Python ones, tuples as lists and non-finite floats as None."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
