"""ONNX export and import: every zoo model through onnxruntime and onnx's reference evaluator, a grid of
layers there and back, models written with onnx.helper, and bad files with one-line errors naming the node."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import convlens as cl  # noqa: E402
import convlens.onnx as cx  # noqa: E402
from convlens import models, nn  # noqa: E402
from convlens.models import graph_ops  # noqa: E402

TOL = dict(rtol=1e-4, atol=1e-5)


def _randomise_stats(model, seed=0):
    """Non-trivial batch-norm statistics and affine parameters, so the eval form is really tested."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if getattr(m, "running_mean", None) is not None:
            m.running_mean._data[:] = rng.uniform(-0.3, 0.3, m.running_mean.shape)
            m.running_var._data[:] = rng.uniform(0.5, 1.5, m.running_var.shape)
            if m.weight is not None:
                m.weight._data[:] = rng.uniform(0.5, 1.5, m.weight.shape)
                m.bias._data[:] = rng.uniform(-0.2, 0.2, m.bias.shape)
    return model


def _run(model, x):
    model.eval()
    with cl.no_grad():
        return model(cl.tensor(x)).numpy()


def _ort(path_or_proto, x):
    data = path_or_proto if isinstance(path_or_proto, str) else path_or_proto.SerializeToString()
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("name", models.list_models())
def test_zoo_model_round_trips_through_onnxruntime_and_reference(name, tmp_path):
    from onnx.reference import ReferenceEvaluator

    model = _randomise_stats(models.get_model(name)).eval()
    shape = models.default_input_shape(name)
    x = np.random.default_rng(1).standard_normal((3, *shape)).astype(np.float32)
    want = _run(model, x)
    path = tmp_path / f"{name}.onnx"
    proto = cx.export(model, x, path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert proto.opset_import[0].version == 17
    dim0 = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param == "N"  # dynamic batch
    np.testing.assert_allclose(_ort(str(path), x), want, **TOL)
    np.testing.assert_allclose(_ort(str(path), x[:1]), want[:1], **TOL)  # another batch size
    ref = ReferenceEvaluator(proto).run(None, {"input": x[:1]})[0]
    np.testing.assert_allclose(ref, want[:1], **TOL)
    # import, then export again: the same outputs
    back = cx.load(path)
    np.testing.assert_allclose(_run(back, x), want, **TOL)
    np.testing.assert_allclose(_ort(cx.export(back, x), x), want, **TOL)


def _layer_cases():
    g = np.random.default_rng(5)
    prelu = nn.PReLU(4)
    prelu.weight._data[:] = g.uniform(0.1, 0.5, 4)
    cases = [
        ("conv-reflect", nn.Conv2d(4, 6, 3, padding=2, padding_mode="reflect"), (4, 9, 8)),
        ("conv-replicate", nn.Conv2d(4, 6, (3, 5), padding=(1, 2), padding_mode="replicate"), (4, 9, 8)),
        ("conv-circular", nn.Conv2d(4, 6, 3, padding=1, padding_mode="circular"), (4, 9, 8)),
        ("conv-same-dilated", nn.Conv2d(4, 6, 4, padding="same", dilation=2), (4, 11, 10)),
        ("conv-groups-stride", nn.Conv2d(4, 8, 3, stride=2, groups=2, padding=1), (4, 9, 8)),
        ("conv1d", nn.Conv1d(4, 3, 5, padding=2, padding_mode="reflect"), (4, 17)),
        ("conv3d", nn.Conv3d(4, 3, 3, padding=1), (4, 5, 6, 5)),
        ("convT", nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1), (4, 5, 6)),
        ("convT-groups", nn.ConvTranspose2d(4, 6, 2, stride=2, groups=2), (4, 5, 6)),
        ("weighted-pool", nn.WeightedAvgPool2d(3, stride=2, padding=1), (4, 9, 8)),
        ("avgpool-exclude", nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (4, 9, 8)),
        ("maxpool-dilated", nn.MaxPool2d(3, stride=1, padding=1, dilation=2), (4, 9, 8)),
        ("maxpool-ceil", nn.MaxPool2d(2, ceil_mode=True), (4, 9, 7)),
        ("adaptive-avg-2", nn.AdaptiveAvgPool2d(2), (4, 8, 6)),
        ("global-max", nn.AdaptiveMaxPool2d(1), (4, 7, 5)),
        ("prelu", prelu, (4, 5, 5)),
        ("upsample-nearest", nn.Upsample(scale_factor=2), (4, 5, 6)),
        ("upsample-bilinear", nn.Upsample(size=(9, 13), mode="bilinear"), (4, 5, 6)),
        ("upsample-bilinear-ac", nn.Upsample(scale_factor=3, mode="bilinear", align_corners=True), (4, 5, 6)),
        ("upsample-bicubic", nn.Upsample(scale_factor=2, mode="bicubic"), (4, 5, 6)),
        ("upsample-trilinear", nn.Upsample(scale_factor=2, mode="trilinear"), (4, 3, 4, 5)),
        ("layernorm", nn.LayerNorm([5, 5]), (4, 5, 5)),
        ("groupnorm", nn.GroupNorm(2, 4), (4, 5, 5)),
        ("instancenorm", nn.InstanceNorm2d(4, affine=True), (4, 5, 5)),
        ("lrn", nn.LocalResponseNorm(3), (4, 5, 5)),
        ("bn1d", nn.Sequential(nn.Flatten(), nn.Linear(100, 7), nn.BatchNorm1d(7)), (4, 5, 5)),
        ("flatten-partial", nn.Sequential(nn.Flatten(2), nn.Conv1d(4, 2, 3)), (4, 5, 5)),
        ("softmax-logsoftmax", nn.Sequential(nn.Softmax(dim=1), nn.LogSoftmax(dim=2)), (4, 5, 5)),
    ]
    for act in (nn.ReLU(), nn.LeakyReLU(0.2), nn.ELU(0.7), nn.SELU(), nn.CELU(1.3), nn.SiLU(), nn.Mish(),
                nn.Softplus(beta=2.0), nn.Softsign(), nn.Hardswish(), nn.Hardsigmoid(), nn.ReLU6(),
                nn.Hardtanh(-0.5, 0.7), nn.LogSigmoid(), nn.Tanh(), nn.Sigmoid()):
        cases.append((type(act).__name__, act, (4, 5, 5)))
    if hasattr(nn, "GELU"):
        cases += [("gelu", nn.GELU(), (4, 5, 5)), ("gelu-tanh", nn.GELU(approximate="tanh"), (4, 5, 5))]
    return cases


