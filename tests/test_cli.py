"""The command line, in-process through `main([...])` on tiny fixtures, and through `python -m convlens`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import load_file

import convlens
from convlens.cli import main
from tests.cli_helpers import CLASSES, SPEC, make_mnist, one_line_error, run_cli


def _bar_image(label: int, pos: int, rng, size=12) -> np.ndarray:
    img = rng.integers(0, 40, size=(size, size, 3)).astype(np.uint8)
    if label == 0:
        img[pos, :, 0] = 250
    elif label == 1:
        img[pos:pos + 3, pos:pos + 3, 1] = 250
    else:
        img[:, pos, 2] = 250
    return img


def make_folder(root: Path, n_train=60, n_test=15, seed=0) -> Path:
    """root/train/<class>/*.png and root/test/<class>/*.png: 12×12 RGB bars and squares."""
    rng = np.random.default_rng(seed)
    for part, n in (("train", n_train), ("test", n_test)):
        for i in range(n):
            label = i % 3
            d = root / part / CLASSES[label]
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(_bar_image(label, int(rng.integers(1, 9)), rng)).save(d / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A folder data set, a spec and one trained run, shared by the tests that only read them."""
    base = tmp_path_factory.mktemp("cli")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVLENS_DATA", str(base / "cache"))
        folder = make_folder(base / "bars")
        spec = base / "tiny.json"
        spec.write_text(json.dumps(SPEC))
        run = base / "run"
        code = main(["train", "--model", str(spec), "--dataset", str(folder), "--epochs", "4", "--lr", "0.05",
                     "--optimizer", "sgd", "--schedule", "none", "--augment", "none", "--out", str(run), "--json"])
        assert code == 0
        yield {"base": base, "folder": folder, "spec": spec, "run": run}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVLENS_DATA", str(tmp_path / "cache"))


# ---- through a real process ------------------------------------------------------------------------------
def test_python_m_convlens_help_and_version():
    r = subprocess.run([sys.executable, "-m", "convlens", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    for command in ("train", "eval", "predict", "summary", "filter", "inspect", "plot", "data", "bench", "serve"):
        assert command in r.stdout
    r = subprocess.run([sys.executable, "-m", "convlens", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == f"convlens {convlens.__version__}"
    r = subprocess.run([sys.executable, "-m", "convlens", "eval", "no/such/run"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and r.stderr.startswith("convlens: error: no/such/run: no such checkpoint")
    assert "Traceback" not in r.stderr


def test_ctrl_c_saves_and_exits_130(tmp_path, env):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "convlens", "train", "--model", str(env["spec"]), "--dataset", str(env["folder"]),
           "--epochs", "100000", "--schedule", "none", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, CONVLENS_DATA=str(tmp_path / "cache")))
    deadline = time.time() + 60
    while not (out / "last.json").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"convlens train --resume {out}" in err
    assert json.loads((out / "last.json").read_text())["epoch"] >= 1


# ---- help and argument errors ------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["train", "eval", "predict", "summary", "filter", "inspect", "plot", "data",
                                     "bench", "serve"])
def test_every_command_has_help(capsys, command):
    code, out, _ = run_cli(capsys, command, "--help")
    assert code == 0 and f"convlens {command}" in out


@pytest.mark.parametrize("argv,fragment", [
    (["train", "--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
    (["train", "--epochs", "many"], "invalid int value"),
    (["eval"], "the following arguments are required: CKPT"),
    (["filter", "x.png", "--out", "o"], "--kernel"),
    (["nosuchcommand"], "invalid choice"),
])
def test_bad_arguments_exit_2(capsys, argv, fragment):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and fragment in err


def test_no_command_prints_usage(capsys):
    code, _, err = run_cli(capsys)
    assert code == 2 and "usage: convlens" in err


def test_debug_shows_the_traceback(capsys, tmp_path):
    with pytest.raises(ValueError, match="no such checkpoint"):
        main(["--debug", "eval", str(tmp_path / "none")])
    with pytest.raises(ValueError):
        main(["eval", str(tmp_path / "none"), "--debug"])


# ---- summary ----------------------------------------------------------------------------------------------
def test_summary_of_the_course_example(capsys, tmp_path):
    spec = tmp_path / "conv.json"
    spec.write_text(json.dumps({"input_shape": [3, 32, 32], "layers": [
        {"type": "conv", "filters": 10, "size": 5, "pad": 2}]}))
    code, out, _ = run_cli(capsys, "summary", spec)
    assert code == 0 and "760" in out and "(None, 10, 32, 32)" in out
    code, out, _ = run_cli(capsys, "summary", spec, "--json")
    rows = json.loads(out)
    assert code == 0 and rows["totals"]["total"] == 760 and rows["rows"][0]["params"] == 760


def test_summary_of_zoo_models_and_checkpoints(capsys, env):
    code, out, _ = run_cli(capsys, "summary", "lenet5")
    assert code == 0 and "61,706" in out and "default recipe" in out
    code, out, _ = run_cli(capsys, "summary", "lenet5", "--json")
    assert json.loads(out)["totals"]["total"] == 61706 and json.loads(out)["default_recipe"]["optimizer"]
    code, out, _ = run_cli(capsys, "summary", "lenet5", "--input-shape", "3,32,32", "--json")
    assert code == 0 and json.loads(out)["totals"]["total"] != 61706
    code, out, _ = run_cli(capsys, "summary", env["run"], "--json")
    assert code == 0 and json.loads(out)["totals"]["total"] == 4 * 3 * 9 + 4 + 4 * 6 * 6 * 3 + 3


@pytest.mark.parametrize("argv,fragment", [
    (["summary", "resnet9000"], "resnet9000: not a zoo model"),
    (["summary", "lenet5", "--input-shape", "a,b"], "--input-shape: expected positive integers"),
    (["summary", "lenet5", "--input-shape", "1,4,4"], "lenet5 cannot be built for input shape (1, 4, 4)"),
])
def test_summary_errors(capsys, argv, fragment):
    code, _, err = run_cli(capsys, *argv)
    assert code == 1 and fragment in one_line_error(err)


# ---- train -------------------------------------------------------------------------------------------------
def test_train_writes_a_run_and_reports_json(env):
    run = env["run"]
    for f in ("last.safetensors", "last.json", "best.safetensors", "best.json", "history.json", "report.json"):
        assert (run / f).is_file()
    report = json.loads((run / "report.json").read_text())
    assert set(report) >= {"run_dir", "checkpoint", "epochs", "history", "val_accuracy", "test_accuracy", "seconds"}
    h = report["history"]
    assert report["epochs"] == 4 and h[-1]["train_loss"] < h[0]["train_loss"]
    assert 0 <= report["test_accuracy"] <= 1 and report["test_accuracy"] > 0.5  # chance: 1/3
    meta = json.loads((run / "last.json").read_text())
    assert meta["classes"] == CLASSES and meta["input_shape"] == [3, 12, 12]
    assert meta["recipe"]["optimizer"] == "sgd" and len(meta["mean"]) == 3


def test_train_json_goes_to_stdout_and_progress_to_stderr(capsys, tmp_path, env):
    code, out, err = run_cli(capsys, "train", "--model", env["spec"], "--dataset", env["folder"], "--epochs", "1",
                             "--limit", "30", "--out", tmp_path / "r", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["run_dir"] == str(tmp_path / "r") and len(report["history"]) == 1
    assert "epoch 1/1" in err and "optimizer" in err
    assert json.loads((tmp_path / "r" / "last.json").read_text())["num_train"] == 27


def test_resume_via_cli_is_bitwise_identical(capsys, tmp_path, env):
    common = ["--model", env["spec"], "--dataset", env["folder"], "--schedule", "none", "--limit", "40",
              "--augment", "flip,shift", "--optimizer", "adam", "--lr", "0.01"]
    assert run_cli(capsys, "train", *common, "--epochs", "3", "--out", tmp_path / "full")[0] == 0
    assert run_cli(capsys, "train", *common, "--epochs", "2", "--out", tmp_path / "part")[0] == 0
    code, out, _ = run_cli(capsys, "train", "--resume", tmp_path / "part", "--epochs", "3", "--json")
    assert code == 0 and json.loads(out)["epochs"] == 3
    a, b = load_file(str(tmp_path / "full" / "last.safetensors")), load_file(str(tmp_path / "part" / "last.safetensors"))
    assert a.keys() == b.keys() and all(a[k].tobytes() == b[k].tobytes() for k in a)
    code, _, err = run_cli(capsys, "train", "--resume", tmp_path / "part", "--lr", "0.5")
    assert code == 1 and "--lr cannot change when resuming" in one_line_error(err)
    code, _, err = run_cli(capsys, "train", *common, "--epochs", "1", "--out", tmp_path / "part")
    assert code == 1 and "already holds a run" in one_line_error(err)


@pytest.mark.parametrize("argv,fragment", [
    (["--dataset", "imagenet"], "unknown data set 'imagenet'"),
    (["--model", "resnet9000"], "unknown model 'resnet9000'"),
    (["--model", "lenet5"], "lenet5 cannot be built for images of shape (3, 12, 12)"),
    (["--val-split", "0.001"], "leaves 0 for validation"),
    (["--lr", "-1"], "Recipe: lr must be > 0"),
])
def test_train_errors_are_one_line(capsys, tmp_path, env, argv, fragment):
    args = ["train", "--model", env["spec"], "--dataset", env["folder"], "--epochs", "1", "--out", tmp_path / "x"]
    code, _, err = run_cli(capsys, *args, *argv)
    assert code == 1 and fragment in one_line_error(err)


def test_train_spec_with_wrong_number_of_outputs(capsys, tmp_path, env):
    spec = tmp_path / "five.json"
    spec.write_text(json.dumps({"layers": [{"type": "fc", "units": 5}]}))
    code, _, err = run_cli(capsys, "train", "--model", spec, "--dataset", env["folder"], "--out", tmp_path / "x")
    assert code == 1 and "has 3 classes: the last layer needs 3 units" in one_line_error(err)


def test_train_on_mnist_files_and_predict_a_drawn_digit(capsys, tmp_path):
    data_dir = make_mnist(tmp_path / "mnist")
    spec = tmp_path / "digits.json"
    spec.write_text(json.dumps({"layers": [{"type": "pool", "size": 4}, {"type": "fc", "units": 10}]}))
    code, _, _ = run_cli(capsys, "train", "--model", spec, "--dataset", "mnist", "--data-dir", data_dir,
                         "--epochs", "1", "--out", tmp_path / "run")
    assert code == 0
    drawing = np.full((90, 60), 255, np.uint8)
    drawing[20:70, 28:34] = 0  # a dark "1" on white paper
    Image.fromarray(drawing).save(tmp_path / "one.png")
    code, out, _ = run_cli(capsys, "predict", tmp_path / "run", tmp_path / "one.png", "--top-k", "4", "--json")
    assert code == 0
    [result] = json.loads(out)
    probs = [t["probability"] for t in result["top"]]
    assert result["image"] == str(tmp_path / "one.png") and len(probs) == 4 and probs == sorted(probs, reverse=True)
    assert {t["class"] for t in result["top"]} <= set("0123456789")

    # the model input is exactly what prepare_digit makes of the drawing (then normalised)
    from convlens.cli._common import prepare_image
    from convlens.data import prepare_digit

    _, info = convlens.load_checkpoint(tmp_path / "run")
    x, pixels = prepare_image(Image.open(tmp_path / "one.png"), (1, 28, 28), info)
    np.testing.assert_array_equal(pixels, prepare_digit(Image.open(tmp_path / "one.png")))
    expected = (pixels[None] / np.float32(255) - np.float32(info["mean"][0])) / np.float32(info["std"][0])
    np.testing.assert_allclose(x, expected, rtol=1e-6, atol=1e-6)


# ---- eval, predict, inspect, plot --------------------------------------------------------------------------
def test_eval_json_and_text(capsys, env):
    code, out, _ = run_cli(capsys, "eval", env["run"], "--json")
    r = json.loads(out)
    assert code == 0 and r["split"] == "test" and r["n"] == 15 and r["dataset"] == str(env["folder"])
    assert np.array(r["confusion_matrix"]).shape == (3, 3) and np.array(r["confusion_matrix"]).sum() == 15
    assert 0 <= r["accuracy"] <= 1 and len(r["per_class_accuracy"]) == 3
    report = json.loads((env["run"] / "report.json").read_text())
    assert r["accuracy"] == pytest.approx(report["test_accuracy"])
    code, out, _ = run_cli(capsys, "eval", env["run"] / "last.safetensors", "--split", "train")
    assert code == 0 and "confusion matrix" in out and "(train, 60 images)" in out


def test_predict_top_k(capsys, env):
    img = env["folder"] / "test" / "hbar" / "000.png"
    code, out, _ = run_cli(capsys, "predict", env["run"], img, img, "--json")
    results = json.loads(out)
    assert code == 0 and len(results) == 2 and len(results[0]["top"]) == 3
    top = results[0]["top"]
    assert {t["class"] for t in top} == set(CLASSES) and sum(t["probability"] for t in top) == pytest.approx(1, abs=1e-5)
    assert all(top[i]["index"] == CLASSES.index(top[i]["class"]) for i in range(3))
    code, out, _ = run_cli(capsys, "predict", env["run"], img, "--top-k", "1")
    assert code == 0 and out.startswith(f"{img}: ") and out.count("%") == 1


@pytest.mark.parametrize("make,fragment", [
    (lambda d: (d / "notes.txt").write_text("not an image") and d / "notes.txt", "notes.txt: not a readable image"),
    (lambda d: d / "absent.png", "absent.png: no such image file"),
])
def test_predict_rejects_bad_images(capsys, tmp_path, env, make, fragment):
    code, _, err = run_cli(capsys, "predict", env["run"], make(tmp_path))
    assert code == 1 and fragment in one_line_error(err)


def test_predict_with_a_broken_checkpoint(capsys, tmp_path, env):
    (tmp_path / "bad.safetensors").write_bytes(b"nonsense")
    (tmp_path / "bad.json").write_text(json.dumps({"format": "convlens-checkpoint", "token": "x"}))
    img = env["folder"] / "test" / "hbar" / "000.png"
    code, _, err = run_cli(capsys, "predict", tmp_path / "bad.safetensors", img)
    assert code == 1 and "bad.safetensors" in one_line_error(err)


def test_inspect_writes_feature_maps_and_kernels(capsys, tmp_path, env):
    img = env["folder"] / "test" / "vbar" / "002.png"
    code, out, _ = run_cli(capsys, "inspect", env["run"], img, "--out", tmp_path / "maps")
    assert code == 0 and "prediction:" in out
    files = sorted(p.name for p in (tmp_path / "maps").iterdir())
    assert "input.png" in files and "kernels-conv1.png" in files
    assert any(f.startswith("01-conv1") for f in files) and any("pool1" in f for f in files)
    grid = Image.open(tmp_path / "maps" / next(f for f in files if f.startswith("01-conv1")))
    assert grid.mode == "L" and grid.size[0] > 12
    assert Image.open(tmp_path / "maps" / "kernels-conv1.png").mode == "RGB"  # 3-channel kernels in colour


def test_plot_writes_curves(capsys, tmp_path, env):
    code, out, _ = run_cli(capsys, "plot", env["run"], "--out", tmp_path / "c.png")
    assert code == 0 and Image.open(tmp_path / "c.png").size[0] > 100
    code, _, err = run_cli(capsys, "plot", tmp_path)
    assert code == 1 and "history.json: no such file" in one_line_error(err)


# ---- filter ------------------------------------------------------------------------------------------------
def test_filter_sobel_and_output_size(capsys, tmp_path):
    img = np.zeros((20, 16), np.uint8)
    img[:, 8:] = 255  # a vertical edge
    Image.fromarray(img).save(tmp_path / "edge.png")
    code, out, _ = run_cli(capsys, "filter", tmp_path / "edge.png", "--kernel", "sobel-x", "--padding", "1",
                           "--out", tmp_path / "o")
    assert code == 0 and "H2 = (20 − 3 + 2·1)/1 + 1 = 20" in out and "W2 = (16 − 3 + 2·1)/1 + 1 = 16" in out
    fmap = np.asarray(Image.open(tmp_path / "o" / "feature_map.png"))
    relu = np.asarray(Image.open(tmp_path / "o" / "relu.png"))
    assert fmap.shape == (20, 16)
    assert relu[10, 7:9].min() == 255 and relu[10, 2] == 0  # bright only on the edge
    code, out, _ = run_cli(capsys, "filter", tmp_path / "edge.png", "--kernel", "blur", "--stride", "2",
                           "--out", tmp_path / "o2")
    assert code == 0 and "(20 − 3 + 2·0)/2 + 1 = 9 (rounded down from 9.5)" in out
    assert np.asarray(Image.open(tmp_path / "o2" / "relu.png")).shape == (9, 7)


def test_filter_kernel_from_a_file_and_replicate_padding(capsys, tmp_path):
    Image.fromarray(np.full((8, 8), 100, np.uint8)).save(tmp_path / "flat.png")
    (tmp_path / "k.csv").write_text("# a 2x3 kernel\n1, 0, -1\n1 0 -1\n")
    code, out, _ = run_cli(capsys, "filter", tmp_path / "flat.png", "--kernel", tmp_path / "k.csv",
                           "--padding", "1", "--padding-mode", "replicate", "--out", tmp_path / "o")
    assert code == 0 and "(2×3)" in out and "= 9" in out and "= 8" in out
    assert "values 0 .. 0" in out  # replicate padding keeps a flat image flat: no border response


@pytest.mark.parametrize("kernel,fragment", [
    ("emboss", "unknown kernel 'emboss'"),
    ("BAD", "expected a rectangular table of numbers"),
])
def test_filter_errors(capsys, tmp_path, kernel, fragment):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    if kernel == "BAD":
        (tmp_path / "bad.txt").write_text("1 2\n3\n")
        kernel = tmp_path / "bad.txt"
    code, _, err = run_cli(capsys, "filter", tmp_path / "a.png", "--kernel", kernel, "--out", tmp_path / "o")
    assert code == 1 and fragment in one_line_error(err)


# ---- data, bench, serve ------------------------------------------------------------------------------------
def test_data_fetch_calls_the_downloader(capsys, tmp_path, monkeypatch):
    calls = []

    def fake_fetch(name, root=None):
        calls.append((name, root))
        return Path(root)

    monkeypatch.setattr(convlens.data, "fetch", fake_fetch)
    code, out, _ = run_cli(capsys, "data", "fetch", "fashion-mnist", "--root", tmp_path)
    assert code == 0 and calls == [("fashion-mnist", str(tmp_path))] and str(tmp_path) in out


def test_data_info(capsys, tmp_path):
    data_dir = make_mnist(tmp_path / "m", n_train=30, n_test=10)
    code, out, _ = run_cli(capsys, "data", "info", "mnist", "--data-dir", data_dir)
    assert code == 0 and "30 training images, 10 test images" in out and "(1, 28, 28)" in out


def test_missing_optional_commands_say_not_yet_available(capsys, monkeypatch):
    import convlens.cli.bench as bench

    monkeypatch.setattr(bench, "_MODULE", "convlens._no_such_module_")
    code, _, err = run_cli(capsys, "bench", "--quick")
    assert code == 2 and "not yet available" in one_line_error(err)
    code, out, _ = run_cli(capsys, "bench", "--help")
    assert code == 0 and "not yet available" in out
