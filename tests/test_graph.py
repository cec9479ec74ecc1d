"""Graph models: GraphModule, the graph ops, graph specs (TOML/JSON), ResNet-20, summaries, checkpoints,
and a residual spec trained from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import convlens as cl
from convlens import models, nn
from convlens.models import graph_ops
from convlens.models.graph import GraphError
from convlens.models.spec import SpecError
from convlens.testing import gradcheck

SPEC = Path(__file__).resolve().parents[1] / "examples" / "specs" / "resnet-block.toml"


def _x(shape, seed=0, dtype=np.float32):
    return cl.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


def test_graph_module_runs_nodes_and_knows_their_shapes():
    g = models.GraphModule()
    g.add_node("a", nn.Conv2d(3, 4, 3, padding=1), ["input"])
    g.add_node("b", nn.Conv2d(3, 4, 1), ["input"])
    g.add_node("sum", graph_ops.Add(), ["a", "b"])
    g.add_node("cat", graph_ops.Concat(1), ["sum", "input"])
    x = _x((2, 3, 5, 6))
    with cl.no_grad():
        want = np.concatenate([(g.a(x) + g.b(x)).numpy(), x.numpy()], 1)
        np.testing.assert_allclose(g(x).numpy(), want, rtol=1e-6)
    assert g.node_shapes((3, 5, 6)) == {"a": (4, 5, 6), "b": (4, 5, 6), "sum": (4, 5, 6), "cat": (7, 5, 6)}
    assert list(g.state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias"]
    with pytest.raises(GraphError, match="input 'nope' is neither a graph input"):
        g.add_node("bad", nn.ReLU(), ["nope"])
    mismatch = models.GraphModule().add_node("cat", graph_ops.Concat(1), ["input", "input"])
    mismatch.add_node("x", graph_ops.Add(), ["cat", "input"])
    with pytest.raises(GraphError, match=r"graph node 'x' \(Add\): cannot take \(6, 4, 4\) and \(3, 4, 4\)"):
        mismatch.node_shapes((3, 4, 4))
    with pytest.raises(GraphError, match="added without a spec layer"):
        g.to_graph_spec((3, 5, 6))


@pytest.mark.parametrize("op", [graph_ops.Add(), graph_ops.Sub(), graph_ops.Mul(), graph_ops.Div(),
                                graph_ops.Concat(1), graph_ops.Concat(-1)])
def test_graph_ops_gradients_in_float64(op):
    a = _x((2, 3, 4), 1, np.float64).requires_grad_()
    b = (_x((2, 3, 4), 2, np.float64).abs() + 0.5).requires_grad_()
    gradcheck(lambda a, b: op(a, b), [a, b])


def test_erf_pad_slice_reshape_gradients_in_float64():
    x = _x((2, 3, 5), 3, np.float64).requires_grad_()
    gradcheck(lambda x: graph_ops.Erf()(x), [x])
    gradcheck(lambda x: graph_ops.Pad([1, 2], mode="reflect")(x), [x])
    gradcheck(lambda x: graph_ops.Slice([1, -1], [3, 2**63 - 1], [1, 2], [1, 2])(x), [x])
    gradcheck(lambda x: graph_ops.Reshape([0, -1])(x), [x])
    from math import erf

    v = np.linspace(-4, 4, 101)
    np.testing.assert_allclose(graph_ops.Erf()(cl.tensor(v)).numpy(), [erf(t) for t in v], rtol=1e-14, atol=1e-15)


def test_graph_spec_builds_round_trips_and_saves(tmp_path):
    spec = models.load_spec(SPEC)
    assert models.is_graph_spec(spec)
    net = models.from_spec(SPEC)
    assert isinstance(net, models.GraphModule)
    assert net.graph[[n for n, _ in net.graph].index("add")][1] == ["bn2", "pool"]
    again = models.to_spec(net, (1, 28, 28))
    assert again["layers"] == [dict(layer, name=layer["name"]) for layer in spec["layers"]]
    for suffix in (".json", ".toml"):
        path = models.save_spec(again, tmp_path / f"net{suffix}")
        rebuilt = models.from_spec(path)
        rebuilt.load_state_dict(net.state_dict())
        x = _x((2, 1, 28, 28))
        net.eval(), rebuilt.eval()
        with cl.no_grad():
            np.testing.assert_array_equal(rebuilt(x).numpy(), net(x).numpy())
    text = cl.summary(net, (1, 28, 28))
    assert "add (Add)" in text and "(None, 8, 14, 14)" in text and "Total params: 1,354" in text


def test_graph_spec_errors_name_the_layer():
    base = [{"name": "c", "type": "conv", "filters": 4, "size": 3}]
    bad = [
        ([*base, {"name": "s", "type": "add", "inputs": ["c", "ghost"]}], r"spec layer 2 \(add\): 'inputs' must name.*ghost"),
        ([*base, {"name": "s", "type": "add", "inputs": ["c", "input"]}], r"spec layer 2 \(add\): cannot take inputs of shape"),
        ([*base, {"name": "f", "type": "fc", "units": 3, "inputs": ["c", "input"]}], r"spec layer 2 \(fc\): takes one input"),
        ([*base, {"name": "c", "type": "relu", "inputs": ["c"]}], "already used"),
        ([*base, {"name": "m", "type": "module", "class": "NoSuchLayer"}], "'class' must name a convlens.nn layer"),
        ([*base, {"name": "r", "type": "reshape", "inputs": ["c"]}], "missing required key 'shape'"),
        ([*base, {"name": "a", "type": "add", "inputs": ["c", "c"], "bogus": 1}], "unknown key 'bogus'"),
    ]
    for layers, pattern in bad:
        with pytest.raises(SpecError, match=pattern):
            models.from_spec({"input_shape": [3, 8, 8], "layers": layers})


def test_module_layers_concat_and_output_key():
    spec = {"input_shape": [2, 6, 6], "output": "cat", "layers": [
        {"name": "up", "type": "module", "class": "ConvTranspose2d",
         "args": {"in_channels": 2, "out_channels": 3, "kernel_size": 2, "stride": 2}},
        {"name": "down", "type": "pool", "size": 2},
        {"name": "path", "type": "conv", "filters": 3, "size": 3, "pad": 1, "inputs": ["input"]},
        {"name": "cat", "type": "concat", "inputs": ["path", "input"]},
        {"name": "unused", "type": "relu"},
    ]}
    net = models.from_spec(spec)
    assert net.output_shape((2, 6, 6)) == (5, 6, 6)
    assert models.to_spec(net, (2, 6, 6))["output"] == "cat"


def test_resnet20_is_a_graph_model_with_the_paper_shape():
    net = models.get_model("resnet20")
    assert sum(p.numel() for p in net.parameters()) == 272_474
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) + 1 == 20  # 19 3×3 convs and the fc: ResNet-20's 20 weight layers
    shapes = net.node_shapes((3, 32, 32))
    assert shapes["s1b3_add"] == (16, 32, 32) and shapes["s2b1_add"] == (32, 16, 16) and shapes["s3b3_add"] == (64, 8, 8)
    assert models.get_model("resnet20", input_shape=(1, 28, 28), num_classes=7).output_shape((1, 28, 28)) == (7,)


def test_residual_spec_trains_from_the_cli_and_checkpoints(tmp_path, capsys):
    from convlens.checkpoint import load_checkpoint
    from convlens.cli import main

    out = tmp_path / "run"
    code = main(["train", "--model", str(SPEC), "--dataset", "mnist-mini", "--epochs", "1", "--limit", "96",
                 "--batch-size", "16", "--out", str(out), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["status"] == "completed" and np.isfinite(report["history"][0]["train_loss"])
    model, info = load_checkpoint(out)
    assert isinstance(model, models.GraphModule) and "add" in dict(model.named_children())
    assert info["architecture"]["spec"]["layers"][7]["inputs"] == ["bn2", "pool"]
    assert main(["summary", str(out)]) == 0 and "add (Add)" in capsys.readouterr().out
