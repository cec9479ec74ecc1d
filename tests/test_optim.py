"""convlens.optim against torch.optim: same parameters, same gradients, same trajectory."""

import json
import re

import numpy as np
import pytest

import convlens as cl
from convlens import optim
from convlens.optim import lr_scheduler

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (5,), (2, 3, 2, 2)]
STEPS = 12

OPTIMIZERS = {  # name -> (convlens class, torch class)
    "SGD": (optim.SGD, torch.optim.SGD),
    "Adadelta": (optim.Adadelta, torch.optim.Adadelta),
    "Adagrad": (optim.Adagrad, torch.optim.Adagrad),
    "Adam": (optim.Adam, torch.optim.Adam),
    "AdamW": (optim.AdamW, torch.optim.AdamW),
    "RMSprop": (optim.RMSprop, torch.optim.RMSprop),
}

CONFIGS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    ("SGD", {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("SGD", {}),
    ("Adadelta", {}),
    ("Adadelta", {"lr": 0.5, "rho": 0.95, "eps": 1e-8}),
    ("Adadelta", {"weight_decay": 0.1}),
    ("Adagrad", {}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01}),
    ("Adagrad", {"initial_accumulator_value": 0.1, "weight_decay": 0.05, "eps": 1e-8}),
    ("Adam", {}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99)}),
    ("Adam", {"lr": 0.01, "betas": (0.3, 0.9)}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True, "eps": 1e-6}),
    ("AdamW", {}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("RMSprop", {}),
    ("RMSprop", {"alpha": 0.9, "eps": 1e-6}),
    ("RMSprop", {"centered": True}),
    ("RMSprop", {"momentum": 0.9}),
    ("RMSprop", {"lr": 0.001, "centered": True, "momentum": 0.5, "weight_decay": 0.1}),
]


def _ids(configs):
    return [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'defaults'}" for name, kw in configs]


def _initial(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def _gradients(dtype, steps=STEPS, seed=1):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(steps)]


def _pair(arrays):
    """The same initial values as convlens and torch parameters."""
    ours = [cl.tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    return ours, theirs


def _set_grads(ours, theirs, grads):
    for p, t, g in zip(ours, theirs, grads):
        p.grad = cl.tensor(g.copy())
        t.grad = torch.tensor(g.copy())


def _close(ours, theirs, rtol, atol):
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p._data, t.detach().numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=_ids(CONFIGS))
def test_matches_torch_float64(name, kwargs):
    ours_cls, torch_cls = OPTIMIZERS[name]
    ours, theirs = _pair(_initial(np.float64))
    opt, ref = ours_cls(ours, **kwargs), torch_cls(theirs, **kwargs)
    data = [p._data for p in ours]
    for grads in _gradients(np.float64):
        _set_grads(ours, theirs, grads)
        opt.step()
        ref.step()
        _close(ours, theirs, rtol=1e-11, atol=1e-13)
    assert all(p._data is d for p, d in zip(ours, data)), "parameters must be updated in place"
    ours_sd, ref_sd = opt.state_dict(), ref.state_dict()
    assert set(ours_sd["state"]) == set(ref_sd["state"])
    for i in ref_sd["state"]:
        assert set(ours_sd["state"][i]) == set(ref_sd["state"][i])
    assert set(ours_sd["param_groups"][0]) <= set(ref_sd["param_groups"][0])


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=_ids(CONFIGS))
def test_float32_stays_float32(name, kwargs):
    ours_cls, torch_cls = OPTIMIZERS[name]
    ours, theirs = _pair(_initial(np.float32))
    opt, ref = ours_cls(ours, **kwargs), torch_cls(theirs, **kwargs)
    for grads in _gradients(np.float32, steps=6):
        _set_grads(ours, theirs, grads)
        opt.step()
        ref.step()
    _close(ours, theirs, rtol=1e-4, atol=1e-5)
    assert all(p.dtype == np.float32 for p in ours)
    for entries in opt.state.values():
        assert all(v.dtype == np.float32 for v in entries.values() if isinstance(v, np.ndarray))


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_defaults_match_torch(name):
    ours_cls, torch_cls = OPTIMIZERS[name]
    ours = ours_cls([cl.zeros(2, requires_grad=True)]).defaults
    theirs = torch_cls([torch.zeros(2, requires_grad=True)]).defaults
    for key, value in ours.items():
        assert theirs[key] == value, key


