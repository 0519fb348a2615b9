import os

import pytest

from fusion.parallel import spawn_map


def test_results_come_in_input_order_from_spawned_workers():
    pids = list(spawn_map(_pid_of, range(6), workers=2))
    assert [k for k, _ in pids] == list(range(6))
    assert os.getpid() not in {p for _, p in pids}  # ran in workers, not here


def test_one_worker_runs_in_this_process_and_an_error_reaches_the_caller():
    assert {p for _, p in spawn_map(_pid_of, range(3), workers=1)} == {os.getpid()}
    with pytest.raises(ValueError, match="item 1"):
        list(spawn_map(_fail_on_one, range(4), workers=2))


def _pid_of(k: int) -> tuple[int, int]:
    return k, os.getpid()


def _fail_on_one(k: int) -> int:
    if k == 1:
        raise ValueError("item 1")
    return k
