"""Whether this machine can run the verify tests that need network namespaces."""

from __future__ import annotations

import os
import shutil

import pytest

NAMESPACES = os.geteuid() == 0 and shutil.which("ip") is not None

needs_namespaces = pytest.mark.skipif(
    not NAMESPACES, reason="network namespaces need root and iproute2 (quorumkv verify "
                           "--loopback covers process faults without them)")
