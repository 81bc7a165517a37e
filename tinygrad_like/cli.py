"""The ``tinygrad-like`` command (also ``python -m tinygrad_like``): train | compare | check | graph.

Choices and defaults shown in the help come from the modules that define them (data, blog, viz).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from ._files import atomic_write
from .blog import blog_recipe

BLOG_LAYERS, BLOG_LR = blog_recipe().layers, blog_recipe().lr
PLOT_FORMATS = ("png", "svg", "pdf")  # what viz.plot_history writes
RECORDED = 250  # steps that --doctor and --record look at (evenly spaced over the run)

if TYPE_CHECKING:  # annotations only: train is imported when a command needs it
    from .train import Recipe, TrainResult
    from .viz import TrainingRecorder



def add_train_command(commands: argparse._SubParsersAction) -> None:
    """``tinygrad-like train``: train the blog's network (see blog/recipes.py and train.py)."""
    from .blog import BACKENDS, RECIPES
    from .data import DATASETS

    blog, modern = RECIPES["blog"](), RECIPES["modern"]()
    p = commands.add_parser(
        "train", help="train the blog's network on MNIST or Fashion-MNIST",
        description="Train the blog's [784, 64, 32, 10] network and print the blog's lines: the loss before "
                    "each epoch, then 'Score: a / b = x%' on the training and test sets.",
        epilog=f"--recipe blog: {blog.activation}, {blog.reduction} of cross-entropy, {blog.optimizer.upper()} lr "
               f"{blog.lr:g}, batches of {blog.batch_size} in order, {blog.epochs} epochs, U(-1, 1) init, "
               f"{blog.dtype}. --recipe modern: standardised inputs, {modern.activation}, {modern.reduction} "
               f"cross-entropy, {modern.optimizer.capitalize()} lr {modern.lr:g} with {modern.schedule} decay, "
               f"batches of {modern.batch_size} reshuffled, {modern.epochs} epochs. Exit status: 0 trained, "
               "1 training diverged or an unreadable data file, 2 no data found or bad arguments (unusable "
               "outputs included).")
    p.add_argument("--dataset", choices=DATASETS, default=DATASETS[0], help=f"default: {DATASETS[0]}")
    p.add_argument("--data-dir", metavar="DIR", help="directory with the IDX files (or an .npz); searched first")
    p.add_argument("--recipe", choices=tuple(RECIPES), default="blog", help="default: blog")
    p.add_argument("--backend", choices=BACKENDS, default=BACKENDS[0],
                   help=f"{BACKENDS[0]} (default), or the blog's hand-written backward: manual = corrected, "
                        "published = as published (no sigmoid derivative); those two need --recipe blog "
                        "and compute in float64 like the blog")
    p.add_argument("--per-sample", action="store_true",
                   help="with --backend manual|published: run the blog's own per-sample loop (slow) instead "
                        "of the batched equivalent")
    p.add_argument("--epochs", type=_positive_int, metavar="N", help="override the recipe's epochs")
    p.add_argument("--batch-size", type=_positive_int, metavar="N", help="override the recipe's batch size")
    p.add_argument("--lr", type=_positive_float, metavar="LR", help="override the recipe's learning rate")
    p.add_argument("--dtype", choices=("float32", "float64"), help=f"autograd's dtype (default {blog.dtype})")
    p.add_argument("--subset", type=_positive_int, metavar="N", help="train on the first N training samples")
    p.add_argument("--seed", type=_seed, metavar="N",
                   help="initialisation and shuffling seed: the same seed gives the same numbers "
                        "(default: a random seed, printed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (shown on terminals with tqdm)")
    p.add_argument("--plot", metavar="PNG", help="save loss and accuracy curves (needs matplotlib)")
    p.add_argument("--save", metavar="NPZ", help="save the trained weights (nn.Module.load reads them)")
    p.add_argument("--json", metavar="FILE", help="write a JSON summary with the per-epoch history")
    p.add_argument("--doctor", action="store_true",
                   help="after training, print the training doctor's diagnosis of the run: dead or saturated "
                        "units, vanishing or exploding gradients, updates too large or too small, ... with fixes")
    p.add_argument("--record", metavar="FILE.html",
                   help="write the run as a page that plays it back step by step (loss, per-layer statistics and "
                        "histograms, the layer graph); it needs only a browser")
    p.set_defaults(run=_run_train)


