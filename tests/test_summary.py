"""convlens.summary: exact tables, totals, buffers, any input rank, and errors naming the layer."""

import io
import json
from collections import OrderedDict

import pytest

import convlens
from convlens import models, nn
from convlens.summary import format_bytes, summary, summary_rows

COURSE = """\
Layer (type)            Output Shape          Param #
=====================================================
conv2d_1 (Conv2d)       (None, 10, 32, 32)    760
=====================================================
Total params: 760
Trainable params: 760
Non-trainable params: 0
Activation memory (forward, per image): 40.0 KB"""

LENET5 = """\
Layer (type)            Output Shape          Param #
=====================================================
conv1 (Conv2d)          (None, 6, 28, 28)     156
conv1_relu (ReLU)       (None, 6, 28, 28)     0
pool1 (AvgPool2d)       (None, 6, 14, 14)     0
conv2 (Conv2d)          (None, 16, 10, 10)    2,416
conv2_relu (ReLU)       (None, 16, 10, 10)    0
pool2 (AvgPool2d)       (None, 16, 5, 5)      0
conv3 (Conv2d)          (None, 120, 1, 1)     48,120
conv3_relu (ReLU)       (None, 120, 1, 1)     0
flatten (Flatten)       (None, 120)           0
fc1 (Linear)            (None, 84)            10,164
fc1_relu (ReLU)         (None, 84)            0
fc2 (Linear)            (None, 10)            850
=====================================================
Total params: 61,706
Trainable params: 61,706
Non-trainable params: 0
Activation memory (forward, per image): 57.5 KB"""


def test_course_example_exact():
    # ten 5×5 kernels on 3 channels, stride 1, padding 2: (32 − 5 + 4)/1 + 1 = 32; 10·(5·5·3 + 1) = 760
    model = nn.Sequential(nn.Conv2d(3, 10, 5, stride=1, padding=2))
    assert summary(model, (3, 32, 32)) == COURSE
    assert convlens.summary(model, (3, 32, 32)) == COURSE
    assert repr(summary(model, (3, 32, 32))) == COURSE  # shows as a table at the prompt


def test_lenet5_exact():
    text = summary(models.lenet5(), (1, 28, 28))
    assert text == LENET5
    # activations: 2·6·28·28 + 6·14·14 + 2·16·10·10 + 16·5·5 + 3·120 + 2·84 + 10 values, 4 bytes each
    values = 2 * 4704 + 1176 + 2 * 1600 + 400 + 3 * 120 + 2 * 84 + 10
    assert summary_rows(models.lenet5(), (1, 28, 28))["totals"]["activation_bytes"] == 4 * values
    assert f"{4 * values / 1024:.1f} KB" == "57.5 KB"


def test_batch_size_and_file():
    model = nn.Sequential(nn.Conv2d(3, 10, 5, padding=2))
    out = io.StringIO()
    text = summary(model, (3, 32, 32), batch_size=64, file=out)
    assert "conv2d_1 (Conv2d)       (64, 10, 32, 32)      760" in text.splitlines()
    assert out.getvalue() == text + "\n"
    with pytest.raises(ValueError, match="summary: batch_size must be a positive integer or None, got 0"):
        summary(model, (3, 32, 32), batch_size=0)


def test_batchnorm_buffers_not_counted():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU())
    info = summary_rows(model, (3, 8, 8))
    assert [r["params"] for r in info["rows"]] == [216, 16, 0]  # BatchNorm: γ and β only
    t = info["totals"]
    assert (t["total"], t["trainable"], t["non_trainable"]) == (232, 232, 0)
    assert t["buffers"] == 8 + 8 + 1  # running mean, running var, num_batches_tracked
    assert t["param_bytes"] == 4 * 232
    assert "Total params: 232" in summary(model, (3, 8, 8))


def test_frozen_parameters_are_non_trainable():
    model = models.lenet5()
    model.conv1.requires_grad_(False)
    info = summary_rows(model, (1, 28, 28))
    assert info["rows"][0]["trainable"] == 0 and info["rows"][0]["params"] == 156
    assert (info["totals"]["trainable"], info["totals"]["non_trainable"]) == (61_550, 156)
    assert summary(model, (1, 28, 28)).splitlines()[-3:-1] == ["Trainable params: 61,550", "Non-trainable params: 156"]


@pytest.mark.parametrize("model,shape,shapes", [
    (nn.Sequential(nn.Conv1d(2, 4, 5, padding=2), nn.MaxPool1d(2), nn.Flatten(), nn.Linear(40, 3)),
     (2, 20), [(4, 20), (4, 10), (40,), (3,)]),
    (nn.Sequential(nn.Conv3d(1, 2, 3, stride=2), nn.BatchNorm3d(2), nn.AdaptiveAvgPool3d(1), nn.Flatten()),
     (1, 9, 7, 5), [(2, 4, 3, 2), (2, 4, 3, 2), (2, 1, 1, 1), (2,)]),
    (nn.Sequential(nn.Linear(6, 4), nn.Tanh()), (6,), [(4,), (4,)]),
])
def test_other_ranks(model, shape, shapes):
    info = summary_rows(model, shape)
    assert [tuple(r["output_shape"]) for r in info["rows"]] == shapes
    assert tuple(model.eval()(convlens.zeros(2, *shape)).shape[1:]) == shapes[-1]  # the same as running it
    text = summary(model, shape)
    assert f"(None, {', '.join(map(str, shapes[0]))})" in text


