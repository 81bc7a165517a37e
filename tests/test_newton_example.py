"""examples/newton.py: Newton's method on Hessian-vector products converges in a handful of steps, where
gradient descent with a safe fixed step needs hundreds, to the same minimum (run as a script, as users do)."""

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "newton.py"


def test_newton_converges_in_a_handful_of_steps_where_gradient_descent_needs_hundreds(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    newton = re.search(r"Newton \+ conjugate gradients .*: (\d+) steps, loss ([\d.]+)", out)
    descent = re.search(r"gradient descent .*: (\d+) steps, loss ([\d.]+)", out)
    assert newton and descent, out
    assert int(newton.group(1)) <= 10 and int(descent.group(1)) >= 100
    assert abs(float(newton.group(2)) - float(descent.group(2))) < 1e-10
    norms = [float(n) for n in re.findall(r"\|gradient\| ([\d.e+-]+)", out)]
    assert norms[-1] < 1e-8 and all(b < 100 * a * a for a, b in zip(norms[-4:], norms[-3:]))  # quadratically
