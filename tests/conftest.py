"""Shared pytest fixtures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
try:
    import lhcflow  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO / "src"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Directory of the external test files (``LHCFLOW_SHARED_DATA`` overrides)."""
    path = Path(os.environ.get("LHCFLOW_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    if not path.is_dir():
        pytest.skip(f"shared test data not found at {path}")
    return path


@pytest.fixture(scope="session", autouse=True)
def single_torch_thread():
    """The tests train tiny networks: intra-op threads only cost time, badly so on a busy 2-core box."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
