# A hostile peer for test/hostile-peer.test.mjs: python3 stdlib only. The connected Unix socket is fd 3
# (inherited through Node's spawn stdio array). Prints one JSON line per event to stdout, so the Node side
# knows exactly what was sent and what the kernel refused.
#
#   python3 hostile-peer.py SCENARIO
import array
import hashlib
import json
import os
import random
import signal
import socket
import struct
import sys
import tempfile
import time

scenario = sys.argv[1]
if scenario == 'credentials':
    # Connects to the listening path given as argv[2] (SO_PEERCRED of a connection names the real peer).
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sys.argv[2])
else:
    s = socket.socket(fileno=3)
    # The inherited open file description may be non-blocking (Node's end of the pair is): without this,
    # sends would fail with EAGAIN before the kernel even looks at what they carry.
    s.setblocking(True)
F_ADD_SEALS, F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE = 1033, 1, 2, 4, 8


def report(**event):
    sys.stdout.write(json.dumps(event) + '\n')
    sys.stdout.flush()


def rights(fds):
    return [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', fds))]


def attempt(what, fn):
    try:
        fn()
        report(attempt=what, ok=True)
    except OSError as e:
        report(attempt=what, ok=False, errno=e.errno)


def memfd(name, seal=False, content=b''):
    fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.write(fd, content)
    if seal:
        import fcntl
        fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
    return fd


if scenario == 'garbage':
    rng = random.Random(6)
    # Random payloads of awkward sizes, including empty seqpacket messages (recvmsg returns 0 for them, as
    # it does at the end of the stream: the receiver must not take one for the other).
    for size in [1, 0, 7, 3, 0, 4096, 65536, 1, 200_000]:
        data = bytes(rng.getrandbits(8) for _ in range(size)) if size < 5000 else os.urandom(size)
        try:
            s.sendmsg([data])
            report(sent=hashlib.sha256(data).hexdigest(), size=size)
        except OSError as e:
            report(refused=size, errno=e.errno)
    # Malformed control messages: the kernel must reject them on this side, or deliver nothing harmful.
    attempt('SCM_RIGHTS with 3 bytes of fd data', lambda: s.sendmsg([b'x3'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, b'\x01\x02\x03')]))
    attempt('SCM_RIGHTS with an fd that is not open', lambda: s.sendmsg([b'xbad'], rights([987654])))
    attempt('SCM_RIGHTS with a negative fd', lambda: s.sendmsg([b'xneg'], rights([-1])))
    attempt('SCM_CREDENTIALS with our own credentials', lambda: s.sendmsg([b'xcred'], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, struct.pack('3i', os.getpid(), os.getuid(), os.getgid()))]))
    attempt('unknown cmsg level/type', lambda: s.sendmsg([b'xunk'], [(12345, 678, b'abcdefgh')]))
    report(done=True)

elif scenario == 'partial':
    # Stream socket: a length-prefixed "message" announced as 100000 bytes, sent in dribbles, with fds on
    # a byte in the middle, and never finished: the peer dies in the middle of it.
    total = b''
    header = struct.pack('>I', 100_000)
    s.sendall(header)
    total += header
    r, w = os.pipe()
    part = b'with-fds'
    s.sendmsg([part], rights([r, w]))
    total += part
    os.close(r)
    os.close(w)
    for i in range(50):
        chunk = bytes([i]) * (i + 1)
        s.sendall(chunk)
        total += chunk
        if i % 10 == 0:
            time.sleep(0.01)
    report(sent=len(total), sha=hashlib.sha256(total).hexdigest(), fds=2)
    os.kill(os.getpid(), signal.SIGKILL)

elif scenario == 'many-fds':
    fds = [memfd('many-%d' % i, seal=True, content=b'fd %d' % i) for i in range(253)]
    s.sendmsg([b'253 fds'], rights(fds))
    report(sent=253)
    attempt('254 fds in one message', lambda: s.sendmsg([b'254 fds'], rights(fds + [fds[0]])))
    s.sendmsg([b'253 fds again'], rights(fds))
    report(sent=253)
    s.sendmsg([b'done'])
    for fd in fds:
        os.close(fd)
    report(done=True)
    time.sleep(0.2)

elif scenario == 'kinds':
    kinds, fds = [], []

    def add(kind, fd):
        kinds.append(kind)
        fds.append(fd)

    r, w = os.pipe()
    add('pipe', r)
    a, b = socket.socketpair()
    add('socket', a.fileno())
    add('directory', os.open(tempfile.gettempdir(), os.O_RDONLY | os.O_DIRECTORY))
    # Unnamed from the start: the test kills this process, which would leave a named file behind.
    tmp = tempfile.TemporaryFile(prefix='memfd-hostile-')
    tmp.write(b'regular file')
    tmp.flush()
    add('regular file', tmp.fileno())
    add('/dev/null', os.open('/dev/null', os.O_RDWR))
    # A tmpfs file that answers F_GET_SEALS like a memfd and is even named like one.
    shm = '/dev/shm/memfd:fake-%d' % os.getpid()
    shm_fd = os.open(shm, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(shm_fd, b'not a memfd')
    os.unlink(shm)
    add('/dev/shm file named like a memfd', shm_fd)
    add('memfd without seals', memfd('unsealed', content=b'unsealed content'))
    add('sealed memfd', memfd('sealed', seal=True, content=b'sealed content'))
    if hasattr(os, 'eventfd'):
        add('eventfd', os.eventfd(0))
    s.sendmsg([json.dumps(kinds).encode()], rights(fds))
    report(sent=kinds)
    time.sleep(0.2)

elif scenario == 'vanish':
    # Ten messages with 20 fds each are still queued in the socket when this process is killed.
    for i in range(10):
        pipes = [os.pipe() for _ in range(10)]
        flat = [fd for p in pipes for fd in p]
        s.sendmsg([b'queued %d' % i], rights(flat))
        for fd in flat:
            os.close(fd)
    report(sent=10)
    os.kill(os.getpid(), signal.SIGKILL)

elif scenario == 'credentials':
    pid, uid, gid = struct.unpack('3i', s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize('3i')))
    s.sendmsg([json.dumps({'pid': os.getpid(), 'peer': {'pid': pid, 'uid': uid, 'gid': gid}}).encode()])
    time.sleep(0.2)

elif scenario == 'exit':
    time.sleep(0.2)

else:
    sys.exit('unknown scenario ' + scenario)
