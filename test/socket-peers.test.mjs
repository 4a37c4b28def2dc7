// Real peers across processes and threads: a Python stdlib peer, a Node child on fd 3, a peer killed
// with SIGKILL mid-stream, and Worker threads terminated with sockets open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { UnixSocket, UnixServer, MemFile, Seal } from '../dist/index.js';

const fdCount = () => readdirSync('/proc/self/fd').length;
const settle = () => new Promise((r) => setTimeout(r, 20));
const sha256 = (b) => createHash('sha256').update(b).digest('hex');
// The Node child (run with `node --input-type=module -e`; a file under test/ would be run as a test).
const CHILD = `
// Child side of the Node-to-Node tests: fd 3 is one end of a socket pair created by the parent.
// Receives a sealed memfd, verifies it, answers with a report and a memfd of its own.
import { createHash } from 'node:crypto';
import { UnixSocket, MemFile, Seal } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};

const mode = process.argv[1];
const sock = UnixSocket.fromFd(3);

if (mode === 'exchange') {
  const msg = await sock.receive();
  const file = MemFile.fromFd(msg.fds[0], { requireSeals: Seal.Write | Seal.Shrink | Seal.Grow });
  const size = file.stat().size;
  const buf = Buffer.alloc(size);
  file.readSync(buf, 0);
  const report = {
    type: sock.type,
    text: msg.data.toString(),
    sha256: createHash('sha256').update(buf).digest('hex'),
    seals: file.getSeals().bits ?? null,
    peerPid: sock.peerCredentials.pid,
    pid: process.pid,
  };
  file.close();
  const reply = MemFile.from(\`reply from node child \${process.pid}\`, { name: 'node-child' });
  await sock.send(JSON.stringify(report), [reply]);
  reply.close();
  // Wait for the parent to hang up, then exit cleanly (a datagram socket has no hangup: just leave).
  if (sock.type !== 'dgram') while (await sock.receive()) { /* drain */ }
  sock.close();
} else if (mode === 'connect') {
  // Connect to the parent's server and say who we are.
  const client = await UnixSocket.connect(process.argv[2].replace(/^@/, '\\0')); // '@name': abstract
  await client.send(String(process.pid));
  await client.receive();
  client.close();
  sock.close();
}
`;
const childArgs = (...args) => ['--input-type=module', '-e', CHILD, ...args];
const hasPython = spawnSync('python3', ['-c', 'import socket; socket.send_fds'], { stdio: 'ignore' }).status === 0;

function exited(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve([child.exitCode, child.signalCode]);
    else child.once('exit', (code, signal) => resolve([code, signal]));
  });
}

function readAll(file) {
  const buf = Buffer.alloc(file.stat().size);
  file.readSync(buf, 0);
  return buf;
}

// The Python side: receives a memfd, checks its seals and content, answers with a sealed memfd it made.
const PYTHON_PEER = String.raw`
import socket, os, fcntl, json, hashlib
s = socket.socket(fileno=3)
s.setblocking(True)  # the inherited end is non-blocking (O_NONBLOCK belongs to the shared open file description)
msg, fds, flags, addr = socket.recv_fds(s, 65536, 16)
fd = fds[0]
seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
size = os.fstat(fd).st_size
data = os.pread(fd, size, 0)
try:
    os.pwrite(fd, b'x', 0)
    write_refused = False
except PermissionError:
    write_refused = True
os.close(fd)
m = os.memfd_create('from-python', os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
payload = b'made by python ' + str(os.getpid()).encode() + b' ' + bytes(range(256)) * 64
os.write(m, payload)
fcntl.fcntl(m, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
report = {'text': msg.decode(), 'fds': len(fds), 'flags': flags, 'seals': seals, 'size': size,
          'sha256': hashlib.sha256(data).hexdigest(), 'write_refused': write_refused,
          'reply_sha256': hashlib.sha256(payload).hexdigest(), 'pid': os.getpid()}
socket.send_fds(s, [json.dumps(report).encode()], [m])
os.close(m)
s.recv(1)  # wait for the parent to hang up
`;