def test_nested_names_and_json():
    model = nn.Sequential(OrderedDict([
        ("features", nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU())),
        ("head", nn.Sequential(nn.Flatten(), nn.Linear(4 * 4 * 4, 10)))]))
    info = summary_rows(model, (1, 8, 8))
    assert [r["name"] for r in info["rows"]] == ["conv2d_1", "relu_1", "conv2d_2", "relu_2", "flatten_1", "linear_1"]
    assert [r["module"] for r in info["rows"]][-2:] == ["head.0", "head.1"]
    assert info["rows"][0] == {"name": "conv2d_1", "module": "features.0", "type": "Conv2d",
                               "output_shape": [4, 6, 6], "params": 40, "trainable": 40}
    assert json.loads(json.dumps(info)) == info
    assert info["input_shape"] == [1, 8, 8]


def test_custom_container_descends():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.pool = nn.MaxPool2d(2)

        def forward(self, x):
            return self.pool(self.conv(x))

    rows = summary_rows(Net(), (1, 10, 10))["rows"]
    assert [(r["name"], tuple(r["output_shape"])) for r in rows] == [("conv", (2, 8, 8)), ("pool", (2, 4, 4))]
    # a single layer summarises as itself
    assert summary_rows(nn.Conv2d(3, 10, 5, padding=2), (3, 32, 32))["rows"][0]["output_shape"] == [10, 32, 32]


@pytest.mark.parametrize("model,shape,message", [
    (models.lenet5(), (3, 28, 28), r"^summary: layer conv1 \(Conv2d\) cannot take an input of shape \(3, 28, 28\): "
                                   r"Conv2d\(1, 6, kernel_size=5\): expected input with 1 channels"),
    (nn.Sequential(nn.ReLU(), nn.Conv2d(1, 2, 5)), (1, 4, 4), r"^summary: layer conv2d_1 \(Conv2d\) cannot take "
                                                              r"an input of shape \(1, 4, 4\)"),
    (nn.Sequential(nn.Conv2d(1, 2, 3)), (1, 28), r"^summary: layer conv2d_1 \(Conv2d\) cannot take an input of shape \(1, 28\)"),
    (nn.Sequential(nn.ReLU()), (1, 0, 4), r"^summary: input_shape must be positive integers without the batch axis"),
    (nn.Sequential(nn.ReLU()), 28, r"^summary: input_shape must be positive integers"),
])
def test_errors_name_the_layer(model, shape, message):
    with pytest.raises(ValueError, match=message):
        summary(model, shape)


def test_format_bytes():
    assert [format_bytes(n) for n in (0, 1023, 1024, 40960, 1536 * 1024, 3 * 1024 ** 3)] == \
           ["0 B", "1023 B", "1.0 KB", "40.0 KB", "1.5 MB", "3.0 GB"]


def test_module_is_callable_and_has_rows():
    import convlens.summary as mod

    model = nn.Sequential(nn.Conv2d(3, 10, 5, padding=2))
    assert mod(model, (3, 32, 32)) == COURSE
    assert convlens.summary.summary_rows(model, (3, 32, 32))["totals"]["total"] == 760


def test_summary_of_a_model_whose_forward_is_its_own_code_runs_it_for_the_shapes():
    """A U-Net's decoder takes skip concatenations: chaining output_shape() in module order would feed
    each layer the wrong input; the shapes come from one forward pass instead."""
    from convlens import models
    from convlens.summary import summary_rows

    model = models.get_model("unet-small")
    rows = summary_rows(model, (1, 48, 40))["rows"]
    byname = {r["module"]: r for r in rows}
    out = model.eval()(convlens.zeros(1, 1, 48, 40))
    assert byname["head"]["output_shape"] == list(out.shape[1:])
    assert sum(r["params"] for r in rows) == sum(p.numel() for p in model.parameters())
    with pytest.raises(ValueError, match="summary: .* cannot take an input of shape"):
        summary_rows(model, (3, 48, 40))


def test_forward_flops_counts_conv_and_linear_work_without_side_effects():
    """convlens.summary.forward_flops: 2·C/groups·∏F per conv output value, 2·in_features per linear
    output value, on one pass of zeros that leaves batch-norm statistics and the training mode as they were."""
    import numpy as np

    from convlens import nn
    from convlens.summary import forward_flops

    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Conv2d(4, 8, 3, groups=2), nn.Flatten(), nn.Linear(8 * 6 * 6, 5))
    net.train()
    before = net[1].running_mean.numpy().copy(), int(net[1].num_batches_tracked.item())
    flops = forward_flops(net, (3, 8, 8))
    assert flops == 2 * 3 * 9 * (4 * 8 * 8) + 2 * 2 * 9 * (8 * 6 * 6) + 2 * 288 * 5
    assert net.training and np.array_equal(net[1].running_mean.numpy(), before[0])
    assert int(net[1].num_batches_tracked.item()) == before[1]
    assert forward_flops(net.double(), (3, 8, 8)) == flops  # the pass runs in the model's dtype
