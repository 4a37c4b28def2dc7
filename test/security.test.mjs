// Security defaults, checked on the real kernel: no accidental inheritance, no execution, read-only means
// read-only, truthful memfd detection, and peer credentials that name the real peer process.
// The socket checks need UnixSocket (issue 4) and are skipped, with that reason, until it is exported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, fstatSync, mkdtempSync, openSync, readlinkSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as lib from '../dist/index.js';
import { LIB, fdCount, own, runNode } from './helpers.mjs';

const { MemFile, Seal } = lib;
const { UnixSocket, UnixServer } = lib;
const noSocket = !UnixSocket && 'UnixSocket is not exported yet (issue 4); this test runs as soon as it is';
const hasPython = spawnSync('python3', ['-c', 'import socket; socket.SO_PEERCRED'], { stdio: 'ignore' }).status === 0;
const PEER = new URL('./hostile-peer.py', import.meta.url).pathname;

/** The memfd names a child process sees in its own fd table. */
const LIST_MEMFDS = `
  import { readdirSync, readlinkSync } from 'node:fs';
  const names = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try { const l = readlinkSync('/proc/self/fd/' + fd); if (l.startsWith('/memfd:')) names.push(fd + '=' + l); } catch {}
  }
  console.log(JSON.stringify(names));
`;

test('a spawned child does not inherit a memfd unless it is passed explicitly', async (t) => {
  const secret = own(t, MemFile.from('secret', { name: 'not-for-children' }));
  const plain = await runNode(LIST_MEMFDS);
  assert.equal(plain.code, 0, plain.stderr);
  assert.ok(!plain.stdout.includes('not-for-children'), `child saw: ${plain.stdout}`);
  const passed = await runNode(LIST_MEMFDS, { stdio: ['ignore', 'pipe', 'pipe', secret.fd] });
  assert.equal(passed.code, 0, passed.stderr);
  assert.ok(JSON.parse(passed.stdout).includes('3=/memfd:not-for-children (deleted)'), passed.stdout);
});

test('why cloexec is the default: a memfd created with cloexec: false leaks into every child', async (t) => {
  // libuv's spawn passes on every fd without FD_CLOEXEC, not just stdio: the control case for the test above.
  const leaky = own(t, MemFile.create('leaks-into-children', { cloexec: false }));
  const r = await runNode(LIST_MEMFDS);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.includes('leaks-into-children'), `the control case must leak, or the test above proves nothing: ${r.stdout}`);
  leaky.close();
});

