"""Shared fixtures. YOLO_OFFLINE stops ultralytics probing the network at import."""

import os

import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

# Files whose tests share results: the fault-injection suite writes RELIABILITY.md from both.
_GROUPS = {"test_fault.py": "reliability", "test_reliability.py": "reliability"}
# Longest first, so the two workers of `make test` finish together (fault injection ~8 min, e2e ~3 min);
# test_fault.py before test_reliability.py, whose last test renders RELIABILITY.md from both.
_FIRST = ("test_fault.py", "test_reliability.py", "test_job_e2e.py")


def pytest_collection_modifyitems(config, items):
    """For pytest-xdist's `--dist loadgroup` (`make test`): a whole file runs on one worker, so its module-scoped
    Ray cluster, S3 server and archives are built once; the slowest files are handed out first."""
    for item in items:
        item.add_marker(pytest.mark.xdist_group(_GROUPS.get(item.path.name, str(item.path))))
    rank = {name: i for i, name in enumerate(_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept within a file
