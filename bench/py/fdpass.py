"""Python baseline of the fd-passing case, the same loop as bench/c/fdpass.c and bench/node/fdpass.mjs.
Usage: fdpass.py MESSAGES WINDOW [nofd]. A seqpacket socketpair in one process; WINDOW messages of 8 bytes
are sent, then WINDOW received, each carrying one memfd (socket.send_fds / socket.recv_fds, every received fd
closed with os.close) or, with 'nofd', data only (sock.send / sock.recv). The receiver does not know message
sizes in advance: it asks for up to 4096 bytes (and up to 253 fds, the library's default budget), as a
receiver of arbitrary messages would. Prints {"perSecond": R}."""
import json
import os
import socket
import sys
import time

MFD_NOEXEC_SEAL = 0x8
FLAGS = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL
BUFSIZE = 4096
MAX_FDS = 253


def run(a, b, fd, count, window, with_fd):
    payload = bytes(8)
    send_fds, recv_fds, close = socket.send_fds, socket.recv_fds, os.close
    t0 = time.perf_counter()
    done = 0
    if with_fd:
        fds = [fd]
        while done < count:
            for _ in range(window):
                send_fds(a, [payload], fds)
            for _ in range(window):
                _data, got, _flags, _addr = recv_fds(b, BUFSIZE, MAX_FDS)
                for f in got:
                    close(f)
            done += window
    else:
        send, recv = a.send, b.recv
        while done < count:
            for _ in range(window):
                send(payload)
            for _ in range(window):
                recv(BUFSIZE)
            done += window
    return count / (time.perf_counter() - t0)


def main():
    messages = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    window = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    with_fd = not (len(sys.argv) > 3 and sys.argv[3] == "nofd")
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    fd = os.memfd_create("bench", FLAGS)
    run(a, b, fd, (messages // 4 // window + 1) * window, window, with_fd)  # warmup
    rate = run(a, b, fd, messages, window, with_fd)
    print(json.dumps({"perSecond": round(rate)}))


if __name__ == "__main__":
    main()
