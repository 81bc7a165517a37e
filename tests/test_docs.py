"""The documentation's examples run as they are written: every ```python block of README.md and docs/*.md.

A page's blocks run in order, in one scope (as in a reader's session), in a scratch directory, with their output
captured. Fence info strings say what a block needs:

    ```python                      runs
    ```python no-run               only compiled (it downloads a dataset or trains for long), and counted below
    ```python requires=torch,onnx  the page is skipped when one of these packages is missing
    ```bash / ```text / ```        not run

A block whose last comment lines show an error (``# TypeError: ...``) must raise it.
"""

import builtins
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGUAGES = {"python", "bash", "text", ""}

# The blocks marked ```python no-run, page by page. Marking one more means adding it here: none goes unnoticed.
NOT_RUN = {"docs/training.md": 2}

# What each page's examples write into the scratch directory (every other page writes nothing).
WRITES = {
    "README.md": ["xor.gv", "xor.html", "xor.svg"],
    "docs/defining-networks.md": ["crafted.npz", "makemore.npz"],
    "docs/export.md": ["model.onnx", "model.safetensors"],
    "docs/seeing-the-graph.md": ["loss.gv", "loss.html", "loss.svg"],
    "docs/training-doctor.md": ["training.html"],
}

# Some of what each page's examples print, as the page says they do.
PRINTS = {
    "README.md": ["predictions [0, 1, 1, 0]", "missing sigmoid derivative",
                  "verdict: DISAGREE (first from the loss: W1)"],
    "docs/tensors.md": ["-1.1672241687774658", "[[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]", "0.956 float16", "1.001"],
    "docs/defining-networks.md": ["epoch 30: mean loss", "test accuracy: 9",
                                  "['0.weight', '2.weight', '3.weight', '3.bias', '3.running_mean', "
                                  "'3.running_var']", "same predictions: True"],
    "docs/checking-gradients.md": ["missing tanh derivative", "missing sigmoid derivative", "False layers.1"],
    "docs/higher-order.md": ["[0.75, 3.0, 12.0] [3.0, -6.0, 12.0]", "mul", "1.5 [4.0, 7.0]", "True", "12.0 12.0"],
    "docs/numpy-on-tensors.md": ["Tensor sum"],
    "docs/export.md": ["nn.Conv2d(in_channels=1, out_channels=8, kernel_size=(3, 3)"],
    "docs/comparing-with-pytorch.md": ["first divergent: 1 (Tanh), in its backward: the gradient at its output agrees",
                                       "none: every output and gradient agrees",
                                       "first divergent: 4 (Tanh), in its forward: its output differs by 2.8e-02"],
    "docs/model-summary.md": ["7        Linear      (64, 128)         200,832", "total parameters: 110,529",
                              "blocks.0.attn.proj  Linear               (4, 32, 64)     4,160"],
    "docs/training-doctor.md": ["- saturated in layers.0 at step 24", "- vanishing_gradient in layers.0 at step 0",
                                "Diagnosis of 48 recorded steps: nothing wrong found",
                                "- stale_gradients in 0 at step 1", "('vanishing_gradient', 'layers.0')"],
}


@dataclass
class Block:
    page: str
    line: int  # of the block's first code line in the page
    language: str
    tags: list[str]
    code: str

    @property
    def runs(self) -> bool:
        return self.language == "python" and "no-run" not in self.tags

    @property
    def requires(self) -> list[str]:
        return [name for tag in self.tags if tag.startswith("requires=") for name in tag[9:].split(",")]


def name_of(path: Path) -> str:
    return str(path.relative_to(ROOT))


