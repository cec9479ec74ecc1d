"""`convlens train/eval/predict` on segmentation and detection models (a few steps only), and their
one-line errors."""

import json

import numpy as np
import pytest
from PIL import Image

from convlens.cli import main


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny run of each dense model (32 training scenes, one epoch)."""
    import contextlib
    import io

    base = tmp_path_factory.mktemp("dense-runs")
    out = {}
    for name in ("unet-small", "centernet-small"):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
            code = main(["train", "--model", name, "--epochs", "1", "--limit", "32", "--val-split", "0.01",
                         "--batch-size", "16", "--out", str(base / name), "--json"])
        assert code == 0
        out[name] = (base / name, json.loads(buf.getvalue()))
    return out


@pytest.fixture(scope="module")
def scene_png(tmp_path_factory):
    from convlens.data.scenes import load_scenes

    ds = load_scenes("mnist-scenes-mini", train=False)
    big = np.zeros((96, 128), np.uint8)  # larger than the 64×64 training scenes
    big[:64, :64], big[32:, 64:] = ds.images[0, 0], ds.images[1, 0]
    path = tmp_path_factory.mktemp("img") / "scene.png"
    Image.fromarray(big).save(path)
    return path


def test_train_reports_task_metrics(runs):
    _, seg = runs["unet-small"]
    _, det = runs["centernet-small"]
    assert seg["task"] == "segment" and 0 <= seg["test"]["mean_iou"] <= 1 and len(seg["test"]["per_class_iou"]) == 11
    assert det["task"] == "detect" and 0 <= det["test"]["map_50"] <= 1 and "map" in det["test"]


def test_eval_prints_metrics_and_json(runs, capsys):
    run, _ = runs["unet-small"]
    code, out, _ = _run(capsys, "eval", run, "--json")
    r = json.loads(out)
    assert code == 0 and r["task"] == "segment" and {"mean_iou", "pixel_accuracy", "per_class_iou"} <= set(r)
    code, out, _ = _run(capsys, "eval", runs["centernet-small"][0])
    assert code == 0 and "mAP@0.5" in out and "map_75" in out


def test_predict_draws_masks_and_boxes_on_a_larger_scene(runs, scene_png, capsys, tmp_path):
    for name in ("unet-small", "centernet-small"):
        out_png = tmp_path / f"{name}.png"
        code, out, err = _run(capsys, "predict", runs[name][0], scene_png, "--out", out_png, "--score-threshold",
                              "0.0", "--json")
        assert code == 0, err
        r = json.loads(out)[0]
        with Image.open(out_png) as im:
            assert im.mode == "RGB" and im.size[0] / im.size[1] == pytest.approx(128 / 96)
        if name == "unet-small":
            assert r["size"] == [96, 128] and sum(r["pixels"].values()) == 96 * 128
        else:
            assert all(len(d["box"]) == 4 for d in r["detections"])


def test_dense_errors_are_one_line(runs, scene_png, capsys):
    code, _, err = _run(capsys, "train", "--model", "centernet-small", "--task", "segment")
    assert code == 1 and "does not fit model centernet-small" in err and len(err.strip().splitlines()) == 1
    code, _, err = _run(capsys, "train", "--model", "lenet5", "--task", "detect")
    assert code == 1 and "classifier" in err
    code, _, err = _run(capsys, "train", "--model", "unet-small", "--dataset", "mnist-mini")
    assert code == 1 and "scene data sets" in err
    code, _, err = _run(capsys, "eval", runs["unet-small"][0], "--dataset", "mnist-mini")
    assert code == 1 and "scene data sets" in err and len(err.strip().splitlines()) == 1
