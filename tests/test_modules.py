"""convlens.nn layers and Module machinery, checked against torch.nn: copy torch's state_dict into
convlens, compare outputs and parameter gradients; keys, repr, init statistics, hooks, modes, errors."""

import math
from collections import OrderedDict

import numpy as np
import pytest

import convlens as cl
import convlens.nn as nn
from convlens.nn import init

torch = pytest.importorskip("torch")
tnn = torch.nn

RNG = np.random.default_rng(2)


def copy_from_torch(module, tmodule):
    module.load_state_dict(OrderedDict((k, v.detach().numpy()) for k, v in tmodule.state_dict().items()))


def check_parity(module, tmodule, input_shape, rtol=1e-4, atol=1e-5, target_grad=True):
    """Same outputs and same parameter/input gradients for a random input and upstream gradient."""
    copy_from_torch(module, tmodule)
    data = RNG.standard_normal(input_shape).astype(np.float32)
    x, tx = cl.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    out, tout = module(x), tmodule(tx)
    np.testing.assert_allclose(out._data, tout.detach().numpy(), rtol=rtol, atol=atol)
    assert out.dtype == np.float32
    g = RNG.standard_normal(out.shape).astype(np.float32)
    out.backward(cl.tensor(g))
    tout.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad._data, tx.grad.numpy(), rtol=rtol, atol=atol)
    tparams = dict(tmodule.named_parameters())
    for name, p in module.named_parameters():
        np.testing.assert_allclose(p.grad._data, tparams[name].grad.numpy(), rtol=rtol, atol=atol, err_msg=name)
    return out


# ---- convolution ---------------------------------------------------------------------------------------
CONV_CONFIGS = [
    dict(), dict(stride=2), dict(padding=1), dict(padding=2, stride=3), dict(dilation=2, padding=1),
    dict(groups=2), dict(groups=4, bias=False), dict(padding="same"), dict(padding="valid"),
    dict(padding=1, padding_mode="reflect"), dict(padding=2, padding_mode="replicate"),
    dict(padding=1, padding_mode="circular", stride=2),
]


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("config", CONV_CONFIGS, ids=str)
def test_conv_parity_with_torch(dims, config):
    kernel = 3
    cls, tcls = getattr(nn, f"Conv{dims}d"), getattr(tnn, f"Conv{dims}d")
    conv, tconv = cls(4, 8, kernel, **config), tcls(4, 8, kernel, **config)
    spatial = {1: (11,), 2: (7, 6), 3: (5, 4, 6)}[dims]
    out = check_parity(conv, tconv, (2, 4) + spatial)
    assert conv.output_shape((4,) + spatial) == out.shape[1:]
    assert repr(conv) == repr(tconv)
    assert conv.weight.shape == tuple(tconv.weight.shape)


