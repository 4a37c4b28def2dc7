"""Python baseline of the call-cost case: os.memfd_create + os.close, fcntl F_GET_SEALS / F_ADD_SEALS,
os.ftruncate, each in ns/op. Usage: callcost.py ITERATIONS [REPS]. After a warmup each operation is timed
REPS times (operations interleaved) and the median rep is printed as one JSON object, as bench/c/callcost.c."""
import fcntl
import json
import os
import statistics
import sys
import time

MFD_NOEXEC_SEAL = 0x8  # not exported by every Python version
FLAGS = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL
F_GET_SEALS = getattr(fcntl, "F_GET_SEALS", 1034)
F_ADD_SEALS = getattr(fcntl, "F_ADD_SEALS", 1033)
F_SEAL_GROW = getattr(fcntl, "F_SEAL_GROW", 4)
O_TMPFILE = getattr(os, "O_TMPFILE", 0o20200000)


LAST_CPU = [0.0]


def timed(fn):
    """Runs fn(n) -> None; returns wall ns/op and stores process CPU ns/op (all threads, user + system)."""
    def run(*args):
        n = args[-1]
        c0, t0 = time.process_time_ns(), time.perf_counter_ns()
        fn(*args)
        t1, c1 = time.perf_counter_ns(), time.process_time_ns()
        LAST_CPU[0] = (c1 - c0) / n
        return (t1 - t0) / n
    return run


@timed
def create_close(n):
    memfd_create, close = os.memfd_create, os.close
    for _ in range(n):
        close(memfd_create("bench", FLAGS))


@timed
def tmpfile_close(n):
    open_, close, flags = os.open, os.close, O_TMPFILE | os.O_RDWR | os.O_CLOEXEC
    for _ in range(n):
        close(open_("/dev/shm", flags, 0o600))


@timed
def get_seals(fd, n):
    f = fcntl.fcntl
    for _ in range(n):
        f(fd, F_GET_SEALS)


@timed
def add_seals(fd, n):
    f = fcntl.fcntl
    for _ in range(n):
        f(fd, F_ADD_SEALS, F_SEAL_GROW)


@timed
def truncate(fd, n):
    ft = os.ftruncate
    for i in range(n):
        ft(fd, 0 if i & 1 else 4096)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 11
    per = n // reps
    perc = max(1, per // 4)
    fd = os.memfd_create("bench", FLAGS)
    sfd = os.memfd_create("bench", FLAGS)
    create_close(n // 8); tmpfile_close(n // 8); get_seals(fd, n // 2); add_seals(sfd, n // 2); truncate(fd, n // 2)
    runs = {
        "createClose": lambda: create_close(perc),
        "tmpfileClose": lambda: tmpfile_close(perc),
        "getSeals": lambda: get_seals(fd, per),
        "addSeals": lambda: add_seals(sfd, per),
        "truncate": lambda: truncate(fd, per),
    }
    wall = {k: [] for k in runs}
    cpu = {k: [] for k in runs}
    for _ in range(reps):
        for k, run in runs.items():
            wall[k].append(run())
            cpu[k].append(LAST_CPU[0])
    out = {k: round(statistics.median(v), 1) for k, v in wall.items()}
    out["cpu"] = {k: round(statistics.median(v), 1) for k, v in cpu.items()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
