"""host/runner.py Task: gather's side-by-side calls, a thread each (no concurrent.futures)."""

from __future__ import annotations

import threading

import pytest

from rootless_doctor.host.runner import Task


def test_task_runs_on_its_own_thread_and_hands_back_the_value() -> None:
    gate = threading.Event()
    # Run inline, the task would wait 2 s for a gate nobody has opened yet and give False.
    t = Task(lambda x: (gate.wait(2), x * 2), 21)
    gate.set()
    assert t.result() == (True, 42) and t.result() == (True, 42)


def test_task_hands_back_what_it_raised() -> None:
    def boom() -> None:
        raise ValueError("broken")

    with pytest.raises(ValueError, match="broken"):
        Task(boom).result()
