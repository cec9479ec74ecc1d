"""The Tensor methods and top-level functions PyTorch code calls, compared with torch: each op's forward
and backward over a grid of shapes, and a float64 gradcheck. The same lambda runs on both libraries
(``fn(lib, x)``), which is the point: the call is written once, in torch's API."""

import numpy as np
import pytest

import convlens as cl
from convlens.testing import gradcheck

torch = pytest.importorskip("torch")

SHAPES = [(7,), (3, 5), (2, 3, 4), (2, 1, 3, 5)]


def _data(shape, kind="normal", seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    if kind == "positive":
        a = np.abs(a) + 0.5
    elif kind == "unit":  # away from the kinks of clamp/abs/floor at 0 and ±0.5
        a = np.where(np.abs(np.abs(a) - 0.5) < 0.05, a + 0.2, a)
        a = np.where(np.abs(a) < 0.05, 0.3, a)
    elif kind == "distinct":  # no ties, for sorting and extremes
        a = rng.permutation(int(np.prod(shape))).reshape(shape) / 3.0 - 1.0
    return a


def _arrays(out):
    if isinstance(out, tuple):
        return [o for o in out]
    return [out]


def _to_numpy(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def compare(fn, shape, kind="normal", rtol=1e-7, atol=1e-9, grad=True, check_grad=True):
    """fn(lib, x) on convlens and on torch: equal outputs (all of a tuple), equal input gradients for a
    random upstream gradient, and a float64 gradcheck of convlens's backward."""
    a = _data(shape, kind)
    x, tx = cl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    ours, theirs = _arrays(fn(cl, x)), _arrays(fn(torch, tx))
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(_to_numpy(o), _to_numpy(t), rtol=rtol, atol=atol)
        assert tuple(o.shape) == tuple(t.shape)
        assert (o.dtype.kind == "f") == t.dtype.is_floating_point
    if not grad:
        return
    out, tout = ours[0], theirs[0]
    g = np.random.default_rng(1).standard_normal(tout.shape)
    out.backward(cl.tensor(g))
    tout.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-9)
    if check_grad:
        assert gradcheck(lambda t: _arrays(fn(cl, t))[0], [cl.tensor(a, requires_grad=True)], max_checks=40)


ELEMENTWISE = {
    "exp": (lambda lib, x: x.exp(), "normal"),
    "log": (lambda lib, x: x.log(), "positive"),
    "log1p": (lambda lib, x: lib.log1p(x), "positive"),
    "log2": (lambda lib, x: x.log2(), "positive"),
    "sqrt": (lambda lib, x: lib.sqrt(x), "positive"),
    "rsqrt": (lambda lib, x: x.rsqrt(), "positive"),
    "square": (lambda lib, x: x.square(), "normal"),
    "abs": (lambda lib, x: lib.abs(x), "unit"),
    "neg": (lambda lib, x: x.neg(), "normal"),
    "reciprocal": (lambda lib, x: x.reciprocal(), "positive"),
    "sin": (lambda lib, x: x.sin(), "normal"),
    "cos": (lambda lib, x: lib.cos(x), "normal"),
    "sigmoid": (lambda lib, x: lib.sigmoid(x), "normal"),
    "tanh": (lambda lib, x: lib.tanh(x), "normal"),
    "relu": (lambda lib, x: lib.relu(x), "unit"),
    "clamp": (lambda lib, x: lib.clamp(x, -0.5, 0.5), "unit"),
    "clamp_min": (lambda lib, x: x.clamp(min=-0.5), "unit"),
    "clip_max": (lambda lib, x: x.clip(max=0.5), "unit"),
    "pow": (lambda lib, x: lib.pow(x, 3), "normal"),
    "pow_tensor": (lambda lib, x: x.pow(x), "positive"),
    "rpow": (lambda lib, x: 2.0 ** x, "normal"),
    "floor": (lambda lib, x: x.floor() + x, "unit"),
    "ceil": (lambda lib, x: x.ceil() * x, "unit"),
    "round": (lambda lib, x: x.round() + x, "unit"),
    "trunc": (lambda lib, x: x.trunc() + x, "unit"),
    "sign": (lambda lib, x: x.sign() * x, "unit"),
    "frac": (lambda lib, x: x.frac(), "unit"),
    "add_alpha": (lambda lib, x: x.add(x * x, alpha=0.5), "normal"),
    "sub_alpha": (lambda lib, x: lib.sub(x, 1.5, alpha=2), "normal"),
    "mul": (lambda lib, x: lib.mul(x, x), "normal"),
    "div": (lambda lib, x: lib.div(1.0, x), "positive"),
    "remainder": (lambda lib, x: x % 0.7, "positive"),
    "rremainder": (lambda lib, x: lib.remainder(x * 2.3, 1.1 * x), "positive"),
    "fmod": (lambda lib, x: lib.fmod(x * 3, 0.8), "unit"),
    "lerp": (lambda lib, x: x.lerp(x * x, 0.3), "normal"),
    "addcmul": (lambda lib, x: lib.addcmul(x, x, x.exp(), value=0.5), "normal"),
    "addcdiv": (lambda lib, x: x.addcdiv(x, x.exp(), value=2), "normal"),
    "maximum": (lambda lib, x: lib.maximum(x, x.flip(0) * 0.37), "distinct"),
    "minimum": (lambda lib, x: x.minimum(lib.zeros_like(x) + 0.1), "distinct"),
    "where": (lambda lib, x: lib.where(x > 0, x, x * x), "unit"),
    "where_scalar": (lambda lib, x: lib.where(x > 0, x, 0.0), "unit"),
    "masked_fill": (lambda lib, x: x.masked_fill(x < 0, 2.5), "unit"),
    "nan_to_num": (lambda lib, x: (x.log()).nan_to_num(0.0, 1.0, -1.0), "unit"),
}


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_matches_torch(name, shape):
    fn, kind = ELEMENTWISE[name]
    check = name not in ("nan_to_num", "fmod", "remainder", "rremainder")  # kinks are dense for these
    compare(fn, shape, kind, check_grad=check)


REDUCTIONS = {
    "sum": lambda lib, x: x.sum(),
    "sum_dim": lambda lib, x: lib.sum(x, -1),
    "sum_dims_keepdim": lambda lib, x: x.sum((0, -1) if x.ndim > 1 else 0, keepdim=True),
    "mean_dim": lambda lib, x: x.mean(0, keepdim=True),
    "mean_dtype": lambda lib, x: lib.mean(x, dim=-1, dtype=lib.float64),
    "prod": lambda lib, x: x.prod(),
    "prod_dim": lambda lib, x: lib.prod(x, -1, keepdim=True),
    "cumsum": lambda lib, x: x.cumsum(0),
    "cumsum_last": lambda lib, x: lib.cumsum(x, dim=-1),
    "var": lambda lib, x: x.var(),
    "var_dim": lambda lib, x: x.var(-1, keepdim=True),
    "var_unbiased_false": lambda lib, x: lib.var(x, 0, unbiased=False),
    "var_correction": lambda lib, x: x.var(dim=-1, correction=0),
    "std": lambda lib, x: x.std(),
    "std_dim": lambda lib, x: lib.std(x, -1),
    "std_overload": lambda lib, x: x.std(False),
    "norm": lambda lib, x: x.norm(),
    "norm_dim": lambda lib, x: lib.norm(x, dim=-1),
    "norm_p1": lambda lib, x: x.norm(p=1, dim=0),
    "norm_p3": lambda lib, x: x.norm(3),
    "norm_inf": lambda lib, x: x.norm(float("inf")),
    "logsumexp": lambda lib, x: x.logsumexp(-1),
    "logsumexp_keep": lambda lib, x: lib.logsumexp(x, 0, keepdim=True),
    "amax": lambda lib, x: x.amax(-1),
    "amin": lambda lib, x: lib.amin(x, 0),
    "max_dim": lambda lib, x: lib.max(x, -1),
    "min_dim": lambda lib, x: x.min(0, keepdim=True),
    "median": lambda lib, x: x.median(),
    "median_dim": lambda lib, x: x.median(-1),
    "kthvalue": lambda lib, x: x.kthvalue(1, 0),
    "softmax": lambda lib, x: x.softmax(-1),
    "log_softmax": lambda lib, x: lib.log_softmax(x, 0),
}


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reductions_match_torch(name, shape):
    compare(REDUCTIONS[name], shape, "distinct")


def test_prod_gradient_is_exact_with_zeros():
    a = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 1.5], [1.0, 2.0, 4.0]])
    for fn in (lambda lib, x: x.prod(), lambda lib, x: x.prod(1), lambda lib, x: x.prod(0)):
        x, tx = cl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        fn(cl, x).sum().backward()
        fn(torch, tx).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