@pytest.mark.parametrize("name,groups", [
    ("SGD", [{"lr": 0.1, "momentum": 0.9}, {"nesterov": True, "momentum": 0.5}]),
    ("Adam", [{"betas": (0.5, 0.9)}, {"lr": 0.1, "amsgrad": True}]),
    ("RMSprop", [{"centered": True}, {"momentum": 0.9, "lr": 0.001}]),
    ("Adagrad", [{"lr_decay": 0.1}, {"eps": 1e-5, "weight_decay": 0.1}]),
])
def test_param_groups_match_torch(name, groups):
    ours_cls, torch_cls = OPTIMIZERS[name]
    ours, theirs = _pair(_initial(np.float64))
    def split(ps):  # the first parameter alone, the other two together; defaults fill in the rest
        return [{"params": [ps[0]], **groups[0]}, {"params": ps[1:], **groups[1]}]

    opt, ref = ours_cls(split(ours), lr=0.01), torch_cls(split(theirs), lr=0.01)
    assert len(opt.param_groups) == 2 and opt.param_groups[1]["params"] == ours[1:]
    for grads in _gradients(np.float64):
        _set_grads(ours, theirs, grads)
        opt.step()
        ref.step()
        _close(ours, theirs, rtol=1e-11, atol=1e-13)


def _through_checkpoint(state_dict):
    """What a checkpoint writer does: arrays to one flat mapping (safetensors), the rest to JSON."""
    arrays = {}

    def strip(entries, prefix):
        out = {}
        for k, v in entries.items():
            if isinstance(v, np.ndarray):
                arrays[f"{prefix}.{k}"] = v
            else:
                out[k] = v
        return out

    meta = {
        "state": {i: strip(s, f"state.{i}") for i, s in state_dict["state"].items()},
        "param_groups": state_dict["param_groups"],
    }
    meta = json.loads(json.dumps(meta))  # keys become strings, tuples lists
    for key, array in arrays.items():
        _, i, name = key.split(".", 2)
        meta["state"][i][name] = array.copy()
    return meta