def _layer_sizes(text: str) -> list[int]:
    """argparse type: layer sizes like 784,64,32,10 (at least two, all positive)."""
    try:
        sizes = [int(n) for n in text.split(",")]
    except ValueError:
        sizes = []
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected at least two positive sizes like 784,64,32,10, got {text!r}")
    return sizes


def _positive_int(text: str) -> int:
    """argparse type: an integer > 0."""
    return _positive(int, text)


def _positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    return _positive(float, text)


def _seed(text: str) -> int:
    """argparse type: a seed, an integer >= 0 (NumPy's generators refuse negative seeds)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed must be 0 or more, got {text}")
    return value


def _positive(kind: type, text: str) -> float:
    try:
        value = kind(text)
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text}")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _fail(command: str, message: str, status: int) -> int:
    print(f"tinygrad-like {command}: {message}", file=sys.stderr)
    return status


def _check_outputs(args: argparse.Namespace, options: dict[str, tuple[str, ...] | None]) -> None:
    """ValueError for an output option that cannot be written, said before the work, not after it.

    ``options``: option name -> the file extensions it accepts (None: any). Refused: an empty path, an unknown
    extension, a directory that does not exist or cannot be written, a path that is not a regular file (a
    directory, a FIFO, a device), and one file named by two options.
    """
    seen: dict[Path, str] = {}
    for option, extensions in options.items():
        path = getattr(args, option)
        if path is None:
            continue
        flag = f"--{option.replace('_', '-')}"
        if not path.strip():
            raise ValueError(f"{flag}: empty path")
        target = Path(path)
        suffix = target.suffix.lstrip(".").lower()
        if extensions is not None and suffix not in extensions:
            raise ValueError(f"{flag} {path}: unknown file type {target.suffix or '(none)'}; use one of "
                             + ", ".join("." + e for e in extensions))
        directory = target.parent
        if not directory.is_dir():
            raise ValueError(f"{flag} {path}: the directory {directory} does not exist")
        try:  # a real write, not os.access: root passes access checks on read-only file systems too
            tempfile.TemporaryFile(dir=directory).close()
        except OSError as e:
            raise ValueError(f"{flag} {path}: cannot write into {directory} ({e.strerror})") from None
        if target.exists() and not target.is_file():
            raise ValueError(f"{flag} {path}: exists and is not a regular file")
        key = target.resolve()
        if key in seen:
            raise ValueError(f"{flag} {path}: the same file as --{seen[key].replace('_', '-')}; give each output "
                             "its own file")
        seen[key] = option


def _verdict(command: str, json_path: str | None, summary: dict[str, Any], ok: bool) -> int:
    """The exit status of a comparison (0 agree, 1 disagree), after writing its ``--json`` summary if asked."""
    if json_path:
        try:
            _write_json(json_path, summary)
        except OSError as e:
            return _fail(command, f"cannot write output: {e}", 2)
    return 0 if ok else 1


def _write_json(path: str | os.PathLike, summary: dict[str, Any]) -> None:
    """Write ``summary`` as indented JSON, atomically (an interrupted run leaves no half-written file)."""
    with atomic_write(path) as f:
        f.write((json.dumps(summary, indent=2) + "\n").encode("utf-8"))


def _run_train(args: argparse.Namespace) -> int:
    """Load the data, train, then write what was asked for (--save, --plot, --json)."""
    import numpy as np

    from . import blog, data, doctor, viz
    from . import train as training

    if args.plot:
        try:
            import matplotlib.figure  # noqa: F401 - checked before a long run, not after it
        except ImportError:
            return _fail("train", "--plot needs matplotlib: pip install 'tinygrad_like[plot]' "
                         "(or pip install matplotlib)", 2)
    try:
        recipe = _train_recipe(args)
        _check_outputs(args, {"save": ("npz",), "plot": PLOT_FORMATS, "json": None, "record": ("html",)})
    except ValueError as err:
        return _fail("train", str(err), 2)
    if args.data_dir is not None and not Path(args.data_dir).exists():  # a typo must not train on other data
        return _fail("train", f"--data-dir {args.data_dir}: no such file or directory", 2)
    source = data.find_dataset(args.dataset, args.data_dir)
    try:
        (x_train, y_train), (x_test, y_test) = data.load_dataset(args.dataset, args.data_dir,
                                                                 progress=not args.no_progress)
    except data.DatasetNotFoundError as err:
        hint = ""
        if args.dataset == "mnist" and data.find_dataset("fashion-mnist", args.data_dir) is not None:
            hint = "\nFashion-MNIST (same format) is available here: try --dataset fashion-mnist"
        return _fail("train", f"{err}{hint}", 2)
    except data.DatasetError as err:
        return _fail("train", str(err), 1)
    x, y = training.prepare(x_train[:args.subset], y_train[:args.subset], recipe.dtype)
    test = training.prepare(x_test, y_test, recipe.dtype)
    seed = args.seed if args.seed is not None else int(np.random.SeedSequence().entropy % 2**32)
    print(f"{source or data.find_dataset(args.dataset, args.data_dir)}: {len(x)} training / {len(test[0])} test "
          f"samples; {recipe.name} recipe, {args.backend} backend, {recipe.dtype}, seed {seed}")
    model = training.build_model(recipe, seed)
    recorder = None
    if args.doctor or args.record:  # about RECORDED steps kept, whatever the run's length: each costs about a step
        steps = recipe.epochs * math.ceil(len(x) / recipe.batch_size)
        recorder = viz.TrainingRecorder(model, every=max(1, steps // RECORDED))
    with recorder or contextlib.nullcontext():
        result = blog.train(model, x, y, recipe, test=test, backend=args.backend, seed=seed,
                            per_sample=args.per_sample, progress=not args.no_progress,
                            on_backward=recorder.record if recorder else None)
    print(f"Training took {result.seconds:.1f} s ({result.seconds / recipe.epochs:.2f} s per epoch)")
    if args.doctor:
        print(doctor.diagnose(recorder))
    try:
        _write_outputs(args, result, recorder)
    except OSError as err:
        return _fail("train", f"cannot write output: {err}", 1)
    return 1 if result.diverged else 0


def _train_recipe(args: argparse.Namespace) -> Recipe:
    """The chosen recipe with the command line's overrides; ValueError for combinations that make no sense."""
    from .blog import RECIPES

    if args.backend != "autograd" and args.recipe != "blog":
        raise ValueError(f"--backend {args.backend} is the blog's hand-written backward, for --recipe blog only")
    if args.per_sample and args.backend == "autograd":
        raise ValueError("--per-sample is for --backend manual|published (autograd always runs batched)")
    if args.backend != "autograd" and (args.doctor or args.record):
        raise ValueError(f"--doctor and --record watch autograd's graph; --backend {args.backend} has none "
                         "(drop --backend)")
    if args.backend != "autograd" and args.dtype == "float32":
        raise ValueError(f"--backend {args.backend} computes in float64 like the blog; drop --dtype float32")
    changes = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "dtype": args.dtype}
    if args.backend != "autograd":
        changes["dtype"] = "float64"
    return RECIPES[args.recipe](**{k: v for k, v in changes.items() if v is not None})


