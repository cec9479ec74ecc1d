"""convlens.nn.functional's activations, linear, flatten, dropout, batch_norm and losses: float64
gradchecks and forward/backward against PyTorch."""

import numpy as np
import pytest

import convlens as cl
import convlens.nn.functional as F
from convlens.testing import gradcheck

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RNG = np.random.default_rng(1)


def pair(*shape, dtype="float64", scale=1.0):
    """The same random data as a convlens and a torch tensor, both requiring grad."""
    data = (RNG.standard_normal(shape) * scale).astype(dtype)
    return cl.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)


def assert_same(out, tout, inputs, tinputs, rtol=1e-9, atol=1e-11):
    """Equal outputs, and equal input gradients for a random upstream gradient."""
    np.testing.assert_allclose(out._data, tout.detach().numpy(), rtol=rtol, atol=atol)
    g = RNG.standard_normal(out.shape).astype(out.dtype)
    out.backward(cl.tensor(g))
    tout.backward(torch.tensor(g))
    for x, tx in zip(inputs, tinputs):
        np.testing.assert_allclose(x.grad._data, tx.grad.numpy(), rtol=rtol, atol=atol)


# ---- activations ---------------------------------------------------------------------------------------
ACTIVATIONS = [
    (F.relu, TF.relu, {}), (F.leaky_relu, TF.leaky_relu, {}), (F.leaky_relu, TF.leaky_relu, {"negative_slope": 0.2}),
    (F.sigmoid, torch.sigmoid, {}), (F.tanh, torch.tanh, {}),
    (F.softmax, TF.softmax, {"dim": 1}), (F.softmax, TF.softmax, {"dim": -1}), (F.softmax, TF.softmax, {"dim": 0}),
    (F.log_softmax, TF.log_softmax, {"dim": 1}), (F.log_softmax, TF.log_softmax, {"dim": -1}),
]


@pytest.mark.parametrize("fn,tfn,kwargs", ACTIVATIONS)
def test_activations_against_torch_and_gradcheck(fn, tfn, kwargs):
    x, tx = pair(3, 4, 5)
    assert_same(fn(x, **kwargs), tfn(tx, **kwargs), [x], [tx])
    gradcheck(lambda a: fn(a, **kwargs), [pair(2, 3, 4)[0]])


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax])
def test_softmax_is_stable_for_huge_logits_and_keeps_float32(fn):
    x = cl.tensor([[1000.0, 0.0, -1000.0], [-1e4, -1e4, -1e4]])
    out = fn(x, dim=1)
    assert out.dtype == np.float32 and np.all(np.isfinite(out._data))
    expected = (TF.softmax if fn is F.softmax else TF.log_softmax)(torch.tensor(x._data), dim=1).numpy()
    np.testing.assert_allclose(out._data, expected, rtol=1e-6)


def test_softmax_dim_errors():
    with pytest.raises(ValueError, match="softmax: dim 3 out of range"):
        F.softmax(cl.randn(2, 3), dim=3)
    with pytest.raises(ValueError, match="log_softmax: dim must be an integer"):
        F.log_softmax(cl.randn(2, 3), dim="1")
    with pytest.raises(ValueError, match="relu: expected a convlens Tensor"):
        F.relu(np.ones(3))


# ---- linear, flatten, dropout ------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5,), (4, 5), (2, 3, 5)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_against_torch_and_gradcheck(shape, bias):
    x, tx = pair(*shape)
    w, tw = pair(3, 5)
    b, tb = pair(3) if bias else (None, None)
    inputs, tinputs = [x, w] + ([b] if bias else []), [tx, tw] + ([tb] if bias else [])
    assert_same(F.linear(x, w, b), TF.linear(tx, tw, tb), inputs, tinputs)
    gradcheck(lambda *t: F.linear(*t), [pair(*shape)[0], pair(3, 5)[0]] + ([pair(3)[0]] if bias else []))


