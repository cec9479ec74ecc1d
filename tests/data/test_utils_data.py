"""convlens.utils.data against torch.utils.data's documented behaviour (and torch itself when installed)."""

from __future__ import annotations

import collections
import threading
import time

import numpy as np
import pytest

import convlens
from convlens.tensor import Tensor
from convlens.utils.data import (
    BatchSampler,
    ChainDataset,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    StackDataset,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    default_convert,
    get_worker_info,
    random_split,
)


def _xy(n=10, seed=0):
    rng = np.random.default_rng(seed)
    return convlens.tensor(rng.random((n, 3), dtype=np.float32)), convlens.tensor(np.arange(n))


class Squares(Dataset):
    """A map-style data set as a torch user writes one: Python numbers and arrays per item."""

    def __init__(self, n=20):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full(2, i, np.float32), i * i


# ---- data sets ----------------------------------------------------------------------------------------
def test_tensor_dataset_float_and_int_and_mismatch():
    x, y = _xy()
    ds = TensorDataset(x, y)
    assert len(ds) == 10
    a, b = ds[3]
    np.testing.assert_array_equal(a._data, x._data[3])
    assert b.item() == 3
    with pytest.raises(ValueError, match="size mismatch"):
        TensorDataset(x, convlens.tensor(np.arange(9)))
    arrays = TensorDataset(np.zeros((4, 2), np.float64), np.arange(4))  # NumPy arrays work too
    assert arrays[1][0].dtype == np.float64


def test_subset_concat_stack_chain():
    ds = Squares(10)
    sub = Subset(ds, [9, 2, 5])
    assert len(sub) == 3 and sub[0][1] == 81 and [s[1] for s in sub.__getitems__([1, 2])] == [4, 25]
    cat = ds + Squares(5)
    assert isinstance(cat, ConcatDataset) and len(cat) == 15 and cat.cumulative_sizes == [10, 15]
    assert cat[12][1] == 4 and cat[-1][1] == 16
    with pytest.raises(ValueError, match="should not exceed"):
        cat[-16]
    st = StackDataset(a=ds, b=Squares(10))
    assert st[3]["a"][1] == 9 and len(st) == 10
    with pytest.raises(ValueError, match="size mismatch"):
        StackDataset(ds, Squares(3))

    class Count(IterableDataset):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter(range(self.n))

    assert list(Count(2) + Count(3)) == [0, 1, 0, 1, 2]
    assert isinstance(Count(1) + Count(1), ChainDataset)
    with pytest.raises(TypeError, match="IterableDataset"):
        ConcatDataset([Count(2)])
    with pytest.raises(NotImplementedError):
        Dataset()[0]


def test_random_split_lengths_fractions_generator_and_manual_seed():
    ds = Squares(10)
    a, b = random_split(ds, [7, 3], generator=convlens.Generator().manual_seed(1))
    assert len(a) == 7 and len(b) == 3 and sorted(a.indices + b.indices) == list(range(10))
    again = random_split(ds, [7, 3], generator=convlens.Generator().manual_seed(1))
    assert again[0].indices == a.indices
    # fractions: floor each, remainder round-robin from the first (torch's rule)
    assert [len(s) for s in random_split(Squares(11), [0.5, 0.3, 0.2])] == [6, 3, 2]
    convlens.manual_seed(5)
    s1 = random_split(ds, [0.5, 0.5])[0].indices
    convlens.manual_seed(5)
    assert random_split(ds, [0.5, 0.5])[0].indices == s1
    with pytest.raises(ValueError, match="does not equal the length"):
        random_split(ds, [5, 4])
    with pytest.warns(UserWarning, match="length of split at index 1 is 0"):
        random_split(Squares(2), [1.0, 0.0])