def _write_outputs(args: argparse.Namespace, result: TrainResult, recorder: TrainingRecorder | None) -> None:
    from .viz import plot_history

    if args.save:
        print(f"Saved the weights to {result.model.save(args.save)}")
    if args.plot:
        plot_history(result, args.plot, title=f"{args.dataset}: {result.recipe.name} recipe, "
                                                        f"{result.backend} backend, seed {result.seed}")
        print(f"Saved the curves to {args.plot}")
    if args.json:
        _write_json(args.json, result.to_dict(dataset=args.dataset, per_sample=args.per_sample))
        print(f"Wrote the summary to {args.json}")
    if args.record:
        recorder.to_html(args.record, title=f"{args.dataset}: {result.recipe.name} recipe, seed {result.seed}")
        print(f"Wrote the training view to {args.record} (open it in a browser)")


def add_compare_command(commands: argparse._SubParsersAction) -> None:
    """``tinygrad-like compare``: hand-written vs automatic gradients (see blog/compare.py)."""

    def mnist_batch(args: argparse.Namespace) -> tuple:
        """The first --batch training digits of the MNIST copy in --data-dir, pixels scaled to [0, 1]."""
        from .data import load_mnist
        from .train import prepare

        (images, labels), _ = load_mnist(args.data_dir, download=False)
        if args.layers[0] != images[0].size:
            raise ValueError(f"--layers starts with {args.layers[0]} inputs but the MNIST images have "
                             f"{images[0].size} pixels")
        if args.layers[-1] < 10:
            raise ValueError(f"--layers ends with {args.layers[-1]} outputs; MNIST has 10 classes")
        return prepare(images[:args.batch], labels[:args.batch], dtype="float64")

    def run(args: argparse.Namespace) -> int:
        import numpy as np

        from .blog import NN, compare_gradients, compare_update, from_blog

        try:
            _check_outputs(args, {"json": None})
        except ValueError as e:
            return _fail("compare", str(e), 2)
        net = NN(args.layers, corrected=args.code == "corrected", seed=args.seed)
        if args.data_dir is None:
            rng = np.random.default_rng(args.seed)  # a seeded random batch: pixels in [0, 1), random labels
            x, labels = rng.random((args.batch, args.layers[0])), rng.integers(0, args.layers[-1], args.batch)
            source = f"random batch (seed {args.seed})"
        else:
            try:
                x, labels = mnist_batch(args)
            except (ValueError, OSError) as e:  # the data module's errors name the file and what is wrong
                return _fail("compare", str(e), 2)
            source = f"the first {len(x)} training images of the MNIST-format files in {args.data_dir}, pixels / 255"
        report = compare_gradients(net, from_blog(net), x, labels, seed=args.seed)
        update = compare_update(net, x, labels, lr=args.lr)
        print(f"data: {source}")
        print(report)
        print(update)
        summary = {"data": source, "seed": args.seed, **report.to_dict(), "update": update.to_dict()}
        return _verdict("compare", args.json, summary, report.ok)

    cmd = commands.add_parser(
        "compare", help="compare hand-written, automatic and numeric gradients of the blog's network",
        description="Compute the gradients of the blog's summed cross-entropy three ways -- the blog's hand-written "
        "backward (published or corrected), autograd on the same graph, and central finite differences -- and "
        "print them side by side per weight and bias, with the first disagreeing one from the loss and a computed "
        "diagnosis. Also does one blog update (SGD on the summed gradients) both ways. Exit status: 0 when all "
        "sources agree, 1 when they disagree (the published code does: it omits the hidden layers' sigmoid "
        "derivative), 2 on bad input.",
    )
    cmd.add_argument("--layers", type=_layer_sizes, default=list(BLOG_LAYERS), metavar="N,N,...",
                     help=f"layer sizes (default: {','.join(map(str, BLOG_LAYERS))})")
    cmd.add_argument("--batch", type=_positive_int, default=200, metavar="N",
                     help="samples in the batch (default: 200)")
    cmd.add_argument("--seed", type=_seed, default=0, help="seed of the weights, the batch and the sampled entries "
                     "(default: 0)")
    cmd.add_argument("--code", choices=["published", "corrected"], default="published",
                     help="which hand-written backward: the blog's as published, or with the sigmoid derivative "
                     "applied (default: published)")
    cmd.add_argument("--lr", type=_positive_float, default=BLOG_LR, metavar="LR",
                     help=f"learning rate of the compared update (default: {BLOG_LR:g})")
    cmd.add_argument("--data-dir", metavar="DIR", help="use the first --batch MNIST training digits found in DIR "
                     "(see tinygrad_like.data) instead of a random batch")
    cmd.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    cmd.set_defaults(run=run)


