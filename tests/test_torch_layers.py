"""The layers added for issue 11, each against its torch twin: the twin's state_dict loads (same keys,
same shapes), and outputs, input gradients and parameter gradients agree (float64), over a grid of
shapes and options; functional forms are gradchecked."""

import numpy as np
import pytest

import convlens as cl
import convlens.nn as nn
import convlens.nn.functional as F
from convlens.testing import gradcheck

torch = pytest.importorskip("torch")
tnn, TF = torch.nn, torch.nn.functional


def _load(ours, theirs):
    state = theirs.state_dict()
    assert list(ours.state_dict()) == list(state), (list(ours.state_dict()), list(state))
    ours.load_state_dict({k: v.detach().numpy() for k, v in state.items()})


def twin(ours, theirs, *inputs, train=True, rtol=1e-9, atol=1e-10, seed=0, call=None):
    """Load theirs into ours, run both (float64) on the same inputs, compare outputs and all gradients."""
    ours.double()
    theirs.double()
    _load(ours, theirs)
    ours.train(train)
    theirs.train(train)
    xs = [cl.tensor(a, requires_grad=a.dtype.kind == "f") for a in inputs]
    txs = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in inputs]
    call = call or (lambda m, *args: m(*args))
    out, tout = call(ours, *xs), call(theirs, *txs)
    if isinstance(tout, tuple):
        for o, t in zip(out, tout):
            np.testing.assert_allclose(o.detach().numpy(), t.detach().numpy(), rtol=rtol, atol=atol)
        out, tout = out[0], tout[0]
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=rtol, atol=atol)
    g = np.random.default_rng(seed + 1).standard_normal(tuple(tout.shape))
    out.backward(cl.tensor(g))
    tout.backward(torch.tensor(g))
    for x, tx in zip(xs, txs):
        if tx.grad is not None:
            np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-7, atol=1e-9)
    ours_params, their_params = dict(ours.named_parameters()), dict(theirs.named_parameters())
    assert list(ours_params) == list(their_params)
    for name, p in their_params.items():
        if p.grad is not None:
            np.testing.assert_allclose(ours_params[name].grad.numpy(), p.grad.numpy(), rtol=1e-7, atol=1e-9,
                                       err_msg=name)
    for name, b in theirs.named_buffers():
        np.testing.assert_allclose(dict(ours.named_buffers())[name].numpy(), b.numpy(), rtol=1e-9, err_msg=name)
    return out


def _x(*shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


ACTIVATIONS = [
    ("ELU", {}), ("ELU", {"alpha": 0.4}), ("SELU", {}), ("CELU", {"alpha": 2.0}), ("SiLU", {}), ("GELU", {}), ("GELU", {"approximate": "tanh"}), ("Mish", {}),
    ("Hardswish", {}), ("Hardsigmoid", {}), ("Hardtanh", {}), ("Hardtanh", {"min_val": -0.5, "max_val": 2.0}),
    ("ReLU6", {}), ("Softplus", {}), ("Softplus", {"beta": 2.0, "threshold": 1.0}), ("Softsign", {}),
    ("LogSigmoid", {}), ("PReLU", {}), ("PReLU", {"num_parameters": 3, "init": 0.1}),
]


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (5, 3), (2, 3, 7)], ids=str)
@pytest.mark.parametrize("name,kwargs", ACTIVATIONS, ids=lambda v: str(v))
def test_activation_layers_match_torch(name, kwargs, shape):
    a = _x(*shape, scale=3.0)  # reaches the outer pieces of hardswish and friends
    twin(getattr(nn, name)(**kwargs), getattr(tnn, name)(**kwargs), a)


@pytest.mark.parametrize("fn", ["elu", "selu", "celu", "gelu", "silu", "mish", "hardswish", "hardsigmoid", "hardtanh",
                                "relu6", "softplus", "softsign", "logsigmoid"])
def test_activation_functions_gradcheck(fn):
    a = _x(3, 4, seed=3, scale=2.5)
    a[np.abs(np.abs(a) - 3) < 0.05] += 0.2  # away from the kinks at ±3 (and ±1 for hardtanh)
    a[np.abs(np.abs(a) - 1) < 0.05] += 0.2
    a[np.abs(a) < 0.05] += 0.2
    assert gradcheck(lambda t: getattr(F, fn)(t), [cl.tensor(a, requires_grad=True)])
    w = cl.tensor([0.2, -0.3, 0.5], dtype=cl.float64, requires_grad=True)
    assert gradcheck(lambda t, s: F.prelu(t, s), [cl.tensor(_x(2, 3, 4), requires_grad=True), w])