def test_conv_unbatched_input_and_asymmetric_kernel():
    conv, tconv = nn.Conv2d(2, 3, (3, 1), stride=(1, 2), padding=(1, 0)), tnn.Conv2d(2, 3, (3, 1), stride=(1, 2), padding=(1, 0))
    check_parity(conv, tconv, (1, 2, 5, 6))
    x = cl.randn(2, 5, 6)
    np.testing.assert_allclose(conv(x)._data, tconv(torch.tensor(x._data)).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert repr(conv) == repr(tconv)


def test_conv_parameter_count_and_course_example():
    for f, d1, k in [(5, 3, 10), (3, 1, 6), (1, 16, 32)]:
        conv = nn.Conv2d(d1, k, f)
        assert sum(p.numel() for p in conv.parameters()) == (f * f * d1) * k + k
    conv = nn.Conv2d(3, 10, 5, padding=2)
    assert conv.output_shape((3, 32, 32)) == (10, 32, 32)
    assert sum(p.numel() for p in conv.parameters()) == 760
    assert conv(cl.randn(2, 3, 32, 32)).shape == (2, 10, 32, 32)
    assert nn.Conv2d(3, 6, 5).output_shape((3, 32, 32)) == (6, 28, 28)  # (W − F + 2P)/S + 1


CONV_ERRORS = [
    (dict(in_channels=3, out_channels=16, kernel_size=5, groups=2), r"Conv2d\(3, 16, kernel_size=5\): groups=2 must divide"),
    (dict(in_channels=4, out_channels=8, kernel_size=3, padding_mode="mirror"), r"padding_mode must be one of .*'mirror'"),
    (dict(in_channels=4, out_channels=8, kernel_size=3, padding="same", stride=2), "padding='same' is not supported"),
    (dict(in_channels=4, out_channels=8, kernel_size=3, padding="full"), "padding must be an int, a tuple, 'valid' or 'same'"),
    (dict(in_channels=0, out_channels=8, kernel_size=3), "Conv2d: in_channels must be a positive integer, got 0"),
    (dict(in_channels=4, out_channels=8, kernel_size=0), r"Conv2d\(4, 8, kernel_size=0\): kernel_size must be >= 1"),
    (dict(in_channels=4, out_channels=8, kernel_size=3, stride=0), "stride must be >= 1, got 0"),
    (dict(in_channels=4, out_channels=8, kernel_size=3, padding=-1), "padding must be >= 0, got -1"),
    (dict(in_channels=4, out_channels=8, kernel_size=(3, 3, 3)), "kernel_size must have 2 entries"),
]


@pytest.mark.parametrize("kwargs,message", CONV_ERRORS)
def test_conv_constructor_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nn.Conv2d(**kwargs)


def test_conv_forward_and_output_shape_errors():
    conv = nn.Conv2d(3, 16, kernel_size=5)
    with pytest.raises(ValueError, match=r"^Conv2d\(3, 16, kernel_size=5\): expected input with 3 channels, got \(8, 1, 28, 28\)$"):
        conv(cl.randn(8, 1, 28, 28))
    with pytest.raises(ValueError, match=r"Conv2d\(3, 16, kernel_size=5\): expected a 4-d input"):
        conv(cl.randn(2, 3, 4, 28, 28))
    with pytest.raises(ValueError, match=r"Conv2d\(3, 16, kernel_size=5\): input of shape \(3, 3, 3\) is too small"):
        conv.output_shape((3, 3, 3))
    with pytest.raises(ValueError, match="expected input with 3 channels, got"):
        conv.output_shape((1, 28, 28))


# ---- pooling -------------------------------------------------------------------------------------------
POOLS = [
    ("MaxPool", dict(kernel_size=2)), ("MaxPool", dict(kernel_size=3, stride=2, padding=1)),
    ("MaxPool", dict(kernel_size=2, ceil_mode=True)), ("MaxPool", dict(kernel_size=2, dilation=2)),
    ("AvgPool", dict(kernel_size=2)), ("AvgPool", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ("AvgPool", dict(kernel_size=3, stride=2, ceil_mode=True)),
    ("AdaptiveAvgPool", dict(output_size=3)), ("AdaptiveMaxPool", dict(output_size=2)),
]


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("kind,kwargs", POOLS, ids=str)
def test_pool_parity_with_torch(dims, kind, kwargs):
    pool, tpool = getattr(nn, f"{kind}{dims}d")(**kwargs), getattr(tnn, f"{kind}{dims}d")(**kwargs)
    spatial = {1: (9,), 2: (7, 8), 3: (5, 6, 7)}[dims]
    out = check_parity(pool, tpool, (2, 3) + spatial)
    assert pool.output_shape((3,) + spatial) == out.shape[1:]
    assert repr(pool) == repr(tpool)


def test_adaptive_pool_none_entries_and_weighted_avg_pool():
    pool, tpool = nn.AdaptiveAvgPool2d((None, 2)), tnn.AdaptiveAvgPool2d((None, 2))
    check_parity(pool, tpool, (2, 3, 5, 6))
    assert pool.output_shape((3, 5, 6)) == (3, 5, 2)
    weights = np.ones((2, 2))
    wpool, apool = nn.WeightedAvgPool2d(2, weights=weights), tnn.AvgPool2d(2)
    check_parity(wpool, apool, (2, 3, 6, 6))  # uniform weights: plain average pooling
    gauss = nn.WeightedAvgPool2d(3, stride=1, padding=1)
    x = cl.ones(1, 2, 5, 5)
    assert gauss(x).shape == (1, 2, 5, 5) == (1,) + gauss.output_shape((2, 5, 5))
    assert abs(gauss(x)._data[0, 0, 2, 2] - 1.0) < 1e-6  # weights are normalised to sum 1
    with pytest.raises(ValueError, match=r"WeightedAvgPool2d\(kernel_size=2\): weights must have the kernel's shape"):
        nn.WeightedAvgPool2d(2, weights=np.ones(3))


def test_pool_errors():
    with pytest.raises(ValueError, match=r"MaxPool2d\(kernel_size=2\): padding must be at most half"):
        nn.MaxPool2d(2, padding=2)
    with pytest.raises(ValueError, match=r"MaxPool2d\(kernel_size=0\): kernel_size must be >= 1"):
        nn.MaxPool2d(0)
    with pytest.raises(ValueError, match=r"MaxPool2d\(kernel_size=4\): input of shape \(3, 2, 2\) is smaller"):
        nn.MaxPool2d(4).output_shape((3, 2, 2))
    with pytest.raises(ValueError, match=r"AvgPool1d\(kernel_size=2\): expected a 3-d input"):
        nn.AvgPool1d(2)(cl.randn(2, 3, 4, 5))
    with pytest.raises(ValueError, match=r"AdaptiveAvgPool2d\(output_size=0\): output_size must be >= 1"):
        nn.AdaptiveAvgPool2d(0)


# ---- linear, batch norm, activations ------------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 6)])
def test_linear_parity_and_errors(bias, shape):
    lin, tlin = nn.Linear(6, 5, bias=bias), tnn.Linear(6, 5, bias=bias)
    check_parity(lin, tlin, shape)
    assert repr(lin) == repr(tlin)
    assert lin.output_shape(shape[1:]) == shape[1:-1] + (5,)
    with pytest.raises(ValueError, match=r"Linear\(in_features=6, out_features=5, .*\): expected input with last dimension 6, got \(4, 7\)"):
        lin(cl.randn(4, 7))
    with pytest.raises(ValueError, match="Linear: in_features must be a positive integer"):
        nn.Linear(0, 3)


@pytest.mark.parametrize("dims,shape", [(1, (8, 3)), (1, (4, 3, 5)), (2, (4, 3, 5, 4)), (3, (2, 3, 3, 4, 2))])
@pytest.mark.parametrize("config", [dict(), dict(momentum=None), dict(affine=False), dict(track_running_stats=False),
                                    dict(eps=1e-2, momentum=0.3)], ids=str)
def test_batch_norm_parity_train_and_eval(dims, shape, config):
    bn, tbn = getattr(nn, f"BatchNorm{dims}d")(3, **config), getattr(tnn, f"BatchNorm{dims}d")(3, **config)
    assert repr(bn) == repr(tbn)
    assert list(bn.state_dict()) == list(tbn.state_dict())
    if config.get("affine", True):  # non-trivial affine parameters
        with torch.no_grad():
            tbn.weight.uniform_(0.5, 1.5)
            tbn.bias.uniform_(-0.5, 0.5)
    for _ in range(3):
        check_parity(bn, tbn, shape)
        copy_back = {k: v.detach().numpy() for k, v in tbn.state_dict().items()}
        for k, v in bn.state_dict().items():  # running statistics and the batch counter agree
            np.testing.assert_allclose(v, copy_back[k], rtol=1e-5, atol=1e-6, err_msg=k)
        bn.zero_grad()
        tbn.zero_grad()
    if config.get("track_running_stats", True):
        assert bn.state_dict()["num_batches_tracked"].dtype == np.int64
        assert bn.state_dict()["num_batches_tracked"].shape == ()
    bn.eval()
    tbn.eval()
    check_parity(bn, tbn, shape)
    assert bn.output_shape(shape[1:]) == shape[1:]


def test_batch_norm_errors():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(16\): expected input with 16 channels, got \(2, 3, 4, 4\)"):
        nn.BatchNorm2d(16)(cl.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\): expected a 2-d or 3-d input"):
        nn.BatchNorm1d(3)(cl.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match="BatchNorm2d: num_features must be a positive integer"):
        nn.BatchNorm2d(0)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\] or None"):
        nn.BatchNorm2d(3, momentum=2)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(cl.randn(1, 3))


@pytest.mark.parametrize("name,args", [("ReLU", ()), ("LeakyReLU", (0.2,)), ("Sigmoid", ()), ("Tanh", ()),
                                       ("Softmax", (1,)), ("LogSoftmax", (-1,)), ("Identity", ()),
                                       ("Flatten", ()), ("Flatten", (2, 3))])
def test_activation_and_shape_layers(name, args):
    layer, tlayer = getattr(nn, name)(*args), getattr(tnn, name)(*args)
    out = check_parity(layer, tlayer, (2, 3, 4, 5))
    assert layer.output_shape((3, 4, 5)) == out.shape[1:]
    assert repr(layer) == repr(tlayer)


def test_dropout_module_train_eval():
    drop = nn.Dropout(0.5)
    assert repr(drop) == repr(tnn.Dropout(0.5))
    x = cl.ones(100, 100)
    assert 0.4 < (drop(x)._data == 0).mean() < 0.6
    drop.eval()
    assert drop(x) is x
    with pytest.raises(ValueError, match="Dropout: p must be a probability between 0 and 1, got -0.1"):
        nn.Dropout(-0.1)


# ---- losses --------------------------------------------------------------------------------------------
def test_loss_modules():
    x = cl.randn(6, 4, requires_grad=True)
    target = RNG.integers(0, 4, 6)
    tx = torch.tensor(x._data)
    weight = RNG.random(4).astype(np.float32) + 0.5
    ce = nn.CrossEntropyLoss(weight=weight, label_smoothing=0.1, reduction="sum")
    tce = tnn.CrossEntropyLoss(weight=torch.tensor(weight), label_smoothing=0.1, reduction="sum")
    np.testing.assert_allclose(ce(x, target).item(), tce(tx, torch.tensor(target)).item(), rtol=1e-5)
    assert list(ce.state_dict()) == list(tce.state_dict()) == ["weight"]
    nll = nn.NLLLoss(ignore_index=2)
    np.testing.assert_allclose(nll(x, target).item(), tnn.NLLLoss(ignore_index=2)(tx, torch.tensor(target)).item(),
                               rtol=1e-5)
    y = cl.randn(6, 4)
    np.testing.assert_allclose(nn.MSELoss()(x, y).item(), tnn.MSELoss()(tx, torch.tensor(y._data)).item(), rtol=1e-5)
    assert repr(nn.MSELoss()) == "MSELoss()"
    with pytest.raises(ValueError, match="CrossEntropyLoss: reduction must be one of"):
        nn.CrossEntropyLoss(reduction="avg")


# ---- a small CNN and the Module machinery -----------------------------------------------------------
def lenet(lib):
    return lib.Sequential(
        lib.Conv2d(1, 6, 5, padding=2), lib.BatchNorm2d(6), lib.ReLU(), lib.MaxPool2d(2),
        lib.Conv2d(6, 16, 5), lib.ReLU(), lib.AvgPool2d(2), lib.Flatten(),
        lib.Linear(16 * 5 * 5, 32), lib.Dropout(0.0), lib.Tanh(), lib.Linear(32, 10),
    )


def test_sequential_cnn_parity_state_dict_and_repr():
    model, tmodel = lenet(nn), lenet(tnn)
    assert list(model.state_dict()) == list(tmodel.state_dict())
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in tmodel.named_parameters()]
    assert [n for n, _ in model.named_buffers()] == [n for n, _ in tmodel.named_buffers()]
    assert [n for n, _ in model.named_modules()] == [n for n, _ in tmodel.named_modules()]
    assert repr(model) == repr(tmodel)
    check_parity(model, tmodel, (3, 1, 28, 28))
    assert model.output_shape((1, 28, 28)) == (10,)
    model.eval()
    tmodel.eval()
    check_parity(model, tmodel, (2, 1, 28, 28))
    # training a step changes weights; load_state_dict restores them, keeping the same Parameter objects
    snapshot = model.state_dict()
    weight = model[0].weight
    weight._data += 1
    model.load_state_dict(snapshot)
    assert model[0].weight is weight
    np.testing.assert_array_equal(weight._data, snapshot["0.weight"])


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
        self.head = nn.ModuleList([nn.Flatten(), nn.Linear(4 * 6 * 6, 2)])
        self.scale = nn.Parameter(cl.ones(1))
        self.register_buffer("steps", np.zeros((), dtype=np.int64))
        self.register_buffer("cache", np.zeros(3, dtype=np.float32), persistent=False)
        self.name = "net"  # a plain attribute

    def forward(self, x):
        x = self.features(x)
        for layer in self.head:
            x = layer(x)
        return x * self.scale