def test_norm_gradient_at_zero_is_zero_as_torch():
    x, tx = cl.zeros(3, dtype=cl.float64, requires_grad=True), torch.zeros(3, dtype=torch.float64, requires_grad=True)
    x.norm().backward()
    tx.norm().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


SORTING = {
    "sort": lambda lib, x: x.sort(),
    "sort_desc": lambda lib, x: lib.sort(x, dim=0, descending=True),
    "topk": lambda lib, x: x.topk(2),
    "topk_smallest": lambda lib, x: lib.topk(x, 1, dim=0, largest=False),
    "argsort": lambda lib, x: (x * 1).argsort(descending=True),
}


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(SORTING))
def test_sorting_matches_torch(name, shape):
    compare(SORTING[name], shape, "distinct", grad=name != "argsort")


def test_sort_is_stable_with_ties_and_nan_first_when_descending():
    a = np.array([[3.0, 1.0, 3.0, np.nan, 1.0, 2.0]])
    for descending in (False, True):
        v, i = cl.tensor(a).sort(descending=descending, stable=True)
        tv, ti = torch.tensor(a).sort(descending=descending, stable=True)
        np.testing.assert_array_equal(v.numpy(), tv.numpy())
        np.testing.assert_array_equal(i.numpy(), ti.numpy())
    r = cl.tensor(a).topk(3)
    assert type(r).__name__ == "topk" and r.indices.dtype == np.int64