test('Python stdlib peer: Node sends a sealed memfd, Python verifies and sends one back', { skip: !hasPython && 'python3 with socket.send_fds (3.9+) is not installed' }, async () => {
  await settle();
  const base = fdCount();
  for (const type of ['seqpacket', 'stream']) {
    const [a, b] = UnixSocket.pair({ type });
    const child = spawn('python3', ['-c', PYTHON_PEER], { stdio: ['ignore', 'inherit', 'inherit', b.fd] });
    b.close(); // the child has its copy
    const content = Buffer.alloc(300_000);
    for (let i = 0; i < content.length; i++) content[i] = (i * 7) % 256;
    const file = MemFile.from(content, { name: 'to-python' });
    await a.send(`hello python over ${type}`, [file]);
    file.close();
    const msg = await a.receive();
    const report = JSON.parse(msg.data.toString());
    assert.equal(report.text, `hello python over ${type}`);
    assert.equal(report.fds, 1);
    const frozen = Seal.Seal | Seal.Shrink | Seal.Grow | Seal.Write;
    assert.equal(report.seals & frozen, frozen);
    assert.equal(report.size, content.length);
    assert.equal(report.sha256, sha256(content));
    assert.equal(report.write_refused, true);
    const got = MemFile.fromFd(msg.fds[0], { requireSeals: Seal.Write | Seal.Shrink | Seal.Grow });
    assert.equal(got.name, 'from-python');
    assert.equal(sha256(readAll(got)), report.reply_sha256);
    assert.equal(a.peerCredentials.pid, process.pid, 'SO_PEERCRED of a pair names its creator');
    got.close();
    msg.close();
    a.close();
    assert.deepEqual(await exited(child), [0, null]);
  }
  await settle();
  assert.equal(fdCount(), base);
});

test('Node to Node: a child adopts fd 3 with UnixSocket.fromFd and memfds go both ways', async () => {
  await settle();
  const base = fdCount();
  for (const type of ['seqpacket', 'stream', 'dgram']) {
    const [a, b] = UnixSocket.pair({ type });
    const child = spawn(process.execPath, childArgs('exchange'), { stdio: ['ignore', 'inherit', 'inherit', b.fd] });
    b.close();
    const content = Buffer.from(`parent data for ${type} `.repeat(1000));
    const file = MemFile.from(content);
    await a.send('to child', [file]);
    file.close();
    const msg = await a.receive();
    const report = JSON.parse(msg.data.toString());
    assert.equal(report.type, type);
    assert.equal(report.text, 'to child');
    assert.equal(report.sha256, sha256(content));
    assert.equal(report.peerPid, process.pid);
    assert.equal(report.pid, child.pid);
    const reply = MemFile.fromFd(msg.fds[0]);
    assert.equal(reply.name, 'node-child');
    assert.equal(readAll(reply).toString(), `reply from node child ${child.pid}`);
    reply.close();
    a.close();
    assert.deepEqual(await exited(child), [0, null]);
  }
  await settle();
  assert.equal(fdCount(), base);
});

test('peerCredentials of an accepted connection name the child process', async () => {
  const path = `\0memfd-peers-${process.pid}`;
  const server = await UnixServer.listen(path);
  const [a, b] = UnixSocket.pair();
  const child = spawn(process.execPath, childArgs('connect', path.replace('\0', '@')), { stdio: ['ignore', 'inherit', 'inherit', b.fd] });
  b.close();
  const conn = await server.accept();
  const creds = conn.peerCredentials;
  assert.equal(creds.pid, child.pid);
  assert.equal(creds.uid, process.getuid());
  assert.equal(creds.gid, process.getgid());
  assert.equal((await conn.receive()).data.toString(), String(child.pid));
  await conn.send('bye');
  assert.deepEqual(await exited(child), [0, null]);
  conn.close(); server.close(); a.close();
});

