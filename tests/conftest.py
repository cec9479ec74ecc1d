"""Shared pytest configuration.

With ``CONVLENS_REQUIRE_TORCH=1`` (set in CI) the PyTorch comparison tests may not silently skip:
pytest stops at start-up if torch cannot be imported, and any test or test module skipped for a reason
that mentions torch (e.g. ``pytest.importorskip("torch")``) is reported as a failure instead.
"""

from __future__ import annotations

import os

import pytest


def _torch_required() -> bool:
    return os.environ.get("CONVLENS_REQUIRE_TORCH", "").strip() == "1"


def pytest_configure(config):
    if not _torch_required():
        return
    try:
        import torch  # noqa: F401
    except Exception as exc:  # ImportError, or a broken installation raising something else
        pytest.exit(f"CONVLENS_REQUIRE_TORCH=1 but torch cannot be imported: {exc!r}", returncode=1)


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (path, lineno, reason) for skips
        return str(longrepr[2])
    return str(longrepr)


def _fail_torch_skip(report) -> None:
    """Turn a skip caused by a missing torch into a failure (expected failures are left alone)."""
    if not _torch_required() or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = _skip_reason(report)
    if "torch" in reason.lower():
        report.outcome = "failed"
        report.longrepr = f"CONVLENS_REQUIRE_TORCH=1 but this was skipped: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_torch_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_torch_skip(outcome.get_result())
