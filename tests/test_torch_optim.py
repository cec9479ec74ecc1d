"""Optimizers and learning-rate schedulers against torch.optim: parameters step for step, learning-rate
sequences value for value, state_dict formats key for key; and autograd.grad."""

import json
import math

import numpy as np
import pytest

import convlens as cl
from convlens.optim import lr_scheduler as cls_sched

torch = pytest.importorskip("torch")
tls = torch.optim.lr_scheduler


def _train(make, lib, steps, dtype=np.float64):
    rng = np.random.default_rng(0)
    w0, b0 = rng.standard_normal((4, 3)).astype(dtype), rng.standard_normal(3).astype(dtype)
    x = rng.standard_normal((8, 4)).astype(dtype)
    w, b = lib.tensor(w0.copy(), requires_grad=True), lib.tensor(b0.copy(), requires_grad=True)
    opt = make(lib, [{"params": [w]}, {"params": [b], "lr": 0.02}])
    for _ in range(steps):
        opt.zero_grad()
        (((lib.tensor(x) @ w + b).tanh() - 0.3) ** 2).sum().backward()
        opt.step()
    return w.detach().numpy(), b.detach().numpy(), opt


OPTIMIZERS = [
    ("NAdam", {}), ("NAdam", {"momentum_decay": 0.01, "weight_decay": 0.1}),
    ("NAdam", {"weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True}),
    ("RAdam", {}), ("RAdam", {"weight_decay": 0.1}), ("RAdam", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "maximize": True}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "maximize": True, "weight_decay": 0.1}),
    ("Adam", {"amsgrad": True, "maximize": True, "weight_decay": 0.1}), ("AdamW", {"maximize": True}),
    ("AdamW", {"amsgrad": True, "weight_decay": 0.3}), ("RMSprop", {"centered": True, "momentum": 0.5, "maximize": True}),
    ("Adagrad", {"maximize": True, "lr_decay": 0.01}), ("Adadelta", {"maximize": True, "weight_decay": 0.1}),
]


@pytest.mark.parametrize("name,options", OPTIMIZERS, ids=str)
def test_optimizers_match_torch_step_for_step_with_torch_state_dict_keys(name, options):
    def make(lib, groups):
        return getattr(lib.optim, name)(groups, **options)

    w, b, ours = _train(make, cl, 40)
    tw, tb, theirs = _train(make, torch, 40)
    np.testing.assert_allclose(w, tw, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b, tb, rtol=1e-10, atol=1e-12)
    state, tstate = ours.state_dict(), theirs.state_dict()
    assert [sorted(g) for g in state["param_groups"]] == [sorted(g) for g in tstate["param_groups"]]
    assert [g["params"] for g in state["param_groups"]] == [g["params"] for g in tstate["param_groups"]]
    for i in tstate["state"]:
        assert sorted(state["state"][i]) == sorted(tstate["state"][i])
        for key, value in tstate["state"][i].items():
            np.testing.assert_allclose(np.asarray(state["state"][i][key], dtype=float),
                                       value.detach().numpy().astype(float), rtol=1e-9, err_msg=key)


def test_optimizer_state_round_trips_and_refuses_differentiable():
    _, _, opt = _train(lambda lib, g: lib.optim.NAdam(g), cl, 5)
    saved = opt.state_dict()
    w, b, again = _train(lambda lib, g: lib.optim.NAdam(g), cl, 0)
    again.load_state_dict(saved)
    assert again.state_dict()["state"][0]["mu_product"] == saved["state"][0]["mu_product"]
    with pytest.raises(NotImplementedError, match="differentiable=True"):
        cl.optim.SGD([cl.zeros(1, requires_grad=True)], differentiable=True)
    cl.optim.Adam([cl.zeros(1, requires_grad=True)], foreach=True, fused=False, capturable=False)  # accepted


def _lrs(make, lib, steps, metric=None):
    p = lib.zeros(1, requires_grad=True)
    opt = lib.optim.SGD([{"params": [p]}, {"params": [lib.zeros(1, requires_grad=True)], "lr": 0.5}], lr=0.1,
                        momentum=0.9)
    sched = make(lib, opt)
    seen = [sched.get_last_lr()]
    for i in range(steps):
        opt.step()
        if metric is None:
            sched.step()
        else:
            sched.step(metric(i))
        seen.append([g["lr"] for g in opt.param_groups])
        assert sched.get_last_lr() == seen[-1]
    return seen, sched


def _sched(name):
    return lambda lib: getattr(lib.optim.lr_scheduler, name)


