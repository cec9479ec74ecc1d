from __future__ import annotations

import gzip
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from convlens.data.idx import write_idx


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    """Every test gets its own empty cache dir; nothing is written to the user's ~/.cache."""
    monkeypatch.setenv("CONVLENS_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("CONVLENS_MIRROR", raising=False)
    return tmp_path / "cache"


def make_mnist(folder: Path, n_train=60, n_test=20, gz=True, seed=0):
    """Write the four MNIST IDX files (real format) with random content; return the arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    ext = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        rng.shuffle(labels)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels)
        out[prefix] = (images, labels)
    return out


def make_cifar(folder: Path, n=20, seed=0, names=True):
    """Write cifar-10-batches-bin/ (5 train batches + test batch) with n records each."""
    d = folder / "cifar-10-batches-bin"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        images = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
        rec = np.concatenate([labels[:, None], images.reshape(n, -1)], axis=1)
        (d / name).write_bytes(rec.tobytes())
        out[name] = (images, labels)
    if names:
        (d / "batches.meta.txt").write_text("\n".join(
            ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]) + "\n\n")
    return d, out


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


@pytest.fixture
def fx():
    """Fixture writers, as a fixture so test modules need not import conftest."""
    from types import SimpleNamespace

    return SimpleNamespace(make_mnist=make_mnist, make_cifar=make_cifar, gz=gz)


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802
        name = self.path.rsplit("/", 1)[-1]
        if self.path.startswith("/cut/") and name in self.files:
            body = self.files[name]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) * 2))  # promise more than we send
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if name not in self.files:
            self.send_error(404)
            return
        body = self.files[name]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    files: dict[str, bytes] = {}
    handler = type("H", (_Handler,), {"files": files})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", files
    httpd.shutdown()
    httpd.server_close()