# ---- samplers -----------------------------------------------------------------------------------------
def test_samplers():
    ds = Squares(10)
    assert list(SequentialSampler(ds)) == list(range(10))
    g = convlens.Generator().manual_seed(0)
    perm = list(RandomSampler(ds, generator=g))
    assert sorted(perm) == list(range(10)) and perm != list(range(10))
    assert list(RandomSampler(ds, generator=g)) != perm  # the generator advances: a new order each pass
    with_repl = list(RandomSampler(ds, replacement=True, num_samples=50, generator=g))
    assert len(with_repl) == 50 and max(with_repl) < 10 and len(set(with_repl)) < 50
    more = list(RandomSampler(ds, num_samples=25, generator=g))  # whole permutations, then part of one
    assert len(more) == 25 and sorted(more[:10]) == list(range(10)) and sorted(more[10:20]) == list(range(10))
    assert sorted(SubsetRandomSampler([3, 5, 7], generator=g)) == [3, 5, 7]
    w = WeightedRandomSampler([0.0, 1.0, 3.0], num_samples=4000, generator=g)
    counts = np.bincount(list(w), minlength=3)
    assert counts[0] == 0 and 2.6 < counts[2] / counts[1] < 3.4
    assert sorted(WeightedRandomSampler([1, 1, 1, 1], 4, replacement=False, generator=g)) == [0, 1, 2, 3]
    assert list(BatchSampler(SequentialSampler(range(7)), 3, drop_last=False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(BatchSampler(range(7), 3, drop_last=True)) == [[0, 1, 2], [3, 4, 5]]
    assert len(BatchSampler(range(7), 3, False)) == 3 and len(BatchSampler(range(7), 3, True)) == 2
    for bad in (0, -1, True, 2.0):
        with pytest.raises(ValueError, match="batch_size should be a positive integer"):
            BatchSampler(range(3), bad, False)
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        RandomSampler(ds, num_samples=0)
    with pytest.raises(TypeError, match="replacement should be a boolean"):
        RandomSampler(ds, replacement=1)
    with pytest.raises(ValueError, match="1-d"):
        WeightedRandomSampler(np.ones((2, 2)), 3)


def test_random_sampler_without_generator_follows_manual_seed():
    convlens.manual_seed(3)
    a = list(RandomSampler(Squares(30)))
    convlens.manual_seed(3)
    assert list(RandomSampler(Squares(30))) == a


# ---- collate ------------------------------------------------------------------------------------------
Point = collections.namedtuple("Point", "x y")


def test_default_collate_rules():
    out = default_collate([(np.zeros(2, np.float32), 1, 2.5, "a", True), (np.ones(2, np.float32), 2, 3.5, "b", False)])
    assert isinstance(out, list) and len(out) == 5  # tuples collate to a list, as in torch
    assert out[0].shape == (2, 2) and out[0].dtype == np.float32
    assert out[1].dtype == np.int64 and out[2].dtype == np.float64 and out[3] == ["a", "b"]
    assert out[4].dtype == np.bool_
    d = default_collate([{"img": convlens.zeros(3), "k": 1}, {"img": convlens.ones(3), "k": 2}])
    assert d["img"].shape == (2, 3) and d["k"].tolist() == [1, 2]
    p = default_collate([Point(1, 2.0), Point(3, 4.0)])
    assert isinstance(p, Point) and p.x.tolist() == [1, 3]
    assert default_collate([np.float32(1), np.float32(2)]).dtype == np.float32
    lists = default_collate([[1, 2], [3, 4]])
    assert isinstance(lists, list) and lists[0].tolist() == [1, 3]
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(RuntimeError, match=r"stack expects each tensor to be equal size.*\[2\] at entry 0.*\[3\]"):
        default_collate([convlens.zeros(2), convlens.zeros(3)])
    with pytest.raises(TypeError, match="default_collate: batch must contain"):
        default_collate([object(), object()])
    from PIL import Image

    with pytest.raises(TypeError, match="ToTensor"):
        default_collate([Image.new("L", (2, 2))] * 2)
    conv = default_convert((np.zeros(2), 3, "s"))
    assert isinstance(conv, list) and isinstance(conv[0], Tensor) and conv[1] == 3


def test_default_collate_matches_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate

    batch = [{"a": (np.full((2, 2), i, np.float32), i, float(i)), "s": str(i)} for i in range(3)]
    ours, theirs = default_collate(batch), torch_collate(batch)
    assert type(ours) is type(theirs) and type(ours["a"]) is type(theirs["a"])
    for o, t in zip(ours["a"], theirs["a"]):
        np.testing.assert_array_equal(o._data, t.numpy())
        assert str(o.dtype) == str(t.dtype).removeprefix("torch.")
    assert ours["s"] == theirs["s"]
    assert torch.is_tensor(theirs["a"][0])


# ---- DataLoader: torch's arguments ---------------------------------------------------------------------
def test_defaults_and_argument_errors_as_torch():
    ds = Squares(7)
    loader = DataLoader(ds)
    assert loader.batch_size == 1 and len(loader) == 7 and loader.num_workers == 0
    assert isinstance(loader.sampler, SequentialSampler) and isinstance(loader.batch_sampler, BatchSampler)
    assert isinstance(DataLoader(ds, shuffle=True).sampler, RandomSampler)
    DataLoader(ds, pin_memory=True, pin_memory_device="cuda", multiprocessing_context="spawn", in_order=False)
    cases = [
        (dict(num_workers=-1), "num_workers"),
        (dict(timeout=-1), "timeout"),
        (dict(prefetch_factor=2), "prefetch_factor"),
        (dict(persistent_workers=True), "persistent_workers option needs num_workers > 0"),
        (dict(sampler=SequentialSampler(ds), shuffle=True), "mutually exclusive with shuffle"),
        (dict(batch_sampler=BatchSampler(range(7), 2, False), batch_size=3), "batch_sampler option is mutually"),
        (dict(batch_size=None, drop_last=True), "batch_size=None"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            DataLoader(ds, **kwargs)

    class Stream(IterableDataset):
        def __iter__(self):
            return iter(range(3))

    with pytest.raises(ValueError, match="IterableDataset: expected unspecified shuffle"):
        DataLoader(Stream(), shuffle=True)


def test_custom_dataset_batches_like_torch():
    loader = DataLoader(Squares(10), batch_size=4)
    batches = list(loader)
    assert len(batches) == 3 and len(loader) == 3
    x, y = batches[0]
    assert x.shape == (4, 2) and y.tolist() == [0, 1, 4, 9] and y.dtype == np.int64
    assert [b[1].tolist() for b in DataLoader(Squares(10), batch_size=4, drop_last=True)][-1] == [16, 25, 36, 49]
    unbatched = list(DataLoader(Squares(3), batch_size=None))
    assert isinstance(unbatched[0][0], Tensor) and unbatched[0][0].shape == (2,) and unbatched[2][1] == 4
    sampled = DataLoader(Squares(10), batch_sampler=BatchSampler([9, 8, 7], 2, False))
    assert [b[1].tolist() for b in sampled] == [[81, 64], [49]]
    it = iter(loader)
    assert len(it) == 3
    custom = DataLoader(Squares(4), batch_size=2, collate_fn=lambda items: [i for _, i in items])
    assert list(custom) == [[0, 1], [4, 9]]


def test_same_batches_as_torch_dataloader():
    pytest.importorskip("torch")
    import torch.utils.data as tud

    ds = Squares(11)
    ours = [(x._data, y._data) for x, y in DataLoader(ds, batch_size=3)]
    theirs = [(x.numpy(), y.numpy()) for x, y in tud.DataLoader(ds, batch_size=3)]
    assert len(ours) == len(theirs) == 4
    for (a, b), (c, d) in zip(ours, theirs):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
        assert a.dtype == c.dtype and b.dtype == d.dtype
    assert len(DataLoader(ds, batch_size=3, drop_last=True)) == len(tud.DataLoader(ds, batch_size=3, drop_last=True))


def test_tensor_dataset_fast_path_equals_per_item_path():
    x, y = _xy(50)
    ds = TensorDataset(x, y)
    per_item = lambda items: default_collate(items)  # noqa: E731 - another function: no fast path
    for kw in (dict(shuffle=True, seed=4), dict(sampler=SubsetRandomSampler(range(0, 50, 3),
                                                                          generator=convlens.Generator().manual_seed(2)))):
        a = [[t._data.copy() for t in b] for b in DataLoader(ds, batch_size=8, **kw)]
        if "sampler" in kw:
            kw["sampler"].generator.manual_seed(2)
        b = [[t._data.copy() for t in b] for b in DataLoader(ds, batch_size=8, collate_fn=per_item, **kw)]
        assert len(a) == len(b)
        for u, v in zip(a, b):
            for s, t in zip(u, v):
                np.testing.assert_array_equal(s, t)
                assert s.dtype == t.dtype


def test_shuffle_follows_manual_seed_and_generator():
    ds = TensorDataset(*_xy(40))

    def order(**kw):
        return np.concatenate([b[1]._data for b in DataLoader(ds, batch_size=7, shuffle=True, **kw)]).tolist()

    convlens.manual_seed(11)
    a = order()
    convlens.manual_seed(11)
    assert order() == a and sorted(a) == list(range(40))
    convlens.manual_seed(12)
    assert order() != a
    g1 = order(generator=convlens.Generator().manual_seed(3))
    assert order(generator=convlens.Generator().manual_seed(3)) == g1


# ---- workers ------------------------------------------------------------------------------------------
class Rendezvous(Dataset):
    """Every item waits at a barrier for ``parties`` concurrent fetches: it finishes only if that many
    threads really load at the same time (no timing involved)."""

    def __init__(self, n, parties):
        self.n, self.barrier = n, threading.Barrier(parties, timeout=20)
        self.seen = []

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.barrier.wait()
        info = get_worker_info()
        self.seen.append(info.id if info is not None else None)
        return i


def test_workers_run_in_parallel_and_keep_the_order():
    ds = Rendezvous(24, parties=3)
    out = [b.tolist() for b in DataLoader(ds, batch_size=2, num_workers=3)]
    assert out == [[2 * k, 2 * k + 1] for k in range(12)]
    assert sorted(set(ds.seen)) == [0, 1, 2]
    assert get_worker_info() is None


def test_worker_info_init_fn_and_seed():
    calls = []

    class Info(Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            w = get_worker_info()
            return w.id, w.num_workers, w.seed, w.dataset is ds

    ds = Info()
    loader = DataLoader(ds, batch_size=1, num_workers=2, worker_init_fn=calls.append, seed=5)
    rows = [tuple(t.item() if isinstance(t, Tensor) else t[0] for t in b) for b in loader]
    # round-robin: batch k on worker k % 2; each worker's seed is the base seed + its id
    assert [r[0] for r in rows] == [0, 1] * 4 and {r[1] for r in rows} == {2} and all(r[3] for r in rows)
    assert rows[1][2] == rows[0][2] + 1
    assert sorted(calls) == [0, 1]


def test_worker_errors_timeout_and_persistent_workers():
    class Bad(Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            if i == 4:
                raise KeyError("item 4 is broken")
            return i

    with pytest.raises(KeyError, match="item 4 is broken"):
        list(DataLoader(Bad(), batch_size=2, num_workers=2))

    class Slow(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            time.sleep(1.0)
            return i

    with pytest.raises(RuntimeError, match="DataLoader timed out after 0.05 seconds"):
        list(DataLoader(Slow(), num_workers=1, timeout=0.05))

    calls = []
    loader = DataLoader(Squares(6), batch_size=2, num_workers=2, persistent_workers=True, worker_init_fn=calls.append)
    first = [b[1].tolist() for b in loader]
    assert [b[1].tolist() for b in loader] == first and sorted(calls) == [0, 1]  # started once


def test_random_transforms_do_not_depend_on_num_workers():
    from convlens.utils.data.worker import sample_rng

    class Noisy(Dataset):
        def __len__(self):
            return 30

        def __getitem__(self, i):
            return np.float32(sample_rng().random())

    runs = [np.concatenate([b._data for b in DataLoader(Noisy(), batch_size=4, shuffle=True, seed=9, num_workers=nw)])
            for nw in (0, 1, 3)]
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], runs[2])
    assert len(np.unique(runs[0])) == 30


def test_iterable_dataset_sharded_with_worker_info():
    class Shards(IterableDataset):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            w = get_worker_info()
            start, step = (0, 1) if w is None else (w.id, w.num_workers)
            return iter(range(start, self.n, step))

        def __len__(self):
            return self.n

    assert [b.tolist() for b in DataLoader(Shards(7), batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(DataLoader(Shards(7), batch_size=3)) == 3
    got = [b.tolist() for b in DataLoader(Shards(12), batch_size=2, num_workers=2)]
    # torch's order: worker 0's first batch, worker 1's first, worker 0's second...
    assert got == [[0, 2], [1, 3], [4, 6], [5, 7], [8, 10], [9, 11]]
    assert [b.tolist() for b in DataLoader(Shards(5), batch_size=2, drop_last=True)] == [[0, 1], [2, 3]]


# ---- resumable state ----------------------------------------------------------------------------------
def test_state_dict_resumes_a_user_dataset_mid_epoch():
    ds = TensorDataset(*_xy(30))
    ref = DataLoader(ds, batch_size=4, shuffle=True, seed=2)
    list(ref)
    epoch1 = [b[1].tolist() for b in ref]
    run = DataLoader(ds, batch_size=4, shuffle=True, seed=2)
    list(run)
    it = iter(run)
    for _ in range(3):
        next(it)
    state = run.state_dict()
    assert state == {"seed": 2, "epoch": 1, "batch": 3}
    resumed = DataLoader(ds, batch_size=4, shuffle=True)
    resumed.load_state_dict(state)
    assert [b[1].tolist() for b in resumed] == epoch1[3:]
    assert resumed.epoch == 2


def test_signatures_match_torch():
    pytest.importorskip("torch")
    import inspect

    import torch.utils.data as tud

    for ours, theirs in [(DataLoader, tud.DataLoader), (RandomSampler, tud.RandomSampler),
                         (WeightedRandomSampler, tud.WeightedRandomSampler), (BatchSampler, tud.BatchSampler),
                         (SubsetRandomSampler, tud.SubsetRandomSampler), (Subset, tud.Subset),
                         (random_split, tud.random_split)]:
        a = list(inspect.signature(ours).parameters.values())
        b = [p for p in inspect.signature(theirs).parameters.values() if p.name != "self"]
        assert [p.name for p in a[: len(b)]] == [p.name for p in b], ours.__name__
        assert [p.kind for p in a[: len(b)]] == [p.kind for p in b], ours.__name__
        for p, q in zip(a, b):
            if q.name != "generator" and q.default is not inspect.Parameter.empty:
                assert p.default == q.default, f"{ours.__name__}({p.name}): {p.default!r} vs torch {q.default!r}"
