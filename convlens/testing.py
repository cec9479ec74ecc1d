"""Gradient checking: compare autograd's gradients with float64 central differences.

    df/dx_i ≈ (f(x + h·e_i) − f(x − h·e_i)) / 2h,   error O(h²).

`f` is reduced to a scalar by a fixed random projection ⟨f(x), r⟩ so that every output element
contributes to every checked derivative.
"""

from __future__ import annotations

import numpy as np

from convlens.tensor import Tensor


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-4, seed: int = 0,
              max_checks: int | None = None) -> bool:
    """Check `fn(*inputs)` (inputs: float64 Tensors) against numerical derivatives; raise on mismatch.

    Only tensors with ``requires_grad=True`` are checked. ``max_checks`` limits the number of
    perturbed entries per input (a random subset) for large inputs.
    """
    rng = np.random.default_rng(seed)
    for t in inputs:
        if isinstance(t, Tensor) and t.requires_grad and t.dtype != np.float64:
            raise ValueError(f"gradcheck: inputs must be float64, got {t.dtype}")
    out = fn(*inputs)
    projection = rng.standard_normal(out.shape)

    for t in inputs:
        if isinstance(t, Tensor):
            t.grad = None
    (out * Tensor(projection)).sum().backward()

    def scalar() -> float:
        return float((fn(*inputs)._data * projection).sum())

    for k, t in enumerate(inputs):
        if not (isinstance(t, Tensor) and t.requires_grad):
            continue
        analytic = np.zeros_like(t._data) if t.grad is None else t.grad._data
        flat = t._data.reshape(-1)  # a view: perturbing it perturbs the input
        idx = np.arange(flat.size)
        if max_checks is not None and flat.size > max_checks:
            idx = rng.choice(flat.size, size=max_checks, replace=False)
        for i in idx:
            orig = flat[i]
            flat[i] = orig + eps
            plus = scalar()
            flat[i] = orig - eps
            minus = scalar()
            flat[i] = orig
            numeric = (plus - minus) / (2 * eps)
            a = analytic.reshape(-1)[i]
            if not np.isclose(a, numeric, atol=atol, rtol=rtol):
                raise AssertionError(
                    f"gradcheck: input {k} entry {np.unravel_index(i, t.shape)}: "
                    f"autograd {a:.8g} vs numerical {numeric:.8g}"
                )
    return True