SCHEDULERS = {
    "MultiStepLR": lambda lib, o: _sched("MultiStepLR")(lib)(o, milestones=[3, 7, 7, 12], gamma=0.5),
    "ExponentialLR": lambda lib, o: _sched("ExponentialLR")(lib)(o, gamma=0.9),
    "LambdaLR": lambda lib, o: _sched("LambdaLR")(lib)(o, lambda e: 1 / (1 + e)),
    "LambdaLR_per_group": lambda lib, o: _sched("LambdaLR")(lib)(o, [lambda e: 0.95**e, lambda e: e % 3 + 1]),
    "MultiplicativeLR": lambda lib, o: _sched("MultiplicativeLR")(lib)(o, lambda e: 0.97),
    "LinearLR": lambda lib, o: _sched("LinearLR")(lib)(o, start_factor=0.25, total_iters=6),
    "LinearLR_down": lambda lib, o: _sched("LinearLR")(lib)(o, start_factor=1.0, end_factor=0.1, total_iters=9),
    "ConstantLR": lambda lib, o: _sched("ConstantLR")(lib)(o, factor=0.5, total_iters=4),
    "PolynomialLR": lambda lib, o: _sched("PolynomialLR")(lib)(o, total_iters=8, power=2.0),
    "CosineAnnealingWarmRestarts": lambda lib, o: _sched("CosineAnnealingWarmRestarts")(lib)(o, T_0=3, T_mult=2,
                                                                                             eta_min=0.001),
    "CosineAnnealingWarmRestarts_1": lambda lib, o: _sched("CosineAnnealingWarmRestarts")(lib)(o, T_0=4),
    "StepLR": lambda lib, o: _sched("StepLR")(lib)(o, step_size=4, gamma=0.3),
    "SequentialLR": lambda lib, o: _sched("SequentialLR")(lib)(o, [
        _sched("LinearLR")(lib)(o, start_factor=0.1, total_iters=4), _sched("CosineAnnealingLR")(lib)(o, T_max=10),
        _sched("ExponentialLR")(lib)(o, gamma=0.8)], milestones=[4, 12]),
    "SequentialLR_step": lambda lib, o: _sched("SequentialLR")(lib)(o, [
        _sched("ConstantLR")(lib)(o, factor=0.3, total_iters=2), _sched("MultiStepLR")(lib)(o, [3, 6])],
        milestones=[5]),
    "ChainedScheduler": lambda lib, o: _sched("ChainedScheduler")(lib)([
        _sched("ConstantLR")(lib)(o, factor=0.2, total_iters=3), _sched("ExponentialLR")(lib)(o, gamma=0.9)]),
}


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_schedulers_give_torch_learning_rates(name):
    ours, sched = _lrs(SCHEDULERS[name], cl, 25)
    theirs, _ = _lrs(SCHEDULERS[name], torch, 25)
    np.testing.assert_allclose(ours, theirs, rtol=1e-13)
    json.dumps({k: v for k, v in sched.state_dict().items()})  # numbers and lists only


@pytest.mark.parametrize("options", [{}, {"mode": "max", "patience": 1, "factor": 0.5},
                                     {"threshold_mode": "abs", "threshold": 0.1, "cooldown": 2, "patience": 0},
                                     {"min_lr": [0.05, 0.2], "patience": 2}], ids=str)
def test_reduce_lr_on_plateau_matches_torch(options):
    losses = [1.0, 0.9, 0.95, 0.95, 0.94, 0.96, 0.97, 0.5, 0.6, 0.6, 0.6, 0.6, 0.7, 0.7, 0.8] * 2

    def make(lib, o):
        return lib.optim.lr_scheduler.ReduceLROnPlateau(o, **options)

    ours, sched = _lrs(make, cl, len(losses), metric=lambda i: losses[i])
    theirs, _ = _lrs(make, torch, len(losses), metric=lambda i: losses[i])
    np.testing.assert_allclose(ours, theirs, rtol=1e-13)
    assert sched.num_bad_epochs >= 0 and json.dumps(sched.state_dict())