def test_linear_errors_and_float32():
    x, w = cl.randn(4, 5), cl.randn(3, 5)
    assert F.linear(x, w, cl.randn(3)).dtype == np.float32
    with pytest.raises(ValueError, match=r"linear: expected input with last dimension 5 .*got input of shape \(4, 6\)"):
        F.linear(cl.randn(4, 6), w)
    with pytest.raises(ValueError, match=r"linear: expected bias of shape \(3,\), got \(4,\)"):
        F.linear(x, w, cl.randn(4))
    with pytest.raises(ValueError, match=r"linear: input \(float64\), weight \(float32\) and bias must share a dtype"):
        F.linear(x.double(), w)
    with pytest.raises(ValueError, match="weight must be 2-d"):
        F.linear(x, cl.randn(5))


@pytest.mark.parametrize("start,end", [(1, -1), (0, -1), (1, 2), (2, 3), (-2, -1), (0, 0)])
def test_flatten_against_torch(start, end):
    x, tx = pair(2, 3, 4, 5)
    assert_same(F.flatten(x, start, end), torch.flatten(tx, start, end), [x], [tx])


def test_flatten_errors():
    with pytest.raises(ValueError, match="flatten: start_dim=4 out of range"):
        F.flatten(cl.randn(2, 3), 4)
    with pytest.raises(ValueError, match="start_dim=2 comes after end_dim=1"):
        F.flatten(cl.randn(2, 3, 4), 2, 1)


def test_dropout_identity_cases():
    x = cl.randn(10, 10, requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0)._data, 0)
    with pytest.raises(ValueError, match=r"dropout: p must be a probability in \[0, 1\], got 1.5"):
        F.dropout(x, 1.5)


def test_dropout_mask_statistics_gradient_and_seed():
    cl.manual_seed(0)
    x = cl.ones(200, 500, requires_grad=True)
    out = F.dropout(x, 0.3)
    assert out.dtype == np.float32
    kept = out._data != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(out._data[kept], 1 / 0.7, rtol=1e-6)
    assert abs(out._data.mean() - 1.0) < 0.02  # inverted dropout keeps the expectation
    out.sum().backward()
    np.testing.assert_array_equal(x.grad._data, out._data)  # ∂/∂x of x·m is m
    cl.manual_seed(0)
    np.testing.assert_array_equal(F.dropout(cl.ones(200, 500), 0.3)._data, out._data)
    # same statistics as torch's (the random streams differ)
    tout = TF.dropout(torch.ones(200, 500), 0.3)
    assert abs((tout != 0).float().mean().item() - kept.mean()) < 0.01


def test_dropout_gradcheck():
    x = pair(3, 4)[0]
    cl.manual_seed(5)
    state = cl.get_rng_state()

    def fn(a):
        cl.set_rng_state(state)  # the same mask at every evaluation
        return F.dropout(a, 0.4)

    gradcheck(fn, [x])


# ---- batch norm ----------------------------------------------------------------------------------------
SHAPES = [(6, 3), (4, 3, 5), (3, 3, 4, 5), (2, 3, 2, 3, 4)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_against_torch(shape, affine):
    x, tx = pair(*shape, scale=2.0)
    w, tw = pair(3) if affine else (None, None)
    b, tb = pair(3) if affine else (None, None)
    rm, rv = np.zeros(3), np.ones(3)
    trm, trv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    out = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.2, eps=1e-3)
    tout = TF.batch_norm(tx, trm, trv, tw, tb, training=True, momentum=0.2, eps=1e-3)
    inputs, tinputs = [x] + ([w, b] if affine else []), [tx] + ([tw, tb] if affine else [])
    assert_same(out, tout, inputs, tinputs)
    np.testing.assert_allclose(rm, trm.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv, trv.numpy(), rtol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_gradcheck(shape):
    small = tuple(min(s, 3) for s in shape)
    x, w, b = pair(*small)[0], pair(small[1])[0], pair(small[1])[0]
    gradcheck(lambda *t: F.batch_norm(*t[:1], None, None, *t[1:], training=True), [x, w, b])
    rm, rv = cl.tensor(RNG.standard_normal(small[1])), cl.tensor(RNG.random(small[1]) + 0.5)
    gradcheck(lambda *t: F.batch_norm(t[0], rm, rv, *t[1:], training=False), [x, w, b])


def test_batch_norm_running_stats_over_several_steps_and_eval():
    rm, rv = cl.zeros(4), cl.ones(4)  # Tensors (as module buffers) are updated in place
    trm, trv = torch.zeros(4), torch.ones(4)
    for step in range(5):
        data = (RNG.standard_normal((8, 4, 3, 3)) * (step + 1) + step).astype(np.float32)
        out = F.batch_norm(cl.tensor(data), rm, rv, training=True)
        tout = TF.batch_norm(torch.tensor(data), trm, trv, training=True)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out._data, tout.numpy(), rtol=1e-4, atol=1e-5)
    assert rm.dtype == np.float32
    np.testing.assert_allclose(rm._data, trm.numpy(), rtol=1e-5)
    np.testing.assert_allclose(rv._data, trv.numpy(), rtol=1e-5)
    x, tx = pair(5, 4, 2, 2, dtype="float32")
    w, tw = pair(4, dtype="float32")
    out = F.batch_norm(x, rm, rv, w, None, training=False)
    tout = TF.batch_norm(tx, trm, trv, tw, None, training=False)
    assert_same(out, tout, [x, w], [tx, tw], rtol=1e-5, atol=1e-5)


