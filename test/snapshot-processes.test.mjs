// Snapshots across real processes: Node clients in child processes (one stopped with SIGSTOP, one killed
// with SIGKILL, one on an inherited socket), memory released when the last process lets go, and the
// Python stdlib client from examples/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { SnapshotServer, UnixSocket } from '../dist/index.js';
import { checkedOutsideEmulation, fdCount, hasPython } from './helpers.mjs';

const root = new URL('..', import.meta.url).pathname;
const CHILD = new URL('./snapshot-child.mjs', import.meta.url).pathname;
const settle = (ms = 20) => new Promise((r) => setTimeout(r, ms));
const sha256 = (b) => createHash('sha256').update(b).digest('hex');
let n = 0;
const address = () => `\0memfd-snapshot-proc-${process.pid}-${n++}`;

async function until(cond, what, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await settle(5);
  }
}

/** A child process printing JSON lines; `next(pred)` waits for the first unread line that matches. */
function spawnLines(command, args, options = {}) {
  const child = spawn(command, args, { cwd: root, stdio: ['pipe', 'pipe', 'inherit', ...(options.fds ?? [])] });
  const lines = [];
  let waiters = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(JSON.parse(line));
    const w = waiters; waiters = [];
    for (const f of w) f();
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve([code, signal])));
  let read = 0;
  async function next(pred = () => true, ms = 10000) {
    const deadline = Date.now() + ms;
    for (;;) {
      while (read < lines.length) {
        const line = lines[read++];
        if (pred(line)) return line;
      }
      if (Date.now() > deadline) throw new Error(`no matching line from ${args.join(' ')}; got ${JSON.stringify(lines)}`);
      await Promise.race([new Promise((r) => waiters.push(r)), settle(100), exited]);
    }
  }
  return { child, lines, next, exited, send: (s) => child.stdin.write(s + '\n') };
}

const nodeClient = (target, ...flags) => spawnLines(process.execPath, [CHILD, target.replace(/^\0/, '@'), ...flags]);

/** Inode numbers of memfds a process holds open or mapped. */
function inodesOf(pid) {
  const found = new Set();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('/memfd:')) found.add(statSync(`/proc/${pid}/fd/${fd}`).ino);
    } catch { /* closed meanwhile */ }
  }
  for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    if (line.includes('/memfd:')) found.add(Number(line.split(/\s+/)[4]));
  }
  return found;
}

/**
 * Bytes waiting in a process's seqpacket sockets (`ss` Recv-Q: for seqpacket the sum over every queued
 * message), or null where ss is not installed.
 */