@pytest.mark.parametrize("label,layer,shape", _layer_cases(), ids=[c[0] for c in _layer_cases()])
def test_layer_exports_and_imports_with_equal_outputs(label, layer, shape):
    model = _randomise_stats(nn.Sequential(layer) if not isinstance(layer, nn.Sequential) else layer).eval()
    x = (3 * np.random.default_rng(2).standard_normal((2, *shape))).astype(np.float32)
    want = _run(model, x)
    proto = cx.export(model, x)
    np.testing.assert_allclose(_ort(proto, x), want, **TOL)
    back = cx.load(proto)
    np.testing.assert_allclose(_run(back, x), want, **TOL)


def test_graph_model_with_every_graph_op_exports():
    g = models.GraphModule()
    g.add_node("conv", nn.Conv2d(3, 4, 3, padding=1), ["input"])
    g.add_node("scale", graph_ops.Constant(np.linspace(0.5, 1.5, 4, dtype=np.float32).reshape(4, 1, 1)), [])
    g.add_node("mul", graph_ops.Mul(), ["conv", "scale"])
    g.add_node("sub", graph_ops.Sub(), ["mul", "conv"])
    g.add_node("div", graph_ops.Div(), ["sub", "scale"])
    g.add_node("cat", graph_ops.Concat(1), ["div", "conv", "input"])
    g.add_node("pad", graph_ops.Pad([1, 0, 2, 1], mode="reflect"), ["cat"])
    g.add_node("crop", graph_ops.Slice([1], [-1], [2]), ["pad"])
    g.add_node("erf", graph_ops.Erf(), ["crop"])
    g.add_node("flat", graph_ops.Reshape([0, 11, -1]), ["erf"])
    g.add_node("add", graph_ops.Add(), ["flat", "flat", "flat"])
    x = np.random.default_rng(3).standard_normal((2, 3, 6, 5)).astype(np.float32)
    want = _run(g, x)
    assert want.shape == (2, 11, g.node_shapes((3, 6, 5))["add"][1])
    np.testing.assert_allclose(_ort(cx.export(g, x), x), want, **TOL)
    np.testing.assert_allclose(_run(cx.load(cx.export(g, x)), x), want, **TOL)