@pytest.mark.parametrize("shape,normalized", [((4, 5), (5,)), ((2, 3, 4, 5), (4, 5)), ((2, 3, 4, 5), (3, 4, 5)),
                                              ((3, 6), 6)], ids=str)
@pytest.mark.parametrize("options", [{}, {"elementwise_affine": False}, {"bias": False}, {"eps": 1e-2}], ids=str)
def test_layer_norm_matches_torch(shape, normalized, options):
    theirs = tnn.LayerNorm(normalized, **options)
    for p in theirs.parameters():
        p.data.normal_()
    twin(nn.LayerNorm(normalized, **options), theirs, _x(*shape) * 2 + 1)


@pytest.mark.parametrize("groups,channels,shape", [(1, 6, (2, 6, 4, 5)), (3, 6, (2, 6, 4, 5)), (6, 6, (2, 6, 3)),
                                                   (2, 4, (3, 4)), (2, 4, (1, 4, 2, 3, 2))], ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_matches_torch(groups, channels, shape, affine):
    theirs = tnn.GroupNorm(groups, channels, affine=affine)
    for p in theirs.parameters():
        p.data.normal_()
    twin(nn.GroupNorm(groups, channels, affine=affine), theirs, _x(*shape) + 0.5)


@pytest.mark.parametrize("dims,shape", [(1, (2, 3, 7)), (2, (2, 3, 4, 5)), (3, (2, 3, 3, 4, 2)), (2, (3, 4, 5))],
                         ids=str)
@pytest.mark.parametrize("options", [{}, {"affine": True}, {"affine": True, "track_running_stats": True},
                                     {"track_running_stats": True, "momentum": 0.3}], ids=str)
def test_instance_norm_matches_torch_in_training_and_evaluation(dims, shape, options):
    name = f"InstanceNorm{dims}d"
    ours, theirs = getattr(nn, name)(3, **options), getattr(tnn, name)(3, **options)
    for p in theirs.parameters():
        p.data.normal_()
    twin(ours, theirs, _x(*shape) * 2 + 1)  # training: batch statistics, running stats updated
    twin(ours, theirs, _x(*shape, seed=5), train=False)  # evaluation: running stats if tracked


def test_local_response_norm_matches_torch():
    for size in (1, 2, 3, 5):
        twin(nn.LocalResponseNorm(size, alpha=0.1, beta=0.7, k=2.0), tnn.LocalResponseNorm(size, 0.1, 0.7, 2.0),
             _x(2, 6, 3, 4))
    twin(nn.LocalResponseNorm(3), tnn.LocalResponseNorm(3), _x(2, 4, 5))


def test_normalisation_functions_gradcheck():
    x = cl.tensor(_x(2, 6, 3, 2), requires_grad=True)
    w, b = cl.tensor(_x(6, seed=1), requires_grad=True), cl.tensor(_x(6, seed=2), requires_grad=True)
    assert gradcheck(lambda t, a, c: F.group_norm(t, 3, a, c), [x, w, b])
    assert gradcheck(lambda t, a, c: F.instance_norm(t, weight=a, bias=c), [x, w, b])
    lw = cl.tensor(_x(3, 2, seed=3), requires_grad=True)
    assert gradcheck(lambda t, a: F.layer_norm(t, (3, 2), a), [x, lw])


def test_normalisation_errors_name_the_shapes():
    with pytest.raises(RuntimeError, match=r"normalized_shape=\[5\], expected input with shape \[\*, 5\], "
                                           r"but got input of size \[2, 4\]"):
        nn.LayerNorm(5)(cl.zeros(2, 4))
    with pytest.raises(ValueError, match="num_channels \\(6\\) must be divisible by num_groups \\(4\\)"):
        nn.GroupNorm(4, 6)
    with pytest.raises(RuntimeError, match=r"GroupNorm\(3, 6\): expected input \(N, 6, \*\), got shape \(2, 5, 3\)"):
        nn.GroupNorm(3, 6)(cl.zeros(2, 5, 3))


@pytest.mark.parametrize("cls", ["Dropout1d", "Dropout2d", "Dropout3d"])
def test_channel_dropout_zeroes_whole_channels_and_is_the_identity_in_eval(cls):
    dims = int(cls[-2])
    layer = getattr(nn, cls)(0.5)
    x = cl.ones(8, 16, *([3] * dims))
    cl.manual_seed(0)
    y = layer(x).numpy().reshape(8, 16, -1)
    per_channel = y.min(-1), y.max(-1)
    np.testing.assert_array_equal(per_channel[0], per_channel[1])  # each channel all 0 or all 2
    assert set(np.unique(y)) == {0.0, 2.0} and 0.3 < (y == 0).mean() < 0.7
    unbatched = layer(cl.ones(16, *([3] * dims))) if cls != "Dropout2d" else layer(cl.ones(16, 3, 3))
    assert unbatched.shape == ((16,) + (3,) * dims if cls != "Dropout2d" else (16, 3, 3))
    layer.eval()
    assert layer(x).numpy().min() == 1.0
    g = cl.ones(2, 3, 4, 4, requires_grad=True)
    out = F.dropout2d(g, 0.5)
    out.sum().backward()
    np.testing.assert_array_equal(g.grad.numpy(), out.detach().numpy())  # ∂/∂x = the mask
    assert repr(getattr(nn, cls)(0.2)) == repr(getattr(tnn, cls)(0.2))


def test_containers_register_like_torch():
    ours = nn.ModuleDict({"conv": nn.Conv2d(1, 2, 3), "fc": nn.Linear(4, 2)})
    theirs = tnn.ModuleDict({"conv": tnn.Conv2d(1, 2, 3), "fc": tnn.Linear(4, 2)})
    _load(ours, theirs)
    ours["act"] = nn.ReLU()
    assert list(ours) == ["conv", "fc", "act"] and "fc" in ours and len(ours) == 3
    assert isinstance(ours.pop("act"), nn.ReLU) and list(ours.keys()) == ["conv", "fc"]
    plist = nn.ParameterList([nn.Parameter(cl.zeros(2)), cl.ones(3)])
    tplist = tnn.ParameterList([tnn.Parameter(torch.zeros(2)), torch.ones(3)])
    _load(plist, tplist)
    assert all(isinstance(p, nn.Parameter) for p in plist) and len(list(plist.parameters())) == 2
    plist.append(cl.zeros(1))
    assert plist[-1].shape == (1,) and list(plist.state_dict()) == ["0", "1", "2"]
    pdict = nn.ParameterDict({"a": nn.Parameter(cl.zeros(2)), "b": nn.Parameter(cl.ones(1))})
    tpdict = tnn.ParameterDict({"a": tnn.Parameter(torch.zeros(2)), "b": tnn.Parameter(torch.ones(1))})
    _load(pdict, tpdict)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = nn.ModuleDict({"x": nn.Linear(2, 1)})
            self.scales = nn.ParameterList([nn.Parameter(cl.ones(1))])

        def forward(self, x):
            return self.heads["x"](x) * self.scales[0]

    net = Net()
    assert sorted(n for n, _ in net.named_parameters()) == ["heads.x.bias", "heads.x.weight", "scales.0"]
    net(cl.ones(3, 2)).sum().backward()
    assert net.scales[0].grad is not None


CONV_T_CASES = [  # (dims, N, C_in, C_out, spatial, kernel, stride, padding, output_padding, groups, dilation)
    (1, 2, 3, 4, 7, 3, 1, 0, 0, 1, 1), (1, 2, 3, 4, 7, 3, 2, 1, 1, 1, 1), (1, 1, 4, 2, 5, 4, 3, 2, 2, 2, 1),
    (1, 2, 2, 2, 6, 3, 1, 1, 0, 2, 2), (2, 2, 3, 4, (5, 6), 3, 2, 1, 1, 1, 1), (2, 1, 4, 6, (4, 4), 2, 1, 0, 0, 2, 1),
    (2, 2, 2, 3, (5, 5), 3, 3, 2, 1, 1, 2), (2, 1, 1, 1, (3, 3), 3, 1, 0, 0, 1, 3), (2, 2, 6, 4, (7, 7), 5, 2, 2, 0, 2, 1),
    (2, 1, 2, 2, (4, 4), 3, 1, 0, 1, 1, 2), (2, 2, 3, 5, (4, 3), (2, 3), (2, 1), (0, 1), (1, 0), 1, 1),
    (2, 1, 8, 8, (3, 3), 3, 2, 1, 1, 8, 1), (2, 3, 16, 32, (6, 6), 4, 2, 1, 0, 1, 1),
    (3, 1, 2, 3, (3, 4, 3), 3, 2, 1, 1, 1, 1), (3, 2, 4, 2, (3, 3, 3), 2, 1, 0, 0, 2, 2),
]


@pytest.mark.parametrize("case", CONV_T_CASES, ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose_matches_torch(case, bias):
    dims, n, cin, cout, spatial, k, s, p, op, g, d = case
    spatial = (spatial,) * dims if isinstance(spatial, int) else spatial
    name = f"ConvTranspose{dims}d"
    args = dict(stride=s, padding=p, output_padding=op, groups=g, bias=bias, dilation=d)
    ours, theirs = getattr(nn, name)(cin, cout, k, **args), getattr(tnn, name)(cin, cout, k, **args)
    out = twin(ours, theirs, _x(n, cin, *spatial))
    assert ours.output_shape((cin, *spatial)) == out.shape[1:]
    assert repr(ours) == repr(theirs)


def test_conv_transpose_gradcheck_float32_unbatched_and_output_size():
    x = cl.tensor(_x(1, 2, 3, 4), requires_grad=True)
    w = cl.tensor(_x(2, 3, 3, 3, seed=1), requires_grad=True)
    b = cl.tensor(_x(3, seed=2), requires_grad=True)
    for stride, pad, op, dil in ((1, 0, 0, 1), (2, 1, 1, 1), (3, 1, 2, 2)):
        assert gradcheck(lambda a, c, e, s=stride, p=pad, o=op, d=dil: F.conv_transpose2d(a, c, e, s, p, o, 1, d),
                         [x, w, b])
    ours, theirs = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1), tnn.ConvTranspose2d(3, 2, 3, stride=2, padding=1)
    _load(ours, theirs)
    a = _x(1, 3, 5, 5).astype(np.float32)
    for size in [(9, 9), (10, 10), (1, 2, 10, 9)]:
        np.testing.assert_allclose(ours(cl.tensor(a), output_size=size).detach().numpy(),
                                   theirs(torch.tensor(a), output_size=size).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert ours(cl.tensor(a[0])).shape == (2, 9, 9)
    with pytest.raises(ValueError, match="requested an output size of \\(11, 11\\), but valid sizes range from "
                                         "\\(9, 9\\) to \\(10, 10\\)"):
        ours(cl.tensor(a), output_size=(11, 11))
    with pytest.raises(ValueError, match="output_padding \\(2, 2\\) must be smaller than either stride"):
        nn.ConvTranspose2d(3, 2, 3, stride=2, output_padding=2)
    with pytest.raises(RuntimeError, match="expected input with 3 channels"):
        ours(cl.zeros(1, 2, 5, 5))


INTERP = [("nearest", None), ("nearest-exact", None), ("linear", False), ("linear", True), ("bicubic", False),
          ("bicubic", True), ("area", None)]


_HOWS = [{"scale_factor": 2}, {"scale_factor": 0.5}, {"scale_factor": 1.7}, {"size": 3}, {"size": 11},
         {"scale_factor": 3, "recompute_scale_factor": True}, {"scale_factor": (2, 0.6, 1.5)}]
_INTERP_CASES = [(dims, mode, align, how) for dims in (1, 2, 3) for mode, align in INTERP for how in _HOWS
                 if not (mode == "bicubic" and dims != 2)  # bicubic is 2-d only, as torch's
                 and not (mode == "area" and "recompute_scale_factor" in how)]  # area has no scale to recompute


@pytest.mark.parametrize("dims,mode,align,how", _INTERP_CASES, ids=str)
def test_interpolate_matches_torch(dims, mode, align, how):
    how = dict(how)
    if isinstance(how.get("scale_factor"), tuple):
        how["scale_factor"] = how["scale_factor"][:dims]
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[dims] if mode == "linear" else mode
    shape = {1: (2, 3, 7), 2: (2, 3, 5, 6), 3: (1, 2, 3, 4, 5)}[dims]
    ours = nn.Upsample(mode=mode, align_corners=align, **how)
    theirs = tnn.Upsample(mode=mode, align_corners=align, **how)
    twin(ours, theirs, _x(*shape))
    a = _x(*shape).astype(np.float32)
    np.testing.assert_allclose(F.interpolate(cl.tensor(a), mode=mode, align_corners=align, **how).numpy(),
                               TF.interpolate(torch.tensor(a), mode=mode, align_corners=align, **how).numpy(),
                               rtol=1e-5, atol=1e-5)


def test_interpolate_gradcheck_and_errors():
    x = cl.tensor(_x(1, 2, 3, 4), requires_grad=True)
    for mode, align in (("bilinear", False), ("bilinear", True), ("bicubic", False), ("nearest", None)):
        assert gradcheck(lambda t, m=mode, a=align: F.interpolate(t, scale_factor=1.5, mode=m, align_corners=a), [x])
    assert repr(nn.Upsample(scale_factor=2, mode="bilinear")) == repr(tnn.Upsample(scale_factor=2, mode="bilinear"))
    a = _x(1, 1, 3, 3)
    np.testing.assert_allclose(nn.UpsamplingBilinear2d(scale_factor=2)(cl.tensor(a)).numpy(),
                               tnn.UpsamplingBilinear2d(scale_factor=2)(torch.tensor(a)).numpy())
    with pytest.raises(RuntimeError, match="got a 3-d input, but bilinear mode needs a 4-d input"):
        F.interpolate(cl.zeros(1, 2, 3), scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError, match="align_corners can only be set with the interpolating modes"):
        F.interpolate(cl.zeros(1, 2, 3), scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        F.interpolate(cl.zeros(1, 2, 3))


@pytest.mark.parametrize("dims,shape,kwargs", [
    (1, (2, 3, 9), dict(kernel_size=2)), (1, (2, 3, 10), dict(kernel_size=3, stride=2, padding=1)),
    (2, (2, 3, 6, 7), dict(kernel_size=2)), (2, (1, 2, 7, 7), dict(kernel_size=3, stride=2, padding=1)),
    (2, (2, 2, 8, 8), dict(kernel_size=3, stride=1)), (2, (1, 2, 9, 9), dict(kernel_size=2, ceil_mode=True)),
    (2, (1, 2, 9, 9), dict(kernel_size=3, stride=2, dilation=2)), (3, (1, 2, 4, 5, 6), dict(kernel_size=2)),
    (3, (1, 2, 5, 5, 5), dict(kernel_size=3, stride=2, padding=1)),
], ids=str)
def test_max_pool_indices_and_unpool_match_torch(dims, shape, kwargs):
    a = np.random.default_rng(0).integers(0, 4, shape).astype(np.float64)  # ties: the first maximum wins
    pool, tpool = getattr(nn, f"MaxPool{dims}d")(**kwargs, return_indices=True), \
        getattr(tnn, f"MaxPool{dims}d")(**kwargs, return_indices=True)
    out, idx = pool(cl.tensor(a))
    tout, tidx = tpool(torch.tensor(a))
    np.testing.assert_array_equal(out.numpy(), tout.numpy())
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    unpool_kw = {k: v for k, v in kwargs.items() if k in ("kernel_size", "stride", "padding")}
    if "dilation" in kwargs or "ceil_mode" in kwargs:
        return  # unpooling assumes the plain geometry
    unpool, tunpool = getattr(nn, f"MaxUnpool{dims}d")(**unpool_kw), getattr(tnn, f"MaxUnpool{dims}d")(**unpool_kw)
    default = tuple((o - 1) * s - 2 * p + k for o, s, p, k in zip(
        out.shape[2:], *(np.broadcast_to(unpool_kw.get(n, unpool_kw["kernel_size"] if n == "stride" else 0), dims)
                         for n in ("stride", "padding", "kernel_size"))))
    for size in [shape] + ([None] if default == shape[2:] else []):  # None: the default size must hold the indices
        x = cl.tensor(out.numpy(), requires_grad=True)
        tx = torch.tensor(tout.numpy(), requires_grad=True)
        up, tup = unpool(x, idx, output_size=size), tunpool(tx, tidx, output_size=size)
        np.testing.assert_array_equal(up.detach().numpy(), tup.detach().numpy())
        g = np.random.default_rng(1).standard_normal(tuple(tup.shape))
        up.backward(cl.tensor(g))
        tup.backward(torch.tensor(g))
        np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    stride = unpool_kw.get("stride", unpool_kw["kernel_size"])
    if stride >= unpool_kw["kernel_size"]:  # disjoint windows: every index once, so unpooling is linear
        unpool_fn = getattr(F, f"max_unpool{dims}d")
        assert gradcheck(lambda t: unpool_fn(t, idx, **unpool_kw, output_size=shape), [cl.tensor(out.numpy()).double()
                                                                                        .requires_grad_()])


def test_max_pool_return_indices_unbatched_and_gradient():
    a = _x(3, 6, 6)
    out, idx = F.max_pool2d(cl.tensor(a), 2, return_indices=True)
    tout, tidx = TF.max_pool2d(torch.tensor(a), 2, return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    assert out.shape == (3, 3, 3)
    x, tx = cl.tensor(_x(2, 2, 5, 5), requires_grad=True), torch.tensor(_x(2, 2, 5, 5), requires_grad=True)
    o, _ = F.max_pool2d(x, 3, 2, return_indices=True)
    to, _ = TF.max_pool2d(tx, 3, 2, return_indices=True)
    o.sum().backward()
    to.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_one_hot_and_embedding_match_torch():
    labels = np.array([[0, 3], [2, 1]])
    for classes in (-1, 5):
        np.testing.assert_array_equal(F.one_hot(cl.tensor(labels), classes).numpy(),
                                      TF.one_hot(torch.tensor(labels), classes).numpy())
    assert F.one_hot(cl.tensor([1, 0])).dtype == np.int64
    with pytest.raises(RuntimeError, match="class values must be in \\[0, 3\\)"):
        F.one_hot(cl.tensor([3]), 3)
    with pytest.raises(RuntimeError, match="only applicable to index tensors"):
        F.one_hot(cl.tensor([1.0]))
    for padding_idx in (None, 1):
        ours, theirs = nn.Embedding(5, 3, padding_idx=padding_idx), tnn.Embedding(5, 3, padding_idx=padding_idx)
        twin(ours, theirs, np.array([[0, 1, 4], [1, 1, 2]]), call=lambda m, i: m(i))
        assert repr(ours) == repr(theirs)


LOSSES = [
    ("BCELoss", {}, "prob", "prob"), ("BCELoss", {"reduction": "sum"}, "prob", "binary"),
    ("BCELoss", {"reduction": "none"}, "prob", "prob"), ("BCELoss", {"weight": "w"}, "prob", "binary"),
    ("BCEWithLogitsLoss", {}, "logit", "binary"), ("BCEWithLogitsLoss", {"reduction": "none"}, "logit", "prob"),
    ("BCEWithLogitsLoss", {"pos_weight": "p"}, "logit", "binary"), ("BCEWithLogitsLoss", {"weight": "w",
                                                                   "pos_weight": "p", "reduction": "sum"}, "logit", "prob"),
    ("L1Loss", {}, "normal", "normal"), ("L1Loss", {"reduction": "sum"}, "normal", "normal"),
    ("SmoothL1Loss", {}, "normal", "normal"), ("SmoothL1Loss", {"beta": 0.3, "reduction": "none"}, "normal", "normal"),
    ("SmoothL1Loss", {"beta": 0.0}, "normal", "normal"), ("HuberLoss", {}, "normal", "normal"),
    ("HuberLoss", {"delta": 0.4, "reduction": "sum"}, "normal", "normal"), ("MSELoss", {}, "normal", "normal"),
    ("KLDivLoss", {"reduction": "batchmean"}, "logprob", "prob"), ("KLDivLoss", {}, "logprob", "prob"),
    ("KLDivLoss", {"reduction": "batchmean", "log_target": True}, "logprob", "logprob"),
    ("KLDivLoss", {"reduction": "none"}, "logprob", "zero_prob"), ("SoftMarginLoss", {}, "normal", "sign"),
]


def _loss_data(kind, shape, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    if kind == "prob":
        return 1 / (1 + np.exp(-a))
    if kind == "binary":
        return (a > 0).astype(np.float64)
    if kind == "logit":
        return a * 3
    if kind == "logprob":
        return a - np.log(np.exp(a).sum(-1, keepdims=True))
    if kind == "zero_prob":
        p = np.exp(a) / np.exp(a).sum(-1, keepdims=True)
        p[..., 0] = 0
        return p
    if kind == "sign":
        return np.sign(a)
    return a


@pytest.mark.parametrize("shape", [(6,), (4, 5), (2, 3, 4, 4)], ids=str)
@pytest.mark.parametrize("name,options,input_kind,target_kind", LOSSES, ids=str)
def test_losses_match_torch_with_input_and_target_gradients(name, options, input_kind, target_kind, shape):
    options, toptions = dict(options), dict(options)
    for key, tag in (("weight", "w"), ("pos_weight", "p")):
        if options.get(key) == tag:
            value = np.random.default_rng(7).random(shape[-1]) + 0.5
            options[key], toptions[key] = cl.tensor(value), torch.tensor(value)
    x, t = _loss_data(input_kind, shape, 0), _loss_data(target_kind, shape, 1)
    ours, theirs = getattr(nn, name)(**options), getattr(tnn, name)(**toptions)
    target_grad = name != "SoftMarginLoss"  # torch refuses a target that requires grad there
    cx, ct = cl.tensor(x, requires_grad=True), cl.tensor(t, requires_grad=target_grad)
    tx, tt = torch.tensor(x, requires_grad=True), torch.tensor(t, requires_grad=target_grad)
    out, tout = ours(cx, ct), theirs(tx, tt)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-9, atol=1e-12)
    g = np.random.default_rng(2).standard_normal(tuple(tout.shape))
    out.backward(cl.tensor(g))
    tout.backward(torch.tensor(g))
    np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), rtol=1e-7, atol=1e-10)
    if tt.grad is not None and target_kind != "zero_prob":
        np.testing.assert_allclose(ct.grad.numpy(), tt.grad.numpy(), rtol=1e-7, atol=1e-10)
    fn = getattr(F, {"BCELoss": "binary_cross_entropy", "BCEWithLogitsLoss": "binary_cross_entropy_with_logits",
                     "L1Loss": "l1_loss", "SmoothL1Loss": "smooth_l1_loss", "HuberLoss": "huber_loss",
                     "MSELoss": "mse_loss", "KLDivLoss": "kl_div", "SoftMarginLoss": "soft_margin_loss"}[name])
    if name not in ("L1Loss", "SmoothL1Loss", "HuberLoss"):  # those have kinks where the data may land
        extra = {k: v for k, v in options.items() if k in ("reduction", "log_target", "weight", "pos_weight")}
        smooth_in_target = target_grad and target_kind != "zero_prob"  # t·log t has no derivative at t = 0
        assert gradcheck(lambda a, b: fn(a, b, **extra), [cl.tensor(x, requires_grad=True),
                                                          cl.tensor(t, requires_grad=smooth_in_target)], max_checks=20)


def test_loss_arguments_and_errors_as_torch():
    x = cl.tensor(_loss_data("prob", (4,), 0))
    assert nn.L1Loss(size_average=False).reduction == "sum" and nn.BCELoss(reduce=False).reduction == "none"
    assert nn.CrossEntropyLoss(None, None, 3).ignore_index == 3  # torch's positions
    with pytest.raises(ValueError, match="should be between 0 and 1"):
        F.binary_cross_entropy(x * 2, x)
    with pytest.raises(RuntimeError, match="expected target of the input's shape \\(4,\\), got \\(4, 1\\)"):
        F.l1_loss(x, cl.zeros(4, 1))
    with pytest.raises(ValueError, match="reduction must be one of"):
        nn.KLDivLoss(reduction="average")
    a, b = _x(3, 5), _x(3, 5, seed=1)
    np.testing.assert_allclose(F.cosine_similarity(cl.tensor(a), cl.tensor(b)).numpy(),
                               TF.cosine_similarity(torch.tensor(a), torch.tensor(b)).numpy())
    np.testing.assert_allclose(nn.CosineSimilarity(0)(cl.tensor(a), cl.tensor(b)).numpy(),
                               tnn.CosineSimilarity(0)(torch.tensor(a), torch.tensor(b)).numpy())


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_and_value_match_torch(norm_type, max_norm):
    shapes = [(3, 4), (4,), (2, 2, 3)]
    grads = [np.random.default_rng(i).standard_normal(s) for i, s in enumerate(shapes)]
    ours = [cl.zeros(*s, dtype=cl.float64, requires_grad=True) for s in shapes]
    theirs = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in shapes]
    for p, tp, g in zip(ours, theirs, grads):
        p.grad, tp.grad = cl.tensor(g.copy()), torch.tensor(g.copy())
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    ttotal = tnn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    np.testing.assert_allclose(float(total), float(ttotal), rtol=1e-10)
    for p, tp in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-10)
    nn.utils.clip_grad_value_(ours, 0.1)
    tnn.utils.clip_grad_value_(theirs, 0.1)
    for p, tp in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-12)
    vec = nn.utils.parameters_to_vector(ours)
    assert vec.shape == (sum(int(np.prod(s)) for s in shapes),)
    nn.utils.vector_to_parameters(cl.arange(vec.numel()).double(), ours)
    assert ours[1].tolist() == [12.0, 13.0, 14.0, 15.0]


