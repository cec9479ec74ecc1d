"""convlens keeps freed memory in the process (kernels/allocator.py) unless told not to."""

import subprocess
import sys

import pytest

from convlens.kernels import allocator

PROBE = "import convlens; from convlens.kernels import allocator; print(allocator.configured)"


def _configured(env_value: str | None) -> str:
    import os

    env = {k: v for k, v in os.environ.items() if k != allocator.ENV}
    if env_value is not None:
        env[allocator.ENV] = env_value
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                          env=env).stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc settings: Linux only")
def test_settings_applied_on_import_and_opt_out():
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert _configured(None) == "True"
    assert _configured("0") == "False"
    assert _configured("off") == "False"


def test_freed_memory_is_reused_without_faults():
    """With the settings in force, a large array freed and allocated again faults in (almost) no new pages."""
    import resource

    import numpy as np

    if not allocator.configured:
        pytest.skip("allocator settings not in force on this platform")
    a = np.ones(64 << 20, dtype=np.uint8)  # 64 MiB: glibc would mmap (and unmap) it by default
    del a
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    b = np.ones(64 << 20, dtype=np.uint8)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert b[-1] == 1
    assert faults < 1000, f"{faults} page faults for a reused 64 MiB block (16,384 pages if fresh)"