SHAPE_OPS = {
    "view_as": lambda lib, x: x.view_as(x.reshape(-1)),
    "flatten": lambda lib, x: lib.flatten(x),
    "flatten_1": lambda lib, x: x.flatten(1) if x.ndim > 1 else x.flatten(),
    "t": lambda lib, x: x.t() if x.ndim <= 2 else x.transpose(0, -1),
    "T": lambda lib, x: x.T * 1 if x.ndim <= 2 else x.mT * 1,
    "squeeze_unsqueeze": lambda lib, x: lib.unsqueeze(x, 1).squeeze(1),
    "squeeze_all": lambda lib, x: lib.squeeze(x.unsqueeze(0)),
    "expand": lambda lib, x: x.unsqueeze(0).expand(3, *x.shape),
    "expand_as": lambda lib, x: x[:1].expand_as(x) * x,
    "repeat": lambda lib, x: x.repeat(2, *([1] * x.ndim)),
    "repeat_inner": lambda lib, x: x.repeat(*([2] * x.ndim)),
    "tile": lambda lib, x: lib.tile(x, (2,)),
    "repeat_interleave": lambda lib, x: x.repeat_interleave(2, dim=0),
    "chunk": lambda lib, x: lib.chunk(x, 3, dim=-1)[-1],
    "split": lambda lib, x: x.split(2, dim=-1)[0] * 2,
    "split_sizes": lambda lib, x: lib.split(x, [1, x.shape[0] - 1])[1],
    "unbind": lambda lib, x: x.unbind(0)[-1],
    "narrow": lambda lib, x: x.narrow(-1, 1, 2),
    "index_select": lambda lib, x: x.index_select(-1, lib.tensor([2, 0, 2])),
    "masked_select": lambda lib, x: x.masked_select(x > 0.1),
    "gather": lambda lib, x: lib.gather(x, -1, lib.arange(x.numel()).reshape(x.shape) * 7 % x.shape[-1]),
    "gather_smaller": lambda lib, x: x.gather(0, lib.zeros((1,) + tuple(x.shape[1:]), dtype=lib.long)),
    "scatter": lambda lib, x: lib.zeros(x.shape[0] + 1, *x.shape[1:], dtype=x.dtype).scatter(
        0, lib.arange(x.shape[0]).reshape(-1, *([1] * (x.ndim - 1))).expand(x.shape), x),
    "scatter_value": lambda lib, x: x.scatter(-1, lib.zeros(*x.shape[:-1], 1, dtype=lib.long), 7.0),
    "scatter_add": lambda lib, x: lib.zeros_like(x).scatter_add(0, lib.zeros_like(x, dtype=lib.long), x),
    "flip": lambda lib, x: x.flip(0),
    "flip_all": lambda lib, x: lib.flip(x, list(range(x.ndim))),
    "roll": lambda lib, x: x.roll(1, 0),
    "roll_flat": lambda lib, x: lib.roll(x, 2),
    "movedim": lambda lib, x: x.movedim(0, -1),
    "cat_stack": lambda lib, x: lib.stack([lib.cat([x, x * 2]), lib.cat([x * 3, x])], 1),
    "tril": lambda lib, x: x.reshape(x.shape[0], -1).tril(),
    "triu": lambda lib, x: lib.triu(x.reshape(x.shape[0], -1), 1),
    "unflatten": lambda lib, x: x.flatten().unflatten(0, (x.shape[0], -1)),
    "take": lambda lib, x: x.take(lib.tensor([0, 3, 3])),
    "getitem_mask": lambda lib, x: x[x > 0.2],
    "getitem_index_tensor": lambda lib, x: x[lib.tensor([1, 0, 1])],
}


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(SHAPE_OPS))
def test_shape_ops_match_torch(name, shape):
    compare(SHAPE_OPS[name], shape, "distinct")


