"""Shared fixtures. Real-stack tests call ``stack.require()``: skip with the reason on a
developer machine without the stack, fail in CI (CI=true), so they always run there."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
DATA = Path(__file__).parent / "data"
