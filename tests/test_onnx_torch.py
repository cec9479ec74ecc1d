"""Models exported by torch.onnx.export import into convlens with torch's outputs: a ResNet-style net with
batch norm (the TorchScript exporter with and without constant folding, and the dynamo exporter), and
convlens-exported models run in onnxruntime as torch runs the same weights."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import convlens as cl  # noqa: E402
import convlens.onnx as cx  # noqa: E402

tnn = torch.nn


class Block(tnn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(cout)
        self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(cout)
        self.shortcut = tnn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False), tnn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNetish(tnn.Module):
    """Stem, two residual stages with BN, a concat branch, max pool, GAP via view(N, -1), GELU, linear."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem = tnn.Sequential(tnn.Conv2d(3, 8, 3, padding=1), tnn.BatchNorm2d(8), tnn.ReLU())
        self.layer1 = Block(8, 8, 1)
        self.layer2 = Block(8, 16, 2)
        self.side = tnn.Conv2d(16, 4, 1)
        self.pool = tnn.MaxPool2d(2)
        self.act = tnn.GELU()
        self.fc = tnn.Linear(20, classes)

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        x = torch.cat([x, torch.sigmoid(self.side(x))], 1)
        x = tnn.functional.adaptive_avg_pool2d(self.pool(x), 1)
        return self.fc(self.act(x.view(x.size(0), -1)))


def _net(seed=0):
    torch.manual_seed(seed)
    net = ResNetish()
    for m in net.modules():
        if isinstance(m, tnn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return net.eval()


def _export(net, x, path, how):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if how == "dynamo":
            torch.onnx.export(net, (x,), str(path), dynamo=True, dynamic_shapes=({0: torch.export.Dim("N")},),
                              verbose=False)
        else:
            torch.onnx.export(net, (x,), str(path), dynamo=False, opset_version=17, input_names=["image"],
                              output_names=["logits"], dynamic_axes={"image": {0: "N"}},
                              do_constant_folding=how == "folded")


@pytest.mark.parametrize("how", ["unfolded", "folded", "dynamo"])
def test_torch_exported_resnet_with_batchnorm_imports_with_equal_outputs(how, tmp_path):
    import onnx

    net = _net()
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        want = net(x).numpy()
    path = tmp_path / "resnetish.onnx"
    _export(net, x[:1], path, how)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    model, info = cx.load_with_info(path)
    assert info["input_shape"] == [3, 16, 16]
    kinds = {type(m).__name__ for m in model.children()}
    assert {"Conv2d", "Add", "Concat", "MaxPool2d", "Linear"} <= kinds
    if "BatchNormalization" in ops:  # the unfolded export keeps batch norm as its own layer
        assert "BatchNorm2d" in kinds
    if how == "unfolded":
        assert "BatchNormalization" in ops
    with cl.no_grad():
        got = model(cl.tensor(x.numpy())).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-5)
    # import, then export: the same outputs in onnxruntime
    again = cx.export(model, x.numpy())
    sess = ort.InferenceSession(again.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"input": x.numpy()})[0], want, rtol=1e-4, atol=2e-5)


def test_imported_torch_model_fine_tunes_and_checkpoints(tmp_path):
    """An imported model is a graph spec model: it trains and saves/loads as a convlens checkpoint."""
    from convlens.checkpoint import load_checkpoint, save_checkpoint

    net = _net(1)
    x = torch.randn(4, 3, 16, 16)
    path = tmp_path / "m.onnx"
    _export(net, x[:1], path, "unfolded")
    model = cx.load(path)
    model.train()
    opt = cl.optim.SGD(model.parameters(), lr=0.05)
    xb, yb = cl.tensor(x.numpy()), cl.tensor(np.array([0, 1, 2, 3]))
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = cl.nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    model.eval()
    save_checkpoint(tmp_path / "ckpt" / "last", model, input_shape=[3, 16, 16])
    back, info = load_checkpoint(tmp_path / "ckpt")
    with cl.no_grad():
        np.testing.assert_array_equal(back(xb).numpy(), model(xb).numpy())
    assert "graph" not in info["architecture"] and "spec" in info["architecture"]


@pytest.mark.parametrize("how", ["unfolded", "dynamo"])
def test_torch_exported_decoder_with_upsampling_and_conv_transpose(how, tmp_path):
    """A small U-Net-like decoder: ConvTranspose2d, nearest and bilinear Upsample, a skip concat."""
    torch.manual_seed(2)

    class Decoder(tnn.Module):
        def __init__(self):
            super().__init__()
            self.down = tnn.Conv2d(3, 6, 3, stride=2, padding=1)
            self.up = tnn.ConvTranspose2d(6, 4, 2, stride=2)
            self.near = tnn.Upsample(scale_factor=2, mode="nearest")
            self.bil = tnn.Upsample(scale_factor=0.5, mode="bilinear")
            self.head = tnn.Conv2d(7, 2, 1)

        def forward(self, x):
            y = self.up(torch.relu(self.down(x)))
            y = self.bil(self.near(y))
            return torch.sigmoid(self.head(torch.cat([y, x], 1)))

    net = Decoder().eval()
    x = torch.randn(2, 3, 12, 10)
    with torch.no_grad():
        want = net(x).numpy()
    path = tmp_path / "decoder.onnx"
    _export(net, x[:1], path, how)
    model = cx.load(path)
    assert {"ConvTranspose2d", "Upsample", "Concat"} <= {type(m).__name__ for m in model.children()}
    with cl.no_grad():
        np.testing.assert_allclose(model(cl.tensor(x.numpy())).numpy(), want, rtol=1e-4, atol=2e-5)