def add_graph_command(commands: argparse._SubParsersAction) -> None:
    """``tinygrad-like graph``: draw the blog network's loss graph (see viz/graph.py), or write its HTML view
    (viz/html.py) when ``--out`` ends in ``.html``."""

    def run(args: argparse.Namespace) -> int:
        import numpy as np

        from . import viz
        from .blog import NN, RECIPES, blog_graph, blog_loss, compare_gradients, from_blog
        from .train import build_model

        html = Path(args.out).suffix.lower() == ".html"
        try:
            _check_outputs(args, {"out": (*viz.RENDERED_FORMATS, *viz.SOURCE_FORMATS, "html")})
        except ValueError as e:
            return _fail("graph", str(e), 2)
        rng = np.random.default_rng(args.seed)
        x, labels = rng.random((args.batch, args.layers[0])), rng.integers(0, args.layers[-1], args.batch)
        report = None
        if args.code is None:
            mlp = build_model(RECIPES["blog"](layers=tuple(args.layers), dtype="float32"), seed=args.seed)
        else:  # the blog's float64 network, so its hand-written gradients can be compared and marked
            net = NN(args.layers, corrected=args.code == "corrected", seed=args.seed)
            mlp = from_blog(net)
            report = compare_gradients(net, mlp, x, labels, seed=args.seed)
        if html:  # the view computes the gradients itself, so the graph is recorded without a backward
            try:
                viz.to_html(blog_loss(mlp, x, labels), args.out, params=mlp, report=report)
            except OSError as e:
                return _fail("graph", f"cannot write output: {e}", 2)
            print(f"wrote {args.out} (open it in a browser: it needs no network and no Graphviz)")
        else:
            graph = blog_graph(mlp, x, labels, report=report, rankdir=args.rankdir)
            try:
                path = viz.save(graph, args.out)
            except (viz.GraphvizNotFound, ValueError, OSError) as e:  # GraphvizNotFound: the .gv is written anyway
                return _fail("graph", str(e), 2)
            rendered = path.suffix.lstrip(".").lower() in viz.RENDERED_FORMATS  # save wrote the DOT text beside it
            print(f"wrote {path}" + (f" (DOT source: {path.with_suffix('.gv')})" if rendered else ""))
        if report is not None:
            disagreeing = [name for name, _ in mlp.named_parameters() if not report[name].ok]  # the input layer first
            print(f"{args.code} code: gradients disagree for " + (", ".join(disagreeing) or "no parameter"))
        return 0

    cmd = commands.add_parser(
        "graph", help="draw the blog network's loss graph",
        description="Draw the loss graph of the blog's network (matmul, add, sigmoid, ..., softmax, log, times the "
        "one-hot labels, sum) on a random batch after backward, with every layer as a labelled cluster. The format "
        "comes from the extension of --out: .svg, .png, .pdf need Graphviz's `dot` (exit status 2 with an install "
        "hint when it is missing; the .gv is written anyway), .gv needs nothing, and .html writes the interactive "
        "view (values, gradients, foldable layers, a step-through of the backward pass), which needs only a browser.",
    )
    cmd.add_argument("--layers", type=_layer_sizes, default=list(BLOG_LAYERS), metavar="N,N,...",
                     help=f"layer sizes (default: {','.join(map(str, BLOG_LAYERS))})")
    cmd.add_argument("--batch", type=_positive_int, default=4, metavar="N", help="samples in the batch (default: 4)")
    cmd.add_argument("--seed", type=_seed, default=0, help="seed of the weights and the batch (default: 0)")
    cmd.add_argument("--code", choices=["published", "corrected"],
                     help="also compare the blog's hand-written gradients (as published, or corrected) with "
                     "autograd and highlight the parameters that disagree")
    from .viz import RANKDIRS

    cmd.add_argument("--rankdir", choices=RANKDIRS, default="TB",
                     help="layout direction, top to bottom or left to right (default: TB; the .html view has "
                     "its own switch)")
    cmd.add_argument("--out", default="blog_graph.svg", metavar="FILE",
                     help="output file: .svg, .png, .pdf, .gv or .html (default: blog_graph.svg)")
    cmd.set_defaults(run=run)


