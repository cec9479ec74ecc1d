"""Spec files: building, shape inference checked against torch, round trips and every error message."""

import json
import math
import re
import tomllib
from collections import OrderedDict
from pathlib import Path

import pytest

import convlens
from convlens import models, nn
from convlens.models import SpecError, from_spec, load_spec, plan_spec, save_spec, to_spec

torch = pytest.importorskip("torch")
tnn = torch.nn

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "specs"


def _params(model):
    return sum(p.numel() for p in model.parameters())


def _torch_from_plan(spec, input_shape=None):
    """The same modules built with torch.nn, from the plan's class names and torch-style kwargs."""
    planned, _, _ = plan_spec(spec, input_shape)
    return tnn.Sequential(OrderedDict((name, getattr(tnn, cls)(**kw)) for name, cls, kw, _ in planned))


def _arch(model):
    return [(n, type(m).__name__) for n, m in model.named_children()], \
           {k: tuple(v.shape) for k, v in model.state_dict().items()}


# ---- shape inference against torch over a grid ---------------------------------------------------------------
CONV_GRID = [  # input shape, conv keys
    ((3, 17), dict(filters=4, size=3)),
    ((3, 17), dict(filters=6, size=5, stride=2, pad=2, dilation=2, groups=3)),
    ((2, 9, 11), dict(filters=4, size=[3, 5], stride=[2, 1], pad=[1, 2])),
    ((2, 9, 11), dict(filters=4, size=3, dilation=[2, 3], padding_mode="reflect", pad=1, bias=False)),
    ((4, 8, 8), dict(filters=8, size=1, groups=4, padding_mode="circular", pad=2, activation="tanh")),
    ((3, 32, 32), dict(filters=10, size=5, pad=2)),
    ((2, 5, 6, 7), dict(filters=3, size=3, pad=1, stride=2, activation="relu")),
    ((2, 5, 6, 7), dict(filters=4, size=[1, 2, 3], dilation=[1, 2, 3], padding_mode="replicate", pad=[0, 1, 1])),
]
POOL_GRID = [
    ((3, 17), dict(kind="max", size=3)),
    ((3, 17), dict(kind="avg", size=4, stride=3, pad=2, ceil_mode=True)),
    ((2, 9, 11), dict(kind="max", size=[2, 3], stride=1, pad=1)),
    ((2, 9, 11), dict(kind="avg", size=3, stride=2, ceil_mode=True)),
    ((2, 5, 6, 7), dict(kind="max", size=2, ceil_mode=True)),
    ((2, 5, 6, 7), dict(kind="avg", size=[1, 2, 3], pad=[0, 1, 1])),
]


@pytest.mark.parametrize("shape,keys", CONV_GRID + POOL_GRID)
def test_shapes_match_torch(shape, keys):
    layers = [{"type": "conv" if "filters" in keys else "pool", **keys}, {"type": "batchnorm"},
              {"type": "global_pool", "flatten": False}, {"type": "fc", "units": 3, "activation": "sigmoid"}]
    ours, ref = from_spec(layers, shape), _torch_from_plan(layers, shape)
    assert _arch(ours) == _arch(ref)
    planned, _, out = plan_spec(layers, shape)
    assert out == (3,)
    conv_out = ours[0].output_shape(shape)
    with torch.no_grad():
        assert tuple(ref[0](torch.zeros(2, *shape)).shape[1:]) == conv_out
        assert tuple(ref.eval()(torch.zeros(2, *shape)).shape) == (2, 3)
    assert ours.eval()(convlens.zeros(2, *shape)).shape == (2, 3)


# ---- files and forms ---------------------------------------------------------------------------------------
def test_examples_build():
    assert _params(from_spec(EXAMPLES / "lenet5.toml")) == 61_706
    lenet = from_spec(EXAMPLES / "lenet5.toml")
    assert load_spec(EXAMPLES / "lenet5.toml") == to_spec(models.lenet5(), (1, 28, 28))
    assert _arch(lenet) == _arch(models.lenet5())  # named layers: the zoo's modules and state_dict keys
    cj = from_spec(str(EXAMPLES / "convnetjs_cifar10.json"))
    assert _params(cj) == 22_466 and [n for n, _ in cj.named_children()] == [str(i) for i in range(11)]
    sig = from_spec(EXAMPLES / "signal_1d.toml")
    assert [type(m).__name__ for m in sig][:4] == ["Conv1d", "ReLU", "BatchNorm1d", "MaxPool1d"]
    assert sig.output_shape((2, 128)) == (5,)


