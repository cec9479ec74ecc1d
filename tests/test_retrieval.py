"""convlens.retrieval: metrics against brute-force definitions, the faiss index against NumPy's exact
search, save/load through faiss's file format and JSON, approximate recall, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convlens import models, retrieval
from convlens.retrieval import FeatureIndex, RetrievalError, average_precision, ranking_metrics, recall_at_k
from convlens.retrieval import index as index_module


def _clustered(n, d=16, clusters=10, seed=0, noise=0.3):
    centres = np.random.default_rng(1234).normal(size=(clusters, d)).astype(np.float32)  # shared by all calls
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, clusters, n)
    return (centres[labels] + noise * rng.normal(size=(n, d))).astype(np.float32), labels


def _ap_by_hand(rel):
    hits, total = 0, 0.0
    for r, is_rel in enumerate(rel, 1):
        if is_rel:
            hits += 1
            total += hits / r
    return total / hits if hits else 0.0


# ---- metrics ----------------------------------------------------------------------------------------------
def test_average_precision_known_values_and_by_hand():
    rel = np.array([[1, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [1, 1, 0, 0]], bool)
    np.testing.assert_allclose(average_precision(rel), [(1 + 2 / 3) / 2, 1 / 4, 0.0, 1.0])
    rng = np.random.default_rng(1)
    rel = rng.random((20, 50)) < 0.2
    np.testing.assert_allclose(average_precision(rel), [_ap_by_hand(r) for r in rel])


def test_ranking_metrics_equal_a_brute_force_ranking():
    q, ql = _clustered(30, seed=2, noise=1.0)
    db, dl = _clustered(200, seed=3, noise=1.0)
    for metric in ("cosine", "l2"):
        got = ranking_metrics(q, db, ql, dl, ks=(1, 10), metric=metric, chunk=7, progress=False)
        aps, p10, p1 = [], [], []
        for x, label in zip(q, ql):
            if metric == "cosine":
                dist = 1 - (db @ x) / (np.linalg.norm(db, axis=1) * np.linalg.norm(x))
            else:
                dist = np.linalg.norm(db - x, axis=1)
            rel = dl[np.argsort(dist, kind="stable")] == label
            aps.append(_ap_by_hand(rel))
            p10.append(rel[:10].mean())
            p1.append(rel[:1].mean())
        assert got["map"] == pytest.approx(np.mean(aps), abs=1e-6)
        assert got["precision@10"] == pytest.approx(np.mean(p10), abs=1e-9)
        assert got["precision@1"] == pytest.approx(np.mean(p1), abs=1e-9)
        assert (got["queries"], got["database"], got["metric"]) == (30, 200, metric)
    # clusters are retrievable: far better than chance (1/10)
    assert got["map"] > 0.5


def test_ties_rank_relevant_items_last():
    db = np.ones((4, 3), np.float32)  # every database vector equally similar to the query
    got = ranking_metrics(np.ones((1, 3)), db, [1], [0, 1, 0, 0], ks=(1, 2, 4), progress=False)
    assert got["map"] == pytest.approx(1 / 4) and got["precision@1"] == 0 and got["precision@4"] == 0.25


def test_recall_at_k():
    exact = np.array([[0, 1, 2], [3, 4, 5]])
    assert recall_at_k(exact, exact, 3) == 1.0
    assert recall_at_k(np.array([[2, 1, 9], [9, 9, 9]]), exact, 3) == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="differ in shape"):
        recall_at_k(exact[:1], exact, 3)


# ---- the index --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_flat_index_is_exact_search(metric):
    db, labels = _clustered(500, seed=4)
    q, _ = _clustered(20, seed=5)
    idx = FeatureIndex.build(db, labels=labels, kind="auto", metric=metric)
    assert idx.config.kind == "flat" and len(idx) == 500 and idx.dim == 16
    d, rows = idx.search(q, k=5)
    assert d.shape == rows.shape == (20, 5) and d.dtype == np.float32 and rows.dtype == np.int64
    if metric == "cosine":
        ref = 1 - (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (db / np.linalg.norm(db, axis=1, keepdims=True)).T
    else:
        ref = np.linalg.norm(q[:, None] - db[None], axis=2)
    np.testing.assert_array_equal(rows, np.argsort(ref, axis=1, kind="stable")[:, :5])
    np.testing.assert_allclose(d, np.sort(ref, axis=1)[:, :5], atol=2e-4)
    assert (np.diff(d, axis=1) >= -1e-6).all()


def test_save_and_load_round_trip(tmp_path):
    db, labels = _clustered(300, seed=6)
    ids = [f"img{i}.png" for i in range(300)]
    idx = FeatureIndex.build(db, labels=labels, ids=ids, meta={"layer": "fc2:input", "classes": list("abcdefghij")})
    folder = idx.save(tmp_path / "ix")
    assert sorted(p.name for p in folder.iterdir()) == ["index.faiss", "index.json"]
    meta = json.loads((folder / "index.json").read_text())
    assert meta["format"] == "convlens-index" and meta["count"] == 300 and meta["ids"][3] == "img3.png"
    assert meta["config"]["kind"] == "flat" and meta["layer"] == "fc2:input"
    back = retrieval.load_index(folder)
    q = db[:4] + 0.01
    np.testing.assert_array_equal(back.search(q, 3)[1], idx.search(q, 3)[1])
    np.testing.assert_array_equal(back.labels, labels)
    assert back.ids == ids and back.meta["layer"] == "fc2:input"
    hits = retrieval.neighbours(back, *back.search(db[:1], 2))[0]
    assert hits[0]["row"] == 0 and hits[0]["id"] == "img0.png" and hits[0]["class"] == "abcdefghij"[labels[0]]


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_indexes_find_the_exact_neighbours(kind, tmp_path):
    db, labels = _clustered(3000, d=24, clusters=30, seed=7)
    q, _ = _clustered(100, d=24, clusters=30, seed=8)
    exact = FeatureIndex.build(db, kind="flat").search(q, 10)[1]
    idx = FeatureIndex.build(db, labels=labels, kind=kind)
    assert idx.config.kind == kind
    assert recall_at_k(idx.search(q, 10)[1], exact, 10) >= 0.9
    back = FeatureIndex.load(idx.save(tmp_path / kind))
    assert back.config.kind == kind
    assert recall_at_k(back.search(q, 10)[1], exact, 10) >= 0.9


def test_auto_switches_to_ivf_above_the_threshold(monkeypatch):
    monkeypatch.setattr(index_module, "EXACT_MAX", 100)
    db, _ = _clustered(150, seed=9)
    assert FeatureIndex.build(db).config.kind == "ivf"
    assert FeatureIndex.build(db[:100]).config.kind == "flat"


def test_k_larger_than_the_index():
    db, _ = _clustered(5, seed=10)
    d, rows = FeatureIndex.build(db).search(db[:2], k=50)
    assert rows.shape == (2, 5) and sorted(rows[0]) == [0, 1, 2, 3, 4]


# ---- bad input --------------------------------------------------------------------------------------------
def _one_line(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


def test_bad_queries_are_one_line_errors():
    db, _ = _clustered(50, seed=11)
    idx = FeatureIndex.build(db)
    with pytest.raises(RetrievalError, match="have 15 dimensions per vector, the index holds 16-dimensional") as e:
        idx.search(np.zeros((2, 15)))
    _one_line(e)
    with pytest.raises(RetrievalError, match="expected a \\(N, D\\) array of numbers, got str"):
        idx.search("cat.jpg")
    with pytest.raises(RetrievalError, match="got dtype <U"):
        idx.search([["a"] * 16])
    with pytest.raises(RetrievalError, match="NaN or infinite"):
        idx.search(np.full((1, 16), np.nan))
    with pytest.raises(RetrievalError, match="expected a \\(N, D\\) array, got shape \\(2, 2, 4\\)"):
        idx.search(np.zeros((2, 2, 4)))
    with pytest.raises(RetrievalError, match="k must be a positive integer"):
        idx.search(db[:1], k=0)
    assert idx.search(db[0], k=1)[1].shape == (1, 1)  # one vector is one query
    with pytest.raises(RetrievalError, match="index kind must be one of"):
        FeatureIndex.build(db, kind="lsh")
    with pytest.raises(RetrievalError, match="at least one vector"):
        FeatureIndex.build(np.zeros((0, 4)))


def test_corrupt_or_mismatched_index_files(tmp_path):
    db, labels = _clustered(40, seed=12)
    folder = FeatureIndex.build(db, labels=labels).save(tmp_path / "ix")
    raw = (folder / "index.faiss").read_bytes()
    (folder / "index.faiss").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(RetrievalError, match=r"index\.faiss: not a readable faiss index \(corrupt or truncated") as e:
        FeatureIndex.load(folder)
    _one_line(e)
    (folder / "index.faiss").write_bytes(b"this is not faiss" * 10)
    with pytest.raises(RetrievalError, match="not a readable faiss index"):
        FeatureIndex.load(folder)
    FeatureIndex.build(db[:10]).save(tmp_path / "other")
    (folder / "index.faiss").write_bytes((tmp_path / "other" / "index.faiss").read_bytes())
    with pytest.raises(RetrievalError, match="holds 10 vectors .* describes 40 .* do not belong together"):
        FeatureIndex.load(folder)
    (folder / "index.json").write_text('{"format": "convlens-index", "count": ')
    with pytest.raises(RetrievalError, match=r"index\.json: not valid JSON at byte \d+"):
        FeatureIndex.load(folder)
    (folder / "index.json").write_text('{"hello": 1}')
    with pytest.raises(RetrievalError, match="not convlens index metadata"):
        FeatureIndex.load(folder)
    with pytest.raises(RetrievalError, match="no such index folder"):
        FeatureIndex.load(tmp_path / "nowhere")
    (tmp_path / "half").mkdir()
    with pytest.raises(RetrievalError, match=r"index\.faiss: missing"):
        FeatureIndex.load(tmp_path / "half")


# ---- from a model and a data set ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mini_index(tmp_path_factory):
    from convlens.data import mnist_mini
    from convlens.web.state import default_checkpoint

    ckpt = str(default_checkpoint())
    idx = retrieval.build_index(ckpt, mnist_mini(train=True)[:600], dataset_name="mnist-mini", progress=False)
    return retrieval.load_index(idx.save(tmp_path_factory.mktemp("mini") / "ix")), ckpt


def test_build_index_and_search_images_with_the_shipped_checkpoint(mini_index):
    from convlens.data import mnist_mini

    idx, ckpt = mini_index
    assert idx.meta["layer"] == "fc2:input" and idx.meta["model"]["checkpoint"].endswith("best.safetensors")
    assert idx.meta["image_shape"] == [1, 28, 28] and idx.meta["classes"][3] == "3" and idx.dim == 84
    test = mnist_mini(train=False)
    hits = retrieval.search_images(idx, test.images[:40], k=5)
    assert len(hits) == 40 and all(len(h) == 5 for h in hits)
    top1 = np.array([h[0]["label"] for h in hits])
    assert (top1 == test.labels[:40]).mean() >= 0.9  # a trained LeNet-5's neighbours share the digit
    # one (C, H, W) image is one query; the model can also be given explicitly (same weights)
    assert retrieval.search_images(idx, test.images[0], k=1, model=ckpt)[0][0]["row"] == hits[0][0]["row"]


def test_another_model_or_a_wrong_query_is_refused(mini_index):
    idx, _ = mini_index
    x = np.zeros((2, 1, 28, 28), np.uint8)
    with pytest.raises(RetrievalError, match="was built with .*best.safetensors .*fingerprint .*not comparable") as e:
        retrieval.search_images(idx, x, model=models.get_model("lenet5"))
    _one_line(e)
    with pytest.raises(RetrievalError, match=r"query images have shape \(C, H, W\) = \(3, 32, 32\), the index's "
                                             r"images are \(1, 28, 28\)"):
        retrieval.search_images(idx, np.zeros((1, 3, 32, 32), np.uint8))
    with pytest.raises(RetrievalError, match="expected a \\(N, C, H, W\\) array of numbers, got dtype <U"):
        retrieval.search_images(idx, np.array(["digit.png"]))


def test_moved_checkpoint_is_named(mini_index, tmp_path):
    idx, _ = mini_index
    gone = FeatureIndex(idx.index, idx.config, idx.labels, idx.ids,
                        {**idx.meta, "model": {**idx.meta["model"], "checkpoint": str(tmp_path / "gone.safetensors")}})
    with pytest.raises(RetrievalError, match="gone.safetensors, which no longer exists"):
        retrieval.index_model(gone)


def test_image_folder_ids_are_file_names(tmp_path):
    from PIL import Image

    from convlens import data

    rng = np.random.default_rng(13)
    for c in ("cat", "dog"):
        (tmp_path / "train" / c).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp_path / "train" / c / f"{i}.png")
    ds = data.load(str(tmp_path), train=True)
    spec = {"layers": [{"type": "conv", "name": "c", "filters": 2, "size": 3}, {"type": "fc", "name": "fc", "units": 2}]}
    net = models.from_spec(spec, input_shape=(3, 8, 8))
    idx = retrieval.build_index(net, ds, progress=False)
    assert idx.ids == list(ds.files) and idx.ids[0].endswith(".png") and idx.meta["classes"] == ["cat", "dog"]
    sub = retrieval.build_index(net, ds[np.array([1, 6])], progress=False)
    assert sub.ids == [ds.files[1], ds.files[6]] and sub.labels.tolist() == [0, 1]
    hits = retrieval.search_images(sub, ds.images[6:7], k=1, model=net)
    assert hits[0][0]["id"] == ds.files[6] and hits[0][0]["distance"] == pytest.approx(0, abs=1e-5)