/** Spawns a path as a program; resolves { error } or { code, stdout }. */
function tryExec(path) {
  return new Promise((resolve) => {
    const child = spawn(path, [], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.on('error', (error) => resolve({ error }));
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

test('a default memfd cannot be executed; the same bytes in an exec: true memfd can (control)', async (t) => {
  const script = '#!/bin/sh\necho executed\n';
  const file = own(t, MemFile.create('no-exec'));
  file.writeSync(script, 0);
  assert.ok(file.getSeals().has(Seal.Exec), 'default memfds carry the exec seal');
  assert.equal(file.stat().mode & 0o111, 0, 'no executable bit');
  const refused = await tryExec(`/proc/${process.pid}/fd/${file.fd}`);
  assert.equal(refused.error?.code, 'EACCES', `expected EACCES, got ${refused.error?.code ?? `exit ${refused.code}: ${refused.stdout}`}`);
  assert.throws(() => file.chmod(0o755), { code: 'EPERM' }, 'and nobody can make it executable later');

  let exe;
  try {
    exe = own(t, MemFile.create('exec-allowed', { exec: true }));
  } catch (e) {
    if (e.code === 'EACCES') return t.skip('vm.memfd_noexec = 2 forbids executable memfds: no control case');
    throw e;
  }
  exe.writeSync(script, 0);
  const ran = await tryExec(`/proc/${process.pid}/fd/${exe.fd}`);
  assert.equal(ran.error, undefined, `the control case must run: ${ran.error}`);
  assert.equal(ran.stdout, 'executed\n');
});

test('a read-only reopened handle cannot write, resize, punch, seal or map writable, here or in a child', async (t) => {
  const file = own(t, MemFile.create('ro-target'));
  file.writeSync('original', 0);
  const ro = own(t, file.reopen({ readOnly: true }));
  assert.equal(ro.readOnly, true);
  assert.throws(() => ro.writeSync('x', 0), { code: 'EBADF' });
  await assert.rejects(ro.write('x', 0), { code: 'EBADF' });
  assert.throws(() => ro.truncate(0), { code: 'EINVAL' });
  assert.throws(() => ro.allocate(0, 4096), { code: 'EBADF' });
  assert.throws(() => ro.punchHole(0, 1), { code: 'EBADF' });
  assert.throws(() => ro.addSeals(Seal.Write), { code: 'EPERM' });
  // A reopen of our own file maps without seals; the shrink seal here only keeps the child's truncate
  // refused below. The kernel's own answer to a writable shared mapping of a read-only fd is tested.
  file.addSeals(Seal.Shrink);
  let mapping;
  try { mapping = ro.map({ writable: true }); } catch (e) { mapping = e; }
  if (mapping?.code !== 'ERR_MEMFD_UNAVAILABLE') {
    // Once mappings exist (issue 3): a writable shared mapping of a read-only fd is refused by mmap.
    assert.ok(mapping instanceof Error, 'a writable mapping of a read-only handle must be refused');
    assert.equal(mapping.code, 'EACCES');
  }
  const child = await runNode(`
    import { MemFile } from ${JSON.stringify(LIB)};
    const f = MemFile.fromFd(3);
    const out = { readOnly: f.readOnly, text: f.readAllSync().toString() };
    for (const [name, op] of [['write', () => f.writeSync('evil', 0)], ['truncate', () => f.truncate(0)],
      ['seal', () => f.addSeals(['write'])]]) {
      try { op(); out[name] = 'ok'; } catch (e) { out[name] = e.code; }
    }
    console.log(JSON.stringify(out));
  `, { stdio: ['ignore', 'pipe', 'pipe', ro.fd] });
  assert.equal(child.code, 0, child.stderr);
  assert.deepEqual(JSON.parse(child.stdout), { readOnly: true, text: 'original', write: 'EBADF', truncate: 'EINVAL', seal: 'EPERM' });
  assert.equal(file.readAllSync().toString(), 'original');
});

test('kernel fact: a read-only fd is no protection against a same-user process, which can reopen it read-write through /proc; seals are', async (t) => {
  // Documented here so that the docs never promise more than the kernel gives: only seals bind every fd.
  const file = own(t, MemFile.create('ro-upgrade'));
  file.writeSync('original', 0);
  const ro = own(t, file.reopen({ readOnly: true }));
  const upgraded = own(t, ro.reopen({ readOnly: false }));
  assert.equal(upgraded.readOnly, false);
  upgraded.writeSync('CHANGED!', 0);
  assert.equal(file.readAllSync().toString(), 'CHANGED!');
  file.addSeals([Seal.Write, Seal.Shrink, Seal.Grow]);
  const again = own(t, ro.reopen({ readOnly: false }));
  assert.throws(() => again.writeSync('x', 0), { code: 'EPERM' }, 'the write seal holds for every fd, however opened');
});

test('a /dev/shm file that claims to be a memfd (tmpfs, named memfd:...) is rejected by fromFd and left open', (t) => {
  let dir = '/dev/shm';
  let path = join(dir, `memfd:fake-${process.pid}`);
  let fd;
  try {
    fd = openSync(path, 'wx+', 0o600);
  } catch {
    dir = mkdtempSync(join(tmpdir(), 'memfd-fake-'));
    path = join(dir, 'memfd:fake');
    fd = openSync(path, 'wx+', 0o600);
    t.diagnostic('/dev/shm is not writable here: the fake is a file in the temp dir instead');
  }
  try {
    writeSync(fd, 'not a memfd');
    unlinkSync(path);
    assert.match(readlinkSync(`/proc/self/fd/${fd}`), /memfd:fake/);
    assert.equal(MemFile.isMemFd(fd), false);
    assert.throws(() => MemFile.fromFd(fd), (e) => e.code === 'ERR_MEMFD_NOT_A_MEMFD' && /left open/.test(e.message));
    assert.ok(fstatSync(fd).isFile(), 'the fd still belongs to the caller and is open');
  } finally {
    closeSync(fd);
    if (dir !== '/dev/shm') rmSync(dir, { recursive: true, force: true });
  }
});

test('peerCredentials of a pair names this process', { skip: noSocket }, (t) => {
  const [a, b] = UnixSocket.pair({ type: 'seqpacket' });
  t.after(() => { a.close(); b.close(); });
  for (const s of [a, b]) {
    assert.deepEqual({ ...s.peerCredentials }, { pid: process.pid, uid: process.getuid(), gid: process.getgid() });
  }
});

test('peerCredentials of an accepted connection names the real peer process (python3), and it sees us', {
  skip: noSocket || (!hasPython && 'python3 is not installed'),
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'memfd-cred-'));
  const path = join(dir, 'sock');
  const server = await UnixServer.listen(path, { type: 'seqpacket' });
  t.after(() => { server.close(); rmSync(dir, { recursive: true, force: true }); });
  const before = fdCount();
  const child = spawn('python3', [PEER, 'credentials', path], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => child.on('close', resolve));
  const conn = await server.accept();
  const msg = await conn.receive();
  const report = JSON.parse(msg.data.toString());
  msg.close();
  assert.equal(conn.peerCredentials.pid, child.pid, 'the peer pid is the python process');
  assert.equal(report.pid, child.pid);
  assert.equal(conn.peerCredentials.uid, process.getuid());
  assert.deepEqual(report.peer, { pid: process.pid, uid: process.getuid(), gid: process.getgid() }, 'python sees this process');
  conn.close();
  await exited;
  await new Promise((r) => setImmediate(r));
  assert.ok(fdCount() <= before, 'the connection is closed');
});

test('a memfd sent over a socket is only as safe as its seals: the receiver adopts it only with the seals it requires', { skip: noSocket }, async (t) => {
  const [a, b] = UnixSocket.pair({ type: 'seqpacket' });
  t.after(() => { a.close(); b.close(); });
  const open = own(t, MemFile.create('unsealed'));
  const sealed = own(t, MemFile.from('sealed'));
  await a.send('two files', [open, sealed]);
  const msg = await b.receive();
  try {
    assert.throws(() => MemFile.fromFd(msg.fds[0], { requireSeals: ['write', 'shrink'] }), { code: 'ERR_MEMFD_MISSING_SEALS' });
    const got = MemFile.fromFd(msg.fds[1], { requireSeals: ['write', 'shrink'] });
    assert.equal(got.readAllSync().toString(), 'sealed');
    got.close();
  } finally {
    msg.close();
  }
});