def test_forms_toml_json_bare_list(tmp_path):
    layers = [{"type": "conv", "filters": 4, "size": 3, "activation": "relu"}, {"type": "pool", "size": 2},
              {"type": "fc", "units": 5}]
    (tmp_path / "a.json").write_text(json.dumps({"input_shape": [1, 10, 10], "layers": layers}))
    (tmp_path / "bare.json").write_text(json.dumps(layers))
    toml = "input_shape = [1, 10, 10]\n" + "".join(
        "\n[[layers]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in layer.items()) for layer in layers)
    (tmp_path / "a.toml").write_text(toml)
    archs = [_arch(from_spec(tmp_path / "a.json")), _arch(from_spec(tmp_path / "a.toml")),
             _arch(from_spec(tmp_path / "bare.json", input_shape=(1, 10, 10))), _arch(from_spec(layers, [1, 10, 10])),
             _arch(from_spec({"input_shape": [1, 10, 10], "layers": layers}))]
    assert all(a == archs[0] for a in archs)
    assert archs[0][1]["4.weight"] == (5, 4 * 4 * 4)  # the fc flattened implicitly: module 3 is a Flatten
    assert load_spec(tmp_path / "bare.json") == {"layers": layers}
    # the argument overrides the spec's input shape
    assert from_spec(tmp_path / "a.toml", input_shape=(3, 12, 12))[4].in_features == 4 * 5 * 5


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_save_spec_round_trip(tmp_path, suffix):
    spec = {"name": "odd \"values\"", "input_shape": [2, 6, 6, 6], "layers": [
        {"type": "conv", "name": "c", "filters": 2, "size": [1, 2, 3], "pad": [0, 1, 1], "bias": False},
        {"type": "batchnorm", "eps": 1e-3, "momentum": 0.25},
        {"type": "leaky_relu", "negative_slope": 0.2},
        {"type": "pool", "kind": "weighted", "size": 2},
        {"type": "dropout", "p": 0.125},
        {"type": "global_pool", "kind": "max"},
        {"type": "fc", "units": 3}, {"type": "softmax"}]}
    path = save_spec(spec, tmp_path / f"net{suffix}")
    assert load_spec(path) == spec
    if suffix == ".toml":
        assert tomllib.loads(path.read_text())["layers"][1]["eps"] == 1e-3
    model = from_spec(path)
    assert type(model[3]).__name__ == "WeightedAvgPool3d" and model.output_shape((2, 6, 6, 6)) == (3,)
    assert model.eval()(convlens.randn(2, 2, 6, 6, 6)).shape == (2, 3)


# ---- to_spec round trips -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", models.list_models())
def test_zoo_round_trip(name, tmp_path):
    shape = models.default_input_shape(name)
    model = models.get_model(name)
    if getattr(model, "task", "classify") != "classify":  # unet-small / centernet-small: Python modules only
        with pytest.raises(SpecError, match=r"is a container other than Sequential, which a spec cannot express"):
            to_spec(model, shape)
        return
    spec = to_spec(model, shape)
    for suffix in (".json", ".toml"):
        again = from_spec(save_spec(spec, tmp_path / f"m{suffix}"))
        assert _arch(again) == _arch(model)
        assert again.load_state_dict(model.state_dict()) is not None
    assert json.loads(json.dumps(spec)) == spec


def test_to_spec_reads_torch_models_too():
    ref = tnn.Sequential(OrderedDict([("conv1", tnn.Conv2d(1, 6, 5, padding=2)), ("conv1_relu", tnn.ReLU()),
                                      ("pool1", tnn.AvgPool2d(2)), ("fc", tnn.Linear(6 * 14 * 14, 10))]))
    with pytest.raises(ValueError, match=r"to_spec: cannot write 'fc' \(Linear\) at input shape \(6, 14, 14\) as a spec layer: "
                       r"the spec's fc builds Flatten \+ Linear here"):
        to_spec(ref, (1, 28, 28))  # torch's Linear on a 3-d input acts on the last axis only: no spec equivalent
    ref = tnn.Sequential(*ref[:3], tnn.Flatten(), tnn.Linear(6 * 14 * 14, 10), tnn.Softmax(dim=1))
    spec = to_spec(ref, (1, 28, 28))
    assert spec["layers"][-2:] == [{"type": "fc", "units": 10}, {"type": "softmax"}]  # Flatten + Linear: one fc
    assert _arch(from_spec(spec)) == _arch(ref)


def test_to_spec_merges_and_names():
    seq = nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(32, 5), nn.Tanh())
    assert to_spec(seq, (2, 10)) == {"input_shape": [2, 10], "layers": [
        {"type": "conv", "filters": 4, "size": 3, "activation": "relu"},
        {"type": "fc", "units": 5, "activation": "tanh"}]}
    # names that do not follow the "<layer>_<activation>" convention stay separate layers
    named = nn.Sequential(OrderedDict([("c", nn.Conv1d(2, 4, 3)), ("act", nn.ReLU()), ("gap", nn.AdaptiveMaxPool1d(1)),
                                       ("gap_flatten", nn.Flatten()), ("out", nn.Linear(4, 2))]))
    spec = to_spec(named, (2, 10))
    assert spec["layers"] == [{"type": "conv", "name": "c", "filters": 4, "size": 3}, {"type": "relu", "name": "act"},
                              {"type": "global_pool", "name": "gap", "kind": "max"},
                              {"type": "fc", "name": "out", "units": 2}]
    assert _arch(from_spec(spec)) == _arch(named)
    # a LeakyReLU merges into its layer only with the spec's slope, 0.01
    leaky = to_spec(nn.Sequential(nn.Linear(4, 2), nn.LeakyReLU(0.2), nn.Linear(2, 2), nn.LeakyReLU()), (4,))
    assert leaky["layers"] == [{"type": "fc", "units": 2}, {"type": "leaky_relu", "negative_slope": 0.2},
                               {"type": "fc", "units": 2, "activation": "leaky_relu"}]
    # nested Sequentials flatten (numbered modules), with the same layers and parameter count
    nested = nn.Sequential(nn.Sequential(nn.Conv3d(1, 2, 2), nn.Sigmoid()),
                           nn.Sequential(nn.AdaptiveAvgPool3d(1), nn.Identity(), nn.Dropout(0.1)))
    flat = from_spec(to_spec(nested, (1, 4, 4, 4)))
    assert [type(m).__name__ for m in flat] == ["Conv3d", "Sigmoid", "AdaptiveAvgPool3d", "Identity", "Dropout"]
    assert _params(flat) == _params(nested) == 2 * 8 + 2


