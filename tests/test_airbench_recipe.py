"""The fast-training recipe's pieces (convlens.train.parts, convlens.optim.Lookahead, Recipe options),
against torch where torch has the piece, and a resumed airbench run against an uninterrupted one."""

from __future__ import annotations

import json

import numpy as np
import pytest

import convlens
from convlens import data, nn, optim
from convlens.checkpoint import read_checkpoint
from convlens.optim.lookahead import Lookahead, airbench_alpha
from convlens.train import Recipe
from convlens.train.parts import TTA, AlternatingFlip, RandomTranslate, param_groups, warmup_linear

torch = pytest.importorskip("torch")


def _net(lib):
    return lib.nn.Sequential(lib.nn.Conv2d(2, 3, 3, bias=False), lib.nn.BatchNorm2d(3), lib.nn.Flatten(),
                             lib.nn.Linear(12, 4))


def _copy_weights(src, dst):
    dst.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in src.state_dict().items()
                         if not k.endswith("num_batches_tracked")}, strict=False)


@pytest.mark.parametrize("decoupled", [False, True])
def test_nesterov_sgd_groups_and_schedule_match_torch(decoupled):
    convlens.manual_seed(0)
    ours = _net(convlens)
    theirs = _net(torch)
    _copy_weights(ours, theirs)
    groups = param_groups(ours, 0.3, 0.01, bias_lr_scale=8.0, decoupled_weight_decay=decoupled)
    assert [g["name"] for g in groups] == ["norm_biases", "others"]
    assert [len(g["params"]) for g in groups] == [1, 4]
    named = dict(theirs.named_parameters())
    tgroups = [{**{k: v for k, v in g.items() if k != "params"},
                "params": [named[n] for n, p in ours.named_parameters() if any(p is q for q in g["params"])]}
               for g in groups]
    opt = optim.SGD(groups, momentum=0.85, nesterov=True)
    topt = torch.optim.SGD(tgroups, momentum=0.85, nesterov=True)
    total = 7
    sched = optim.lr_scheduler.LambdaLR(opt, [warmup_linear(total, 0.3, 0.2, 0.07), warmup_linear(total, 0.3, 0.2, 0.07)])
    tsched = torch.optim.lr_scheduler.LambdaLR(topt, [warmup_linear(total, 0.3, 0.2, 0.07)] * 2)
    rng = np.random.default_rng(0)
    for _ in range(total):
        x, y = rng.standard_normal((5, 2, 4, 4)).astype(np.float32), rng.integers(0, 4, 5)
        for model, o, lib in ((ours, opt, convlens), (theirs, topt, torch)):
            o.zero_grad()
            loss = lib.nn.functional.cross_entropy(model(lib.tensor(x)), lib.tensor(y), label_smoothing=0.2)
            loss.backward()
            o.step()
        sched.step()
        tsched.step()
        assert [g["lr"] for g in opt.param_groups] == pytest.approx([g["lr"] for g in topt.param_groups], rel=1e-12)
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p._data, named[name].detach().numpy(), rtol=2e-5, atol=2e-6, err_msg=name)
    if decoupled:  # the decay per step is the same in both groups: lr · wd = 0.01
        assert [g["lr"] * g["weight_decay"] for g in groups] == pytest.approx([0.01, 0.01])


def test_warmup_linear_shape():
    f = warmup_linear(100, warmup=0.25, start=0.2, end=0.05, stop_at=90)
    assert [f(0), f(25), f(50), f(89), f(90)] == pytest.approx([0.2, 1.0, 1 - 0.95 / 3, 1 - 0.95 * 64 / 75, 0.0])
    with pytest.raises(ValueError, match="warmup must be a fraction"):
        warmup_linear(10, warmup=2)


def _lookahead_reference(steps, k, alpha, lr, sync_at):
    """Lookahead around plain SGD on f(p) = ½|p|², written out step by step."""
    p = np.array([1.0, -2.0, 0.5])
    slow = p.copy()
    for t in range(1, steps + 1):
        p = p - lr * p
        if t % k == 0 or t == sync_at:
            a = 0.0 if t == sync_at else alpha(t)
            slow = slow + a * (p - slow)
            p = slow.copy()
    return p


