// Node <-> Python with nothing but Python's standard library on the other side: Node sends a sealed
// memfd over a Unix socket pair (SCM_RIGHTS), Python checks the seals, maps it and answers with a sealed
// memfd of its own, which Node adopts only after checking its seals too.
import { spawn } from 'node:child_process';
import { MemFile, Seal, UnixSocket } from 'memfd';

const PYTHON = String.raw`
import fcntl, mmap, os, socket, hashlib
sock = socket.socket(fileno=3)                     # our end of the pair, inherited as fd 3
msg, fds, flags, addr = socket.recv_fds(sock, 1024, 4)
fd = fds[0]
seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
need = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK
assert seals & need == need, "peer file is not sealed"
size = os.fstat(fd).st_size
with mmap.mmap(fd, size, prot=mmap.PROT_READ) as m:   # safe: it can never shrink or change
    digest = hashlib.sha256(m).hexdigest()
os.close(fd)

answer = ("python saw %d bytes, sha256 %s, message %r" % (size, digest, msg.decode())).encode()
out = os.memfd_create("from-python", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
os.write(out, answer)
fcntl.fcntl(out, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
socket.send_fds(sock, [b"reply"], [out])
os.close(out)
`;

const [ours, theirs] = UnixSocket.pair({ type: 'seqpacket' });
const python = spawn('python3', ['-c', PYTHON], { stdio: ['ignore', 'inherit', 'inherit', theirs.fd] });
theirs.close(); // the child has its own copy now

const payload = MemFile.from(Buffer.alloc(8 << 20, 'node'), { name: 'from-node' });
await ours.send('hello python', [payload]);
console.log(`node: sent ${payload.size} bytes as ${payload.getSeals()} memfd`);
payload.close();

const reply = await ours.receive();
const file = MemFile.fromFd(reply.fds[0], { requireSeals: Seal.Write | Seal.Shrink | Seal.Grow });
const m = file.map(); // read-only (write-sealed file), safe (shrink-sealed)
console.log(`node: got ${JSON.stringify(reply.data.toString())} with ${file.name} (${file.getSeals()}): ${Buffer.from(m.bytes).toString()}`);
m.unmap();
file.close();
await ours[Symbol.asyncDispose]();
const code = await new Promise((resolve) => python.on('exit', resolve));
if (code !== 0) process.exitCode = 1;