def test_batch_norm_errors():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(cl.randn(1, 3), None, None, training=True)
    with pytest.raises(ValueError, match=r"expected running_mean of shape \(3,\), got \(4,\)"):
        F.batch_norm(cl.randn(2, 3), np.zeros(4), np.ones(3))
    with pytest.raises(ValueError, match="required when training=False"):
        F.batch_norm(cl.randn(2, 3), None, None, training=False)
    with pytest.raises(ValueError, match="2-d to 5-d"):
        F.batch_norm(cl.randn(3), None, None, training=True)
    with pytest.raises(ValueError, match=r"expected weight of shape \(3,\)"):
        F.batch_norm(cl.randn(2, 3), None, None, cl.ones(2), training=True)


# ---- losses ------------------------------------------------------------------------------------------
CE_CONFIGS = [
    dict(), dict(reduction="sum"), dict(reduction="none"), dict(label_smoothing=0.1),
    dict(weight=True), dict(weight=True, label_smoothing=0.2), dict(ignore_index=1),
    dict(ignore_index=2, weight=True, label_smoothing=0.3), dict(ignore_index=0, reduction="none", label_smoothing=0.1),
    dict(weight=True, reduction="sum", ignore_index=3),
]


def _targets(shape, classes, ignore_index=None):
    t = RNG.integers(0, classes, shape)
    if ignore_index is not None:
        t.flat[::3] = ignore_index  # ensure some ignored entries
    return t


@pytest.mark.parametrize("input_shape", [(6, 4), (3, 4, 5), (2, 4, 3, 2), (4,)])
@pytest.mark.parametrize("config", CE_CONFIGS, ids=str)
def test_cross_entropy_and_nll_against_torch(input_shape, config):
    config = dict(config)
    classes = input_shape[0] if len(input_shape) == 1 else input_shape[1]
    target_shape = () if len(input_shape) == 1 else (input_shape[0],) + input_shape[2:]
    target = _targets(target_shape, classes, config.get("ignore_index") if target_shape else None)
    if config.pop("weight", False):
        wdata = RNG.random(classes) + 0.5
        config["weight"], tweight = cl.tensor(wdata), torch.tensor(wdata)
    else:
        tweight = None
    tconfig = {**config, "weight": tweight}
    x, tx = pair(*input_shape, scale=3.0)
    out = F.cross_entropy(x, target, **config)
    tout = TF.cross_entropy(tx, torch.tensor(target), **tconfig)
    assert_same(out, tout, [x], [tx])
    every_target_ignored = not np.isfinite(out._data).all()  # a mean over nothing: NaN, gradient 0 (torch's)
    if not every_target_ignored:
        gradcheck(lambda a: F.cross_entropy(a, target, **config), [pair(*input_shape)[0]])
    config.pop("label_smoothing", None)
    tconfig.pop("label_smoothing", None)
    lp, tlp = pair(*input_shape)
    assert_same(F.nll_loss(lp, target, **config), TF.nll_loss(tlp, torch.tensor(target), **tconfig), [lp], [tlp])
    if not every_target_ignored:
        gradcheck(lambda a: F.nll_loss(a, target, **config), [pair(*input_shape)[0]])