class TNet(tnn.Module):
    def __init__(self):
        super().__init__()
        self.features = tnn.Sequential(tnn.Conv2d(3, 4, 3), tnn.BatchNorm2d(4), tnn.ReLU())
        self.head = tnn.ModuleList([tnn.Flatten(), tnn.Linear(4 * 6 * 6, 2)])
        self.scale = tnn.Parameter(torch.ones(1))
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))
        self.register_buffer("cache", torch.zeros(3), persistent=False)

    def forward(self, x):
        x = self.features(x)
        for layer in self.head:
            x = layer(x)
        return x * self.scale


def test_custom_module_registration_matches_torch():
    net, tnet = Net(), TNet()
    assert list(net.state_dict()) == list(tnet.state_dict())
    assert [n for n, _ in net.named_buffers()] == [n for n, _ in tnet.named_buffers()]
    assert "cache" not in net.state_dict() and "cache" in dict(net.named_buffers())
    assert [n for n, _ in net.named_children()] == ["features", "head"]
    assert len(list(net.modules())) == len(list(tnet.modules()))
    assert net.name == "net" and "name" not in net._modules
    check_parity(net, tnet, (2, 3, 8, 8))
    assert repr(net) == "Net" + repr(tnet)[len("TNet"):]
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_to_double_keeps_parameter_identity():
    net = Net()
    params = list(net.parameters())
    out = net(cl.randn(2, 3, 8, 8))
    out.sum().backward()
    assert net.double() is net
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in params)
    assert net.features[1].running_mean.dtype == np.float64
    assert net.features[1].num_batches_tracked.dtype == np.int64  # integer buffers are left alone
    assert net(cl.randn(2, 3, 8, 8).double()).dtype == np.float64
    net.to("float32")
    assert all(p.dtype == np.float32 for p in net.parameters())
    net.to("cpu")
    with pytest.raises(RuntimeError, match="CPU only"):
        net.to("cuda")
    with pytest.raises(ValueError, match="only floating point dtypes"):
        net.to("int64")