function queuedSeqpacketBytes(pid) {
  const r = spawnSync('ss', ['-x', '-a', '-p'], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  return r.stdout.split('\n').filter((l) => l.startsWith('u_seq') && l.includes(`pid=${pid},`))
    .reduce((sum, l) => sum + Number(l.split(/\s+/)[2]), 0);
}

test('three Node processes see every version; a SIGKILLed client is dropped and costs nothing', async () => {
  await settle();
  const base = fdCount();
  const server = await SnapshotServer.listen(address());
  const data = Buffer.alloc(4 << 20);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
  server.publish(data, { meta: { name: 'first' } });
  const clients = [nodeClient(server.address), nodeClient(server.address), nodeClient(server.address)];
  for (const c of clients) {
    const got = await c.next((l) => l.version === 1);
    assert.equal(got.sha256, sha256(data));
    assert.deepEqual(got.meta, { name: 'first' });
  }
  assert.equal(server.clients, 3);
  assert.deepEqual(new Set(server.clientList().map((c) => c.pid)), new Set(clients.map((c) => c.child.pid)));

  clients[2].child.kill('SIGKILL');
  assert.deepEqual(await clients[2].exited, [null, 'SIGKILL']);
  await until(() => server.clients === 2, 'the dead client to be dropped');
  server.publish('second', { meta: { name: 'second' } });
  for (const c of clients.slice(0, 2)) {
    const got = await c.next((l) => l.version === 2);
    assert.equal(got.sha256, sha256(Buffer.from('second')));
  }
  server.close();
  for (const c of clients.slice(0, 2)) {
    assert.deepEqual(await c.next((l) => l.end), { end: true, current: 2 });
    assert.deepEqual(await c.exited, [0, null]);
  }
  await settle();
  assert.equal(fdCount(), base);
});

test('a stopped client does not slow publishing, pins at most one old version, and skips to the newest', async (t) => {
  const server = await SnapshotServer.listen(address());
  const SIZE = 16 << 20;
  const VERSIONS = 12;
  const payload = Buffer.alloc(SIZE, 1);
  server.publish(payload);
  const slow = nodeClient(server.address);
  const fast = nodeClient(server.address);
  await slow.next((l) => l.version === 1);
  await fast.next((l) => l.version === 1);
  // Both have acknowledged version 1: the next version goes out to each at once.
  await until(() => server.clientList().every((c) => !c.behind), 'acknowledgements of version 1');
  slow.child.kill('SIGSTOP');
  const times = [];
  for (let v = 2; v <= VERSIONS; v++) {
    payload[0] = v;
    const t0 = process.hrtime.bigint();
    server.publish(payload, { meta: { v } });
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    await fast.next((l) => l.version === v); // the fast client keeps up with every version
  }
  const info = server.clientList().find((c) => c.pid === slow.child.pid);
  // The stopped client was sent version 2 and never acknowledged it: nothing newer was sent to it.
  assert.deepEqual([info.version, info.behind], [2, true]);
  // 11 versions of 16 MiB were published: queued for the stopped client they would pin 176 MiB. Its
  // socket holds exactly one message (header + meta, with the fd of version 2), so it pins one version.
  const queued = queuedSeqpacketBytes(slow.child.pid);
  if (queued === null) t.diagnostic('ss (iproute2) is not installed: the socket queue was not inspected');
  else assert.equal(queued, 32 + JSON.stringify({ v: 2 }).length, 'one version in flight to the stopped client');
  slow.child.kill('SIGCONT');
  const last = await slow.next((l) => l.version === VERSIONS);
  assert.deepEqual(last.meta, { v: VERSIONS });
  const seen = slow.lines.filter((l) => l.version).map((l) => l.version);
  assert.ok(seen.length <= 3, `the stopped client skipped to the newest version: saw ${seen}`);
  // Publishing copies the bytes into a memfd and never waits for a client: its time is the copy.
  assert.ok(Math.max(...times) < 5000, `publish took ${Math.max(...times)} ms`);
  slow.send('exit'); fast.send('exit');
  assert.deepEqual(await slow.exited, [0, null]);
  assert.deepEqual(await fast.exited, [0, null]);
  await until(() => server.clients === 0, 'clients gone');
  server.close();
});

test("a version's memory is freed when the last process lets go of it", async () => {
  const server = await SnapshotServer.listen(address());
  server.publish(Buffer.alloc(1 << 20, 1));
  const holder = nodeClient(server.address, '--hold-first');
  const first = await holder.next((l) => l.version === 1);
  const ino = first.ino;
  assert.ok(inodesOf(process.pid).has(ino), 'the server holds the current version');
  server.publish(Buffer.alloc(1 << 20, 2));
  await holder.next((l) => l.version === 2);
  assert.equal(inodesOf(process.pid).has(ino), false, 'the server let go of the superseded version');
  assert.ok(inodesOf(holder.child.pid).has(ino), 'the client still holds (and maps) version 1');
  server.close();
  await holder.next((l) => l.end);
  // After the server is gone the held snapshot is intact: the child verified version 1 when it arrived,
  // and nobody can change it. Now let go of it: no process has the inode any more.
  holder.send('release');
  await holder.next((l) => l.released);
  assert.equal(inodesOf(holder.child.pid).has(ino), false, 'released: neither open nor mapped');
  holder.send('exit');
  assert.deepEqual(await holder.exited, [0, null]);
});

test('SnapshotClient.fromFd in a child over an inherited socket pair (SnapshotServer.create + addClient)', async () => {
  await settle();
  const base = fdCount();
  const server = SnapshotServer.create();
  const [mine, theirs] = UnixSocket.pair();
  server.addClient(mine);
  server.publish('over an inherited socket', { meta: { via: 'fd 3' } });
  const child = spawnLines(process.execPath, [CHILD, 'fd:3'], { fds: [theirs.fd] });
  theirs.close();
  const got = await child.next((l) => l.version === 1);
  assert.equal(got.sha256, sha256(Buffer.from('over an inherited socket')));
  assert.deepEqual(got.meta, { via: 'fd 3' });
  assert.deepEqual(server.clientList().map((c) => c.pid), [process.pid], 'SO_PEERCRED of a pair names its creator');
  server.publish('next');
  await child.next((l) => l.version === 2);
  server.close();
  assert.deepEqual(await child.next((l) => l.end), { end: true, current: 2 });
  assert.deepEqual(await child.exited, [0, null]);
  await settle();
  assert.equal(fdCount(), base);
});

test('examples/snapshot_client.py (Python stdlib) receives, checks and maps every version', async (t) => {
  if (!(await hasPython())) { t.skip('python3 with socket.recv_fds (3.9+) is not installed'); return; }
  const server = await SnapshotServer.listen(address());
  const data = Buffer.alloc(3 << 20);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 251;
  server.publish(data, { meta: { model: 'geo', rows: 3 } });
  const py = spawnLines('python3', ['examples/snapshot_client.py', server.address.replace('\0', '@')]);
  const first = await py.next();
  assert.deepEqual(first, { version: 1, size: data.length, sha256: sha256(data), meta: { model: 'geo', rows: 3 } });
  server.publish(Buffer.alloc(0), { meta: null });
  assert.deepEqual(await py.next(), { version: 2, size: 0, sha256: sha256(Buffer.alloc(0)), meta: null });
  server.publish('from node to python');
  assert.equal((await py.next()).sha256, sha256(Buffer.from('from node to python')));
  await until(() => server.clientList()[0]?.behind === false, 'the python client to acknowledge');
  server.close();
  assert.deepEqual(await py.exited, [0, null]);
});

test('examples/snapshot-cluster.mjs: 4 cluster workers share one copy, then a hot update', async (t) => {
  const { run } = await import('./helpers.mjs');
  const r = await run(process.execPath, ['examples/snapshot-cluster.mjs'], { cwd: root, env: { ...process.env, SNAPSHOT_MB: '32' } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^4 workers connected; PSS of all 5 processes: [\d.]+ MiB \(idle runtimes\)$/m);
  for (const v of [1, 2]) assert.match(r.stdout, new RegExp(`^version ${v}: 4 workers mapped and verified 32.0 MiB in \\d+ ms: all checksums match$`, 'm'));
  const ratios = [...r.stdout.matchAll(/\(([\d.]+)x the data;/g)].map((m) => Number(m[1]));
  assert.equal(ratios.length, 2);
  // One copy in RAM: the PSS added by the data is about 1x its size (4 copies would be 4x); the slack is
  // for what the runtimes allocate meanwhile, which weighs more against a small table.
  // Under ASan every process's allocator keeps a quarantine and shadow memory that grow while it runs:
  // memory accounting means nothing there. The plain runs (npm test, test:prebuilt, every Node) check it.
  const sanitized = /libasan/.test(process.env.LD_PRELOAD ?? '');
  if (sanitized) t.diagnostic(`PSS ratios ${ratios.join(', ')} not checked under AddressSanitizer`);
  else if (checkedOutsideEmulation(t, 'rss')) for (const x of ratios) assert.ok(x < 1.5, `PSS grew by ${x}x the data`);
  assert.match(r.stdout, /server closed; workers exited/);
});

test('examples/snapshot.mjs (the recipe in docs/snapshot.md) runs as shown', async () => {
  const { run } = await import('./helpers.mjs');
  const r = await run(process.execPath, ['examples/snapshot.mjs'], { cwd: root });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'version 1 (28 bytes, json): Paris, Berlin\nversion 2 (40 bytes, json): Paris, Berlin, Rome\n' +
    'server gone; still holding version 2\n');
});

test('docs/snapshot.md shows examples/snapshot.mjs as it is', () => {
  const doc = readFileSync(new URL('../docs/snapshot.md', import.meta.url), 'utf8');
  const block = /## A recipe that runs[\s\S]*?```js\n([\s\S]*?)```/.exec(doc)[1];
  const file = readFileSync(new URL('../examples/snapshot.mjs', import.meta.url), 'utf8');
  assert.equal(block, file.slice(file.indexOf('import ')));
});
