"""Turns: training runs that share a folder train a few at a time, in order of arrival; the others wait.

A class of thirty starting a run each on one server ran thirty torch processes at once: each at a thirtieth of the
speed, with thirty copies of torch in memory. The app starts every job as

    python -m aelab.turns --folder F --slots N --events E --stop-file S -- python -m aelab train ...

which waits, without importing torch (a few MB), until it is the oldest waiting run of F and one of its N slots is
free, then becomes the training run (exec: the same process, so the job's pid stays true) holding that slot until it
exits. Nothing has to hand slots on: a slot is an flock on F/slot-K.lock, released by the kernel when its process ends
however it ends, and a waiting run is an flock on its file in F/waiting/, so a waiting run that was killed drops out
of the line by itself. While waiting it writes {"event": "queued", "ahead": n, "slots": N} to the events log when n
changes; a stop file ends the wait with {"event": "done", "status": "stopped", "before_start": true}.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import sys
import time
from pathlib import Path

POLL_S = 0.5


def _locked_by_someone(path: Path) -> bool:
    """Is the file's flock held by a live process? (Taken and let go again at once when it is not.)"""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # (closing lets go of a lock taken above)
    return False


def _join_line(waiting: Path, arrived_ns: int) -> tuple[int, Path]:
    """A file of ours in the line, named by when the run arrived, locked before it is put there (a rename keeps the
    lock), so nobody sees it unlocked and takes it for a dead run's."""
    waiting.mkdir(parents=True, exist_ok=True)
    tmp = waiting / f".joining-{os.getpid()}"
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    mine = waiting / f"{arrived_ns:020d}-{os.getpid()}"
    os.rename(tmp, mine)
    return fd, mine


def _ahead(waiting: Path, mine: Path) -> int:
    """How many live runs joined the line before this one; the files of dead ones are removed."""
    ahead = 0
    for path in sorted(waiting.iterdir()):
        if path == mine or path.name.startswith("."):
            continue
        if not _locked_by_someone(path):
            path.unlink(missing_ok=True)  # its run is gone (killed while it waited)
        elif path.name < mine.name:
            ahead += 1
    return ahead


def _take_slot(folder: Path, slots: int) -> int | None:
    """A descriptor holding a free slot's lock, or None when all are taken."""
    for k in range(slots):
        fd = os.open(folder / f"slot-{k}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            os.close(fd)
    return None


def _event(events: Path | None, event: dict) -> None:
    if events is not None:
        with open(events, "a") as f:
            f.write(json.dumps(event) + "\n")


def wait_for_turn(folder: Path, slots: int, events: Path | None = None, stop_file: Path | None = None,
                  arrived_ns: int | None = None) -> int | None:
    """Wait until this run may train: returns the descriptor holding its slot (keep it open while training), or None
    when the stop file appeared first. `arrived_ns`: its place in the line (time.time_ns() when it was asked for;
    now by default), so that runs started one after the other keep that order however fast each process starts."""
    folder.mkdir(parents=True, exist_ok=True)
    line_fd, mine = _join_line(folder / "waiting", time.time_ns() if arrived_ns is None else arrived_ns)
    told = None
    try:
        while True:
            if stop_file is not None and stop_file.exists():
                return None
            ahead = _ahead(folder / "waiting", mine)
            if ahead == 0 and (slot := _take_slot(folder, slots)) is not None:
                return slot
            if ahead != told:
                _event(events, {"event": "queued", "ahead": ahead, "slots": slots})
                told = ahead
            time.sleep(POLL_S)
    finally:
        mine.unlink(missing_ok=True)
        os.close(line_fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aelab.turns",
                                     description="run a command when it is its turn: N at a time per folder, in "
                                                 "order of arrival")
    parser.add_argument("--folder", required=True, help="the folder the runs that take turns share")
    parser.add_argument("--slots", type=int, required=True, help="how many run at once")
    parser.add_argument("--events", help="a JSON-lines log to write the wait to")
    parser.add_argument("--stop-file", help="stop waiting (and run nothing) once this file exists")
    parser.add_argument("--arrived", type=int, help="its place in the line: when it was asked for, in nanoseconds "
                                                    "since the epoch (default: now)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or args.slots < 1:
        parser.error("give at least one slot, and the command after --")
    events = Path(args.events) if args.events else None
    stop_file = Path(args.stop_file) if args.stop_file else None
    try:
        slot = wait_for_turn(Path(args.folder), args.slots, events, stop_file, args.arrived)
    except KeyboardInterrupt:
        return 130
    except OSError as err:
        print(f"error: cannot wait for a turn in {args.folder}: {err.strerror or err}", file=sys.stderr)
        return 1
    if slot is None:
        _event(events, {"event": "done", "status": "stopped", "before_start": True,
                        "message": "stopped while it waited for its turn, before it trained"})
        print("stopped while it waited for its turn: nothing was trained")
        return 0
    os.set_inheritable(slot, True)  # held by the training run until it exits, however it exits
    with contextlib.suppress(OSError):
        sys.stdout.flush()
    os.execvp(command[0], command)
    return 1  # (not reached)


if __name__ == "__main__":
    sys.exit(main())