def test_gradcheck_through_modules_in_float64():
    from convlens.testing import gradcheck

    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.Tanh(), nn.AvgPool2d(2),
                          nn.Flatten(), nn.Linear(12, 2)).double()
    x = cl.tensor(RNG.standard_normal((2, 2, 4, 4)), requires_grad=True)
    params = list(model.parameters())
    gradcheck(lambda x, *p: model(x), [x, *params], max_checks=6)


def test_load_state_dict_errors():
    model = lenet(nn)
    state = model.state_dict()
    bad = OrderedDict(state)
    bad["0.weight"] = np.zeros((6, 1, 3, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"size mismatch for 0.weight: copying an array of shape \(6, 1, 3, 3\), .*\(6, 1, 5, 5\)"):
        model.load_state_dict(bad)
    missing = OrderedDict(state)
    del missing["1.running_var"]
    missing["extra.bias"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"missing key\(s\): 1.running_var[\s\S]*unexpected key\(s\): extra.bias"):
        model.load_state_dict(missing)
    result = model.load_state_dict(missing, strict=False)
    assert result.missing_keys == ["1.running_var"] and result.unexpected_keys == ["extra.bias"]
    tensors = {k: cl.tensor(v) for k, v in state.items()}  # Tensors are accepted too
    model.load_state_dict(tensors)
    with pytest.raises(ValueError, match="expected a dict of arrays"):
        model.load_state_dict([1, 2])


def test_state_dict_holds_detached_tensors_sharing_memory_as_torch():
    lin = nn.Linear(2, 2)
    state = lin.state_dict()
    assert isinstance(state, OrderedDict) and all(isinstance(v, cl.Tensor) for v in state.values())
    assert not any(v.requires_grad for v in state.values())
    before = lin.weight.detach().numpy().copy()
    state["weight"] += 1  # as in PyTorch, the state_dict's tensors are views of the parameters
    assert np.array_equal(lin.weight.detach().numpy(), before + 1)
    assert lin.state_dict(keep_vars=True)["weight"] is lin.weight


def test_forward_hooks_capture_feature_maps_and_remove():
    model = lenet(nn)
    maps = {}
    handles = [layer.register_forward_hook(lambda m, inp, out, i=i: maps.__setitem__(i, out._data.copy()))
               for i, layer in enumerate(model) if isinstance(layer, nn.Conv2d)]
    model(cl.randn(2, 1, 28, 28))
    assert maps[0].shape == (2, 6, 28, 28) and maps[4].shape == (2, 16, 10, 10)
    for h in handles:
        h.remove()
    maps.clear()
    model(cl.randn(1, 1, 28, 28))
    assert maps == {}
    relu = nn.ReLU()
    relu.register_forward_hook(lambda m, inp, out: out * 0)  # a returned value replaces the output
    np.testing.assert_array_equal(relu(cl.ones(3))._data, 0)
    pre = nn.Identity()
    pre.register_forward_pre_hook(lambda m, inp: (inp[0] + 1,))
    np.testing.assert_array_equal(pre(cl.zeros(2))._data, 1)


def test_train_eval_and_apply():
    model = lenet(nn)
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    with pytest.raises(ValueError, match="mode must be a bool"):
        model.train("no")
    seen = []
    model.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Sequential" and seen.count("Conv2d") == 2

    def zero_linear(m):
        if isinstance(m, nn.Linear):
            init.zeros_(m.weight)

    model.apply(zero_linear)
    assert np.all(model[-1].weight._data == 0)


def test_sequential_and_module_list_containers():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear)
    head = seq[1:]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[1] is seq[2]
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    seq.append(nn.Sigmoid())
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"] and len(seq) == 4
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"] and named.fc is named[0]
    with pytest.raises(IndexError, match="out of range"):
        seq[7]
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(nn.ReLU(), lambda x: x)
    ml = nn.ModuleList([nn.Linear(1, 1)])
    ml.append(nn.Linear(1, 2)).extend([nn.ReLU()])
    assert len(ml) == 3 and [n for n, _ in ml.named_parameters()][-1] == "1.bias"