@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
def test_mean_loss_with_every_target_ignored_is_nan_with_zero_gradient_as_torch(fn):
    x, tx = pair(3, 4)
    target = np.array([1, 1, 1])
    out = getattr(F, fn)(x, target, ignore_index=1)
    tout = getattr(TF, fn)(tx, torch.tensor(target), ignore_index=1)
    assert np.isnan(out.item()) and np.isnan(tout.item())
    out.backward()
    tout.backward()
    np.testing.assert_array_equal(x.grad._data, tx.grad.numpy())
    np.testing.assert_array_equal(x.grad._data, 0.0)


@pytest.mark.parametrize("config", [dict(), dict(label_smoothing=0.2), dict(reduction="none"),
                                    dict(weight=True, reduction="sum")], ids=str)
def test_cross_entropy_with_probability_targets(config):
    config = dict(config)
    tconfig = dict(config)
    if config.pop("weight", False):
        wdata = RNG.random(5) + 0.5
        config["weight"], tconfig["weight"] = wdata, torch.tensor(wdata)
    probs = RNG.random((4, 5, 3))
    probs /= probs.sum(1, keepdims=True)
    x, tx = pair(4, 5, 3)
    assert_same(F.cross_entropy(x, probs, **config), TF.cross_entropy(tx, torch.tensor(probs), **tconfig), [x], [tx])
    gradcheck(lambda a: F.cross_entropy(a, probs, **config), [pair(4, 5, 3)[0]])


def test_cross_entropy_float32_and_fused_gradient():
    x = cl.randn(8, 10, requires_grad=True)
    target = RNG.integers(0, 10, 8)
    loss = F.cross_entropy(x, target)
    assert loss.dtype == np.float32 and loss.shape == ()
    loss.backward()
    expected = F.softmax(x.detach(), 1)._data
    expected[np.arange(8), target] -= 1
    np.testing.assert_allclose(x.grad._data, expected / 8, rtol=1e-5, atol=1e-7)


def test_cross_entropy_errors():
    x = cl.randn(8, 10)
    with pytest.raises(ValueError, match=r"target values must be class indices in \[0, 10\).*got 12"):
        F.cross_entropy(x, np.array([12] + [0] * 7))
    with pytest.raises(ValueError, match="got -1"):
        F.cross_entropy(x, np.array([-1] + [0] * 7))
    with pytest.raises(ValueError, match=r"expected target of shape \(8,\) for input of shape \(8, 10\), got \(8, 1\)"):
        F.cross_entropy(x, np.zeros((8, 1), dtype=np.int64))
    with pytest.raises(ValueError, match="class-probability targets must have the input's shape"):
        F.cross_entropy(x, np.zeros(8, dtype=np.float32))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(x, np.zeros(8, dtype=np.int64), reduction="avg")
    with pytest.raises(ValueError, match=r"expected weight of shape \(10,\)"):
        F.cross_entropy(x, np.zeros(8, dtype=np.int64), weight=np.ones(3))
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        F.cross_entropy(x, np.zeros(8, dtype=np.int64), label_smoothing=1.5)
    with pytest.raises(ValueError, match="nll_loss: expected integer class indices"):
        F.nll_loss(x, np.zeros(8, dtype=np.float32))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_against_torch(reduction):
    x, tx = pair(3, 4)
    y, ty = pair(3, 4)
    assert_same(F.mse_loss(x, y, reduction=reduction), TF.mse_loss(tx, ty, reduction=reduction), [x, y], [tx, ty])
    gradcheck(lambda a, b: F.mse_loss(a, b, reduction=reduction), [pair(2, 3)[0], pair(2, 3)[0]])


def test_mse_loss_shape_mismatch():
    with pytest.raises(ValueError, match=r"mse_loss: expected target of the input's shape \(8, 1\), got \(8,\)"):
        F.mse_loss(cl.randn(8, 1), cl.randn(8))
    assert F.mse_loss(cl.randn(3), np.zeros(3)).dtype == np.float32
