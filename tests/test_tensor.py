"""The autograd core (convlens.tensor, convlens.autograd, convlens.ops): float64 gradchecks of every op,
forward/backward against PyTorch, dtype rules and graph behaviour."""

import numpy as np
import pytest

import convlens as cl
from convlens.testing import gradcheck

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)


def t64(*shape, positive=False, requires_grad=True):
    data = RNG.standard_normal(shape)
    if positive:
        data = np.abs(data) + 0.5
    return cl.tensor(data, dtype="float64", requires_grad=requires_grad)


# name → (function on convlens/torch tensors alike, input shapes, positive inputs)
UNARY = {
    "neg": (lambda a: -a, False),
    "exp": (lambda a: a.exp(), False),
    "log": (lambda a: a.log(), True),
    "sqrt": (lambda a: a.sqrt(), True),
    "abs": (lambda a: a.abs(), True),  # away from the kink at 0
    "relu": (lambda a: a.relu(), False),
    "sigmoid": (lambda a: a.sigmoid(), False),
    "tanh": (lambda a: a.tanh(), False),
    "clamp": (lambda a: a.clamp(-0.5, 0.7), False),
    "pow_scalar": (lambda a: a**3, False),
    "pow_half": (lambda a: a**0.5, True),
    "clone": (lambda a: a.clone(), False),
    "sum_all": (lambda a: a.sum(), False),
    "sum_dim": (lambda a: a.sum(1), False),
    "sum_keep": (lambda a: a.sum((0, 2), keepdim=True), False),
    "mean_all": (lambda a: a.mean(), False),
    "mean_dim": (lambda a: a.mean(-1), False),
    "mean_keep": (lambda a: a.mean(1, keepdim=True), False),
    "amax_all": (lambda a: a.amax(), False),
    "amax_dim": (lambda a: a.amax(1), False),
    "amin_dim": (lambda a: a.amin(2, keepdim=True), False),
    "var": (lambda a: a.var(1), False),
    "reshape": (lambda a: a.reshape(4, 6), False),
    "permute": (lambda a: a.permute(2, 0, 1), False),
    "transpose": (lambda a: a.transpose(0, 2), False),
    "flatten": (lambda a: a.flatten(1), False),
    "unsqueeze_squeeze": (lambda a: a.unsqueeze(1).squeeze(1) * 2, False),
    "expand": (lambda a: a[:, :1].expand(2, 5, 4), False),
    "getitem_slice": (lambda a: a[:, 1:, ::2], False),
    "getitem_int": (lambda a: a[1, 0], False),
    "T": (lambda a: a[0].T, False),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_gradcheck_and_torch(name):
    fn, positive = UNARY[name]
    a = t64(2, 3, 4, positive=positive)
    gradcheck(fn, [a])
    ta = torch.tensor(a._data, requires_grad=True)
    out, tout = fn(a), fn(ta)
    np.testing.assert_allclose(out._data, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = RNG.standard_normal(out.shape)
    a.grad = None
    out.backward(cl.tensor(g, dtype="float64"))
    tout.backward(torch.tensor(g))
    np.testing.assert_allclose(a.grad._data, ta.grad.numpy(), rtol=1e-10, atol=1e-12)


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b,
}
BROADCASTS = [((2, 3), (2, 3)), ((2, 3), (3,)), ((4, 1, 3), (2, 1)), ((1,), (2, 3))]


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", BROADCASTS)
def test_binary_broadcasting_gradcheck_and_torch(name, shapes):
    fn = BINARY[name]
    positive = name in ("pow", "div")
    a, b = t64(*shapes[0], positive=positive), t64(*shapes[1], positive=positive)
    gradcheck(fn, [a, b])
    ta, tb = torch.tensor(a._data, requires_grad=True), torch.tensor(b._data, requires_grad=True)
    a.grad = b.grad = None
    out, tout = fn(a, b), fn(ta, tb)
    np.testing.assert_allclose(out._data, tout.detach().numpy(), rtol=1e-10)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(a.grad._data, ta.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b.grad._data, tb.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("shapes", [((3,), (3,)), ((2, 3), (3, 4)), ((3,), (3, 4)), ((2, 3), (3,)),
                                    ((5, 2, 3), (3, 4)), ((3,), (5, 3, 2)), ((5, 2, 3), (3,)),
                                    ((5, 2, 3), (1, 3, 4)), ((2, 1, 2, 3), (4, 3, 2))])
def test_matmul_gradcheck_and_torch(shapes):
    a, b = t64(*shapes[0]), t64(*shapes[1])
    gradcheck(lambda x, y: x @ y, [a, b])
    ta, tb = torch.tensor(a._data, requires_grad=True), torch.tensor(b._data, requires_grad=True)
    a.grad = b.grad = None
    (a @ b).sum().backward()
    (ta @ tb).sum().backward()
    np.testing.assert_allclose((a @ b)._data, (ta @ tb).detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(a.grad._data, ta.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(b.grad._data, tb.grad.numpy(), rtol=1e-10)


def test_fancy_indexing_with_repeats_and_masks():
    a = t64(4, 3)
    idx = np.array([0, 2, 0, 3])
    gradcheck(lambda x: x[idx] * 2, [a])
    gradcheck(lambda x: x[idx, np.array([1, 1, 0, 2])], [a])
    gradcheck(lambda x: x[x._data > 0], [a])
    a.grad = None
    a[cl.tensor(idx)].sum().backward()
    np.testing.assert_array_equal(a.grad._data[:, 0], [2, 0, 1, 1])


def test_cat_and_stack():
    a, b = t64(2, 3), t64(4, 3)
    gradcheck(lambda x, y: cl.cat([x, y], 0), [a, b])
    c = t64(2, 3)
    gradcheck(lambda x, y: cl.stack([x, y], dim=1), [a, c])
    ta, tc = torch.tensor(a._data), torch.tensor(c._data)
    np.testing.assert_array_equal(cl.stack([a, c], -1)._data, torch.stack([ta, tc], -1).numpy())
    with pytest.raises(ValueError, match="cat"):
        cl.cat([])


def test_max_ties_share_gradient_like_torch_amax():
    a = cl.tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]], requires_grad=True)
    a.amax(1).sum().backward()
    ta = torch.tensor(a._data, requires_grad=True)
    ta.amax(1).sum().backward()
    np.testing.assert_allclose(a.grad._data, ta.grad.numpy())


def test_cast_keeps_gradient_dtype_and_int_cast_ends_graph():
    a = cl.randn(3, requires_grad=True)
    b = a.double()
    assert b.dtype == np.float64 and b.requires_grad
    (b * 2).sum().backward()
    assert a.grad.dtype == np.float32
    np.testing.assert_allclose(a.grad._data, 2)
    assert not a.long().requires_grad  # an integer result carries no gradient, as in PyTorch


def test_float32_stays_float32():
    a = cl.randn(2, 3, requires_grad=True)
    outs = [a + 1.5, 2.0 * a, a / 3, a**2, a.exp(), a.sigmoid(), a.mean(), a.var(0), a - np.ones(3), a @ a.T]
    for out in outs:
        assert out.dtype == np.float32, out
    sum(o.sum() for o in outs).backward()
    assert a.grad.dtype == np.float32


def test_tensor_constructor_dtype_rules():
    assert cl.tensor([1.0, 2.0]).dtype == np.float32
    assert cl.tensor([1, 2]).dtype == np.int64
    assert cl.tensor(np.zeros(2)).dtype == np.float64  # arrays keep their dtype
    assert cl.tensor([True]).dtype == np.bool_
    with pytest.raises(RuntimeError, match="floating point"):
        cl.tensor([1, 2], requires_grad=True)


def test_gradient_accumulates_and_zero_dim_reductions():
    a = t64(3)
    (a * 2).sum().backward()
    (a * 3).sum().backward()
    np.testing.assert_allclose(a.grad._data, 5)
    s = cl.tensor(2.0, dtype="float64", requires_grad=True)
    out = s.sum(0) * 3  # dim 0 of a 0-d tensor is allowed, as in PyTorch
    out.backward()
    assert s.grad.item() == 3


def test_shared_subexpression_and_diamond_graph():
    a = t64(3)
    gradcheck(lambda x: (x * x + x.exp()) * (x * x), [a])
    b = t64(2, 2)
    gradcheck(lambda x: (lambda y: y @ y + y)(x.tanh()), [b])


def test_hooks_retain_grad_and_second_backward_error():
    a = t64(3)
    seen = []
    a.register_hook(lambda g: seen.append(g.copy()) or g * 10)
    h = a * 2
    h.retain_grad()
    h.sum().backward()
    assert len(seen) == 1
    np.testing.assert_allclose(a.grad._data, 20)
    np.testing.assert_allclose(h.grad._data, 1)
    out = (a * a).sum()
    out.backward(retain_graph=True)
    out.backward()
    with pytest.raises(RuntimeError, match="second time"):
        out.backward()


def test_no_grad_records_nothing():
    a = t64(3)
    with cl.no_grad():
        b = a * 2
    assert not b.requires_grad and b.grad_fn is None

    @cl.no_grad()
    def f(x):
        return x + 1

    assert not f(a).requires_grad
    assert cl.is_grad_enabled()


def test_backward_errors():
    with pytest.raises(RuntimeError, match="does not require grad"):
        cl.tensor([1.0]).sum().backward()
    a = t64(3)
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (a * 2).backward()
    with pytest.raises(ValueError, match="gradient has shape"):
        (a * 2).backward(np.ones(4))
    with pytest.raises(ValueError, match="reshape"):
        a.reshape(2, 2)
    with pytest.raises(IndexError, match="out of range"):
        a.sum(3)


def test_random_generator_is_seeded():
    cl.manual_seed(3)
    x = cl.randn(4)
    state = cl.get_rng_state()
    y = cl.rand(5)
    cl.manual_seed(3)
    np.testing.assert_array_equal(cl.randn(4)._data, x._data)
    cl.set_rng_state(state)
    np.testing.assert_array_equal(cl.rand(5)._data, y._data)