def test_module_registration_errors():
    class Broken(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match=r"before Module.__init__\(\) call"):
        Broken()
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="cannot assign ndarray as parameter 'weight'"):
        m.weight = np.zeros((2, 2))
    m.bias = None
    assert list(m.state_dict()) == ["weight"]
    with pytest.raises(KeyError, match="can't contain"):
        m.register_buffer("a.b", np.zeros(1))
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = m.nope
    p = nn.Parameter(cl.randn(2))
    assert p.requires_grad and p.dtype == np.float32 and isinstance(p, cl.Tensor)
    assert nn.Parameter([1.0, 2.0]).dtype == np.float32
    assert repr(p).startswith("Parameter containing:\ntensor(")


# ---- initialisation --------------------------------------------------------------------------------------
def test_default_init_bounds_match_torch():
    cl.manual_seed(0)
    for layer, fan_in in [(nn.Conv2d(16, 32, 3), 16 * 9), (nn.Linear(200, 100), 200), (nn.Conv1d(8, 16, 5, groups=4), 2 * 5)]:
        bound = 1 / math.sqrt(fan_in)
        for p in (layer.weight, layer.bias):
            assert p.dtype == np.float32
            assert np.abs(p._data).max() <= bound
            assert np.abs(p._data).max() > 0.9 * bound  # uniform over the whole interval
        assert abs(layer.weight._data.std() - bound / math.sqrt(3)) < 0.05 * bound  # std of U(−b, b) is b/√3
    tconv = tnn.Conv2d(16, 32, 3)
    assert abs(tconv.weight.detach().numpy().std() - nn.Conv2d(16, 32, 3).weight._data.std()) < 0.01


