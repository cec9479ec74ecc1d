"""PyTorch programs in the style of the public tutorials and examples, run on convlens with only their
import lines rewritten, training for real on small fixtures in torchvision's folder layouts; the same
program runs on torch for comparison when torch is installed (with ``torchvision_for_torch`` standing
in for torchvision, which cannot be installed next to torch 2.13 here).

The bar: convlens reaches the accuracy torch reaches, within a margin for two frameworks' different
random streams (initial weights, shuffling, dropout) on a small test set.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from program_fixtures import write_annotated_images, write_cifar, write_image_folder, write_mnist
from program_runner import run, to_convlens

HERE = Path(__file__).parent
HAVE_TORCH = importlib.util.find_spec("torch") is not None


def _layout(tmp_path: Path, framework: str, make) -> Path:
    """``tmp/<framework>/work`` as the working directory; ``make(data_dir)`` writes the fixture where the
    program looks (``./data``, ``data/...`` or ``../data`` from the working directory)."""
    work = tmp_path / framework / "work"
    work.mkdir(parents=True)
    make(tmp_path / framework)
    return work


def _run_both(tmp_path, program: str, make, parse, argv=None) -> tuple[float, float | None, str, str | None]:
    path = HERE / program
    conv_out = run(path, "convlens", _layout(tmp_path, "convlens", make), argv)
    conv = parse(conv_out)
    if not HAVE_TORCH:
        return conv, None, conv_out, None
    torch_out = run(path, "torch", _layout(tmp_path, "torch", make), argv)
    return conv, parse(torch_out), conv_out, torch_out


def _last(pattern: str, text: str) -> float:
    found = re.findall(pattern, text)
    assert found, f"no line matching {pattern!r} in the program's output:\n{text[-2000:]}"
    return float(found[-1])


def _check(conv: float, torch_acc: float | None, floor: float, margin: float) -> None:
    assert conv >= floor, f"convlens reached {conv:.3f}, expected at least {floor}"
    if torch_acc is not None:
        assert conv >= torch_acc - margin, f"convlens {conv:.3f} vs torch {torch_acc:.3f} (margin {margin})"


def test_only_import_lines_are_rewritten():
    for program in sorted(HERE.glob("*.py")):
        if program.name.startswith(("test_", "program_", "torchvision_for")):
            continue
        original = program.read_text().splitlines()
        rewritten, changed = to_convlens(program.read_text())
        diff = [(a, b) for a, b in zip(original, rewritten.splitlines()) if a != b]
        assert changed == len(diff) > 0
        assert all(re.match(r"\s*(import|from) ", a) for a, _ in diff), program.name
    assert to_convlens("import torch.nn\n")[0] == "import convlens.nn; import convlens as torch\n"
    assert to_convlens("from torchvision.transforms import ToTensor\n")[0] == (
        "from convlens.vision.transforms import ToTensor\n")


def test_mnist_main_style(tmp_path):
    def make(root):
        write_mnist(root / "data", n_train=2000, n_test=500)

    conv, torch_acc, out, _ = _run_both(tmp_path, "mnist_main.py", make,
                                        lambda s: _last(r"Accuracy: \d+/\d+ \((\d+)%\)", s) / 100,
                                        ["--epochs", "2", "--log-interval", "10", "--save-model"])
    assert "Train Epoch: 2 [1280/2000 (62%)]" in out
    _check(conv, torch_acc, floor=0.85, margin=0.05)


def test_cifar10_tutorial_style(tmp_path):
    def make(root):
        write_cifar(root / "work" / "data", per_batch=600, n_test=400)

    conv, torch_acc, out, torch_out = _run_both(
        tmp_path, "cifar10_tutorial.py", make,
        lambda s: _last(r"Accuracy of the network on the 400 test images: (\d+) %", s) / 100)
    assert "grid (36, 138, 3)" in out and "Finished Training" in out
    assert len(re.findall(r"Accuracy for class: \w+\s* is [\d.]+ %", out)) == 10
    assert (tmp_path / "convlens" / "work" / "cifar_net.pth").is_file()
    _check(conv, torch_acc, floor=0.85, margin=0.1)


def test_d2l_lenet_style(tmp_path):
    def make(root):
        write_mnist(root / "data", n_train=4000, n_test=500, folder="FashionMNIST")

    # the best epoch: batch-normalised sigmoid nets at lr 1.0 swing from epoch to epoch on 500 test images
    conv, torch_acc, out, _ = _run_both(tmp_path, "d2l_lenet.py", make,
                                        lambda s: max(float(a) for a in re.findall(r"test acc ([\d.]+)", s)))
    assert "Sigmoid output shape: \t (1, 6, 28, 28)" in out.replace("torch.Size([", "(").replace("])", ")")
    _check(conv, torch_acc, floor=0.8, margin=0.08)


def test_quickstart_style(tmp_path):
    def make(root):
        write_mnist(root / "work" / "data", n_train=3000, n_test=1000, folder="FashionMNIST")

    conv, torch_acc, out, _ = _run_both(tmp_path, "quickstart.py", make,
                                        lambda s: _last(r"Accuracy: ([\d.]+)%", s) / 100)
    assert "Shape of X [N, C, H, W]: (64, 1, 28, 28)" in out and 'Predicted: "' in out
    _check(conv, torch_acc, floor=0.8, margin=0.05)


def test_custom_dataset_style(tmp_path):
    def make(root):
        write_annotated_images(root / "work" / "data", n_ants=96, n_bees=48)

    conv, torch_acc, out, _ = _run_both(tmp_path, "custom_dataset.py", make,
                                        lambda s: _last(r"network accuracy ([\d.]+)%", s) / 100)
    assert "108 train / 36 test images" in out and "probe features (108, 1024)" in out
    probe = _last(r"probe accuracy ([\d.]+)%", out) / 100
    _check(conv, torch_acc, floor=0.8, margin=0.12)
    assert probe >= 0.7


def test_imagefolder_transfer_style(tmp_path):
    def make(root):
        write_image_folder(root / "work" / "data" / "hymenoptera_data", n_per_class=40)

    conv, torch_acc, out, _ = _run_both(tmp_path, "imagefolder_transfer.py", make,
                                        lambda s: _last(r"Best val Acc: ([\d.]+)", s))
    assert "['ants', 'bees'] {'train': 80, 'val': 40}" in out
    _check(conv, torch_acc, floor=0.8, margin=0.12)
