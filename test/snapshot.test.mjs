// SnapshotServer / SnapshotClient / Snapshot in one process: versions, skipping, lifetimes, what publish
// does to a MemFile, argument errors. Cross-process behaviour is in snapshot-processes.test.mjs, hostile
// peers in snapshot-hostile.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemFile, Seal, SnapshotServer, SnapshotClient, Snapshot, UnixSocket, UnixServer } from '../dist/index.js';
import { fdCount, collectGarbage } from './helpers.mjs';

let n = 0;
const address = () => `\0memfd-snapshot-${process.pid}-${n++}`;
const settle = (ms = 20) => new Promise((r) => setTimeout(r, ms));
const text = (snap) => Buffer.from(snap.bytes).toString();
const FROZEN = Seal.Seal | Seal.Shrink | Seal.Grow | Seal.Write;

async function until(cond, what, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await settle(5);
  }
}

/**
 * Versions of the memfds this process has open (`/memfd:snapshot-vN`), once per fd: how many fds back one
 * open file is the library's business, so compare the set.
 */
function snapshotFds() {
  const versions = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const m = /^\/memfd:snapshot-v(\d+)/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (m) versions.push(Number(m[1]));
    } catch { /* closed meanwhile */ }
  }
  return versions.sort((a, b) => a - b);
}

/** The next snapshot an iterator yields. */
async function nextOf(it) {
  const r = await it.next();
  assert.equal(r.done, false, 'the iterator ended');
  return r.value;
}

test('a late client gets the current version at once, then every new one, with its meta', async () => {
  await settle();
  const base = fdCount();
  const server = await SnapshotServer.listen(address());
  assert.equal(server.version, 0);
  assert.equal(server.publish(Buffer.from('one'), { meta: { n: 1 } }), 1);
  assert.equal(server.publish(new Uint16Array([0x6174, 0x6f77]), { meta: { n: 2 } }), 2); // 'tawo' little-endian
  assert.equal(server.version, 2);
  const client = await SnapshotClient.connect(server.address);
  assert.equal(client.current, null);
  const it = client[Symbol.asyncIterator]();
  const first = await nextOf(it);
  assert.ok(first instanceof Snapshot);
  assert.equal(first.version, 2, 'a client that connects late starts at the current version');
  assert.deepEqual(first.meta, { n: 2 });
  assert.ok(Object.isFrozen(first.meta));
  assert.equal(first.size, 4);
  assert.equal(text(first), 'tawo');
  assert.equal(server.clients, 1);
  assert.equal(client.current.version, 2);
  assert.notEqual(client.current, first, 'the yielded snapshot is a handle of its own');

  assert.equal(server.publish('three', { meta: ['x'] }), 3);
  const third = await nextOf(it);
  assert.equal(third.version, 3);
  assert.equal(text(third), 'three');
  assert.deepEqual(third.meta, ['x']);
  assert.equal(server.publish(new ArrayBuffer(0)), 4);
  const empty = await nextOf(it);
  assert.equal(empty.size, 0);
  assert.equal(empty.bytes.length, 0);
  assert.equal(empty.meta, null);
  first.close(); third.close(); empty.close();
  server.close();
  assert.equal((await it.next()).done, true, 'iteration ends when the server goes away');
  assert.equal(client.ended, true);
  assert.equal(client.current.version, 4, 'current stays after the server is gone');
  client.close();
  assert.equal(client.current, null);
  await settle();
  assert.equal(fdCount(), base);
});

test('a consumer that falls behind is handed only the newest version; superseded ones are released', async () => {
  await settle();
  const base = fdCount();
  const server = await SnapshotServer.listen(address());
  server.publish('v1');
  const client = await SnapshotClient.connect(server.address);
  const it = client[Symbol.asyncIterator]();
  const v1 = await nextOf(it);
  for (let i = 2; i <= 20; i++) server.publish(`v${i}`);
  await until(() => client.current?.version === 20, 'version 20');
  const next = await nextOf(it);
  assert.equal(next.version, 20, 'the iterator skips to the newest version');
  assert.equal(text(next), 'v20');
  // The server holds only the current version; the client only what someone holds: v1 (ours) and v20
  // (ours and client.current), nothing in between.
  assert.deepEqual([...new Set(snapshotFds())], [1, 20]);
  assert.equal(text(v1), 'v1', 'a held version is unchanged by newer ones');
  v1.close(); next.close();
  client.close(); server.close();
  await settle();
  assert.equal(fdCount(), base);
});

