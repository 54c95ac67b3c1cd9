import os

import pytest

from cliutil import ROOT


@pytest.fixture(scope="session")
def vrev():
    """Path of the vrev binary under test (make passes VREV_BIN)."""
    path = os.environ.get("VREV_BIN", os.path.join(ROOT, "build", "vrev"))
    path = os.path.join(ROOT, path) if not os.path.isabs(path) else path
    assert os.access(path, os.X_OK), "build vrev first (make), or set VREV_BIN"
    return path


@pytest.fixture(scope="session")
def vectors():
    return os.path.join(ROOT, "tests", "vectors", "v2ray-4.34")

