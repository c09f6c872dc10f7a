"""Shared test fixtures: the real annotation data beside the checkout (../shared/data)."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """``$VCL_FAST_SHARED_DATA`` or ``<repo>/../shared/data``; None when neither exists."""
    candidates = [os.environ.get("VCL_FAST_SHARED_DATA"), REPO.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Directory of the real VCSL/VCDB annotation files; skips the test when it is not present."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("real annotation data not found: set VCL_FAST_SHARED_DATA or place shared/ beside the repo")
    return path


@pytest.fixture
def torch_one_thread():
    """Run a test with one torch CPU thread: small models on a shared 2-core machine run far faster so."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