def test_matrix_products_match_torch():
    rng = np.random.default_rng(0)
    cases = [("mm", (3, 4), (4, 5)), ("bmm", (2, 3, 4), (2, 4, 5)), ("matmul", (2, 3, 4), (4,)),
             ("matmul", (5,), (2, 5, 3)), ("dot", (4,), (4,)), ("mv", (3, 4), (4,)), ("outer", (3,), (4,))]
    for name, sa, sb in cases:
        a, b = rng.standard_normal(sa), rng.standard_normal(sb)
        x, y = cl.tensor(a, requires_grad=True), cl.tensor(b, requires_grad=True)
        tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
        out, tout = getattr(cl, name)(x, y), getattr(torch, name)(tx, ty)
        np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-10)
        out.sum().backward()
        tout.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(y.grad.numpy(), ty.grad.numpy(), rtol=1e-10)
        assert gradcheck(lambda p, q, n=name: getattr(cl, n)(p, q), [cl.tensor(a, requires_grad=True),
                                                                    cl.tensor(b, requires_grad=True)])


def test_comparisons_logic_and_searching_match_torch():
    a = _data((3, 4), "distinct")
    b = np.round(a * 2) / 2
    x, y, tx, ty = cl.tensor(a), cl.tensor(b), torch.tensor(a), torch.tensor(b)
    for name in ("eq", "ne", "lt", "le", "gt", "ge"):
        np.testing.assert_array_equal(getattr(x, name)(y).numpy(), getattr(tx, name)(ty).numpy())
        np.testing.assert_array_equal(getattr(cl, name)(x, 0.0).numpy(), getattr(torch, name)(tx, 0.0).numpy())
    m, tm = x > 0, tx > 0
    for expr in (lambda m, n: m & n, lambda m, n: m | n, lambda m, n: m ^ n, lambda m, n: ~m):
        np.testing.assert_array_equal(expr(m, x < 0.5).numpy(), expr(tm, tx < 0.5).numpy())
    for name in ("all", "any"):
        assert getattr(m, name)().item() == getattr(tm, name)().item()
        np.testing.assert_array_equal(getattr(m, name)(1).numpy(), getattr(tm, name)(1).numpy())
    np.testing.assert_array_equal(m.nonzero().numpy(), tm.nonzero().numpy())
    for ours, theirs in zip(m.nonzero(as_tuple=True), tm.nonzero(as_tuple=True)):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_array_equal(cl.where(m)[1].numpy(), torch.where(tm)[1].numpy())
    for dim in (None, 0, 1):
        for keepdim in (False, True):
            if dim is None and keepdim:
                continue
            np.testing.assert_array_equal(x.argmax(dim=dim, keepdim=keepdim).numpy(),
                                          tx.argmax(dim=dim, keepdim=keepdim).numpy())
            np.testing.assert_array_equal(cl.argmin(x, dim).numpy(), torch.argmin(tx, dim).numpy())
    assert x.argmax(axis=1).tolist() == tx.argmax(dim=1).tolist()  # NumPy's spelling still works
    labels = cl.tensor([3, 1, 3, 0, 1, 3])
    tl = torch.tensor([3, 1, 3, 0, 1, 3])
    for kw in ({}, {"return_counts": True}, {"return_inverse": True, "return_counts": True}):
        for o, t in zip(_arrays(labels.unique(**kw)), _arrays(tl.unique(**kw))):
            np.testing.assert_array_equal(o.numpy(), t.numpy())
    assert cl.isnan(cl.tensor([1.0, float("nan")])).tolist() == [False, True]
    assert cl.isfinite(cl.tensor([1.0, float("inf")])).tolist() == [True, False]
    assert cl.allclose(x, x + 1e-9) and cl.equal(x, x.clone()) and not cl.equal(x, x[:1])
    assert x.count_nonzero().item() == tx.count_nonzero().item()