def test_init_functions_against_torch_formulas():
    w = nn.Parameter(np.empty((64, 32, 3, 3), dtype=np.float32))
    assert init._calculate_fan_in_and_fan_out(w) == (32 * 9, 64 * 9)
    for name, param in [("linear", None), ("relu", None), ("tanh", None), ("leaky_relu", 0.2), ("sigmoid", None),
                        ("selu", None), ("conv2d", None)]:
        assert init.calculate_gain(name, param) == pytest.approx(tnn.init.calculate_gain(name, param))
    cl.manual_seed(1)
    checks = [
        (init.kaiming_uniform_, dict(a=0, mode="fan_in", nonlinearity="relu"), math.sqrt(2 / 288)),
        (init.kaiming_normal_, dict(mode="fan_out"), math.sqrt(2 / (1 + 0.01**2)) / math.sqrt(576)),
        (init.xavier_uniform_, dict(gain=2.0), 2.0 * math.sqrt(2 / (288 + 576))),
        (init.xavier_normal_, dict(), math.sqrt(2 / (288 + 576))),
        (init.normal_, dict(mean=0.0, std=0.3), 0.3),
        (init.uniform_, dict(a=-1, b=1), 1 / math.sqrt(3)),
    ]
    for fn, kwargs, std in checks:
        assert fn(w, **kwargs) is w
        assert w.dtype == np.float32
        assert abs(w._data.std() - std) < 0.03 * std, fn.__name__
        tw = torch.empty(64, 32, 3, 3)
        getattr(tnn.init, fn.__name__)(tw, **kwargs)
        assert abs(tw.std().item() - std) < 0.03 * std
    init.constant_(w, 0.5)
    assert np.all(w._data == 0.5)
    init.ones_(w)
    assert np.all(w._data == 1)
    init.zeros_(w)
    assert np.all(w._data == 0)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(nn.Parameter(np.zeros(3, dtype=np.float32)))
    with pytest.raises(ValueError, match="unsupported nonlinearity 'gelu'"):
        init.calculate_gain("gelu")
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_uniform_(w, mode="fan")
    cl.manual_seed(4)
    a = init.normal_(nn.Parameter(np.empty(5, dtype=np.float32)))._data.copy()
    cl.manual_seed(4)
    np.testing.assert_array_equal(init.normal_(nn.Parameter(np.empty(5, dtype=np.float32)))._data, a)
