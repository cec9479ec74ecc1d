"""Shared pytest configuration.

With ``CONVLENS_REQUIRE_TORCH=1`` (set in CI) the PyTorch comparison tests may not silently skip:
pytest stops at start-up if torch cannot be imported, and any test or test module skipped for a reason
that mentions torch (e.g. ``pytest.importorskip("torch")``) is reported as a failure instead. Likewise
``CONVLENS_REQUIRE_BROWSER=1`` (also set in CI) turns a skipped browser test (no Chromium, no Playwright)
into a failure. Without torch, the session ends with one line saying how many PyTorch comparisons did
not run and how to run them.
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


_BROWSER_WORDS = ("browser tests", "chromium", "playwright")
_torch_skips = []


def _fail_torch_skip(report) -> None:
    """Turn a skip caused by a missing torch (or, with CONVLENS_REQUIRE_BROWSER=1, a missing browser) into
    a failure (expected failures are left alone)."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = _skip_reason(report)
    low = reason.lower()
    if "torch" in low:
        _torch_skips.append(report.nodeid)
    if _torch_required() and "torch" in low:
        report.outcome = "failed"
        report.longrepr = f"CONVLENS_REQUIRE_TORCH=1 but this was skipped: {reason}"
    elif os.environ.get("CONVLENS_REQUIRE_BROWSER", "").strip() == "1" and any(w in low for w in _BROWSER_WORDS):
        report.outcome = "failed"
        report.longrepr = f"CONVLENS_REQUIRE_BROWSER=1 but this was skipped: {reason}"


def pytest_terminal_summary(terminalreporter):
    if _torch_skips:
        terminalreporter.write_line(
            f"convlens: {len(_torch_skips)} test(s)/module(s) comparing against PyTorch did not run (torch is not "
            "installed); run them with: pip install torch==2.13.0 && python -m pytest")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_torch_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_torch_skip(outcome.get_result())