def test_lookahead_matches_its_definition_and_resumes():
    total = 12
    p = convlens.tensor(np.array([1.0, -2.0, 0.5]), requires_grad=True)
    la = Lookahead(optim.SGD([p], lr=0.1), k=5, alpha=airbench_alpha(total), sync_at=total)
    saved = None
    for t in range(1, total + 1):
        la.zero_grad()
        (0.5 * (p * p).sum()).backward()
        la.step()
        if t == 7:
            saved = (la.state_dict(), p._data.copy())
    np.testing.assert_allclose(p._data, _lookahead_reference(total, 5, airbench_alpha(total), 0.1, total), rtol=1e-12)
    # resume from step 7 in a fresh optimizer: the same end point, bit for bit
    q = convlens.tensor(saved[1], requires_grad=True)
    lb = Lookahead(optim.SGD([q], lr=0.1), k=5, alpha=airbench_alpha(total), sync_at=total)
    lb.load_state_dict(json.loads(json.dumps(saved[0], default=lambda a: a.tolist())))
    lb.state[q]["lookahead_slow"] = np.array(saved[0]["state"][0]["lookahead_slow"])
    for _ in range(8, total + 1):
        lb.zero_grad()
        (0.5 * (q * q).sum()).backward()
        lb.step()
    np.testing.assert_array_equal(q._data, p._data)
    with pytest.raises(ValueError, match="invalid k"):
        Lookahead(optim.SGD([p], lr=0.1), k=0)


def test_lookahead_follows_batch_norm_statistics_as_airbench():
    """airbench's Lookahead lerps every float tensor of the state dict, running statistics included."""
    total, k = 12, 5
    convlens.manual_seed(0)
    ours = _net(convlens)
    theirs = _net(torch).double()
    _copy_weights(ours, theirs)
    theirs.double()
    buffers = [b for b in ours.buffers() if np.issubdtype(b._data.dtype, np.floating)]
    for b in [*ours.parameters(), *buffers]:
        b._data = b._data.astype(np.float64)
    la = Lookahead(optim.SGD(ours.parameters(), lr=0.1, momentum=0.9), k=k, alpha=airbench_alpha(total),
                   sync_at=total, buffers=buffers)
    assert len(buffers) == 2
    topt = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    ema = {n: v.clone() for n, v in theirs.state_dict().items()}
    rng = np.random.default_rng(1)
    for t in range(1, total + 1):
        x, y = rng.standard_normal((6, 2, 4, 4)), rng.integers(0, 4, 6)
        la.zero_grad()
        nn.functional.cross_entropy(ours(convlens.tensor(x)), convlens.tensor(y)).backward()
        la.step()
        topt.zero_grad()
        torch.nn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y)).backward()
        topt.step()
        if t % k == 0 or t == total:
            decay = 1.0 if t == total else 0.95 ** 5 * (t / total) ** 3
            with torch.no_grad():
                for n, v in theirs.state_dict().items():
                    if v.is_floating_point():
                        ema[n].lerp_(v, 1 - decay)
                        v.copy_(ema[n])
    for n, v in theirs.state_dict().items():
        if v.is_floating_point():
            np.testing.assert_allclose(ours.state_dict()[n]._data, v.numpy(), rtol=1e-9, atol=1e-12, err_msg=n)
    sd = la.state_dict()
    assert len(sd["lookahead_buffers"]) == 2
    with pytest.raises(ValueError, match="slow buffer"):
        Lookahead(optim.SGD(ours.parameters(), lr=0.1), buffers=buffers[:1]).load_state_dict(sd)


def test_alternating_flip_alternates_and_the_fast_path_agrees():
    raw = np.random.default_rng(0).integers(0, 256, (10, 1, 2, 3)).astype(np.uint8)
    x = raw.astype(np.float32) / 255
    ds = AlternatingFlip(data.TensorDataset(raw, np.arange(10)), seed=3)
    first = ds.first.copy()
    assert 0 < first.sum() < 10
    loader = data.DataLoader(ds, batch_size=4, shuffle=True, seed=1)
    for epoch in range(3):
        loader.set_epoch(epoch)
        seen = {}
        for xb, yb in loader:
            for img, i in zip(xb._data, yb._data):
                seen[int(i)] = img
        flips = first ^ bool(epoch % 2)
        for i in range(10):
            want = x[i][..., ::-1] if flips[i] else x[i]
            np.testing.assert_allclose(seen[i], want, rtol=1e-6)
            np.testing.assert_array_equal(np.asarray(ds[i][0]), (raw[i][..., ::-1] if flips[i] else raw[i]))  # per item


