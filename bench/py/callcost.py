"""Python baseline of the call-cost case: os.memfd_create + os.close, fcntl F_GET_SEALS / F_ADD_SEALS,
os.ftruncate, each in ns/op. Usage: callcost.py ITERATIONS. Prints one JSON object (after a warmup)."""
import fcntl
import json
import os
import sys
import time

MFD_NOEXEC_SEAL = 0x8  # not exported by every Python version
FLAGS = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL
F_GET_SEALS = getattr(fcntl, "F_GET_SEALS", 1034)
F_ADD_SEALS = getattr(fcntl, "F_ADD_SEALS", 1033)
F_SEAL_GROW = getattr(fcntl, "F_SEAL_GROW", 4)
O_TMPFILE = getattr(os, "O_TMPFILE", 0o20200000)


def create_close(n):
    memfd_create, close = os.memfd_create, os.close
    t0 = time.perf_counter_ns()
    for _ in range(n):
        close(memfd_create("bench", FLAGS))
    return (time.perf_counter_ns() - t0) / n


def tmpfile_close(n):
    open_, close, flags = os.open, os.close, O_TMPFILE | os.O_RDWR | os.O_CLOEXEC
    t0 = time.perf_counter_ns()
    for _ in range(n):
        close(open_("/dev/shm", flags, 0o600))
    return (time.perf_counter_ns() - t0) / n


def get_seals(fd, n):
    f = fcntl.fcntl
    t0 = time.perf_counter_ns()
    for _ in range(n):
        f(fd, F_GET_SEALS)
    return (time.perf_counter_ns() - t0) / n


def add_seals(fd, n):
    f = fcntl.fcntl
    t0 = time.perf_counter_ns()
    for _ in range(n):
        f(fd, F_ADD_SEALS, F_SEAL_GROW)
    return (time.perf_counter_ns() - t0) / n


def truncate(fd, n):
    ft = os.ftruncate
    t0 = time.perf_counter_ns()
    for i in range(n):
        ft(fd, 0 if i & 1 else 4096)
    return (time.perf_counter_ns() - t0) / n


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    nc = n // 4
    fd = os.memfd_create("bench", FLAGS)
    sfd = os.memfd_create("bench", FLAGS)
    create_close(nc // 4); tmpfile_close(nc // 4); get_seals(fd, n // 4); add_seals(sfd, n // 4); truncate(fd, n // 4)
    out = {
        "createClose": create_close(nc),
        "tmpfileClose": tmpfile_close(nc),
        "getSeals": get_seals(fd, n),
        "addSeals": add_seals(sfd, n),
        "truncate": truncate(fd, n),
    }
    print(json.dumps({k: round(v, 1) for k, v in out.items()}))


if __name__ == "__main__":
    main()
