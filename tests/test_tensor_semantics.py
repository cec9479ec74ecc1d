"""PyTorch's semantics for what user code touches first: max/min's (values, indices), `.data`, in-place
updates and their rules, devices, and tensors as indices."""

import numpy as np
import pytest

import convlens as cl
import convlens.nn as nn


def test_max_over_a_dim_returns_values_and_indices_even_for_a_batch_of_two():
    out = cl.tensor([[0.1, 0.7, 0.2], [0.9, 0.05, 0.05]])
    _, pred = out.max(1)  # the idiom that silently unpacked the two rows' values before
    assert pred.tolist() == [1, 0] and pred.dtype == np.int64
    values, indices = cl.max(out, 1)
    assert values.tolist() == pytest.approx([0.7, 0.9]) and indices.tolist() == [1, 0]
    r = out.min(dim=0, keepdim=True)
    assert r.values.shape == (1, 3) and r.indices.tolist() == [[0, 1, 1]]
    assert float(cl.max(out)) == pytest.approx(0.9) and float(out.min()) == pytest.approx(0.05)
    np.testing.assert_allclose(cl.max(out, cl.zeros(2, 3) + 0.5).numpy(), [[0.5, 0.7, 0.5], [0.9, 0.5, 0.5]])


@pytest.mark.parametrize("shape,dim,keepdim", [((5,), 0, False), ((3, 4), 1, True), ((2, 3, 4), -2, False),
                                               ((2, 1, 3), 1, False), ((4, 6), 0, True)])
@pytest.mark.parametrize("kind", ["max", "min"])
def test_max_min_dim_match_torch_forward_and_backward(shape, dim, keepdim, kind):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 3, size=shape).astype(np.float64)  # many ties: the gradient goes to one index
    x, tx = cl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    (v, i), (tv, ti) = getattr(x, kind)(dim, keepdim), getattr(tx, kind)(dim, keepdim)
    np.testing.assert_array_equal(v.detach().numpy(), tv.detach().numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    g = rng.standard_normal(tv.shape)
    v.backward(g)
    tv.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


def test_max_dim_gradcheck():
    from convlens.testing import gradcheck

    a = np.random.default_rng(1).standard_normal((3, 5))
    assert gradcheck(lambda t: t.max(1).values, [cl.tensor(a, requires_grad=True)])
    assert gradcheck(lambda t: t.min(0)[0], [cl.tensor(a, requires_grad=True)])


def test_data_is_a_detached_tensor_sharing_memory():
    p = nn.Parameter(cl.ones(3))
    d = p.data
    assert isinstance(d, cl.Tensor) and not d.requires_grad
    d.sub_(0.5)
    assert p.tolist() == [0.5, 0.5, 0.5]
    p.data = cl.zeros(2)
    assert p.shape == (2,) and p.requires_grad


def test_hand_written_sgd_updates_the_parameters_in_place():
    torch = pytest.importorskip("torch")
    w0 = np.random.default_rng(0).standard_normal((3, 2)).astype(np.float32)
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    results = []
    for lib in (cl, torch):
        w = lib.tensor(w0.copy(), requires_grad=True)
        for _ in range(3):
            loss = (lib.tensor(x) @ w).pow(2).mean() if lib is torch else (cl.tensor(x) @ w).__pow__(2).mean()
            loss.backward()
            with lib.no_grad():
                w -= 0.1 * w.grad
                w.grad.zero_()
        results.append(w.detach().numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)


def test_in_place_on_a_leaf_that_requires_grad_is_an_error_outside_no_grad():
    w = cl.ones(3, requires_grad=True)
    for update in (lambda: w.add_(1), lambda: w.mul_(2), lambda: w.__setitem__(0, 5.0), lambda: w.zero_()):
        with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
            update()
    with cl.no_grad():
        w[0] = 5.0
        w.clamp_(max=2.0)
    assert w.tolist() == [2.0, 1.0, 1.0] and w.is_leaf and w.requires_grad


def test_in_place_on_an_intermediate_is_recorded_like_torch():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(0).standard_normal((2, 3))
    grads = []
    for lib in (cl, torch):
        x = lib.tensor(a, requires_grad=True)
        out = x * 3
        out += x        # a residual add, in place
        out.mul_(2)
        out[0, 1] = 0.0
        out.clamp_(min=-1.0)
        out.sum().backward()
        grads.append((out.detach().numpy(), x.grad.numpy()))
    np.testing.assert_allclose(grads[0][0], grads[1][0])
    np.testing.assert_allclose(grads[0][1], grads[1][1])


def test_in_place_on_a_consumed_intermediate_is_a_clear_error():
    x = cl.ones(3, requires_grad=True)
    y = x * 2
    _z = y * y  # y is used by the graph
    with pytest.raises(RuntimeError, match="already used by an earlier operation"):
        y.add_(1)


def test_in_place_without_grad_writes_through_views_and_keeps_dtype():
    x = cl.zeros(2, 3)
    row = x[0]  # basic indexing gives a view, as in PyTorch
    x.add_(1, alpha=2).mul_(cl.tensor([1.0, 2.0, 3.0]))
    assert x.tolist() == [[2, 4, 6], [2, 4, 6]] and x.dtype == np.float32
    x.copy_(cl.tensor([7.0, 8.0, 9.0], dtype="float64"))
    assert x.tolist() == [[7, 8, 9], [7, 8, 9]] and x.dtype == np.float32
    assert row.tolist() == [7, 8, 9]
    counts = cl.zeros(3, dtype=cl.int64)
    counts += cl.tensor([1, 2, 3])
    assert counts.tolist() == [1, 2, 3]
    with pytest.raises(RuntimeError, match="can't be cast"):
        counts += 0.5
    with pytest.raises(RuntimeError, match="does not match"):
        cl.zeros(3).add_(cl.zeros(2, 3))


def test_devices_answer_as_torch_without_a_gpu():
    dev = cl.device("cuda" if cl.cuda.is_available() else "cpu")
    assert str(dev) == "cpu" and dev == cl.device("cpu") and cl.accelerator.current_accelerator() is None
    assert not cl.backends.mps.is_available() and cl.cuda.device_count() == 0
    x = cl.ones(2)
    assert x.to(dev) is x and x.cpu() is x and x.device == cl.device("cpu")
    assert x.to("cpu", cl.float64).dtype == np.float64 and x.to(cl.zeros(1, dtype=cl.float64)).dtype == np.float64
    p = nn.Linear(2, 2).weight
    assert p.device.type == "cpu" and str(cl.device("cuda:1")) == "cuda:1"
    with pytest.raises(RuntimeError, match="CPU only"):
        x.to("cuda")
    with pytest.raises(RuntimeError, match="CPU only"):
        x.cuda()
    import convlens.cuda  # noqa: F401 - importable as a module, as torch.cuda

    assert x.type() == "torch.FloatTensor" and x.type(cl.int64).dtype == np.int64


def test_integer_tensors_work_as_indices_and_tensors_iterate():
    classes = ("plane", "car", "bird")
    labels = cl.tensor([2, 0])
    assert [classes[labels[j]] for j in range(2)] == ["bird", "plane"]
    assert [classes[label] for label in labels] == ["bird", "plane"]
    with pytest.raises(TypeError, match="only integer tensors of a single element"):
        classes[cl.tensor([0.0])]
    with pytest.raises(TypeError, match="0-d"):
        iter(cl.tensor(1.0))
