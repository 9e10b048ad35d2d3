"""Turns: training runs that share a folder train a few at a time, in order of arrival; the others wait.

A class of thirty starting a run each on one server ran thirty torch processes at once: each at a thirtieth of the
speed, with thirty copies of torch in memory. The app starts every job as

    python -m aelab.turns --folder F --slots N --events E --stop-file S [--line-fd K --line-file P] -- python -m aelab train ...

which waits, without importing torch (about 13 MB), until it is the first live run in F's line and fewer than N of
F's slots are taken, then becomes the training run (exec: the same process, so the job's pid stays true), holding a
slot until it exits. Nothing has to hand slots on: a slot is an flock on F/slot-K.lock, released by the kernel when
its process ends however it ends, and a place in the line is an flock on a file in F/waiting/ named by the time the
run arrived, so a waiting run that was killed drops out of the line by itself. The app joins the line for the job
before it starts the process (under its jobs lock) and hands the locked file down (--line-fd), so that jobs keep the
order they were started in however fast each process starts. The number of slots is read again from F/slots (written
by the app) at each look, so a change of AELAB_MAX_JOBS counts for the jobs already waiting.

Events written to the job's log while it waits: {"event": "queued", "ahead": n, "slots": N} when n or N changes, and
{"event": "turn", "waited_s": s} just before the training starts; a stop file ends the wait with {"event": "done",
"status": "stopped", "before_start": true}.
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
JOINING_GRACE_S = 10.0  # a half-made place in the line older than this is a dead run's (it is locked within a moment)


def _held(path: Path) -> bool:
    """Is the file's flock held by a live process? (Taken and let go again at once when it is not.) Opened for writing:
    over NFS an exclusive flock needs that. An error other than "held" counts as held: a place is never taken for a
    dead run's on a doubt."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held (EWOULDBLOCK), or a lock that cannot be had here: held, on a doubt
        return True
    finally:
        os.close(fd)  # (closing lets go of a lock taken above)
    return False


def join_line(folder: Path, arrived_ns: int | None = None) -> tuple[int, Path]:
    """(descriptor, file): a place in folder's line, named by when the run arrived (now by default), locked before it
    is put there (a rename keeps the lock) so that nobody sees it unlocked and takes it for a dead run's. The lock
    lasts while the descriptor (or a copy handed to a child process) is open."""
    waiting = Path(folder) / "waiting"
    waiting.mkdir(parents=True, exist_ok=True)
    tmp = waiting / f".joining-{os.getpid()}-{time.time_ns()}"
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        mine = waiting / f"{time.time_ns() if arrived_ns is None else arrived_ns:020d}-{os.getpid()}-{fd}"
        os.rename(tmp, mine)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    return fd, mine


def set_slots(folder: Path, slots: int) -> None:
    """How many of folder's runs train at once, from now on, for the runs waiting too."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".slots-{os.getpid()}"
    tmp.write_text(str(max(1, int(slots))))
    os.replace(tmp, folder / "slots")


def place(folder: Path, line_file: Path) -> tuple[int, int]:
    """(runs ahead, slots taken) of a place in folder's line: what its wait will look like, as its run will see it."""
    folder = Path(folder)
    return _ahead(folder / "waiting", Path(line_file)), _busy(folder)


def _slots(folder: Path, default: int) -> int:
    try:
        return max(1, int((folder / "slots").read_text()))
    except (OSError, ValueError):
        return default


def _ahead(waiting: Path, mine: Path) -> int:
    """How many live runs joined the line before this one; the files of dead ones are removed."""
    ahead = 0
    for path in sorted(waiting.iterdir()):
        if path == mine:
            continue
        if path.name.startswith("."):  # a place being made: a dead run's once it has stayed unlocked a while
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime > JOINING_GRACE_S and not _held(path):
                    path.unlink()
            continue
        if not _held(path):
            path.unlink(missing_ok=True)  # its run is gone (killed while it waited)
        elif path.name < mine.name:
            ahead += 1
    return ahead


def _busy(folder: Path) -> int:
    """How many slots are taken, of any number (a limit lowered since: the slots past it count until they end)."""
    return sum(_held(path) for path in folder.glob("slot-*.lock"))


def _take_slot(folder: Path, slots: int) -> int | None:
    """A descriptor holding a free slot's lock, when fewer than `slots` are taken; else None."""
    if _busy(folder) >= slots:
        return None
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
                  line: tuple[int, Path] | None = None) -> int | None:
    """Wait until this run may train: returns the descriptor holding its slot (keep it open while training), or None
    when the stop file appeared first. `line`: its place, when joined already (join_line); else it joins now.
    `slots`: how many train at once when folder/slots does not say."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    line_fd, mine = line if line is not None else join_line(folder)
    told = None
    try:
        while True:
            if stop_file is not None and stop_file.exists():
                return None
            now = _slots(folder, slots)
            ahead = _ahead(folder / "waiting", mine)
            if ahead == 0 and (slot := _take_slot(folder, now)) is not None:
                if stop_file is not None and stop_file.exists():  # (asked for while the slot was taken)
                    os.close(slot)
                    return None
                return slot
            if (ahead, now) != told:
                _event(events, {"event": "queued", "ahead": ahead, "slots": now})
                told = (ahead, now)
            time.sleep(POLL_S)
    finally:
        mine.unlink(missing_ok=True)
        os.close(line_fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aelab.turns",
                                     usage="%(prog)s --folder F --slots N [--events E] [--stop-file S] "
                                           "[--line-fd K --line-file P] -- COMMAND ...",
                                     description="run a command when it is its turn: N at a time per folder, in "
                                                 "order of arrival")
    parser.add_argument("--folder", required=True, help="the folder the runs that take turns share")
    parser.add_argument("--slots", type=int, required=True,
                        help="how many run at once, unless FOLDER/slots says (the app writes it)")
    parser.add_argument("--events", help="a JSON-lines log to write the wait to")
    parser.add_argument("--stop-file", help="stop waiting (and run nothing) once this file exists")
    parser.add_argument("--line-fd", type=int, help="a place in the line already taken by the program that starts "
                                                    "this one: its open, locked file descriptor")
    parser.add_argument("--line-file", help="that place's file")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...", help="the command to run")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or args.slots < 1:
        parser.error("give at least one slot, and the command after --")
    if (args.line_fd is None) != (args.line_file is None):
        parser.error("give --line-fd and --line-file together")
    events = Path(args.events) if args.events else None
    stop_file = Path(args.stop_file) if args.stop_file else None
    line = None if args.line_fd is None else (args.line_fd, Path(args.line_file))
    start = time.monotonic()
    try:
        slot = wait_for_turn(Path(args.folder), args.slots, events, stop_file, line)
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
    _event(events, {"event": "turn", "waited_s": round(time.monotonic() - start, 3)})
    os.set_inheritable(slot, True)  # held by the training run until it exits, however it exits
    with contextlib.suppress(OSError):
        sys.stdout.flush()
    try:
        os.execvp(command[0], command)
    except OSError as err:
        print(f"error: cannot run {command[0]}: {err.strerror or err}", file=sys.stderr)
        return 127
    return 1  # (not reached)


if __name__ == "__main__":
    sys.exit(main())