@pytest.mark.parametrize("model,shape,message", [
    (nn.Sequential(nn.Conv2d(3, 4, 3)), (1, 8, 8), "'0' (Conv2d) at input shape (1, 8, 8) as a spec layer: "
     "layer '0' (Conv2d): in_channels=3, where the spec would give 1"),
    (nn.Sequential(nn.Conv2d(1, 4, 3, padding="same")), (1, 8, 8), "layer '0' (Conv2d) uses padding='same'"),
    (nn.Sequential(nn.MaxPool2d(2, dilation=2)), (1, 8, 8), "dilation=2, where the spec would give 1"),
    (nn.Sequential(nn.AvgPool2d(2, count_include_pad=False)), (1, 8, 8), "count_include_pad=False"),
    (nn.Sequential(nn.AdaptiveAvgPool2d(2)), (1, 8, 8), "output_size=2, where the spec would give 1"),
    (nn.Sequential(nn.Flatten(0)), (1, 8, 8), "start_dim=0"),
    (nn.Sequential(nn.LogSoftmax(dim=1)), (4,), "'0' (LogSoftmax) has no spec layer type"),
    (nn.Sequential(nn.Linear(4, 2)), (8,), "in_features=4, where the spec would give 8"),
    (nn.Sequential(nn.ModuleList([nn.ReLU()])), (4,), "'0' (ModuleList) is a container other than Sequential"),
    (nn.Sequential(nn.WeightedAvgPool2d(2, weights=[[1, 2], [3, 4]])), (1, 4, 4), "weights=True"),
    (nn.Sequential(nn.ReLU()), (0, 4), "to_spec: 'input_shape' must be 1 to 4 positive integers"),
])
def test_to_spec_errors(model, shape, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        to_spec(model, shape)


# ---- every error message -------------------------------------------------------------------------------------
def _conv(**kw):
    return {"type": "conv", "filters": 4, "size": 3, **kw}


ERRORS = [  # layers (input shape (3, 8, 8)), exact message
    ([5], "spec layer 1: expected a table with a 'type' key, got 5"),
    ([{"filters": 2}], "spec layer 1: no 'type' (expected one of: conv, pool, fc, dropout, batchnorm, flatten, "
                       "global_pool, relu, tanh, sigmoid, gelu, leaky_relu, softmax, identity, whiten, scale)"),
    ([{"type": "convolution"}], "spec layer 1: unknown type 'convolution' (expected one of: conv, pool, fc, "
                                "dropout, batchnorm, flatten, global_pool, relu, tanh, sigmoid, gelu, leaky_relu, softmax, identity, whiten, scale)"),
    ([{"type": "relu"}, {"type": "conv", "filter": 4, "size": 3}],
     "spec layer 2 (conv): unknown key 'filter' (expected one of: filters, size, stride, pad, padding_mode, "
     "dilation, groups, bias, activation, name)"),
    ([{"type": "conv", "size": 3}], "spec layer 1 (conv): missing required key 'filters'"),
    ([{"type": "relu"}, {"type": "flatten"}, {"type": "fc", "units": -5}],
     "spec layer 3 (fc): 'units' must be a positive integer, got -5"),
    ([_conv(filters=2.0)], "spec layer 1 (conv): 'filters' must be a positive integer, got 2.0"),
    ([_conv(groups=True)], "spec layer 1 (conv): 'groups' must be a positive integer, got True"),
    ([_conv(size=[3, 3, 3])], "spec layer 1 (conv): 'size' must be a positive integer or a list of 2 positive "
                              "integers (one per spatial axis), got [3, 3, 3]"),
    ([_conv(pad=-1)], "spec layer 1 (conv): 'pad' must be a non-negative integer or a list of 2 non-negative "
                      "integers (one per spatial axis), got -1"),
    ([_conv(stride="2")], "spec layer 1 (conv): 'stride' must be a positive integer or a list of 2 positive "
                          "integers (one per spatial axis), got '2'"),
    ([_conv(dilation=0)], "spec layer 1 (conv): 'dilation' must be a positive integer or a list of 2 positive "
                          "integers (one per spatial axis), got 0"),
    ([_conv(padding_mode="mirror")], "spec layer 1 (conv): 'padding_mode' must be one of 'zeros', 'reflect', "
                                     "'replicate', 'circular', got 'mirror'"),
    ([_conv(activation="swish")], "spec layer 1 (conv): 'activation' must be one of 'relu', 'tanh', 'sigmoid', "
                                 "'leaky_relu', 'gelu', 'none', got 'swish'"),
    ([_conv(bias="yes")], "spec layer 1 (conv): 'bias' must be true or false, got 'yes'"),
    ([_conv(groups=2)], "spec layer 1 (conv): 'groups' = 2 must divide both the 3 input channels and the 4 filters"),
    ([_conv(size=9)], "spec layer 1 (conv): the 9×9 kernel is larger than the 8×8 input (input shape (3, 8, 8))"),
    ([_conv(size=5, dilation=[1, 3], pad=1)], "spec layer 1 (conv): the 5×5 kernel with dilation 1×3 (spanning "
                                              "5×13) is larger than the 8×8 input with padding 1×1 (input shape (3, 8, 8))"),
    ([_conv(pad=8, padding_mode="reflect")], "spec layer 1 (conv): reflect padding 8×8 needs a larger input than 8×8"),
    ([{"type": "flatten"}, _conv()], "spec layer 2 (conv): needs an input with channels and 1 to 3 spatial axes, "
                                     "(C, L), (C, H, W) or (C, D, H, W); got shape (192,)"),
    ([{"type": "pool", "kind": "min", "size": 2}], "spec layer 1 (pool): 'kind' must be one of 'max', 'avg', "
                                                   "'weighted', got 'min'"),
    ([{"type": "pool", "size": 2, "pad": 2}], "spec layer 1 (pool): 'pad' 2×2 must be at most half the window 2×2"),
    ([{"type": "pool", "size": 2}] * 4, "spec layer 4 (pool): the 2×2 window is larger than the 1×1 input "
                                        "(input shape (3, 1, 1))"),
    ([{"type": "pool", "size": 2, "ceil_mode": 1}], "spec layer 1 (pool): 'ceil_mode' must be true or false, got 1"),
    ([{"type": "pool", "kind": "weighted", "size": 2, "ceil_mode": True}],
     "spec layer 1 (pool): 'ceil_mode' is not available for weighted pooling"),
    ([{"type": "global_pool", "kind": "weighted"}], "spec layer 1 (global_pool): 'kind' must be one of 'avg', "
                                                    "'max', got 'weighted'"),
    ([{"type": "dropout", "p": 1.5}], "spec layer 1 (dropout): 'p' must be a number in [0, 1], got 1.5"),
    ([{"type": "batchnorm", "eps": "small"}], "spec layer 1 (batchnorm): 'eps' must be a number in [0, 1], got 'small'"),
    ([{"type": "leaky_relu", "negative_slope": None}],
     "spec layer 1 (leaky_relu): 'negative_slope' must be a number in [-inf, inf], got None"),
    ([{"type": "relu", "inplace": True}], "spec layer 1 (relu): unknown key 'inplace' (expected one of: name)"),
    ([{"type": "relu", "name": "my relu"}], "spec layer 1 (relu): 'name' must be an identifier (letters, digits, _), "
                                            "got 'my relu'"),
    ([_conv(name="c", activation="relu"), {"type": "relu", "name": "c_relu"}],
     "spec layer 2 (relu): module name 'c_relu' is already used by layer 1"),
]


@pytest.mark.parametrize("layers,message", ERRORS)
def test_spec_errors(layers, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        from_spec({"input_shape": [3, 8, 8], "layers": layers})


@pytest.mark.parametrize("spec,message", [
    ([{"type": "relu"}], "from_spec: the input shape is unknown: give 'input_shape' in the spec or the "
                         "input_shape argument, e.g. [1, 28, 28]"),
    ({"input_shape": [3, 0, 8], "layers": []}, "spec: 'input_shape' must be 1 to 4 positive integers without the "
     "batch axis, (F,), (C, L), (C, H, W) or (C, D, H, W); got [3, 0, 8]"),
    ({"input_shape": [1, 2, 3, 4, 5], "layers": []}, "spec: 'input_shape' must be 1 to 4"),
    ({"input_shape": [3], "layer": []}, "spec: unknown key 'layer' (expected one of: input_shape, layers, name, "
                                        "description)"),
    ({"input_shape": [3]}, "spec: missing 'layers' (a list of layer tables)"),
    ({"input_shape": [3], "layers": {"type": "relu"}}, "spec: 'layers' must be a list of layer tables, got dict"),
    (42, "from_spec: expected a path, a dict or a list of layers, got int"),
])
def test_top_level_errors(spec, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        from_spec(spec)


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="load_spec: no spec file at"):
        from_spec(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("[[layers]\ntype = 'relu'\n")
    with pytest.raises(ValueError, match="load_spec: bad.toml is not valid TOML"):
        from_spec(tmp_path / "bad.toml")
    (tmp_path / "bad.json").write_text("{'layers': []}")
    with pytest.raises(ValueError, match="load_spec: bad.json is not valid JSON"):
        from_spec(tmp_path / "bad.json")
    with pytest.raises(ValueError, match=r"save_spec: cannot write \{'a': 1\} \(dict\) to TOML"):
        save_spec({"layers": [{"type": "relu", "name": {"a": 1}}]}, tmp_path / "x.toml")


def test_fc_only_and_rank1_batchnorm():
    model = from_spec([{"type": "fc", "units": 8, "activation": "leaky_relu"}, {"type": "batchnorm"},
                       {"type": "fc", "units": 2}], input_shape=(5,))
    assert [type(m).__name__ for m in model] == ["Linear", "LeakyReLU", "BatchNorm1d", "Linear"]
    assert _params(model) == 5 * 8 + 8 + 16 + 18 and math.prod(model.output_shape((5,))) == 2
