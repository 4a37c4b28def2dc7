// The workload that scripts/test-valgrind.mjs runs under valgrind (`node --jitless`): every native path of
// the addon once or a few times, including errors, async I/O on the thread pool and GC finalizers.
// The mapping and socket paths run as soon as those APIs exist (guards below), so this grows with them.
// Plain node works too: `node --expose-gc scripts/valgrind-smoke.mjs`.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import * as lib from '../dist/index.js';

const { MemFile, Seal } = lib;
let checks = 0;
const done = [];
function ok(value, message) { assert.ok(value, message); checks++; }
function code(fn, expected) {
  try { fn(); } catch (e) { assert.equal(e.code, expected, e.stack); checks++; return; }
  assert.fail(`expected ${expected}`);
}
async function rejects(promise, expected) {
  try { await promise; } catch (e) { assert.equal(e.code, expected, e.stack); checks++; return; }
  assert.fail(`expected ${expected}`);
}

// MemFile: create, sync and async I/O, sizes, seals, handles, streams, adoption, errors.
{
  const f = MemFile.create('valgrind', { exec: true });
  ok(f.writeSync('hello world') === 11, 'writeSync');
  ok(f.writeSync(Buffer.alloc(70_000, 7), 5000) === 70_000, 'big positional write');
  const buf = Buffer.alloc(11);
  ok(f.readSync(buf, 0) === 11 && buf.toString() === 'hello world', 'readSync');
  ok(await f.write(new Uint16Array([1, 2, 3]), 100) === 6, 'async write');
  const into = new Uint8Array(6);
  ok(await f.read(into, 100) === 6 && into[0] === 1, 'async read');
  const writes = [];
  for (let i = 0; i < 32; i++) writes.push(f.write(Buffer.alloc(100, i), 200_000 + i * 100));
  ok((await Promise.all(writes)).every((n) => n === 100), 'concurrent async writes');
  ok((await f.readAll()).length === f.size && f.readAllSync().length === f.size, 'readAll');
  f.truncate(4096 * 3 + 10);
  f.allocate(0, 4096 * 4);
  f.allocate(4096 * 8, 4096, { keepSize: true });
  f.punchHole(4096, 4096);
  ok(f.stat().size === 4096 * 4, 'stat');
  f.chmod(0o755);
  const d = f.dup();
  const ro = f.reopen({ readOnly: true });
  code(() => ro.writeSync('x', 0), 'EBADF');
  code(() => ro.truncate(0), 'EINVAL');
  code(() => ro.addSeals(Seal.Write), 'EPERM');
  f.addSeals(Seal.Grow | Seal.Shrink);
  code(() => f.truncate(1), 'EPERM');
  code(() => f.allocate(0, 2 ** 40), 'EPERM');
  f.addSeals([Seal.Exec]); // executable file: implies write seals too
  code(() => f.writeSync('x', 0), 'EPERM');
  await rejects(f.write('x', 0), 'EPERM');
  code(() => f.punchHole(0, 1), 'EPERM');
  f.addSeals(Seal.Seal);
  code(() => f.addSeals(Seal.Write), 'EPERM');
  code(() => f.writeSync(42), 'ERR_INVALID_ARG_TYPE');
  code(() => f.truncate(-1), 'ERR_OUT_OF_RANGE');
  ok(MemFile.isMemFd(d.fd) && !MemFile.isMemFd(0), 'isMemFd');
  const chunks = [];
  for await (const c of f.createReadStream({ highWaterMark: 4096 })) chunks.push(c);
  ok(Buffer.concat(chunks).length === f.size, 'read stream');
  const w = MemFile.create('stream');
  await new Promise((res, rej) => { const s = w.createWriteStream(); s.on('error', rej); s.on('finish', res); s.end(Buffer.alloc(100_000, 1)); });
  ok(w.size === 100_000, 'write stream');
  const pending = d.write(Buffer.alloc(10), 0); // refused by the seals, after close of its handle
  d.close();
  await rejects(pending, 'EPERM');
  code(() => d.size, 'ERR_MEMFD_CLOSED');
  for (const x of [f, ro, w]) x.close();
  const frozen = MemFile.from('frozen');
  const adopted = MemFile.fromFd(frozen.dup({ cloexec: true }).releaseFd(), { requireSeals: ['write'] });
  ok(adopted.readAllSync().toString() === 'frozen', 'fromFd');
  adopted.close();
  frozen.close();
  done.push('memfile');
}