def add_check_command(commands: argparse._SubParsersAction) -> None:
    """``tinygrad-like check FILE.py``: ``check_gradients`` on a user's file (see check/)."""
    import traceback
    from types import ModuleType

    def load(path: Path) -> ModuleType:
        import importlib.util

        spec = importlib.util.spec_from_file_location(f"tinygrad_like_check_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path} as Python")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses and pickling in the file look themselves up there
        try:
            spec.loader.exec_module(module)
        finally:
            sys.modules.pop(spec.name, None)
        return module

    def user_traceback(error: BaseException, path: Path) -> str | None:
        """The traceback of an error raised in the user's file, cut to the frames in that file; None otherwise."""
        frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename).resolve() == path]
        in_file = isinstance(error, SyntaxError) and error.filename and Path(error.filename).resolve() == path
        if not frames and not in_file:
            return None
        where = f" in {frames[-1].name}()" if frames else ""
        return ("".join(["Traceback (most recent call last, frames of your file only):\n",
                         *traceback.format_list(frames), *traceback.format_exception_only(type(error), error)])
                + f"tinygrad-like check: {path.name} raised {type(error).__name__}{where} (see above)")

    def describe(value: object) -> str:
        name = type(value).__name__
        article = "an" if name[0] in "aeiou" else "a"
        return f"{article} {name}" + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else "")

    def run(args: argparse.Namespace) -> int:
        from .check import check_gradients

        path = Path(args.file).resolve()
        try:
            _check_outputs(args, {"json": None})
            if not path.is_file():
                raise ValueError(f"{args.file}: no such file")
            if args.json and Path(args.json).resolve() == path:
                raise ValueError(f"--json {args.json} is the file to check; write the report elsewhere")
        except ValueError as e:
            return _fail("check", str(e), 2)
        sys.path.insert(0, str(path.parent))  # the file may import its neighbours
        try:
            module = load(path)
            missing = [name for name in ("forward", "backward", "example") if not callable(getattr(module, name, None))]
            if missing:
                return _fail("check", f"{args.file} must define forward(params, *args), backward(params, *args) and "
                             f"example() returning (params, args); missing: {', '.join(missing)}", 2)
            example = module.example()
            if not (isinstance(example, (tuple, list)) and len(example) == 2 and isinstance(example[1], (tuple, list))):
                return _fail("check", f"example() must return (params, args): params a dict name -> array or an "
                             f"nn.Module, args a tuple of forward's other arguments; it returned {describe(example)}"
                             + (f" whose args are {describe(example[1])}" if isinstance(example, (tuple, list))
                                and len(example) == 2 else ""), 2)
            report = check_gradients(module.forward, module.backward, example[0], *example[1])
        except Exception as e:  # noqa: BLE001 - any error of the user's code becomes a message, never our traceback
            text = user_traceback(e, path)
            if text is None:
                return _fail("check", str(e), 2)
            print(text, file=sys.stderr)
            return 2
        finally:
            sys.path.remove(str(path.parent))
        print(report)
        return _verdict("check", args.json, {"file": str(args.file), **report.to_dict()}, report.ok)

    cmd = commands.add_parser(
        "check", help="check a hand-written backward against autograd and finite differences",
        description="Load FILE.py, which defines forward(params, *args) (the scalar loss, written with NumPy or "
        "Tensor methods), backward(params, *args) (a dict name -> hand-written gradient) and example() returning "
        "(params, args); run check_gradients on them and print the table, the verdict and the computed diagnosis. "
        "Exit status: 0 when all gradients agree, 1 when they disagree, 2 when the file cannot be checked "
        "(missing functions, an error in them, wrong return types).",
    )
    cmd.add_argument("file", metavar="FILE.py", help="the Python file to check")
    cmd.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    cmd.set_defaults(run=run)


def build_parser() -> argparse.ArgumentParser:
    """The ``tinygrad-like`` argument parser with its subcommands."""
    parser = argparse.ArgumentParser(
        prog="tinygrad-like",
        description="A small reverse-mode autograd framework on NumPy, and the blog's MNIST network built on it.",
    )
    parser.add_argument("--version", action="version", version=f"tinygrad-like {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_train_command(commands)
    add_compare_command(commands)
    add_check_command(commands)
    add_graph_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Each subcommand sets ``run``: a function of the parsed arguments returning the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.run(args)
    except BrokenPipeError:  # e.g. `tinygrad-like compare | head`: the reader left, nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
