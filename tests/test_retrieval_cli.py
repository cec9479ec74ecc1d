"""`convlens index` and `convlens search` in-process, with the shipped checkpoint on the embedded mnist-mini
(what works from a clean checkout), and their one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from convlens.cli import main
from convlens.data import mnist_mini


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "index"
    assert main(["index", "lenet5-mnist-mini", "--limit", "800", "--out", str(out)]) == 0
    return out


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_index_writes_faiss_and_json(index_dir, capsys):
    meta = json.loads((index_dir / "index.json").read_text())
    assert (index_dir / "index.faiss").stat().st_size > 800 * 84 * 4
    assert meta["count"] == 800 and meta["dim"] == 84 and meta["layer"] == "fc2:input"
    assert meta["dataset"] == "mnist-mini" and meta["split"] == "train" and meta["config"]["kind"] == "flat"
    ids = meta["ids"]  # --limit takes a seeded random subset; ids are indices into the full training set
    assert ids == sorted(ids) and len(set(ids)) == 800 and ids[-1] > 5000
    code, out, _ = _run(capsys, "index", "lenet5-mnist-mini", "--list-layers")
    assert code == 0 and out.split() == ["input", "conv1", "conv1_relu", "pool1", "conv2", "conv2_relu", "pool2",
                                         "conv3", "conv3_relu", "flatten", "fc1", "fc1_relu", "fc2:input", "fc2"]


def test_search_sample_prints_neighbours_with_ids_labels_distances(index_dir, capsys):
    code, out, _ = _run(capsys, "search", index_dir, "--sample", 3, "-k", 4)
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 3 * 5 and lines[0].startswith("test/") and "(label " in lines[0]
    assert lines[1].split()[:2] == ["1.", lines[1].split()[1]] and "distance" in lines[1]
    code, out, _ = _run(capsys, "search", index_dir, "--sample", 20, "-k", 3, "--json")
    results = json.loads(out)
    assert len(results) == 20 and all(len(r["neighbours"]) == 3 for r in results)
    first = results[0]["neighbours"][0]
    assert set(first) == {"rank", "row", "id", "label", "class", "distance"}
    distances = [h["distance"] for h in results[0]["neighbours"]]
    assert distances == sorted(distances) and 0 <= distances[0] < 1
    agree = np.mean([r["neighbours"][0]["label"] == r["label"] for r in results])
    assert agree >= 0.8  # the trained net's nearest training digit is mostly the same digit


def test_search_an_image_file_and_a_feature_vector(index_dir, tmp_path, capsys):
    test = mnist_mini(train=False)
    i = int(np.flatnonzero(test.labels == 7)[0])
    Image.fromarray(test.images[i, 0]).resize((56, 56)).save(tmp_path / "seven.png")  # resized back to 28×28
    code, out, _ = _run(capsys, "search", index_dir, tmp_path / "seven.png", "-k", 5, "--json")
    assert code == 0
    hits = json.loads(out)[0]["neighbours"]
    assert [h["class"] for h in hits].count("7") >= 4
    vec = json.loads((index_dir / "index.json").read_text())  # any 84-vector is a valid feature query
    np.save(tmp_path / "q.npy", np.ones(vec["dim"], np.float32))
    code, out, _ = _run(capsys, "search", index_dir, tmp_path / "q.npy", "-k", 2, "--json")
    assert code == 0 and len(json.loads(out)[0]["neighbours"]) == 2


def test_search_eval_reports_map_and_precision(index_dir, capsys):
    code, out, _ = _run(capsys, "search", index_dir, "--eval", "--limit", 100, "--json")
    assert code == 0
    r = json.loads(out)
    assert r["queries"] == 100 and r["database"] == 800 and r["layer"] == "fc2:input"
    assert 0.5 < r["map"] <= 1 and 0.8 < r["precision@10"] <= 1
    assert r["index_precision@10"] == pytest.approx(r["precision@10"])  # a flat index is the exact ranking
    code, out, _ = _run(capsys, "search", index_dir, "--eval", "--limit", 50)
    assert code == 0 and out.startswith("mAP ")


def test_approximate_index_eval_reports_recall(tmp_path, capsys):
    out = tmp_path / "ivf"
    code, _, _ = _run(capsys, "index", "lenet5-mnist-mini", "--limit", 500, "--kind", "ivf", "--nprobe", 4, "--out", out)
    assert code == 0 and json.loads((out / "index.json").read_text())["config"]["nprobe"] == 4
    _, text, _ = _run(capsys, "search", out, "--eval", "--limit", 60, "--json")
    r = json.loads(text)
    assert r["kind"] == "ivf" and 0.5 <= r["recall@10"] <= 1.0 and r["queries"] == 60


def test_trained_features_beat_raw_pixels(index_dir, tmp_path, capsys):
    out = tmp_path / "pixels"
    code, printed, _ = _run(capsys, "index", "lenet5-mnist-mini", "--limit", 800, "--layer", "input", "--out", out)
    assert code == 0 and printed.strip() == str(out)
    _, text, _ = _run(capsys, "search", out, "--eval", "--limit", 100, "--json")
    pixels = json.loads(text)
    _, text, _ = _run(capsys, "search", index_dir, "--eval", "--limit", 100, "--json")
    fc = json.loads(text)
    assert pixels["layer"] == "input" and json.loads((out / "index.json").read_text())["dim"] == 784
    assert fc["map"] > pixels["map"] + 0.2


def _error(capsys, *argv) -> str:
    code, out, err = _run(capsys, *argv)
    assert code != 0 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convlens: error: "), err
    return lines[0]


def test_bad_inputs_are_one_line_errors(index_dir, tmp_path, capsys):
    assert "layer 'fc7' is not in the model" in _error(capsys, "index", "lenet5-mnist-mini", "--layer", "fc7",
                                                         "--out", tmp_path / "x")
    assert "give query files, --sample N or --eval" in _error(capsys, "search", index_dir)
    (tmp_path / "notes.txt").write_text("not an image")
    assert "notes.txt: not a readable image" in _error(capsys, "search", index_dir, tmp_path / "notes.txt")
    np.save(tmp_path / "short.npy", np.zeros(10, np.float32))
    msg = _error(capsys, "search", index_dir, tmp_path / "short.npy")
    assert "a vector of 10 values, the index holds 84-dimensional features" in msg
    np.save(tmp_path / "rgb.npy", np.zeros((3, 32, 32), np.uint8))
    assert "expected an image of (C, H, W) = (1, 28, 28)" in _error(capsys, "search", index_dir, tmp_path / "rgb.npy")
    np.save(tmp_path / "words.npy", np.array(["a", "b"]))
    assert "holds <U1 values; expected numbers" in _error(capsys, "search", index_dir, tmp_path / "words.npy")
    # an index built with another model
    other = tmp_path / "other-model"
    from convlens import models
    from convlens.checkpoint import load_checkpoint, save_checkpoint
    from convlens.web.state import default_checkpoint

    _, info = load_checkpoint(default_checkpoint())
    keep = {k: info[k] for k in ("dataset", "classes", "input_shape", "mean", "std", "architecture")}
    save_checkpoint(other / "last", models.get_model("lenet5"), **keep)
    msg = _error(capsys, "search", index_dir, "--sample", 1, "--model", other)
    assert "was built with" in msg and "not comparable" in msg
    # a corrupt index file
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "index.json").write_text((index_dir / "index.json").read_text())
    (bad / "index.faiss").write_bytes((index_dir / "index.faiss").read_bytes()[:1000])
    assert "index.faiss: not a readable faiss index (corrupt or truncated" in _error(capsys, "search", bad, "--sample", 1)
    assert "no such index folder" in _error(capsys, "search", tmp_path / "missing", "--sample", 1)