// GC-only cleanup: finalizers close fds (and, later, unmap mappings).
{
  for (let i = 0; i < 200; i++) MemFile.create('dropped').writeSync('x');
  for (let i = 0; i < 4; i++) { globalThis.gc?.(); await new Promise((r) => setImmediate(r)); }
  done.push('gc');
}

// Mapping (issue 3): runs once file.map() exists and works.
{
  const f = MemFile.create('map');
  f.truncate(4096 * 4);
  let m;
  try {
    m = f.map({ writable: true });
  } catch (e) {
    if (e.code !== 'ERR_MEMFD_UNAVAILABLE') throw e;
  }
  if (m) {
    const bytes = m.bytes ?? new Uint8Array(m.buffer);
    bytes[0] = 42;
    bytes[bytes.length - 1] = 43;
    const b = Buffer.alloc(1);
    f.readSync(b, 0);
    ok(b[0] === 42, 'mapping writes reach the file');
    m.sync?.();
    m.advise?.('sequential');
    m.unmap();
    ok(bytes.length === 0 && bytes[0] === undefined, 'unmapped views are empty, not dangling');
    const ro = f.map({ writable: false });
    ok((ro.bytes ?? new Uint8Array(ro.buffer))[0] === 42, 'read-only mapping');
    ro.unmap();
    const dropped = f.map({ writable: true }); // left to the GC finalizer
    void dropped;
    done.push('mapping');
  }
  f.close();
  for (let i = 0; i < 4; i++) { globalThis.gc?.(); await new Promise((r) => setImmediate(r)); }
}

// UnixSocket (issue 4): runs once it is exported.
if ('UnixSocket' in lib) {
  const { UnixSocket } = lib;
  const [a, b] = UnixSocket.pair({ type: 'seqpacket' });
  const file = MemFile.from('over the socket');
  await a.send(Buffer.from('hi'), [file]);
  const msg = await b.receive();
  ok(msg.data.toString() === 'hi' && msg.fds.length === 1, 'message with one fd');
  const got = MemFile.fromFd(msg.fds[0], { requireSeals: ['write'] });
  ok(got.readAllSync().toString() === 'over the socket', 'received memfd');
  got.close();
  // A batch (issue 11): several messages, mixed sizes and fds, read in one native call into one buffer;
  // one fd taken, one message closed without reading its fds, one dropped for the GC, one truncated.
  for (let i = 0; i < 6; i++) await a.send(Buffer.alloc(i * 100, i), i % 2 ? [file, file] : null);
  await a.send(null, [file]);
  const batch = [];
  for (let i = 0; i < 7; i++) batch.push(await b.receive());
  ok(batch.every((m, i) => m.data.length === (i < 6 ? i * 100 : 0)), 'batch sizes');
  const taken = batch[1].take(1);
  ok(taken >= 0, 'take inside a batch');
  fs.closeSync(taken);
  batch[3].close();
  ok(batch[5].fds.length === 2, 'fds read (identity recorded)');
  batch[5].close();
  await a.send('three', [file, file, file]);
  try { await b.receive({ maxFds: 1 }); ok(false, 'truncation expected'); } catch (e) { ok(e.code === 'ERR_MEMFD_FDS_TRUNCATED', 'truncated'); }
  batch.length = 0; // messages 0, 1 (one fd left), 2, 4, 6 go to the GC with their batch
  for (let i = 0; i < 4; i++) { globalThis.gc?.(); await new Promise((r) => setImmediate(r)); }
  const pendingReceive = b.receive(); // pending when the peer goes away
  a.close();
  try { await pendingReceive; } catch { /* end of stream or closed: either is fine here */ }
  b.close();
  file.close();
  done.push('socket');
}

console.log(`valgrind smoke: ${checks} checks passed; paths: ${done.join(', ')}`);
