"""Random numbers: `Generator` (``torch.Generator``) and the default generator behind
``convlens.manual_seed``, weight initialisation, dropout, ``randn``/``rand`` and shuffling."""

from __future__ import annotations

import numpy as np

from convlens.devices import CPU, check_device


class Generator:
    """A random number generator as ``torch.Generator``: ``Generator().manual_seed(42)``, passed as
    ``generator=`` to factories, samplers and ``random_split``. It wraps a NumPy ``Generator`` (PCG64),
    so the streams differ from PyTorch's (Mersenne Twister): same seed, different numbers.
    ``get_state()`` is the bit generator's state dict (PyTorch returns a ByteTensor)."""

    def __init__(self, device="cpu"):
        check_device(device, "Generator")
        self._initial_seed = int(np.random.SeedSequence().entropy % (1 << 63))
        self.rng = np.random.default_rng(self._initial_seed)

    def manual_seed(self, seed: int) -> Generator:
        self._initial_seed = int(seed)
        self.rng = np.random.default_rng(self._initial_seed)
        return self

    def seed(self) -> int:
        """Re-seed from OS entropy; returns the new seed."""
        self.manual_seed(int(np.random.SeedSequence().entropy % (1 << 63)))
        return self._initial_seed

    def initial_seed(self) -> int:
        return self._initial_seed

    def get_state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> Generator:
        self.rng.bit_generator.state = state
        return self

    @property
    def device(self):
        return CPU


_default = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the default generator (weight initialisation, dropout, ``randn``/``rand``, shuffling)."""
    return _default.manual_seed(seed)


def default_generator() -> np.random.Generator:
    """The NumPy generator behind the default `Generator` (what the engine draws from)."""
    return _default.rng


def rng_of(generator) -> np.random.Generator:
    """The NumPy generator to draw from: a `Generator`'s, a NumPy generator itself, or the default."""
    if generator is None:
        return _default.rng
    if isinstance(generator, Generator):
        return generator.rng
    if isinstance(generator, np.random.Generator):
        return generator
    raise TypeError(f"generator must be a convlens.Generator, got {type(generator).__name__}")


def initial_seed() -> int:
    return _default.initial_seed()


def seed() -> int:
    return _default.seed()


def get_rng_state() -> dict:
    return _default.get_state()


def set_rng_state(state: dict) -> None:
    _default.set_state(state)