def test_clip_grad_norm_non_finite():
    p = cl.zeros(2, requires_grad=True)
    p.grad = cl.tensor([float("inf"), 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


def test_lazy_layers_infer_sizes_become_the_eager_class_and_load_torch_state():
    ours = nn.Sequential(nn.LazyConv2d(6, kernel_size=5, padding=2), nn.ReLU(), nn.AvgPool2d(2), nn.LazyBatchNorm2d(),
                         nn.Flatten(), nn.LazyLinear(10))
    theirs = tnn.Sequential(tnn.LazyConv2d(6, kernel_size=5, padding=2), tnn.ReLU(), tnn.AvgPool2d(2),
                            tnn.LazyBatchNorm2d(), tnn.Flatten(), tnn.LazyLinear(10))
    params = list(ours.parameters())
    optimizer = cl.optim.SGD(params, lr=0.1)  # built before the first call, as PyTorch allows
    x = _x(2, 1, 8, 8)
    ours(cl.tensor(x.astype(np.float32)))
    theirs(torch.tensor(x.astype(np.float32)))
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in theirs]
    assert [p.shape for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    assert all(a is b for a, b in zip(ours.parameters(), params))
    twin(ours, theirs, x)
    optimizer.step()
    fresh = nn.Sequential(nn.LazyConv2d(6, kernel_size=5, padding=2), nn.ReLU(), nn.AvgPool2d(2), nn.LazyBatchNorm2d(),
                          nn.Flatten(), nn.LazyLinear(10))
    fresh.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert isinstance(fresh[0], nn.Conv2d) and fresh[-1].weight.shape == (10, 96)
    t = nn.LazyConvTranspose2d(4, 3, stride=2)
    assert t(cl.zeros(1, 5, 3, 3)).shape == (1, 4, 7, 7) and type(t) is nn.ConvTranspose2d and t.weight.shape == (5, 4, 3, 3)


def test_init_functions_follow_torch_formulas():
    g = cl.Generator().manual_seed(0)
    w = cl.zeros(64, 32)
    nn.init.orthogonal_(w, gain=2.0, generator=g)
    np.testing.assert_allclose(w.numpy().T @ w.numpy(), 4 * np.eye(32), atol=1e-5)
    wide = nn.init.orthogonal_(cl.zeros(8, 3, 3, 3))
    flat = wide.numpy().reshape(8, -1)
    np.testing.assert_allclose(flat @ flat.T, np.eye(8), atol=1e-5)
    t = nn.init.trunc_normal_(cl.zeros(20000), mean=1.0, std=2.0, a=-1.0, b=2.0)
    assert t.min().item() >= -1.0 and t.max().item() <= 2.0
    ref = torch.nn.init.trunc_normal_(torch.zeros(200000), mean=1.0, std=2.0, a=-1.0, b=2.0)
    assert abs(t.mean().item() - ref.mean().item()) < 0.03 and abs(t.std().item() - ref.std().item()) < 0.03
    np.testing.assert_array_equal(nn.init.eye_(cl.zeros(3, 4)).numpy(), torch.nn.init.eye_(torch.zeros(3, 4)).numpy())
    for shape, groups in (((4, 4, 3, 3), 1), ((6, 2, 3), 3), ((2, 3, 3, 3, 3), 1)):
        np.testing.assert_array_equal(nn.init.dirac_(cl.zeros(*shape), groups).numpy(),
                                      torch.nn.init.dirac_(torch.zeros(shape), groups).numpy())
    a = nn.init.kaiming_normal_(cl.zeros(256, 128), mode="fan_out", nonlinearity="relu", generator=g)
    assert abs(a.std().item() - np.sqrt(2 / 256)) < 0.005
    b = nn.init.xavier_uniform_(cl.zeros(100, 300), gain=nn.init.calculate_gain("tanh"))
    assert abs(b.abs().max().item() - 5 / 3 * np.sqrt(6 / 400)) < 0.01
    p = nn.Parameter(cl.zeros(3))
    assert nn.init.constant_(p, 0.5).tolist() == [0.5] * 3 and p.requires_grad
    x = nn.Conv2d(2, 3, 3)
    x(cl.ones(1, 2, 5, 5)).sum().backward()  # init inside a graph-free context: no graph is recorded
    nn.init.zeros_(x.weight)
    assert x.weight.abs().sum().item() == 0 and x.weight.grad is not None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_matches_torch_in_both_dtypes_far_into_the_tails(approximate, dtype):
    torch = pytest.importorskip("torch")
    a = np.concatenate([np.linspace(-12, 12, 97), _x(40, scale=3.0).ravel()]).astype(dtype)
    ours = cl.tensor(a, requires_grad=True)
    theirs = torch.tensor(a, requires_grad=True)
    out, ref = F.gelu(ours, approximate=approximate), torch.nn.functional.gelu(theirs, approximate=approximate)
    assert out.dtype == ours.dtype
    g = _x(a.size, seed=4).astype(dtype)
    out.backward(cl.tensor(g))
    ref.backward(torch.tensor(g))
    tol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=tol * 10, atol=tol * 10)
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU(approximate="fast")