def blocks(path: Path) -> list[Block]:
    text = path.read_text()
    found = []
    for match in re.finditer(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", text, re.M | re.S):
        language, *tags = match.group(1).split() or [""]
        found.append(Block(name_of(path), text.count("\n", 0, match.start(2)) + 1, language, tags, match.group(2)))
    return found


def run(block: Block, scope: dict) -> None:
    # Blank lines before the code: a traceback names the page's own line numbers.
    code = compile("\n" * (block.line - 1) + block.code, block.page, "exec")
    shown = re.search(r"^# (\w+Error): ", block.code, re.M)  # a block that ends by showing an error raises it
    if shown:
        error = getattr(builtins, shown.group(1), None) or scope[shown.group(1)]
        with pytest.raises(error):
            exec(code, scope)  # noqa: S102 - our own documentation
    else:
        exec(code, scope)  # noqa: S102 - our own documentation


RUNNABLE = [page for page in PAGES if any(b.runs for b in blocks(page))]


@pytest.mark.parametrize("page", RUNNABLE, ids=name_of)
def test_the_pages_python_blocks_run(page, tmp_path, monkeypatch, capsys):
    page_blocks = [b for b in blocks(page) if b.runs]
    for module in dict.fromkeys(name for b in page_blocks for name in b.requires):
        pytest.importorskip(module)
    monkeypatch.chdir(tmp_path)
    scope: dict = {"__name__": "__main__"}
    for block in page_blocks:
        run(block, scope)
    printed = capsys.readouterr().out
    for text in PRINTS.get(name_of(page), []):
        assert text in printed, f"{name_of(page)} does not print {text!r}"
    assert sorted(p.name for p in tmp_path.iterdir()) == WRITES.get(name_of(page), [])


def test_the_export_example_agrees_with_onnx_runtime(tmp_path, monkeypatch, capsys):
    page = ROOT / "docs" / "export.md"
    for module in ("torch", "onnx", "onnxruntime", "safetensors"):
        pytest.importorskip(module)
    monkeypatch.chdir(tmp_path)
    (block,) = [b for b in blocks(page) if b.runs]
    run(block, {})
    assert float(capsys.readouterr().out.strip().splitlines()[-1]) < 1e-5


def test_blocks_that_do_not_run_are_counted_and_compile():
    marked = {}
    for page in PAGES:
        for block in blocks(page):
            if block.language == "python" and not block.runs:
                compile(block.code, block.page, "exec")  # still valid Python
                marked[block.page] = marked.get(block.page, 0) + 1
    assert marked == NOT_RUN


def test_every_fence_is_understood():
    for page in PAGES:
        for block in blocks(page):
            assert block.language in LANGUAGES, f"{block.page}:{block.line}: unknown language {block.language!r}"
            for tag in block.tags:
                assert tag == "no-run" or re.fullmatch(r"requires=[\w.]+(,[\w.]+)*", tag), \
                    f"{block.page}:{block.line}: unknown fence tag {tag!r}"
                assert block.language == "python", f"{block.page}:{block.line}: tags only on python blocks"


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a page's headings."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
            for heading in re.findall(r"^#+ (.*)$", text, re.M)}


def test_links_between_pages_lead_somewhere():
    for page in PAGES:
        text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+://", target):
                continue
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            assert path.exists(), f"{name_of(page)} links to {target}, which does not exist"
            if anchor:
                assert anchor in anchors(path), f"{name_of(page)} links to {target}: no such heading"


def test_the_docs_index_lists_every_page():
    index = (ROOT / "docs" / "index.md").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        if page.name != "index.md":
            assert f"]({page.name})" in index, f"docs/index.md does not list {page.name}"


def test_the_readme_is_a_front_door():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    # the README's test command is the one CI runs
    (command,) = [b.code.strip() for b in blocks(ROOT / "README.md") if "pytest" in b.code]
    assert command == "python3 -m pytest"
    assert command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_the_numpy_page_lists_every_function_with_its_status():
    """The page's table (| `name` | status | notes |) is every function Tensors know, sorted, with the status the
    code gives it; a refused one's notes are the reason the code gives."""
    from tinygrad_like import numpy_protocol

    text = (ROOT / "docs" / "numpy-on-tensors.md").read_text()
    rows = re.findall(r"^\| `([\w.]+)` \| ([\w ]+?) \| (.*?) ?\|$", text, re.M)
    status = {name: kind for kind, names in numpy_protocol.supported().items() for name in names}
    refused = numpy_protocol.refused()
    status.update(dict.fromkeys(refused, "refused"))
    expected = sorted(status.items())
    assert [(name, kind) for name, kind, _ in rows] == expected, "the table should list:\n" + "\n".join(
        f"| `{name}` | {kind} | {refused.get(name, '')} |" for name, kind in expected)
    for name, kind, notes in rows:
        if kind == "refused":
            assert notes == refused[name], name


def test_the_docs_speak_of_what_exists():
    """No page names what was removed or renamed."""
    gone = [r"\bjit\b", r"tinygrad_like\.compare\b", r"tinygrad_like\.tensor\b", r"\btensor\.py", r"capture\.py",
            r"MLP\.from_blog", r"\.to_blog\(\)", r"mlp\.blog_loss", r"graph_backward", r"graph_forward"]
    for page in PAGES:
        text = page.read_text()
        for pattern in gone:
            assert not re.search(pattern, text), f"{name_of(page)} mentions {pattern}"
