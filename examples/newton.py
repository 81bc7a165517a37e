"""Newton's method with Hessian-vector products: logistic regression on 2-D points, against gradient descent.

    python examples/newton.py

Each Newton step solves H d = -g by conjugate gradients, touching the Hessian H only through
``autograd.hvp`` (H v from two backward passes; H itself is never formed), and steps to theta + d. Gradient
descent takes the safe fixed step 1/L, L the largest curvature of the loss, found by power iteration on the same
Hessian-vector products at theta = 0 (where every p (1 - p) is 1/4, its largest). Both stop when the gradient's
norm is below 1e-8; the numbers printed are the steps each needed and the loss each reached.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tinygrad_like import Tensor, autograd

TOLERANCE = 1e-8  # stop once |gradient| is below it
L2 = 1e-3  # a little weight decay keeps the minimum finite and the Hessian positive definite

Loss = Callable[[Tensor], Tensor]


def toy_data(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two overlapping clouds of 2-D points, labelled 0 and 1; a column of ones makes the last weight a bias."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    points = np.array([[-1.0, -0.5], [1.0, 0.8]])[labels] + rng.standard_normal((n, 2))
    return np.hstack([points, np.ones((n, 1))]), labels.astype(np.float64)


def logistic_loss(features: np.ndarray, labels: np.ndarray) -> Loss:
    """theta -> mean binary cross-entropy of sigmoid(features @ theta), plus L2 * |theta|^2."""
    x, y = Tensor(features), Tensor(labels)
    return lambda theta: (x @ theta).sigmoid().binary_crossentropy(y) + L2 * (theta * theta).sum()


def value_and_gradient(loss: Loss, theta: np.ndarray) -> tuple[float, np.ndarray]:
    t = Tensor(theta, requires_grad=True)
    value = loss(t)
    (g,) = autograd.grad(value, t)
    return value.item(), g.data


def hessian_times(loss: Loss, theta: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """v -> H v at theta."""
    return lambda v: autograd.hvp(loss, Tensor(theta), v)[1].data


def conjugate_gradients(hvp: Callable[[np.ndarray], np.ndarray], b: np.ndarray, iterations: int) -> np.ndarray:
    """Solve H x = b for a symmetric positive definite H known only through hvp(v) = H v (exact in n steps)."""
    x, r = np.zeros_like(b), b.copy()
    p, rr = r.copy(), r @ r
    for _ in range(iterations):
        if rr == 0:
            break
        hp = hvp(p)
        alpha = rr / (p @ hp)
        x, r = x + alpha * p, r - alpha * hp
        rr, previous = r @ r, rr
        p = r + (rr / previous) * p
    return x


def newton(loss: Loss, theta: np.ndarray, max_steps: int = 50) -> tuple[np.ndarray, int, list[tuple[float, float]]]:
    """Newton steps until |gradient| < TOLERANCE: the parameters, the steps taken, (loss, |gradient|) at each."""
    history = []
    for step in range(max_steps):
        value, g = value_and_gradient(loss, theta)
        history.append((value, float(np.linalg.norm(g))))
        if history[-1][1] < TOLERANCE:
            return theta, step, history
        theta = theta + conjugate_gradients(hessian_times(loss, theta), -g, iterations=theta.size)
    return theta, max_steps, history


def largest_curvature(loss: Loss, theta: np.ndarray, iterations: int = 100) -> float:
    """The largest eigenvalue of the Hessian at theta, by power iteration on Hessian-vector products."""
    hvp, v = hessian_times(loss, theta), np.ones_like(theta)
    for _ in range(iterations):
        hv = hvp(v)
        v = hv / np.linalg.norm(hv)
    return float(v @ hvp(v))


def gradient_descent(loss: Loss, theta: np.ndarray, lr: float, max_steps: int = 100_000) -> tuple[np.ndarray, int,
                                                                                                  float]:
    """theta -= lr * gradient until |gradient| < TOLERANCE: the parameters, the steps taken and the final loss."""
    for step in range(max_steps):
        value, g = value_and_gradient(loss, theta)
        if np.linalg.norm(g) < TOLERANCE:
            return theta, step, value
        theta = theta - lr * g
    return theta, max_steps, value


def main() -> None:
    features, labels = toy_data()
    loss = logistic_loss(features, labels)
    start = np.zeros(features.shape[1])
    print(f"Logistic regression on {len(labels)} toy 2-D points (float64), L2 {L2}, from theta = 0, "
          f"until |gradient| < {TOLERANCE:g}")

    theta_newton, newton_steps, history = newton(loss, start)
    print(f"  Newton + conjugate gradients (H v by autograd.hvp): {newton_steps} steps, loss {history[-1][0]:.12f}")
    for step, (value, norm) in enumerate(history):
        print(f"    step {step}: loss {value:.12f}, |gradient| {norm:.1e}")

    curvature = largest_curvature(loss, start)
    theta_gd, gd_steps, gd_loss = gradient_descent(loss, start, lr=1 / curvature)
    print(f"  gradient descent (step 1/L = {1 / curvature:.3f}): {gd_steps} steps, loss {gd_loss:.12f}")
    print(f"  both at theta = {np.round(theta_newton, 6).tolist()} (difference "
          f"{np.abs(theta_newton - theta_gd).max():.1e}); Newton needed {gd_steps / max(newton_steps, 1):.0f}x "
          "fewer steps")


if __name__ == "__main__":
    main()