test('two iterators and client.current are independent handles; retain() and close() semantics', async () => {
  const server = await SnapshotServer.listen(address());
  server.publish('alpha');
  const client = await SnapshotClient.connect(server.address);
  const a = client[Symbol.asyncIterator]();
  const b = client[Symbol.asyncIterator]();
  const sa = await nextOf(a);
  const sb = await nextOf(b);
  assert.equal(sa.version, 1);
  assert.equal(sb.version, 1);
  const kept = sa.retain();
  sa.close();
  sa.close(); // idempotent
  assert.equal(sa.closed, true);
  assert.equal(sa.version, 1, 'version stays readable after close');
  for (const prop of ['bytes', 'meta', 'size', 'file']) {
    assert.throws(() => sa[prop], { code: 'ERR_MEMFD_CLOSED' }, prop);
  }
  assert.throws(() => sa.retain(), { code: 'ERR_MEMFD_CLOSED' });
  assert.equal(text(kept), 'alpha');
  const borrowed = client.current;
  const view = borrowed.bytes;
  server.publish('beta');
  await until(() => client.current?.version === 2, 'version 2');
  assert.equal(borrowed.closed, true, 'client.current is closed by the client once superseded');
  assert.equal(Buffer.from(view).toString(), 'alpha', 'views stay valid while another handle holds the version');
  kept.close(); sb.close();
  assert.equal(view.length, 0, 'after the last handle the view is detached, never dangling');
  assert.throws(() => new Snapshot({}), TypeError);
  client.close(); server.close();
});

test('Snapshot.file is a sealed memfd of its own; bytes cannot change the file', async () => {
  const server = await SnapshotServer.listen(address());
  server.publish(Buffer.from('immutable'));
  const client = await SnapshotClient.connect(server.address);
  const it = client[Symbol.asyncIterator]();
  const snap = await nextOf(it);
  const file = snap.file;
  assert.equal(snap.file, file, 'one MemFile per handle');
  assert.ok(file.getSeals().has(FROZEN));
  assert.throws(() => file.writeSync('X', 0), { code: 'EPERM' });
  assert.throws(() => file.truncate(1), { code: 'EPERM' });
  snap.bytes[0] = 0x49; // a stray store lands in this process's copy-on-write page
  assert.equal(file.readAllSync().toString(), 'immutable', 'the file never changes');
  snap.close();
  assert.equal(file.closed, true, 'the handle closes its file');
  client.close(); server.close();
});

test('publish(MemFile): sealed in place without a copy; unsealable files are copied; writable mappings refused', async () => {
  await settle();
  const base = fdCount();
  const server = await SnapshotServer.listen(address());
  const client = await SnapshotClient.connect(server.address);
  const it = client[Symbol.asyncIterator]();

  const mine = MemFile.create('mine');
  mine.writeSync('in place', 0);
  server.publish(mine);
  assert.ok(mine.getSeals().has(FROZEN), 'the caller\'s file is sealed');
  const s1 = await nextOf(it);
  assert.equal(s1.file.stat().ino, mine.stat().ino, 'same inode: no copy');
  mine.close(); // the server has its own fd
  assert.equal(text(s1), 'in place');

  const stuck = MemFile.create('stuck', { allowSealing: false });
  stuck.writeSync('copied', 0);
  server.publish(stuck);
  const s2 = await nextOf(it);
  assert.notEqual(s2.file.stat().ino, stuck.stat().ino, 'a file that cannot be sealed is copied');
  assert.equal(text(s2), 'copied');
  assert.equal(stuck.getSeals().has(Seal.Write), false);

  const asked = MemFile.create('asked');
  asked.writeSync('leave me writable', 0);
  server.publish(asked, { copy: true });
  const s3 = await nextOf(it);
  assert.equal(asked.getSeals().has(Seal.Write), false, 'copy: true leaves the file alone');
  asked.writeSync('L', 0);
  assert.equal(text(s3), 'leave me writable');

  const ro = MemFile.from('read-only handle', { seal: false });
  const roHandle = ro.reopen({ readOnly: true });
  server.publish(roHandle);
  const s4 = await nextOf(it);
  assert.equal(text(s4), 'read-only handle');

  const mapped = MemFile.create('mapped');
  mapped.truncate(4096);
  const m = mapped.map({ writable: true });
  assert.throws(() => server.publish(mapped), { code: 'EBUSY', message: /unmap them first, or publish it with \{ copy: true \}/ });
  assert.equal(server.version, 4, 'a refused publish does not take a version number');
  m.unmap();
  assert.equal(server.publish(mapped), 5);
  const s5 = await nextOf(it);
  assert.equal(s5.size, 4096);

  for (const f of [stuck, asked, ro, roHandle, mapped]) f.close();
  for (const s of [s1, s2, s3, s4, s5]) s.close();
  client.close(); server.close();
  await settle();
  assert.equal(fdCount(), base);
});