def test_random_translate_is_a_reflect_padded_crop():
    x = np.random.default_rng(0).random((6, 2, 5, 7)).astype(np.float32)
    out = RandomTranslate(2)(x, np.random.default_rng(4))
    rng = np.random.default_rng(4)
    top, left = rng.integers(0, 5, size=6), rng.integers(0, 5, size=6)
    padded = torch.nn.functional.pad(torch.tensor(x), (2, 2, 2, 2), mode="reflect").numpy()
    for i in range(6):
        np.testing.assert_array_equal(out[i], padded[i, :, top[i]:top[i] + 5, left[i]:left[i] + 7])
    assert Recipe(augment="altflip,translate:2").augmentation()[0].max_shift == 2


def test_tta_matches_a_torch_reference():
    convlens.manual_seed(0)
    ours = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(144, 5))
    _copy_weights(ours, theirs)
    x = np.random.default_rng(0).standard_normal((3, 3, 8, 8)).astype(np.float32)
    tx = torch.tensor(x)

    def mirror(t):
        return 0.5 * theirs(t) + 0.5 * theirs(t.flip(-1))

    with torch.no_grad():
        padded = torch.nn.functional.pad(tx, (1, 1, 1, 1), mode="reflect")
        want = 0.5 * mirror(tx) + 0.25 * mirror(padded[..., :8, :8]) + 0.25 * mirror(padded[..., 2:10, 2:10])
        want1 = mirror(tx)
    np.testing.assert_allclose(TTA(ours, 2)(convlens.tensor(x))._data, want.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(TTA(ours, 1)(convlens.tensor(x))._data, want1.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="level must be 0, 1 or 2"):
        TTA(ours, 3)


def test_recipe_validates_fast_options():
    with pytest.raises(ValueError, match="nesterov must be False unless"):
        Recipe(optimizer="adam", nesterov=True).validate()
    with pytest.raises(ValueError, match="whiten_bias_epochs must be None with the cosine schedule"):
        Recipe(schedule="cosine", whiten_bias_epochs=2).validate()
    r = Recipe.for_model("airbench94")
    assert (r.batch_size, r.lookahead, r.tta, r.schedule) == (1024, 5, 2, "linear")


def _train(tmp_path, name, *extra):
    from convlens.cli import main

    args = ["train", "--model", "airbench-fmnist", "--dataset", "mnist-mini", "--limit", "96", "--batch-size", "32",
            "--tta", "0", "--whiten-bias-epochs", "1", "--epochs", "2", "--out", str(tmp_path / name), *extra]
    assert main(args) == 0


def test_cli_airbench_run_resumes_bit_exactly(tmp_path, monkeypatch):
    """Whitening fitted at the start and kept in the checkpoint, Lookahead's slow weights, the linear
    schedule with its whitening-bias stop and the alternating flips: 1 epoch + resume = 2 epochs."""
    import convlens.train as train_pkg
    from convlens.cli import main

    _train(tmp_path, "full")
    real_fit = train_pkg.fit

    def stop_after_one(*args, **kwargs):
        return real_fit(*args, **kwargs, on_epoch_end=lambda record: "stop" if record["epoch"] == 1 else None)

    monkeypatch.setattr(train_pkg, "fit", stop_after_one)
    _train(tmp_path, "part")
    monkeypatch.setattr(train_pkg, "fit", real_fit)
    _, meta, _ = read_checkpoint(tmp_path / "part" / "last.safetensors")
    assert meta["epoch"] == 1 and meta["recipe"]["lookahead"] == 5
    assert main(["train", "--resume", str(tmp_path / "part"), "--tta", "0"]) == 0
    full, _, _ = read_checkpoint(tmp_path / "full" / "last.safetensors")
    part, _, _ = read_checkpoint(tmp_path / "part" / "last.safetensors")
    assert any(k.endswith("whiten.eigenvectors") for k in full)
    assert any(k.endswith("lookahead_slow") for k in full)
    assert any(k.startswith("optim.lookahead_buffers.") for k in full)  # the slow batch-norm statistics
    assert sorted(full) == sorted(part)
    for k in full:
        np.testing.assert_array_equal(full[k], part[k], err_msg=k)