ROUND_TRIP = [
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("Adadelta", {"weight_decay": 0.1}),
    ("Adagrad", {"lr_decay": 0.01, "initial_accumulator_value": 0.1}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("AdamW", {"lr": 0.01, "betas": (0.8, 0.9)}),
    ("RMSprop", {"centered": True, "momentum": 0.5}),
]


@pytest.mark.parametrize("name,kwargs", ROUND_TRIP, ids=_ids(ROUND_TRIP))
def test_state_dict_round_trip(name, kwargs):
    ours_cls, torch_cls = OPTIMIZERS[name]
    grads = _gradients(np.float64)
    ours, _ = _pair(_initial(np.float64))
    opt = ours_cls(ours, **kwargs)
    for step, g in enumerate(grads):
        if step == 5:
            saved = _through_checkpoint(opt.state_dict())
            resumed_params = [cl.tensor(p._data.copy(), requires_grad=True) for p in ours]
            resumed = ours_cls(resumed_params)  # defaults: the loaded groups must bring the options back
            resumed.load_state_dict(saved)
            assert resumed.param_groups[0]["params"] == resumed_params
            assert {k: v for k, v in resumed.param_groups[0].items() if k != "params"} == {
                k: v for k, v in opt.param_groups[0].items() if k != "params"
            }
        for p, a in zip(ours, g):
            p.grad = cl.tensor(a.copy())
        opt.step()
        if step >= 5:
            for p, a in zip(resumed_params, g):
                p.grad = cl.tensor(a.copy())
            resumed.step()
    for p, q in zip(ours, resumed_params):
        np.testing.assert_array_equal(p._data, q._data)


@pytest.mark.parametrize("name,kwargs", ROUND_TRIP, ids=_ids(ROUND_TRIP))
def test_loads_torch_state_dict(name, kwargs):
    """A state saved by torch (tensors turned into arrays) continues in convlens as it would in torch."""
    ours_cls, torch_cls = OPTIMIZERS[name]
    grads = _gradients(np.float64)
    _, theirs = _pair(_initial(np.float64))
    ref = torch_cls(theirs, **kwargs)
    for g in grads[:5]:
        for t, a in zip(theirs, g):
            t.grad = torch.tensor(a)
        ref.step()
    sd = ref.state_dict()
    ours = [cl.tensor(t.detach().numpy().copy(), requires_grad=True) for t in theirs]
    opt = ours_cls(ours, **kwargs)
    opt.load_state_dict({  # torch's extra group options (foreach, fused, ...) left out
        "state": {i: {k: v.numpy().copy() if v.ndim else v.item() for k, v in s.items()}
                  for i, s in sd["state"].items()},
        "param_groups": [{k: v for k, v in g.items() if k in opt.defaults or k == "params"}
                         for g in sd["param_groups"]],
    })
    for g in grads[5:]:
        _set_grads(ours, theirs, g)
        opt.step()
        ref.step()
    _close(ours, theirs, rtol=1e-11, atol=1e-13)


def test_state_dict_is_a_snapshot_and_checks_sizes():
    p = cl.tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = cl.tensor(np.ones(3))
    opt.step()
    sd = opt.state_dict()
    opt.step()
    np.testing.assert_array_equal(sd["state"][0]["momentum_buffer"], np.ones(3))
    other = optim.SGD([cl.zeros(3, requires_grad=True), cl.zeros(3, requires_grad=True)])
    with pytest.raises(ValueError, match="parameter group 0 has 2 parameters, the saved one has 1"):
        other.load_state_dict(sd)
    wrong_shape = optim.SGD([cl.zeros(4, requires_grad=True)])
    with pytest.raises(ValueError, match=r"'momentum_buffer' of parameter 0 has shape \(3,\)"):
        wrong_shape.load_state_dict(sd)


def test_zero_grad_and_missing_grads():
    a, b = cl.tensor(np.ones(2), requires_grad=True), cl.tensor(np.ones(2), requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = cl.tensor(np.ones(2))
    opt.step()  # b has no gradient: untouched, no state
    np.testing.assert_array_equal(b._data, np.ones(2))
    assert b not in opt.state and a._data[0] < 1
    grad = a.grad
    opt.zero_grad(set_to_none=False)
    assert a.grad is grad and not grad._data.any()
    opt.zero_grad()
    assert a.grad is None


INVALID = [
    (optim.SGD, {"lr": -0.1}, "SGD: invalid lr -0.1 (expected >= 0)"),
    (optim.SGD, {"momentum": -0.5}, "SGD: invalid momentum -0.5"),
    (optim.SGD, {"weight_decay": -1}, "SGD: invalid weight_decay -1"),
    (optim.SGD, {"nesterov": True}, "SGD: nesterov=True requires momentum > 0 and dampening == 0, got momentum=0"),
    (optim.SGD, {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "dampening=0.1"),
    (optim.Adam, {"betas": (1.0, 0.999)}, "Adam: invalid betas[0] 1.0 (expected 0 <= beta < 1)"),
    (optim.Adam, {"betas": (0.9, -0.1)}, "Adam: invalid betas[1] -0.1"),
    (optim.Adam, {"betas": 0.9}, "Adam: invalid betas 0.9"),
    (optim.AdamW, {"eps": -1e-8}, "AdamW: invalid eps -1e-08"),
    (optim.Adadelta, {"rho": 1.5}, "Adadelta: invalid rho 1.5"),
    (optim.Adagrad, {"lr_decay": -1}, "Adagrad: invalid lr_decay -1"),
    (optim.Adagrad, {"initial_accumulator_value": -1}, "Adagrad: invalid initial_accumulator_value -1"),
    (optim.RMSprop, {"alpha": -0.9}, "RMSprop: invalid alpha -0.9"),
    (optim.RMSprop, {"momentum": -0.9}, "RMSprop: invalid momentum -0.9"),
]


@pytest.mark.parametrize("cls,kwargs,message", INVALID)
def test_invalid_hyperparameters(cls, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        cls([cl.zeros(2, requires_grad=True)], **kwargs)


def test_invalid_params():
    p = cl.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="SGD: got an empty parameter list"):
        optim.SGD([])
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(p)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}])
    with pytest.raises(ValueError, match="SGD: invalid lr -1"):  # per-group options are checked too
        optim.SGD([{"params": [p], "lr": -1}])
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2])


def test_sgd_minimises_quadratic():
    cl.manual_seed(0)
    target = cl.randn(6)
    w = cl.zeros(6, requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.5)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = ((w - target) ** 2).sum()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert w.dtype == np.float32
    assert losses[-1] < 1e-3 * losses[0]
    np.testing.assert_allclose(w._data, target._data, atol=1e-2)


# ---- schedulers -------------------------------------------------------------------------------------
def _sched_pair(optimizer, scheduler, opt_kwargs, sched_kwargs, lrs=(0.1, 0.01)):
    ours_cls, torch_cls = OPTIMIZERS[optimizer]
    a, b = cl.zeros(2, requires_grad=True), cl.zeros(3, requires_grad=True)
    ta, tb = torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)
    opt = ours_cls([{"params": [a], "lr": lrs[0]}, {"params": [b], "lr": lrs[1]}], **opt_kwargs)
    ref = torch_cls([{"params": [ta], "lr": lrs[0]}, {"params": [tb], "lr": lrs[1]}], **opt_kwargs)
    ours = getattr(lr_scheduler, scheduler)(opt, **sched_kwargs)
    theirs = getattr(torch.optim.lr_scheduler, scheduler)(ref, **sched_kwargs)
    return opt, ref, ours, theirs