test('peer SIGKILLed mid-stream: pending receives end, sends reject EPIPE/ECONNRESET, no fd leak', async () => {
  await settle();
  const base = fdCount();
  for (const type of ['stream', 'seqpacket']) {
    const [a, b] = UnixSocket.pair({ type });
    a.setSendBufferSize(4096);
    // A peer that never reads: our sends back up, then it dies.
    const child = spawn('sleep', ['60'], { stdio: ['ignore', 'inherit', 'inherit', b.fd] });
    b.close();
    const pendingReceive = a.receive();
    const file = MemFile.from('in flight');
    const sends = [];
    for (let i = 0; i < 500; i++) sends.push(a.send(Buffer.alloc(1000, i), [file]));
    file.close();
    const settled = Promise.allSettled(sends);
    await settle();
    assert.ok(a.pendingSends > 0, 'the stalled peer should cause backpressure');
    child.kill('SIGKILL');
    assert.deepEqual(await exited(child), [null, 'SIGKILL']);
    assert.equal(await pendingReceive, null, 'a pending receive ends cleanly');
    const results = await settled;
    const rejected = results.filter((r) => r.status === 'rejected');
    assert.ok(rejected.length > 0);
    for (const r of rejected) assert.ok(['EPIPE', 'ECONNRESET'].includes(r.reason.code), String(r.reason));
    await assert.rejects(a.send('after death'), (e) => ['EPIPE', 'ECONNRESET'].includes(e.code));
    assert.equal(await a.receive(), null);
    a.close();
  }
  await settle();
  assert.equal(fdCount(), base);
});

const WORKER_CODE = `
import { parentPort } from 'node:worker_threads';
const { UnixSocket, MemFile } = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)});
const keep = [];
for (let i = 0; i < 5; i++) {
  const [a, b] = UnixSocket.pair({ type: i % 2 ? 'stream' : 'seqpacket' });
  const f = MemFile.from('worker ' + i);
  await a.send('x', [f]);           // in flight, never received
  f.close();
  b.receive({ maxFds: 1 }).then(() => {}, () => {});   // completes
  a.receive().then(() => {}, () => {});   // pending forever: keeps a poll handle started
  b.on('message', (m) => m.close());      // a listener keeps reading
  keep.push(a, b);
}
const [c] = UnixSocket.pair();          // idle socket, never used
keep.push(c);
parentPort.postMessage('ready');
`;

test('a Worker terminated with open sockets and pending receives closes them: no crash, no fd leak', async () => {
  await settle();
  const base = fdCount();
  for (let round = 0; round < 3; round++) {
    const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(WORKER_CODE)}`));
    await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
    assert.ok(fdCount() > base);
    const code = await w.terminate();
    assert.equal(code, 1);
  }
  await settle();
  assert.equal(fdCount(), base);

  // Terminated in the middle of traffic: poll callbacks are firing while the env goes away.
  const BUSY = `
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)}).then(({ UnixSocket, MemFile }) => {
      const [a, b] = UnixSocket.pair();
      const f = MemFile.from('busy');
      b.on('message', (m) => { m.close(); a.send('again', [f]).catch(() => {}); });
      for (let i = 0; i < 50; i++) a.send('go', [f]).catch(() => {});
      parentPort.postMessage('ready');
    });`;
  for (let i = 0; i < 10; i++) {
    const w = new Worker(BUSY, { eval: true });
    await new Promise((r) => w.once('message', r));
    await new Promise((r) => setTimeout(r, i % 5));
    await w.terminate();
  }
  await settle();
  assert.equal(fdCount(), base);

  // A worker whose script simply ends while sockets with pending receives exist (the loop keeps it
  // alive): terminate it too, after it finished its top-level code.
  const w = new Worker(`
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)}).then(({ UnixSocket }) => {
      const [a, b] = UnixSocket.pair();
      b.receive().then((m) => { parentPort.postMessage(m.data.toString()); a.close(); b.close(); });
      a.send('from worker');
    });`, { eval: true });
  const exit = new Promise((r) => w.once('exit', r)); // may come in the same turn as the message
  assert.equal(await new Promise((r) => w.once('message', r)), 'from worker');
  assert.equal(await exit, 0, 'a worker whose sockets are closed exits by itself');
  await settle();
  assert.equal(fdCount(), base);
});