# ---- models written with onnx.helper (no torch needed) ------------------------------------------------
def _helper_model(nodes, inits, in_shape, out_shape, opset=17, name="input"):
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *in_shape])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", *out_shape] if out_shape else None)],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_helper_written_cnn_imports_like_the_reference_evaluator():
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    g = np.random.default_rng(4)
    f32 = lambda *s: g.standard_normal(s).astype(np.float32)  # noqa: E731
    inits = {"w1": f32(6, 3, 3, 3), "b1": f32(6), "w2": f32(6, 3, 2, 2), "wl": f32(12 * 5 * 5, 10),
             "bl": f32(10), "wg": f32(5, 10), "bg": f32(5), "pads": np.array([0, 0, 0, 1, 0, 0, 1, 0], np.int64),
             "shape": np.array([0, -1], np.int64), "ratio": np.array(0.3, np.float32),
             "scale": f32(6), "bias": f32(6), "mean": f32(6), "var": np.abs(f32(6)) + 0.5}
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c1", "scale", "bias", "mean", "var"], ["bn"], epsilon=1e-3),
        helper.make_node("LeakyRelu", ["bn"], ["r1"], alpha=0.1),
        helper.make_node("Pad", ["r1", "pads"], ["p1"], mode="edge"),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], group=2, pads=[1, 0, 0, 1]),
        helper.make_node("Sigmoid", ["c2"], ["s"]),
        helper.make_node("Concat", ["c2", "s"], ["cat"], axis=-3),
        helper.make_node("MaxPool", ["cat"], ["mp"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("AveragePool", ["cat"], ["ap"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                         count_include_pad=1),
        helper.make_node("Add", ["mp", "ap"], ["sum"]),
        helper.make_node("Constant", [], ["half"], value=helper.make_tensor("half", 1, [], [0.5])),
        helper.make_node("Mul", ["sum", "half"], ["m"]),
        helper.make_node("Shape", ["m"], ["shp"]),
        helper.make_node("Dropout", ["m", "ratio"], ["d"]),
        helper.make_node("Identity", ["d"], ["i"]),
        helper.make_node("Reshape", ["i", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "wl"], ["mm"]),
        helper.make_node("Add", ["mm", "bl"], ["lin"]),
        helper.make_node("Tanh", ["lin"], ["t"]),
        helper.make_node("Gemm", ["t", "wg", "bg"], ["gm"], transB=1, alpha=0.5, beta=2.0),
        helper.make_node("Softmax", ["gm"], ["out"], axis=1),
    ]
    del nodes[12]  # the Shape node is unused here; shapes are tested with torch's exports
    proto = _helper_model(nodes, inits, (3, 16, 15), (5,))
    onnx.checker.check_model(proto)
    x = f32(2, 3, 16, 15)
    want = ReferenceEvaluator(proto).run(None, {"input": x})[0]
    model = cx.load(proto)
    got = _run(model, x)
    np.testing.assert_allclose(got, want, **TOL)
    np.testing.assert_allclose(_ort(cx.export(model, x), x), want, **TOL)
    assert {"Conv2d", "BatchNorm2d", "LeakyReLU", "Pad", "Concat", "MaxPool2d", "AvgPool2d", "Linear", "Softmax"} <= \
        {type(m).__name__ for m in model.children()}


def test_helper_written_conv_transpose_global_pools_and_flatten():
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    g = np.random.default_rng(6)
    inits = {"w": g.standard_normal((3, 4, 3, 3)).astype(np.float32), "b": g.standard_normal(4).astype(np.float32)}
    nodes = [helper.make_node("ConvTranspose", ["input", "w", "b"], ["ct"], strides=[2, 2], pads=[1, 1, 1, 1],
                              output_padding=[1, 0]),
             helper.make_node("GlobalAveragePool", ["ct"], ["ga"]),
             helper.make_node("GlobalMaxPool", ["ct"], ["gm"]),
             helper.make_node("Sub", ["ga", "gm"], ["d"]),
             helper.make_node("Flatten", ["d"], ["out"], axis=1)]
    proto = _helper_model(nodes, inits, (3, 5, 6), (4,))
    x = g.standard_normal((2, 3, 5, 6)).astype(np.float32)
    want = ReferenceEvaluator(proto).run(None, {"input": x})[0]
    np.testing.assert_allclose(_run(cx.load(proto), x), want, **TOL)


# ---- bad input: one line, naming the file / node ------------------------------------------------------
def test_corrupt_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07\x12\x05hello" + bytes(range(200)))
    with pytest.raises(cx.ONNXImportError, match=r"broken\.onnx: not a(n)? (readable )?ONNX model") as e:
        cx.load(bad)
    assert "\n" not in str(e.value)
    with pytest.raises(cx.ONNXImportError, match="no such ONNX file"):
        cx.load(tmp_path / "missing.onnx")


def test_unsupported_op_names_the_first_such_node():
    from onnx import helper

    nodes = [helper.make_node("Relu", ["input"], ["r"], name="first_relu"),
             helper.make_node("Transpose", ["r"], ["t"], name="my_transpose", perm=[0, 1, 3, 2]),
             helper.make_node("NonZero", ["t"], ["out"], name="later")]
    with pytest.raises(cx.UnsupportedOpError) as e:
        cx.load(_helper_model(nodes, {}, (3, 4, 4), None))
    msg = str(e.value)
    assert "node 1 'my_transpose' (Transpose)" in msg and "not supported" in msg and "\n" not in msg


def test_shapes_that_do_not_fit_name_the_node():
    from onnx import helper

    w = np.zeros((4, 5, 3, 3), np.float32)  # expects 5 input channels; the input has 3
    nodes = [helper.make_node("Conv", ["input", "w"], ["out"], name="conv_bad")]
    with pytest.raises(cx.ONNXImportError) as e:
        cx.load(_helper_model(nodes, {"w": w}, (3, 8, 8), None))
    msg = str(e.value)
    assert "conv_bad" in msg and "shapes do not fit" in msg and "(3, 8, 8)" in msg and "\n" not in msg
    nodes = [helper.make_node("Add", ["input", "b"], ["out"], name="add_bad")]
    with pytest.raises(cx.ONNXImportError, match="add_bad"):
        cx.load(_helper_model(nodes, {"b": np.zeros((4, 1, 1), np.float32)}, (3, 8, 8), None))


def test_symbolic_input_needs_input_shape():
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["out"])], "t",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(cx.ONNXImportError, match="input_shape"):
        cx.load(proto)
    assert cx.load(proto, input_shape=(3, 4, 5)).output_shape((3, 4, 5)) == (3, 4, 5)


def test_export_error_names_the_layer():
    class Odd(nn.Module):
        def forward(self, x):
            return x

        def output_shape(self, s):
            return s

    with pytest.raises(cx.ONNXExportError, match=r"layer '1' \(Odd\) has no ONNX converter"):
        cx.export(nn.Sequential(nn.ReLU(), Odd()), (3, 4, 4))


@pytest.mark.parametrize("name", ["unet-small", "centernet-small"])
def test_dense_models_export_at_sizes_that_need_padding(name):
    """Their forward pads to a multiple of 8 and crops back: the export does the same for the example's size."""
    model = _randomise_stats(models.get_model(name)).eval()
    x = np.random.default_rng(7).standard_normal((2, 1, 30, 27)).astype(np.float32)
    want = _run(model, x)
    proto = cx.export(model, x)
    np.testing.assert_allclose(_ort(proto, x), want, **TOL)
    np.testing.assert_allclose(_run(cx.load(proto), x), want, **TOL)