def _momenta(opt):
    return [g["betas"][0] if "betas" in g else g.get("momentum") for g in opt.param_groups]


SCHEDULES = [
    ("SGD", "StepLR", {}, {"step_size": 7, "gamma": 0.5}),
    ("SGD", "StepLR", {}, {"step_size": 1}),
    ("SGD", "CosineAnnealingLR", {}, {"T_max": 10, "eta_min": 0.001}),
    ("Adam", "CosineAnnealingLR", {}, {"T_max": 50}),
    ("SGD", "OneCycleLR", {"momentum": 0.9}, {"max_lr": 0.5, "total_steps": 50}),
    ("SGD", "OneCycleLR", {"momentum": 0.9}, {"max_lr": [1.0, 0.1], "epochs": 5, "steps_per_epoch": 10,
                                             "anneal_strategy": "linear", "pct_start": 0.25}),
    ("SGD", "OneCycleLR", {"momentum": 0.9}, {"max_lr": 0.5, "total_steps": 50, "three_phase": True,
                                             "base_momentum": [0.8, 0.7], "max_momentum": 0.99}),
    ("Adam", "OneCycleLR", {}, {"max_lr": 0.01, "total_steps": 50, "div_factor": 10.0,
                                "final_div_factor": 100.0}),
    ("RMSprop", "OneCycleLR", {"momentum": 0.5}, {"max_lr": 0.01, "total_steps": 50}),
    ("Adagrad", "OneCycleLR", {}, {"max_lr": 0.01, "total_steps": 50, "cycle_momentum": False}),
]


@pytest.mark.parametrize("optimizer,scheduler,opt_kwargs,sched_kwargs", SCHEDULES)
def test_scheduler_matches_torch(optimizer, scheduler, opt_kwargs, sched_kwargs):
    opt, ref, ours, theirs = _sched_pair(optimizer, scheduler, opt_kwargs, sched_kwargs)
    for step in range(50):
        assert ours.last_epoch == theirs.last_epoch == step
        assert ours.get_last_lr() == theirs.get_last_lr()
        assert [g["lr"] for g in opt.param_groups] == ours.get_last_lr()
        if sched_kwargs.get("cycle_momentum", True):
            assert _momenta(opt) == _momenta(ref)
        if step < 49:  # OneCycleLR's 50 steps are used up after 49 calls
            opt.step()
            ref.step()
            ours.step()
            theirs.step()


@pytest.mark.parametrize("optimizer,scheduler,opt_kwargs,sched_kwargs", [SCHEDULES[0], SCHEDULES[2], SCHEDULES[6]])
def test_scheduler_state_dict_round_trip(optimizer, scheduler, opt_kwargs, sched_kwargs):
    opt, _, sched, _ = _sched_pair(optimizer, scheduler, opt_kwargs, sched_kwargs)
    for _ in range(20):
        sched.step()
    saved_sched = json.loads(json.dumps(sched.state_dict()))
    saved_opt = _through_checkpoint(opt.state_dict())
    opt2, _, sched2, _ = _sched_pair(optimizer, scheduler, opt_kwargs, sched_kwargs)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    assert sched2.last_epoch == 20
    for _ in range(25):
        sched.step()
        sched2.step()
        assert sched2.get_last_lr() == sched.get_last_lr()
        assert _momenta(opt2) == _momenta(opt)


def test_scheduler_validation():
    opt = optim.SGD([cl.zeros(2, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="StepLR: invalid step_size 0"):
        lr_scheduler.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="CosineAnnealingLR: invalid T_max -3"):
        lr_scheduler.CosineAnnealingLR(opt, T_max=-3)
    with pytest.raises(ValueError, match="OneCycleLR: give total_steps"):
        lr_scheduler.OneCycleLR(opt, max_lr=0.1)
    with pytest.raises(ValueError, match="OneCycleLR: invalid anneal_strategy 'exp'"):
        lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10, anneal_strategy="exp")
    with pytest.raises(ValueError, match="cycle_momentum=True needs an optimizer with momentum"):
        lr_scheduler.OneCycleLR(optim.Adagrad([cl.zeros(2, requires_grad=True)]), max_lr=0.1, total_steps=10)
    with pytest.raises(ValueError, match="max_lr has 2 values, expected one per parameter group"):
        lr_scheduler.OneCycleLR(opt, max_lr=[0.1, 0.2], total_steps=10)
    sched = lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=3)
    sched.step()
    sched.step()
    sched.step()
    with pytest.raises(ValueError, match="tried to step 4 times, but total_steps is 3"):
        sched.step()
