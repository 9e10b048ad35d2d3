"""Turns (aelab.turns): jobs sharing a folder train N at a time in order of arrival; a queued job's card says so,
and it can be stopped before it trains. Real processes: small Python commands for the line itself, real training
jobs on the offline MNIST sample for the Train page."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aelab import jobs

ROOT = Path(__file__).resolve().parent.parent


def events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_until(condition, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            states = [(s.job.name, s.state, s.ahead, s.message) for s in jobs.list_jobs()]
            logs = [s.job.log_path.read_text() for s in jobs.list_jobs() if s.job.log_path.exists()]
            pytest.fail(f"timed out waiting for {what}; jobs: {states}; logs: {logs}")
        time.sleep(0.1)


def start_in_line(folder: Path, tmp: Path, name: str, seconds: float, slots: int = 1) -> subprocess.Popen:
    """A run that, when its turn comes, notes when it started and ended in tmp/name.txt."""
    code = (f"import time, pathlib; p = pathlib.Path({str(tmp / (name + '.txt'))!r}); "
            f"p.write_text(f'{{time.time()}}\\n'); time.sleep({seconds}); "
            f"p.write_text(p.read_text() + f'{{time.time()}}\\n')")
    process = subprocess.Popen([sys.executable, "-m", "aelab.turns", "--folder", str(folder), "--slots", str(slots),
                                "--events", str(tmp / f"{name}.jsonl"), "--stop-file", str(tmp / f"{name}.stop"),
                                "--", sys.executable, "-c", code], cwd=ROOT)
    time.sleep(0.3)  # (in the line, or holding a slot, before the next one is started)
    return process


def times(tmp: Path, name: str) -> list[float]:
    return [float(t) for t in (tmp / f"{name}.txt").read_text().split()]


def test_runs_take_turns_in_order_of_arrival_and_a_killed_or_stopped_waiter_leaves_the_line(tmp_path):
    folder = tmp_path / "turns"
    first = start_in_line(folder, tmp_path, "first", 2.0)
    second = start_in_line(folder, tmp_path, "second", 0.2)
    killed = start_in_line(folder, tmp_path, "killed", 0.2)
    stopped = start_in_line(folder, tmp_path, "stopped", 0.2)
    last = start_in_line(folder, tmp_path, "last", 0.2)
    wait_until(lambda: events(tmp_path / "last.jsonl"), what="the last run's place in the line")
    assert events(tmp_path / "second.jsonl") == [{"event": "queued", "ahead": 0, "slots": 1}]
    assert events(tmp_path / "last.jsonl") == [{"event": "queued", "ahead": 3, "slots": 1}]
    os.kill(killed.pid, signal.SIGKILL)  # a waiting run killed: its file stays, unlocked, and is passed over
    (tmp_path / "stopped.stop").touch()
    assert stopped.wait(10) == 0
    assert events(tmp_path / "stopped.jsonl")[-1] == {
        "event": "done", "status": "stopped", "before_start": True,
        "message": "stopped while it waited for its turn, before it trained"}
    wait_until(lambda: {"event": "queued", "ahead": 1, "slots": 1} in events(tmp_path / "last.jsonl"),
               what="the last run to move up")
    for process in (first, second, last):
        assert process.wait(30) == 0
    killed.wait(5)
    (_, a_end), (b_start, b_end), (c_start, _) = times(tmp_path, "first"), times(tmp_path, "second"), \
        times(tmp_path, "last")
    assert a_end <= b_start and b_end <= c_start  # one at a time, in order
    assert not (tmp_path / "killed.txt").exists() and not (tmp_path / "stopped.txt").exists()
    assert not [p for p in (folder / "waiting").iterdir()]  # nobody left in the line


def test_two_slots_run_two_at_once(tmp_path):
    folder = tmp_path / "turns"
    runs = [start_in_line(folder, tmp_path, name, 1.5, slots=2) for name in ("a", "b", "c")]
    for process in runs:
        assert process.wait(30) == 0
    (a0, a1), (b0, b1), (c0, _) = (times(tmp_path, n) for n in ("a", "b", "c"))
    assert b0 < a1  # a and b together
    assert c0 >= min(a1, b1)  # c when one of them ended
    assert [e["event"] for e in events(tmp_path / "a.jsonl")] == ["turn"]  # (no wait: straight to its turn)
    assert events(tmp_path / "c.jsonl")[0] == {"event": "queued", "ahead": 0, "slots": 2}
    assert events(tmp_path / "c.jsonl")[-1]["event"] == "turn" and events(tmp_path / "c.jsonl")[-1]["waited_s"] > 0


def test_a_limit_changed_while_runs_wait_counts_for_them(tmp_path):
    """The number of slots is read again at every look (the app writes it from AELAB_MAX_JOBS): raised, a waiting run
    starts beside the running one; lowered, runs past the new limit count until they end."""
    from aelab import turns

    folder = tmp_path / "turns"
    turns.set_slots(folder, 1)
    first = start_in_line(folder, tmp_path, "first", 3.0)
    second = start_in_line(folder, tmp_path, "second", 3.0)
    wait_until(lambda: events(tmp_path / "second.jsonl"), what="the second run to wait")
    assert events(tmp_path / "second.jsonl") == [{"event": "queued", "ahead": 0, "slots": 1}]
    turns.set_slots(folder, 2)
    wait_until(lambda: (tmp_path / "second.txt").exists(), 10, "the second run to start beside the first")
    assert events(tmp_path / "second.jsonl")[-1]["event"] == "turn"
    turns.set_slots(folder, 1)  # two train now: a third waits for both
    third = start_in_line(folder, tmp_path, "third", 0.1)
    for process in (first, second, third):
        assert process.wait(30) == 0
    assert times(tmp_path, "third")[0] >= max(times(tmp_path, "first")[1], times(tmp_path, "second")[1])


def test_a_job_waits_for_its_turn_says_so_and_can_be_stopped_before_it_trains(tmp_path, monkeypatch):
    """With one job at a time, a second job is queued: its card says where it is in the line; stopped, it ends
    "stopped" having trained nothing; the first one's end gives the next its turn."""
    monkeypatch.setenv("AELAB_CHECKPOINTS", str(tmp_path / "checkpoints"))  # (a line of its own)
    monkeypatch.setenv("AELAB_MAX_JOBS", "1")
    tiny = {"latent_dim": 4, "hidden": [16]}
    # Started one after the other at once: each job's place in the line is taken before its process starts, so they
    # keep that order however fast each process gets going (the third's could look for a slot before the first's).
    running = jobs.start_job("mlp", tiny, {"epochs": 200, "batch_size": 256}, "turn-running")
    waiting = jobs.start_job("mlp", tiny, {"epochs": 1, "batch_size": 256}, "turn-waiting")
    third = jobs.start_job("mlp", tiny, {"epochs": 1, "batch_size": 256}, "turn-third")
    # Queued from the start (it read "starting" until its process said so, a second or two later)
    assert jobs.job_status(third.id).state == "queued"
    try:
        wait_until(lambda: jobs.job_status(running.id).state == "running", 120, "the first job to train")
        check_the_line(running, waiting, third)
    finally:  # (a failure leaves no job training for minutes)
        for job in (running, waiting, third):
            with contextlib.suppress(OSError):
                os.killpg(job.pid, signal.SIGKILL)


