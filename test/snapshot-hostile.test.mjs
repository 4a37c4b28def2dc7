// Hostile peers. A fake server sends unsealed, half-sealed, mis-sized, non-memfd and malformed
// snapshots: the client refuses each with ERR_MEMFD_SNAPSHOT_INVALID, closes what arrived and keeps the
// last good version. Fake clients send garbage, fds, acknowledgements out of turn and disconnect at every
// point: the server drops them and keeps serving the good client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { MemFile, Seal, SnapshotClient, SnapshotServer, UnixServer, UnixSocket } from '../dist/index.js';
import { fdCount } from './helpers.mjs';

const settle = (ms = 20) => new Promise((r) => setTimeout(r, ms));
let n = 0;
const address = () => `\0memfd-snapshot-hostile-${process.pid}-${n++}`;

async function until(cond, what, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await settle(5);
  }
}

// The wire format, written out independently of the library (docs/snapshot.md).
const MAGIC = 0x5344464d;
function header({ version = 1, size = 0, meta = Buffer.from('null'), protocol = 1, kind = 1, metaLength } = {}) {
  const b = Buffer.alloc(32 + meta.length);
  b.writeUInt32LE(MAGIC, 0);
  b.writeUInt16LE(protocol, 4);
  b.writeUInt16LE(kind, 6);
  b.writeBigUInt64LE(BigInt(version), 8);
  b.writeBigUInt64LE(BigInt(size), 16);
  b.writeUInt32LE(metaLength ?? meta.length, 24);
  meta.copy(b, 32);
  return b;
}
function ack(version, { magic = MAGIC, kind = 2 } = {}) {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(magic, 0);
  b.writeUInt16LE(1, 4);
  b.writeUInt16LE(kind, 6);
  b.writeBigUInt64LE(BigInt(version), 8);
  return b;
}

const good = (content) => MemFile.from(content);

/**
 * Each case: what the fake server sends after one good version 1 ("good"). The client must yield
 * version 1, then throw ERR_MEMFD_SNAPSHOT_INVALID, and keep version 1 as current.
 */
const CASES = {
  'an unsealed memfd': () => {
    const f = MemFile.from('sneaky', { seal: false });
    return [header({ version: 2, size: 6 }), [f]];
  },
  'a memfd sealed against shrinking only (writable)': () => {
    const f = MemFile.from('sneaky', { seal: Seal.Shrink | Seal.Seal });
    return [header({ version: 2, size: 6 }), [f]];
  },
  'FutureWrite instead of Write': () => {
    const f = MemFile.from('sneaky', { seal: Seal.Shrink | Seal.Grow | Seal.FutureWrite | Seal.Seal });
    return [header({ version: 2, size: 6 }), [f]];
  },
  'a size other than the file\'s': () => [header({ version: 2, size: 100 }), [good('only ten b')]],
  'a size past 2^53': () => [header({ version: 2, size: 2n ** 60n }), [good('x')]],
  'a /dev/shm file (tmpfs, not a memfd)': () => {
    const path = `/dev/shm/memfd-hostile-${process.pid}`;
    const fd = openSync(path, 'w+');
    writeSync(fd, 'shm!');
    unlinkSync(path);
    return [header({ version: 2, size: 4 }), [fd], () => closeSync(fd)];
  },
  'a regular file': () => {
    const fd = openSync(new URL(import.meta.url).pathname, 'r');
    return [header({ version: 2, size: 1 }), [fd], () => closeSync(fd)];
  },
  'no fd': () => [header({ version: 2, size: 0 }), []],
  'two fds': () => [header({ version: 2, size: 1 }), [good('a'), good('b')]],
  'garbage bytes with a good fd': () => [Buffer.from('GET / HTTP/1.1\r\n\r\n padding padding'), [good('x')]],
  'a header cut short': () => [header({ version: 2, size: 1 }).subarray(0, 20), [good('x')]],
  'protocol 2': () => [header({ version: 2, size: 1, protocol: 2 }), [good('x')]],
  'an acknowledgement instead of a snapshot': () => [header({ version: 2, size: 1, kind: 2 }), [good('x')]],
  'an older version': () => [header({ version: 1, size: 1 }), [good('x')]],
  'version 0 after 1': () => [header({ version: 0, size: 1 }), [good('x')]],
  'meta that is not JSON': () => [header({ version: 2, size: 1, meta: Buffer.from('{nope') }), [good('x')]],
  'a meta length that does not match': () => [header({ version: 2, size: 1, meta: Buffer.from('{}'), metaLength: 7 }), [good('x')]],
};

