"""Shared fixtures. YOLO_OFFLINE stops ultralytics probing the network at import."""

import os

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

# Longest first, so the two workers of `make test` finish together (fault injection ~6 min per module, e2e ~4 min).
_FIRST = ("test_reliability.py", "test_reliability_restarts.py", "test_job_e2e.py", "test_tracking.py")


def pytest_collection_modifyitems(config, items):
    """For pytest-xdist's `--dist loadfile` (`make test`), which hands out whole files in collection order: the
    slowest files first."""
    rank = {name: i for i, name in enumerate(_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept within a file
