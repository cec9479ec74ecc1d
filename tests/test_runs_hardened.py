"""Issue 19's silent wrong results and recovery gaps, each through the command line as a user meets it:
resume on other data, eval on data that does not fit, divergence without NaN, a spec's input shape,
blank images, SIGTERM, extending a finished scheduled run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.cli_helpers import CLASSES, SPEC, make_mnist, one_line_error, run_cli


def make_folder(root: Path, n=30, seed=0, size=12, classes=CLASSES, grey=False) -> Path:
    """root/<class>/*.png: small RGB (or grey) images, class-dependent so that a net can learn them."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        label = i % len(classes)
        d = root / classes[label]
        d.mkdir(parents=True, exist_ok=True)
        img = rng.integers(0, 40, size=(size, size, 3)).astype(np.uint8)
        img[(label * 3) % size, :, label % 3] = 250
        Image.fromarray(img[..., 0] if grey else img).save(d / f"{i:03d}.png")
    return root


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVLENS_DATA", str(tmp_path / "cache"))


@pytest.fixture
def spec(tmp_path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(SPEC))
    return path


TRAIN = ["--epochs", "1", "--lr", "0.05", "--optimizer", "sgd", "--schedule", "none", "--augment", "none"]


# ---- 1. resume from another working directory --------------------------------------------------------
def test_resume_elsewhere_uses_the_recorded_folder_and_refuses_changed_data(capsys, tmp_path, spec, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    make_folder(a / "my_images", n=30, seed=0)
    make_folder(b / "my_images", n=12, seed=1)  # same relative name, other images
    run = tmp_path / "run"
    monkeypatch.chdir(a)
    code, _, err = run_cli(capsys, "train", "--model", spec, "--dataset", "./my_images", *TRAIN, "--out", run)
    assert code == 0, err
    first = json.loads((run / "last.json").read_text())
    assert first["dataset_path"] == str((a / "my_images").resolve())
    assert first["data_fingerprint"]["n"] == 30

    monkeypatch.chdir(b)  # ./my_images is now the other folder: the run must not follow the relative path
    code, _, err = run_cli(capsys, "train", "--resume", run, "--epochs", "2")
    assert code == 0, err
    last = json.loads((run / "last.json").read_text())
    assert last["epoch"] == 2 and last["num_train"] == first["num_train"]
    assert last["data_fingerprint"] == first["data_fingerprint"]

    # the recorded folder itself changed: refused, naming what changed
    for f in sorted((a / "my_images" / "hbar").iterdir())[:3]:
        f.unlink()
    code, _, err = run_cli(capsys, "train", "--resume", run, "--epochs", "3")
    line = one_line_error(err)
    assert code == 1 and "not the data this run trained on" in line and "30 images then, 27 now" in line
    # moved data is accepted when it is the same (checked by the fingerprint)
    moved = tmp_path / "moved"
    make_folder(moved, n=30, seed=0)
    code, _, err = run_cli(capsys, "train", "--resume", run, "--epochs", "3", "--dataset", moved)
    assert code == 0, err


def test_resume_refuses_same_count_with_other_pixels(capsys, tmp_path, spec):
    make_folder(tmp_path / "d", n=30, seed=0)
    run = tmp_path / "run"
    assert run_cli(capsys, "train", "--model", spec, "--dataset", tmp_path / "d", *TRAIN, "--out", run)[0] == 0
    shutil.rmtree(tmp_path / "d")
    make_folder(tmp_path / "d", n=30, seed=5)
    code, _, err = run_cli(capsys, "train", "--resume", run, "--epochs", "2")
    assert code == 1 and "different pixels" in one_line_error(err)


# ---- 2. eval on data that does not fit the model ------------------------------------------------------
@pytest.fixture
def digit_run(capsys, tmp_path) -> Path:
    run = tmp_path / "digits"
    code, _, err = run_cli(capsys, "train", "--model", "lenet5", "--dataset", "mnist", "--data-dir",
                           make_mnist(tmp_path / "mnist", n_train=60), *TRAIN, "--out", run)
    assert code == 0, err
    return run


def test_eval_refuses_colour_images_of_other_classes(capsys, tmp_path, digit_run):
    cifar_like = make_folder(tmp_path / "cifar", n=20, size=32, classes=[f"c{i}" for i in range(10)])
    code, out, err = run_cli(capsys, "eval", digit_run, "--dataset", cifar_like)
    line = one_line_error(err)
    assert code == 1 and "accuracy" not in out
    assert "does not fit the model" in line and "classes are c0" in line and "colour" in line and "32×32" in line
    code, out, err = run_cli(capsys, "eval", digit_run, "--dataset", cifar_like, "--cross-eval")
    assert code == 0 and "accuracy" in out and "cross-evaluation" in err


def test_eval_refuses_same_shape_other_class_names(capsys, tmp_path, digit_run):
    fashion_like = make_folder(tmp_path / "fashion", n=20, size=28, grey=True,
                               classes=["Ankle boot", "Bag", "Coat", "Dress", "Pullover", "Sandal", "Shirt",
                                        "Sneaker", "T-shirt", "Trouser"])
    code, out, err = run_cli(capsys, "eval", digit_run, "--dataset", fashion_like)
    assert code == 1 and "classes are Ankle boot" in one_line_error(err) and "accuracy" not in out
    code, out, err = run_cli(capsys, "eval", digit_run)  # its own data: fine
    assert code == 0 and "accuracy" in out


# ---- 3. divergence without NaN -----------------------------------------------------------------------
def test_adam_at_lr_1e6_stops_with_a_clear_message(capsys, tmp_path, spec):
    folder = make_folder(tmp_path / "d", n=60)
    run = tmp_path / "run"
    with _no_runtime_warnings():
        code, _, err = run_cli(capsys, "train", "--model", spec, "--dataset", folder, "--epochs", "3",
                               "--optimizer", "adam", "--lr", "1e6", "--batch-size", "8", "--out", run)
    line = one_line_error(err)
    assert code == 1 and "training stopped (try a lower learning rate)" in line
    assert "diverging" in line or "nan" in line.lower()
    # nothing from the diverged epoch was saved: last.* is the last good state
    assert json.loads((run / "last.json").read_text())["epoch"] < 3


class _no_runtime_warnings:
    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings(record=True)
        self.caught = self._cm.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)
        leaked = [w for w in self.caught if issubclass(w.category, RuntimeWarning)]
        assert not leaked, [str(w.message) for w in leaked]


def test_fit_catches_a_finite_but_exploding_loss():
    import convlens
    from convlens import nn
    from convlens.nn import functional as F
    from convlens.train import NonFiniteLossError, fit
    from convlens.utils.data import DataLoader, TensorDataset

    convlens.manual_seed(0)
    x = convlens.rand(64, 1, 4, 4)
    y = convlens.tensor(np.arange(64) % 2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    calls = {"n": 0}

    def loss_fn(out, target):  # finite everywhere, but 1e6 times its start from the fourth batch on
        calls["n"] += 1
        return F.cross_entropy(out, target) * (1e6 if calls["n"] > 3 else 1.0)

    with pytest.raises(NonFiniteLossError, match=r"the loss became .*, diverging \(it started at .*\) at epoch 1, batch 4"):
        fit(model, DataLoader(TensorDataset(x, y), 8), epochs=2, loss_fn=loss_fn, progress=False)


# ---- 4. a spec's input_shape against the data ---------------------------------------------------------
def test_spec_input_shape_must_match_the_data(capsys, tmp_path):
    spec = tmp_path / "net.json"
    spec.write_text(json.dumps({"input_shape": [1, 28, 28], **SPEC}))
    folder = make_folder(tmp_path / "d", n=30)
    code, _, err = run_cli(capsys, "train", "--model", spec, "--dataset", folder, *TRAIN, "--out", tmp_path / "r")
    line = one_line_error(err)
    assert code == 1 and "(1, 28, 28)" in line and "(3, 12, 12)" in line
    assert not (tmp_path / "r").exists()


# ---- 5. blank images in predict -----------------------------------------------------------------------
@pytest.mark.parametrize("make", ["black", "white", "one_pixel"])
def test_predict_flags_blank_images(capsys, tmp_path, spec, make):
    folder = make_folder(tmp_path / "d", n=30)
    run = tmp_path / "run"
    assert run_cli(capsys, "train", "--model", spec, "--dataset", folder, *TRAIN, "--out", run)[0] == 0
    img = {"black": Image.new("RGB", (40, 30), 0), "white": Image.new("RGB", (40, 30), (255, 255, 255)),
           "one_pixel": Image.new("RGB", (1, 1), (90, 20, 200))}[make]
    img.save(tmp_path / "blank.png")
    ordinary = next((folder / "square").iterdir())
    code, out, _ = run_cli(capsys, "predict", run, tmp_path / "blank.png", ordinary)
    lines = out.strip().splitlines()
    assert code == 0 and "blank image" in lines[0] and "no prediction" in lines[0] and "blank image" not in lines[1]
    code, out, _ = run_cli(capsys, "predict", run, tmp_path / "blank.png", ordinary, "--json")
    assert [r["blank"] for r in json.loads(out)] == [True, False]


def test_predict_refuses_a_huge_image_before_decoding(capsys, tmp_path, spec):
    folder = make_folder(tmp_path / "d", n=30)
    run = tmp_path / "run"
    assert run_cli(capsys, "train", "--model", spec, "--dataset", folder, *TRAIN, "--out", run)[0] == 0
    Image.new("L", (10000, 10)).save(tmp_path / "wide.png")
    code, _, err = run_cli(capsys, "predict", run, tmp_path / "wide.png")
    assert code == 1 and "10000×10 pixels, at most 8192×8192" in one_line_error(err)


# ---- 8. SIGTERM, and a double Ctrl-C ------------------------------------------------------------------
def _start_training(tmp_path, spec, out):
    folder = make_folder(tmp_path / "d", n=60)
    cmd = [sys.executable, "-m", "convlens", "train", "--model", str(spec), "--dataset", str(folder),
           "--epochs", "100000", "--schedule", "none", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, CONVLENS_DATA=str(tmp_path / "cache")))
    deadline = time.time() + 90
    while not (out / "last.json").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    return proc


def test_sigterm_saves_like_ctrl_c(tmp_path, spec):
    out = tmp_path / "run"
    proc = _start_training(tmp_path, spec, out)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    assert "SIGTERM: stopping after this batch and saving" in err
    assert f"convlens train --resume {out}" in err and "Traceback" not in err


def test_double_ctrl_c_exits_quietly(tmp_path, spec):
    out = tmp_path / "run"
    proc = _start_training(tmp_path, spec, out)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    assert "Traceback" not in err


# ---- 9. the README's way to train a finished run longer ------------------------------------------------
def test_readme_resume_example_extends_a_finished_onecycle_run(capsys, tmp_path):
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "convlens train --resume runs/lenet5-mnist-mini-" in readme and "--epochs 12" in readme
    run = tmp_path / "runs" / "lenet5-mnist-mini"
    # the default run (lenet5 on mnist-mini, Adam + onecycle), made small: 300 images, 2 epochs
    code, _, err = run_cli(capsys, "train", "--limit", "300", "--epochs", "2", "--out", run)
    assert code == 0, err
    assert json.loads((run / "last.json").read_text())["recipe"]["schedule"] == "onecycle"
    code, _, err = run_cli(capsys, "train", "--resume", run, "--epochs", "3")  # as the README writes it
    assert code == 0, err
    assert "onecycle (a new phase from epoch 3)" in err
    meta = json.loads((run / "last.json").read_text())
    assert meta["epoch"] == 3 and meta["recipe"]["schedule_start"] == 2
    history = meta["progress"]["history"]
    lr = meta["recipe"]["lr"]
    assert history[2]["lr"] == pytest.approx(lr / 25)  # the new cycle starts from its warm-up, not from ~0
    code, _, err = run_cli(capsys, "train", "--resume", run, "--epochs", "2")
    assert code == 1 and "done 3 epochs already" in one_line_error(err)


def test_ctrl_c_while_convlens_imports_exits_quietly():
    """Interrupted at several instants of start-up, the command exits 130 with one line; a traceback may
    only come from Python's own start-up before any convlens code runs."""
    for delay in (0.3, 0.6, 1.0, 1.5):
        proc = subprocess.Popen([sys.executable, "-m", "convlens", "summary", "lenet5"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        if "Traceback" in err:
            assert "convlens" not in err, err
        else:
            assert proc.returncode in (0, 130), err
            assert proc.returncode == 0 or err.strip().endswith("convlens: interrupted"), err


# ---- 10. the cache: first use said, shown, emptied -------------------------------------------------------
def test_data_cache_lists_and_clean_empties(capsys, tmp_path):
    import tarfile

    folder = make_folder(tmp_path / "ds" / "train", n=12)
    make_folder(tmp_path / "ds" / "test", n=6)
    archive = tmp_path / "ds.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(folder.parent, arcname="ds")
    code, out, err = run_cli(capsys, "data", "info", archive)
    assert code == 0 and "first use of ds.tar.gz: extracting and decoding it into the cache" in err
    code, _, err = run_cli(capsys, "data", "info", archive)
    assert code == 0 and "first use" not in err  # said once
    code, out, _ = run_cli(capsys, "data", "cache")
    assert code == 0 and "extracted/" in out and "imagefolder/" in out and "total" in out
    code, out, _ = run_cli(capsys, "data", "clean", "--dry-run")
    assert code == 0 and "would remove" in out and (tmp_path / "cache" / "extracted").is_dir()
    code, out, _ = run_cli(capsys, "data", "clean")
    assert code == 0 and "freed" in out
    assert not (tmp_path / "cache" / "extracted").exists() and not (tmp_path / "cache" / "imagefolder").exists()
    assert archive.is_file() and folder.is_dir()  # the user's own files are never touched


# ---- rough edges -----------------------------------------------------------------------------------------
def test_photo_folders_train_with_size_and_every_bad_image_is_named(capsys, tmp_path, spec):
    folder = make_folder(tmp_path / "photos", n=30)
    for i in range(3):  # other sizes, as real photos are
        Image.new("RGB", (20 + i, 17)).save(folder / "hbar" / f"big{i}.png")
    for i in range(25):
        (folder / "vbar" / f"broken{i:02d}.png").write_bytes(b"not an image")
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--model", spec, "--dataset", folder, *TRAIN, "--out", run)
    line = one_line_error(err)
    assert code == 1 and "28 of 58 image files cannot be used" in line and "; and 8 more" in line
    assert "vbar/broken00.png (not a readable image (UnidentifiedImageError: cannot identify image file))" in line
    assert "--skip-bad" in line and "--size HxW" in line and "size=" not in line
    code, _, err = run_cli(capsys, "train", "--model", spec, "--dataset", folder, *TRAIN, "--out", run,
                           "--size", "12", "--skip-bad")
    assert code == 0, err
    assert json.loads((run / "last.json").read_text())["recipe"]["size"] == [12, 12]
    code, _, err = run_cli(capsys, "train", "--model", spec, "--dataset", folder, "--size", "0x5")
    assert code == 2 and "--size" in err


def test_an_impossible_layer_is_refused_before_allocating(capsys, tmp_path):
    spec = tmp_path / "huge.json"
    spec.write_text(json.dumps({"input_shape": [1, 28, 28], "layers": [{"type": "fc", "units": 100_000_000}]}))
    code, _, err = run_cli(capsys, "summary", spec)
    line = one_line_error(err)
    assert code == 1 and "spec layer 1 (fc): 78,500,000,000 parameters would need" in line and "GB" in line
    assert "internal error" not in line and "MemoryError" not in line


def test_bench_takes_debug_and_the_spec_comments_commands_run(capsys):
    code, out, _ = run_cli(capsys, "bench", "--debug", "--help")
    assert code == 0 and "usage: convlens bench" in out
    spec = Path(__file__).parents[1] / "examples" / "specs" / "lenet5.toml"
    commands = [line.split("#", 1)[1].split() for line in spec.read_text().splitlines()
                if line.startswith("#") and line[1:].strip().startswith("convlens ")]
    assert commands
    for words in commands:
        assert words[0] == "convlens"
        args = [str(spec) if w.endswith("lenet5.toml") else w for w in words[1:]]
        code, out, err = run_cli(capsys, *args)
        assert code == 0, (words, err)