def test_scheduler_state_dict_resumes_the_sequence():
    make = SCHEDULERS["SequentialLR"]
    full, _ = _lrs(make, cl, 20)
    p = cl.zeros(1, requires_grad=True)
    opt = cl.optim.SGD([{"params": [p]}, {"params": [cl.zeros(1, requires_grad=True)], "lr": 0.5}], lr=0.1)
    sched = make(cl, opt)
    for _ in range(7):
        opt.step()
        sched.step()
    saved, opt_saved = json.loads(json.dumps(sched.state_dict())), opt.state_dict()
    opt2 = cl.optim.SGD([{"params": [p]}, {"params": [cl.zeros(1, requires_grad=True)], "lr": 0.5}], lr=0.1)
    sched2 = make(cl, opt2)
    opt2.load_state_dict(opt_saved)
    sched2.load_state_dict(saved)
    rest = []
    for _ in range(13):
        opt2.step()
        sched2.step()
        rest.append([g["lr"] for g in opt2.param_groups])
    np.testing.assert_allclose(rest, full[8:], rtol=1e-13)


def test_scheduler_errors():
    opt = cl.optim.SGD([cl.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="factor should be < 1.0"):
        cls_sched.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="one more scheduler than milestones"):
        cls_sched.SequentialLR(opt, [cls_sched.ExponentialLR(opt, 0.9)], milestones=[3])
    with pytest.raises(ValueError, match="does not support ReduceLROnPlateau"):
        cls_sched.ChainedScheduler([cls_sched.ReduceLROnPlateau(opt)])
    with pytest.raises(ValueError, match="expected 1 lr_lambdas, but got 2"):
        cls_sched.LambdaLR(opt, [lambda e: 1, lambda e: 2])


# ---- autograd.grad ---------------------------------------------------------------------------------------
def test_autograd_grad_matches_torch_and_leaves_dot_grad_alone():
    a, b = np.random.default_rng(0).standard_normal((3, 4)), np.random.default_rng(1).standard_normal(4)
    results = []
    for lib in (cl, torch):
        x, w = lib.tensor(a, requires_grad=True), lib.tensor(b, requires_grad=True)
        h = (x * w).tanh()
        y = h.sum() + (h * h).mean()
        gx, gw = lib.autograd.grad(y, [x, w], retain_graph=True)
        (gh,) = lib.autograd.grad(y, h, retain_graph=True)
        gz = lib.autograd.grad(h, x, grad_outputs=lib.ones_like(h) * 2.0)[0]
        assert x.grad is None and w.grad is None
        results.append([t.detach().numpy() for t in (gx, gw, gh, gz)])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_autograd_grad_unused_inputs_several_outputs_and_higher_order():
    x, z = cl.ones(2, requires_grad=True), cl.ones(2, requires_grad=True)
    y = (x * 3).sum()
    with pytest.raises(RuntimeError, match="appears to not have been used"):
        cl.autograd.grad(y, [x, z], retain_graph=True)
    gx, gz = cl.autograd.grad(y, [x, z], allow_unused=True, retain_graph=True)
    assert gx.tolist() == [3.0, 3.0] and gz is None
    assert cl.autograd.grad(y, [z], allow_unused=True, materialize_grads=True, retain_graph=True)[0].tolist() == [0, 0]
    u, v = (x * x).sum(), (x * 2).sum()
    (g,) = cl.autograd.grad([u, v], x, grad_outputs=[cl.tensor(1.0), cl.tensor(0.5)])
    assert g.tolist() == [3.0, 3.0]  # 2x·1 + 2·0.5
    with pytest.raises(NotImplementedError, match="create_graph=True"):
        cl.autograd.grad((x * x).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="does not require grad"):
        cl.autograd.grad((x * x).sum(), cl.ones(2))
    w = cl.ones(2, requires_grad=True)
    loss = (w * x).sum()
    loss.backward(inputs=[w])
    assert w.grad.tolist() == [1.0, 1.0] and x.grad is None
    cl.autograd.backward([(x * 2).sum(), (x * x).sum()])
    assert x.grad.tolist() == [4.0, 4.0]


def test_grad_mode_context_managers_as_torch():
    x = cl.ones(2, requires_grad=True)
    with cl.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert cl.is_grad_enabled()
    cl.set_grad_enabled(False)
    assert not cl.is_grad_enabled()
    cl.set_grad_enabled(True)
    with cl.inference_mode():
        assert not (x * 2).requires_grad
    with cl.inference_mode(False):
        assert (x * 2).requires_grad

    @cl.no_grad
    def bare(t):
        return t * 2

    @cl.inference_mode()
    def called(t):
        return t * 2

    assert not bare(x).requires_grad and not called(x).requires_grad and cl.is_grad_enabled()
    handle = x.register_hook(lambda g: g * 10)
    (x * 1).sum().backward()
    assert x.grad.tolist() == [10.0, 10.0]
    handle.remove()
    x.grad = None
    (x * 1).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0] and math.isfinite(x.grad.sum().item())