def test_integer_division_and_rounding_modes_match_torch():
    a = np.array([-7, -3, 0, 3, 7])
    for other in (2, -2):
        for mode in (None, "floor", "trunc"):
            ours = cl.tensor(a).div(other, rounding_mode=mode)
            theirs = torch.tensor(a).div(other, rounding_mode=mode)
            np.testing.assert_allclose(ours.numpy(), theirs.numpy())
            assert ours.dtype.kind == ("f" if mode is None else "i") and (theirs.dtype.is_floating_point ==
                                                                           (mode is None))
        np.testing.assert_array_equal((cl.tensor(a) // other).numpy(), (torch.tensor(a) // other).numpy())
        np.testing.assert_array_equal((cl.tensor(a) % other).numpy(), (torch.tensor(a) % other).numpy())
    assert (cl.tensor([1, 2]) / 2).dtype == np.float32  # true division of integers: the default float


# ---- in-place variants, under no_grad (parameter updates) and on graph intermediates -------------------
INPLACE = {
    "add_": lambda lib, t, o: t.add_(o, alpha=0.5),
    "sub_": lambda lib, t, o: t.sub_(o),
    "mul_": lambda lib, t, o: t.mul_(o),
    "div_": lambda lib, t, o: t.div_(o.exp()),
    "addcmul_": lambda lib, t, o: t.addcmul_(o, o, value=-0.3),
    "addcdiv_": lambda lib, t, o: t.addcdiv_(o, o.exp(), value=2),
    "lerp_": lambda lib, t, o: t.lerp_(o, 0.25),
    "pow_": lambda lib, t, o: t.pow_(2),
    "sqrt_": lambda lib, t, o: t.abs_().sqrt_(),
    "neg_": lambda lib, t, o: t.neg_(),
    "exp_": lambda lib, t, o: t.exp_(),
    "relu_": lambda lib, t, o: t.relu_(),
    "sigmoid_": lambda lib, t, o: t.sigmoid_(),
    "tanh_": lambda lib, t, o: t.tanh_(),
    "clamp_": lambda lib, t, o: t.clamp_(-0.3, 0.4),
    "masked_fill_": lambda lib, t, o: t.masked_fill_(o > 0, 0.5),
    "scatter_": lambda lib, t, o: t.scatter_(1, lib.tensor([[0], [2], [1]]), o[:, :1]),
    "scatter_add_": lambda lib, t, o: t.scatter_add_(0, lib.tensor([[0, 1, 0, 1]]), o[:1]),
    "index_fill_": lambda lib, t, o: t.index_fill_(1, lib.tensor([1, 3]), -2.0),
    "copy_": lambda lib, t, o: t.copy_(o[0]),
    "fill_": lambda lib, t, o: t.fill_(1.5),
    "zero_": lambda lib, t, o: t.zero_(),
    "iadd": lambda lib, t, o: t.__iadd__(o),
    "setitem": lambda lib, t, o: t.__setitem__((slice(None), 1), o[:, 0]),
}


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_variants_match_torch_under_no_grad_and_in_the_graph(name):
    fn = INPLACE[name]
    a, b = _data((3, 4), "unit", 0), _data((3, 4), "unit", 1)
    # under no_grad on a leaf that requires grad: the parameter's memory itself changes
    p, tp = cl.tensor(a.copy(), requires_grad=True), torch.tensor(a.copy(), requires_grad=True)
    memory = p._data
    with cl.no_grad():
        fn(cl, p, cl.tensor(b))
    with torch.no_grad():
        fn(torch, tp, torch.tensor(b))
    np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), rtol=1e-12)
    assert p._data is memory and p.requires_grad
    # on an intermediate of the graph: recorded, gradients to both inputs as torch's
    x, o = cl.tensor(a, requires_grad=True), cl.tensor(b, requires_grad=True)
    tx, to = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    y, ty = x * 1.0, tx * 1.0
    fn(cl, y, o)
    fn(torch, ty, to)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12)
    g = np.random.default_rng(2).standard_normal((3, 4))
    y.backward(cl.tensor(g))
    ty.backward(torch.tensor(g))
    for ours, theirs in ((x, tx), (o, to)):  # no gradient (None) and a zero gradient are the same here
        mine = np.zeros((3, 4)) if ours.grad is None else ours.grad.numpy()
        np.testing.assert_allclose(mine, 0 if theirs.grad is None else theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_random_fills_use_the_generator_and_refuse_leaves_outside_no_grad():
    w = cl.zeros(1000)
    w.uniform_(-2, 3, generator=cl.Generator().manual_seed(0))
    assert -2 <= w.min().item() and w.max().item() < 3 and abs(w.mean().item() - 0.5) < 0.2
    again = cl.zeros(1000).uniform_(-2, 3, generator=cl.Generator().manual_seed(0))
    np.testing.assert_array_equal(w.numpy(), again.numpy())
    w.normal_(1.0, 0.1)
    assert abs(w.mean().item() - 1.0) < 0.05 and abs(w.std().item() - 0.1) < 0.02
    assert set(np.unique(cl.zeros(100).bernoulli_(0.5).numpy())) <= {0.0, 1.0}
    p = cl.zeros(3, requires_grad=True)
    for fill in (p.uniform_, p.normal_, p.zero_):
        with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
            fill()
    with cl.no_grad():
        p.normal_()
    assert p.requires_grad and p.std().item() > 0
    img = cl.zeros(3, 8, 8)
    assert img.unsqueeze_(0).shape == (1, 3, 8, 8) and img.squeeze_(0).shape == (3, 8, 8)


# ---- factories and dtypes -----------------------------------------------------------------------------
def test_factories_follow_torch_signatures_shapes_and_dtypes():
    cases = [
        lambda lib: lib.zeros(2, 3), lambda lib: lib.zeros((2, 3)), lambda lib: lib.zeros(size=(2, 3)),
        lambda lib: lib.ones([4]), lambda lib: lib.empty(2, 2), lambda lib: lib.full((2, 2), 7),
        lambda lib: lib.full((2,), 1.5), lambda lib: lib.full((1,), True), lambda lib: lib.eye(3),
        lambda lib: lib.eye(2, 4), lambda lib: lib.arange(5), lambda lib: lib.arange(1, 4, 0.5),
        lambda lib: lib.arange(0, 10, 3), lambda lib: lib.linspace(0, 1, 5), lambda lib: lib.logspace(0, 2, 3),
        lambda lib: lib.zeros_like(lib.ones(2, dtype=lib.int64)), lambda lib: lib.ones_like(lib.zeros(3)),
        lambda lib: lib.full_like(lib.zeros(2, 2), 3.0), lambda lib: lib.tensor([1, 2]),
        lambda lib: lib.tensor([1.0, 2]), lambda lib: lib.tensor(True), lambda lib: lib.tensor(3.5),
        lambda lib: lib.zeros(2, dtype=lib.float64), lambda lib: lib.ones(2, dtype=lib.long),
        lambda lib: lib.ones(2, dtype=lib.int), lambda lib: lib.ones(2, dtype=lib.half),
        lambda lib: lib.ones(2, dtype=lib.double), lambda lib: lib.ones(2, dtype=lib.bool),
        lambda lib: lib.ones(2, dtype=lib.uint8), lambda lib: lib.ones(2, dtype=lib.int8),
        lambda lib: lib.ones(2, dtype=lib.int16), lambda lib: lib.ones(2).new_zeros(3),
        lambda lib: lib.ones(2, dtype=lib.float64).new_full((2,), 4), lambda lib: lib.ones(3).int(),
        lambda lib: lib.ones(3).bool(), lambda lib: lib.ones(3).half(), lambda lib: lib.ones(3).long().float(),
    ]
    for i, make in enumerate(cases):
        ours, theirs = make(cl), make(torch)
        assert ours.shape == tuple(theirs.shape)
        assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch."), (ours.dtype, theirs.dtype)
        if i != 4:  # empty(): torch's memory is uninitialised
            np.testing.assert_allclose(ours.numpy().astype(float), theirs.numpy().astype(float), rtol=1e-6)


def test_random_factories_shapes_ranges_and_generators():
    g = cl.Generator().manual_seed(3)
    a = cl.randn(2, 3, generator=g)
    b = cl.randn(size=(2, 3), generator=cl.Generator().manual_seed(3))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert a.dtype == cl.float32 and cl.randn(2, dtype=cl.float64).dtype == np.float64
    assert cl.rand(4, requires_grad=True).requires_grad and cl.rand(100).min().item() >= 0
    r = cl.randint(3, 7, (50,))
    assert r.dtype == np.int64 and r.min().item() >= 3 and r.max().item() < 7
    assert cl.randint(5, size=(2, 2)).shape == (2, 2)
    assert sorted(cl.randperm(10).tolist()) == list(range(10)) and cl.randperm(4).dtype == np.int64
    assert cl.randn_like(cl.zeros(2, 5)).shape == (2, 5) and cl.rand_like(cl.zeros(3)).dtype == np.float32
    cl.manual_seed(11)
    first = cl.randn(5)
    cl.manual_seed(11)
    np.testing.assert_array_equal(first.numpy(), cl.randn(5).numpy())
    with pytest.raises(RuntimeError, match="negative dimension"):
        cl.zeros(2, -1)
    with pytest.raises(RuntimeError, match="convlens runs on the CPU only"):
        cl.zeros(2, device="cuda")
    assert cl.zeros(2, device="cpu").device == cl.device("cpu")


def test_default_dtype_can_be_changed_as_in_torch():
    assert cl.get_default_dtype() == cl.float32
    try:
        cl.set_default_dtype(cl.float64)
        assert cl.tensor([1.5]).dtype == np.float64 and cl.zeros(2).dtype == np.float64
        assert cl.randn(2).dtype == np.float64 and cl.arange(0.0, 1.0, 0.5).dtype == np.float64
        assert cl.nn.Linear(2, 3).weight.dtype == np.float64
    finally:
        cl.set_default_dtype(cl.float32)
    assert cl.tensor([1.5]).dtype == np.float32
    with pytest.raises(TypeError):
        cl.set_default_dtype(cl.int64)
    assert cl.finfo(cl.float32).eps == torch.finfo(torch.float32).eps


def test_tensor_properties_and_conversions():
    x = cl.zeros(2, 3)
    tx = torch.zeros(2, 3)
    assert x.numel() == cl.numel(x) == tx.numel() and x.nelement() == 6 and x.element_size() == 4
    assert x.stride() == tx.stride() and x.t().stride() == tx.t().stride() and x.t().is_contiguous() is False
    assert x.t().contiguous().is_contiguous() and x.is_floating_point() and not x.long().is_floating_point()
    assert x.type() == tx.type() == "torch.FloatTensor" and x.long().type() == "torch.LongTensor"
    assert x.double().type_as(x).dtype == np.float32 and x.size(1) == 3 and x.dim() == 2
    assert cl.is_tensor(x) and not cl.is_tensor(np.zeros(2))
    shared = np.zeros(3)
    assert cl.as_tensor(shared)._data is shared and cl.from_numpy(shared)._data is shared
    assert cl.tensor(shared)._data is not shared


# ---- errors as torch gives them --------------------------------------------------------------------------
def test_errors_name_types_and_shapes_as_torch():
    x = cl.zeros(2, 3)
    for bad in (lambda: x + "a", lambda: "a" + x, lambda: x * None, lambda: x - {}, lambda: x @ "m"):
        with pytest.raises(TypeError, match="unsupported operand|can only concatenate"):
            bad()
    with pytest.raises(RuntimeError, match=r"size of tensor a \(3\) must match the size of tensor b \(4\) "
                                           r"at non-singleton dimension 1 \(shapes \(2, 3\) and \(4,\)\)"):
        x + cl.zeros(4)
    with pytest.raises(ValueError):  # the same error is a ValueError for older convlens code
        x * cl.zeros(5)
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(2x3 and 4x5\)"):
        x @ cl.zeros(4, 5)
    with pytest.raises(RuntimeError, match="must match"):
        _ = x == cl.zeros(4)
    with pytest.raises(RuntimeError, match="masked_fill only supports boolean masks"):
        x.masked_fill(cl.zeros(2, 3), 1.0)
    with pytest.raises(RuntimeError, match=r"t\(\) expects a tensor with <= 2 dimensions"):
        cl.zeros(1, 2, 3).t()
    with pytest.raises(TypeError, match="argument 'input' must be a Tensor"):
        cl.sum([1, 2])
    with pytest.raises(RuntimeError, match="index tensor must have the same number of dimensions"):
        x.gather(1, cl.tensor([0, 1]))
    with pytest.raises(RuntimeError, match="mean"):
        cl.tensor([1, 2]).mean()
    import convlens.nn as nn

    with pytest.raises(TypeError, match=r"Conv2d\(1, 4, kernel_size=3\): expected a convlens Tensor.*ndarray"):
        nn.Conv2d(1, 4, 3)(np.zeros((1, 1, 8, 8), np.float32))
    with pytest.raises(RuntimeError, match=r"expected input with 1 channels, got \(1, 3, 8, 8\)"):
        nn.Conv2d(1, 4, 3)(cl.zeros(1, 3, 8, 8))
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(4x10 and 20x5\)"):
        nn.Linear(20, 5)(cl.zeros(4, 10))