test('a hostile server: every bad message is refused with ERR_MEMFD_SNAPSHOT_INVALID, the last good version stays', async () => {
  await settle();
  const base = fdCount();
  for (const [name, make] of Object.entries(CASES)) {
    const listener = await UnixServer.listen(address());
    const connecting = SnapshotClient.connect(listener.address);
    const conn = await listener.accept();
    const client = await connecting;
    const errors = [];
    client.on('error', (e) => errors.push(e));
    const v1 = good('good');
    await conn.send(header({ version: 1, size: 4, meta: Buffer.from('{"ok":true}') }), [v1]);
    v1.close();
    const it = client[Symbol.asyncIterator]();
    const first = (await it.next()).value;
    assert.equal(first.version, 1, name);
    const [data, fds, cleanup] = make();
    await conn.send(data, fds);
    for (const f of fds) if (typeof f !== 'number') f.close();
    cleanup?.();
    await assert.rejects(it.next(), (e) => {
      assert.equal(e.code, 'ERR_MEMFD_SNAPSHOT_INVALID', `${name}: ${e.message}`);
      return true;
    }, name);
    assert.equal(errors.length, 1, `${name}: one 'error' event`);
    assert.equal(client.ended, true, `${name}: the connection is closed`);
    assert.equal(client.current.version, 1, `${name}: the last good version stays current`);
    assert.equal(Buffer.from(client.current.bytes).toString(), 'good');
    assert.deepEqual(client.current.meta, { ok: true });
    assert.equal(await conn.receive().then((m) => { m?.close(); return m && m.data.length; }), 16, `${name}: version 1 was acknowledged`);
    assert.equal(await conn.receive(), null, `${name}: then the client hung up`);
    first.close();
    client.close();
    conn.close();
    listener.close();
    await settle(5);
    assert.equal(fdCount(), base, `${name}: every fd that arrived was closed`);
  }
});

test('a server that hangs up at any point: before sending, mid-protocol; an empty message', async () => {
  await settle();
  const base = fdCount();
  for (const when of ['at once', 'after one version', 'with an empty message']) {
    const listener = await UnixServer.listen(address());
    const connecting = SnapshotClient.connect(listener.address);
    const conn = await listener.accept();
    const client = await connecting;
    const got = [];
    const done = (async () => { for await (const s of client) { got.push(s.version); s.close(); } })();
    if (when !== 'at once') {
      const f = good('v1');
      await conn.send(header({ version: 1, size: 2 }), [f]);
      f.close();
      await until(() => got.length === 1, 'version 1');
    }
    if (when === 'with an empty message') await conn.send(Buffer.alloc(0)).catch(() => {});
    conn.close();
    listener.close();
    await done.catch((e) => assert.equal(e.code, 'ERR_MEMFD_SNAPSHOT_INVALID', `${when}: ${e.message}`));
    assert.equal(client.ended, true, when);
    client.close();
  }
  await settle();
  assert.equal(fdCount(), base);
});

test('hostile clients: garbage, fds, acknowledgements out of turn, oversized messages and disconnects at any point', async () => {
  await settle();
  const base = fdCount();
  const server = await SnapshotServer.listen(address());
  server.publish('v1');
  const goodClient = await SnapshotClient.connect(server.address);
  const seen = [];
  goodClient.on('snapshot', (s) => seen.push(s.version));
  await until(() => seen.length === 1, 'the good client');

  const raw = () => UnixSocket.connect(server.address);
  const behaviours = {
    'garbage bytes': async (s) => { await s.receive().then((m) => m.close()); await s.send('hello?'); },
    'an acknowledgement of a version it was not sent': async (s) => { await s.receive().then((m) => m.close()); await s.send(ack(7)); },
    'two acknowledgements': async (s) => { await s.receive().then((m) => m.close()); await s.send(ack(server.version)); await s.send(ack(server.version)); },
    'an acknowledgement with a bad magic': async (s) => { await s.receive().then((m) => m.close()); await s.send(ack(server.version, { magic: 1 })); },
    'an acknowledgement of the wrong kind': async (s) => { await s.receive().then((m) => m.close()); await s.send(ack(server.version, { kind: 1 })); },
    'an fd': async (s) => { const f = MemFile.from('gift'); await s.send(ack(server.version), [f]); f.close(); },
    'a 100 KB message': async (s) => { await s.send(Buffer.alloc(100_000, 1)); },
    'an acknowledgement before anything': async (s) => { await s.send(ack(0)); },
    'hangs up at once': async (s) => { s.close(); },
    'hangs up with the version unread': async (s) => { await settle(5); s.close(); },
    'hangs up after acknowledging': async (s) => {
      const m = await s.receive(); m.close();
      await s.send(ack(server.version)); s.close();
    },
  };
  for (let round = 0; round < 2; round++) {
    for (const [name, behave] of Object.entries(behaviours)) {
      const s = await raw();
      await until(() => server.clients === 2, `${name}: connected`);
      await behave(s);
      await until(() => server.clients === 1, `${name}: dropped`);
      s.close();
      server.publish(`after ${name}`); // still publishing, and the good client still gets it
      await until(() => seen.at(-1) === server.version, `${name}: the good client got version ${server.version}`);
    }
  }
  // A storm: 40 clients connect and vanish while versions are published.
  const storm = [];
  for (let i = 0; i < 40; i++) {
    storm.push(raw().then(async (s) => {
      if (i % 3 === 0) await s.receive().then((m) => m?.close());
      if (i % 2 === 0) server.publish(`storm ${i}`);
      s.close();
    }));
  }
  await Promise.all(storm);
  await until(() => server.clients === 1, 'the storm to pass');
  await until(() => seen.at(-1) === server.version, 'the good client to catch up');
  await until(() => server.clientList()[0].behind === false, 'the good client to acknowledge the newest version');
  assert.equal(server.clientList()[0].version, server.version);
  goodClient.close();
  server.close();
  await settle();
  assert.equal(fdCount(), base);
});