def check_the_line(running, waiting, third):
    from streamlit.testing.v1 import AppTest

    assert " It waits for its turn: one job trains at a time here, and 2 started before it." == jobs.turn_note(third)
    wait_until(lambda: jobs.job_status(third.id).ahead == 1 and jobs.job_status(waiting.id).state == "queued", 30,
               "the second and third jobs in the line")
    status = jobs.job_status(waiting.id)
    assert status.active and status.waited_s is None
    assert jobs.queue_words(status) == "next: it starts when a job training now ends (one trains at a time here)"
    assert jobs.queue_words(jobs.job_status(third.id)) == "1 job waits before it (one trains at a time here)"

    at = AppTest.from_file(str(ROOT / "pages" / "train.py"), default_timeout=120).run()
    assert not at.exception
    cards = " | ".join(m.value for m in at.markdown)
    assert "**turn-waiting** · :gray[:material/schedule: waiting for its turn]" in cards
    assert any("1 job waits before it (one trains at a time here) · waiting for" in p.proto.text
               for p in at.get("progress"))

    jobs.stop_job(waiting.id, elsewhere=True)  # (the Stop of another browser's card)
    wait_until(lambda: not jobs.job_status(waiting.id).active, 30, "the queued job to stop")
    status = jobs.job_status(waiting.id)
    assert status.state == "stopped" and not status.history
    assert status.message == ("stopped while it waited for its turn, before it trained: nothing was saved; it was "
                              "stopped from another browser")
    assert not status.checkpoint.exists()
    assert jobs.job_status(third.id).state == "queued"  # still waiting for the first
    jobs.stop_job(running.id)
    wait_until(lambda: jobs.job_status(third.id).state in ("running", "saving", "finished"), 120,
               "the third job's turn")
    wait_until(lambda: not jobs.job_status(third.id).active, 120, "the third job to finish")
    status = jobs.job_status(third.id)
    assert status.state == "finished" and status.waited_s > 1 and status.began > third.started
    at.run()
    [head] = [m.value for m in at.markdown if m.value.startswith("**turn-third**")]
    assert ", its turn at " in head
    assert jobs.job_status(running.id).waited_s is None or jobs.job_status(running.id).waited_s < 1
    assert jobs.job_status(running.id).state == "stopped"


def test_a_suggested_name_taken_meanwhile_becomes_the_next_free_one(tmp_path, monkeypatch):
    """A class pressing Start together with the page's suggested name: one was refused "a job is already training a
    model named 'mnist-mlp-2'", a name it never chose. A name the user typed is still refused."""
    from aelab.errors import CheckpointError

    monkeypatch.setenv("AELAB_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("AELAB_MAX_JOBS", "1")
    tiny, short = {"latent_dim": 4, "hidden": [16]}, {"epochs": 1, "batch_size": 256}
    started = []
    try:
        started.append(jobs.start_job("mlp", tiny, {"epochs": 200, "batch_size": 256}, "mnist-mlp"))
        started.append(jobs.start_job("mlp", tiny, short, "mnist-mlp", next_free_name=True))
        started.append(jobs.start_job("mlp", tiny, short, "mnist-mlp", next_free_name=True))
        assert [job.name for job in started] == ["mnist-mlp", "mnist-mlp-2", "mnist-mlp-3"]
        with pytest.raises(CheckpointError, match="a job is already waiting to train a model named 'mnist-mlp-2'"):
            jobs.start_job("mlp", tiny, short, "mnist-mlp-2")
        # Stopped before it trained, a job saved nothing: its card keeps the name from the next suggestion.
        jobs.stop_job(started[2].id)
        wait_until(lambda: not jobs.job_status(started[2].id).active, 30, "the third job to stop")
        assert not Path(started[2].checkpoint).exists()
        assert jobs.free_name("mnist-mlp") == "mnist-mlp-4"
    finally:
        for job in started:
            with contextlib.suppress(OSError):
                os.killpg(job.pid, signal.SIGKILL)