test('argument errors are thrown before anything happens', async () => {
  const server = await SnapshotServer.listen(address());
  assert.throws(() => server.publish(42), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => server.publish(null), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => server.publish('x', 'meta'), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => server.publish('x', { meta: 1n }), { code: 'ERR_INVALID_ARG_VALUE' });
  const circular = {}; circular.self = circular;
  assert.throws(() => server.publish('x', { meta: circular }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => server.publish('x', { meta: 'm'.repeat(70000) }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => server.publish('x', { meta: () => 1 }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => server.publish('x', { copy: 'yes' }), { code: 'ERR_INVALID_ARG_TYPE' });
  const closedFile = MemFile.create(); closedFile.close();
  assert.throws(() => server.publish(closedFile), { code: 'ERR_MEMFD_CLOSED' });
  assert.equal(server.version, 0);
  assert.throws(() => server.addClient({}), { code: 'ERR_INVALID_ARG_TYPE' });
  const [a, b] = UnixSocket.pair({ type: 'stream' });
  assert.throws(() => server.addClient(a), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => SnapshotClient.fromFd(b.fd), { code: 'ERR_MEMFD_SOCKET_TYPE' });
  assert.equal(b.closed, false, 'a refused fd is left to its owner');
  a.close(); b.close();
  await assert.rejects(SnapshotServer.listen(address(), { name: 5 }), { code: 'ERR_INVALID_ARG_TYPE' });
  await assert.rejects(SnapshotServer.listen(address(), { backlog: -1 }), { code: 'ERR_OUT_OF_RANGE' });
  await assert.rejects(SnapshotServer.listen(''), { code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(SnapshotClient.connect(address(), { timeout: 'soon' }), { code: 'ERR_INVALID_ARG_TYPE' });
  // An abstract address has no file that could be stale: the hint does not send the user looking for one.
  await assert.rejects(SnapshotClient.connect(address()), (e) => e.code === 'ECONNREFUSED' &&
    /no process listens at abstract address/.test(e.hint) && !/stale/.test(e.hint));
  assert.throws(() => SnapshotClient.fromFd(-1), { code: 'ERR_OUT_OF_RANGE' });
  server.close();
  assert.throws(() => server.publish('late'), { code: 'ERR_MEMFD_SOCKET_CLOSED' });
  server.close(); // idempotent
});

test('filesystem path: the socket file is removed on close; snapshots outlive the server', async () => {
  const path = join(tmpdir(), `memfd-snapshot-${process.pid}.sock`);
  const server = await SnapshotServer.listen(path, { name: 'table' });
  assert.ok(statSync(path).isSocket());
  server.publish(Buffer.alloc(1 << 20, 7));
  const client = await SnapshotClient.connect(path);
  const it = client[Symbol.asyncIterator]();
  const snap = await nextOf(it);
  assert.equal(snap.file.name, 'table-v1');
  server.publish('newer');
  server.close();
  assert.equal(existsSync(path), false);
  const last = await nextOf(it);
  assert.equal(last.version, 2, 'close() hands the newest version to a client that lacked it');
  last.close();
  assert.equal((await it.next()).done, true);
  assert.equal(snap.bytes.length, 1 << 20);
  assert.ok(snap.bytes.every((b) => b === 7), 'held version unchanged after newer publishes and server close');
  snap.close(); client.close();
});

test('SnapshotServer.create() + addClient(accepted socket); close() ends a waiting iterator', async () => {
  await settle();
  const base = fdCount();
  const server = SnapshotServer.create();
  assert.equal(server.address, '');
  const events = [];
  server.on('client', (c) => events.push(['client', c.pid]));
  server.on('disconnect', (c) => events.push(['disconnect', c.pid]));
  // Connections accepted elsewhere (here a plain UnixServer) are handed over to the snapshot server.
  const listener = await UnixServer.listen(address());
  const connecting = SnapshotClient.connect(listener.address);
  server.addClient(await listener.accept());
  listener.close();
  const client = await connecting;
  server.publish('handed over');
  const it = client[Symbol.asyncIterator]();
  const snap = await nextOf(it);
  assert.equal(text(snap), 'handed over');
  assert.equal(server.clients, 1);
  assert.deepEqual(server.clientList().map((c) => [c.pid, c.version]), [[process.pid, 1]]);
  const pending = it.next();
  client.close();
  assert.equal((await pending).done, true, 'close() ends a waiting iterator');
  await until(() => server.clients === 0, 'the server to drop the closed client');
  assert.deepEqual(events, [['client', process.pid], ['disconnect', process.pid]]);
  snap.close(); server.close();
  await settle();
  assert.equal(fdCount(), base);
});

test("'snapshot' events carry the borrowed current; iteration started late yields the newest first", async () => {
  const server = await SnapshotServer.listen(address());
  const client = await SnapshotClient.connect(server.address);
  const seen = [];
  client.on('snapshot', (s) => seen.push([s.version, s === client.current]));
  server.publish('1');
  await until(() => seen.length === 1, 'first event');
  server.publish('2');
  await until(() => seen.length === 2, 'second event');
  assert.deepEqual(seen, [[1, true], [2, true]]);
  for await (const snap of client) {
    assert.equal(snap.version, 2);
    snap.close();
    break;
  }
  client.close(); server.close();
});

test('snapshots dropped without close are released by the garbage collector', async () => {
  await settle();
  const base = fdCount();
  const server = await SnapshotServer.listen(address());
  const client = await SnapshotClient.connect(server.address);
  // In a function of its own: a suspended async frame keeps its last locals alive.
  await (async () => {
    const it = client[Symbol.asyncIterator]();
    for (let i = 1; i <= 5; i++) {
      server.publish(Buffer.alloc(65536, i));
      const s = await nextOf(it);
      void s.bytes[0]; void s.file; // map it and dup its fd, then drop it
    }
  })();
  client.close(); server.close();
  await collectGarbage(8);
  await settle();
  assert.equal(fdCount(), base);
});

test('publish accepts every kind of bytes: Buffer, TypedArray, DataView, ArrayBuffer, SharedArrayBuffer, string', async () => {
  const server = await SnapshotServer.listen(address());
  const client = await SnapshotClient.connect(server.address);
  const it = client[Symbol.asyncIterator]();
  const sab = new SharedArrayBuffer(4);
  new Uint8Array(sab).set([1, 2, 3, 4]);
  const inputs = [Buffer.from([1, 2, 3, 4]), new Uint32Array([0x04030201]), new DataView(new Uint8Array([0, 1, 2, 3, 4, 0]).buffer, 1, 4),
    new Uint8Array([1, 2, 3, 4]).buffer, sab, '\u0001\u0002\u0003\u0004'];
  for (const data of inputs) {
    const v = server.publish(data);
    const snap = await nextOf(it);
    assert.equal(snap.version, v);
    assert.deepEqual([...snap.bytes], [1, 2, 3, 4], Object.prototype.toString.call(data));
    snap.close();
  }
  client.close(); server.close();
});
