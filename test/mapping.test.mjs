// Mapping: defaults, detach semantics, EOF refusals, seals x mappings, peers, 64-bit offsets, secret memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { constants as bufferConstants } from 'node:buffer';
import { MemFile, Mapping, Seal, capabilities } from '../dist/index.js';
import { checkedOutsideEmulation } from './helpers.mjs';

let serial = 0;
const unique = (prefix) => `${prefix}-${process.pid}-${++serial}`;
/** Lines of /proc/self/maps that map the memfd called `name`. */
const mapsLines = (name) => readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.endsWith(`/memfd:${name} (deleted)`));
const PAGE = capabilities().pageSize;
/** Disposes `resource` when the test ends (Node 20 cannot parse `using`). */
function own(t, resource) {
  t.after(() => resource[Symbol.dispose]());
  return resource;
}

function fileOf(size, name = unique('map')) {
  const f = MemFile.create(name);
  if (size) f.truncate(size);
  return f;
}

test('default mapping: whole file, shared, writable, zero-copy both ways', (t) => {
  const f = own(t, fileOf(3 * PAGE + 17));
  const m = f.map();
  assert.ok(m instanceof Mapping);
  assert.equal(m.offset, 0);
  assert.equal(m.length, 3 * PAGE + 17);
  assert.equal(m.buffer.byteLength, 3 * PAGE + 17);
  assert.equal(m.bytes.length, 3 * PAGE + 17);
  assert.equal(m.writable, true);
  assert.equal(m.private, false);
  assert.equal(m.mapped, true);
  m.bytes.set([1, 2, 3], 3 * PAGE + 10);
  const back = Buffer.alloc(3);
  f.readSync(back, 3 * PAGE + 10);
  assert.deepEqual([...back], [1, 2, 3]);
  f.writeSync('hello', 5);
  assert.equal(Buffer.from(m.buffer, 5, 5).toString(), 'hello');
  assert.equal(mapsLines(f.name).length, 1);
  m.unmap();
  assert.equal(mapsLines(f.name).length, 0);
});

test('unaligned offsets map the page below and point the buffer at the requested byte', (t) => {
  const f = own(t, fileOf(4 * PAGE));
  f.writeSync(Buffer.from('abcdef'), PAGE + 3);
  const m = own(t, f.map({ offset: PAGE + 3, length: 6 }));
  assert.equal(m.offset, PAGE + 3);
  assert.equal(Buffer.from(m.buffer).toString(), 'abcdef');
  const m2 = own(t, f.map({ offset: 1n, length: 2n }));
  assert.equal(m2.length, 2);
  assert.equal(m2.buffer.byteLength, 2);
  m2.bytes[0] = 0x5a;
  const b = Buffer.alloc(1);
  f.readSync(b, 1);
  assert.equal(b[0], 0x5a);
});

test('unmap detaches: every view type has length 0, reads give undefined, nothing crashes', (t) => {
  const f = own(t, fileOf(PAGE));
  const m = f.map();
  const buf = m.buffer;
  const views = [Uint8Array, Int8Array, Uint8ClampedArray, Uint16Array, Int16Array, Uint32Array, Int32Array, Float32Array,
    Float64Array, BigInt64Array, BigUint64Array].map((C) => new C(buf));
  const dv = new DataView(buf);
  const nodeBuffer = Buffer.from(buf);
  for (const v of views) v[0] = v instanceof BigInt64Array || v instanceof BigUint64Array ? 1n : 1;
  m.unmap();
  assert.equal(m.mapped, false);
  assert.equal(buf.byteLength, 0);
  assert.equal(m.buffer.byteLength, 0);
  assert.equal(m.bytes.length, 0);
  for (const v of views) {
    assert.equal(v.length, 0, v.constructor.name);
    assert.equal(v.byteLength, 0, v.constructor.name);
    assert.equal(v[0], undefined, v.constructor.name);
    assert.equal(v[100], undefined, v.constructor.name);
    v[0] = v instanceof BigInt64Array || v instanceof BigUint64Array ? 7n : 7; // ignored, no crash
    assert.equal(v[0], undefined);
  }
  assert.equal(nodeBuffer.length, 0);
  assert.equal(nodeBuffer[0], undefined);
  assert.throws(() => dv.getUint8(0), TypeError);
  assert.throws(() => dv.setUint32(0, 1), TypeError);
  assert.throws(() => dv.byteLength, TypeError);
  const i32 = views[6];
  assert.throws(() => Atomics.load(i32, 0), TypeError);
  assert.throws(() => Atomics.add(i32, 0, 1), TypeError);
  assert.throws(() => Atomics.store(new BigInt64Array(buf), 0, 1n), TypeError);
  // New views of the detached buffer are refused by V8 itself.
  assert.throws(() => new Uint8Array(buf), TypeError);
  assert.equal(mapsLines(f.name).length, 0);
});

test('unmap twice is harmless; methods after unmap throw ERR_MEMFD_UNMAPPED; using disposes', (t) => {
  const f = own(t, fileOf(PAGE));
  const m = f.map();
  m.unmap();
  m.unmap();
  m[Symbol.dispose]();
  for (const call of [() => m.sync(), () => m.advise('willneed'), () => m.lock(), () => m.unlock()]) {
    assert.throws(call, { code: 'ERR_MEMFD_UNMAPPED' });
  }
  const m2 = f.map();
  try {
    m2.bytes[0] = 1;
    assert.equal(mapsLines(f.name).length, 1);
  } finally {
    m2[Symbol.dispose]();
  }
  assert.equal(mapsLines(f.name).length, 0);
  assert.match(String(Object.prototype.toString.call(m)), /Mapping/);
});

test('Mapping cannot be constructed directly; bad options are refused before mmap', (t) => {
  assert.throws(() => new Mapping(), TypeError);
  const f = own(t, fileOf(PAGE));
  assert.throws(() => f.map('x'), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => f.map({ offset: -1 }), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => f.map({ offset: 1.5 }), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => f.map({ length: '5' }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => f.map({ writable: 1 }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => f.map({ populate: 'yes' }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => f.map({ unsafeAllowShrinking: 1 }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.equal(mapsLines(f.name).length, 0);
});

test('mapping past the end of file is refused before mmap (SIGBUS safety); 0 bytes is a RangeError', (t) => {
  const f = own(t, fileOf(2 * PAGE));
  assert.throws(() => f.map({ offset: 2 * PAGE + 1 }), (e) => e instanceof RangeError && e.code === 'ERR_MEMFD_MAPPING_PAST_EOF');
  assert.throws(() => f.map({ offset: PAGE, length: PAGE + 1 }), (e) => {
    assert.ok(e instanceof RangeError);
    assert.equal(e.code, 'ERR_MEMFD_MAPPING_PAST_EOF');
    assert.match(e.message, /SIGBUS/);
    return true;
  });
  assert.throws(() => f.map({ length: 0 }), (e) => e instanceof RangeError && e.code === 'ERR_OUT_OF_RANGE');
  assert.throws(() => f.map({ offset: 2 * PAGE }), (e) => e instanceof RangeError && /0 bytes/.test(e.message));
  const empty = own(t, fileOf(0));
  assert.throws(() => empty.map(), (e) => e instanceof RangeError && /empty/.test(e.message));
  // Exactly up to the end is fine, including a partial last page.
  const tail = own(t, fileOf(PAGE + 1));
  const m = own(t, tail.map({ offset: PAGE, length: 1 }));
  m.bytes[0] = 9;
  assert.equal(m.bytes.length, 1);
});

test('closing the MemFile leaves its mappings valid (the kernel keeps the file)', (t) => {
  const f = fileOf(PAGE);
  const spare = f.dup(); // to look at the file after close
  const m = f.map();
  f.close();
  assert.equal(f.closed, true);
  assert.throws(() => f.map(), { code: 'ERR_MEMFD_CLOSED' });
  m.bytes[10] = 77;
  assert.equal(m.bytes[10], 77);
  const b = Buffer.alloc(1);
  spare.readSync(b, 10);
  assert.equal(b[0], 77);
  spare.close();
  // No fd left at all: the mapping still works, and unmap still releases it.
  m.bytes[11] = 78;
  assert.equal(m.bytes[11], 78);
  assert.equal(mapsLines(f.name).length, 1);
  m.unmap();
  assert.equal(mapsLines(f.name).length, 0);
});

test('seal Write: writable shared mapping refused with a hint naming the seal; read-only mapping allowed', (t) => {
  const f = own(t, fileOf(PAGE));
  f.writeSync('sealed');
  f.addSeals(Seal.Write);
  assert.throws(() => f.map({ writable: true }), (e) => {
    assert.equal(e.code, 'EPERM');
    assert.equal(e.syscall, 'mmap');
    assert.match(e.message, /write seal/);
    return true;
  });
  const ro = own(t, f.map()); // default follows the seal
  assert.equal(ro.writable, false);
  assert.equal(ro.private, true);
  assert.equal(Buffer.from(ro.buffer, 0, 6).toString(), 'sealed');
  // A stray store cannot crash (the pages are copy-on-write underneath) and never reaches the file.
  ro.bytes[0] = 0x53;
  assert.equal(ro.bytes[0], 0x53);
  assert.equal(f.readAllSync().subarray(0, 6).toString(), 'sealed');
  const explicit = own(t, f.map({ writable: false }));
  assert.equal(explicit.bytes[0], 's'.charCodeAt(0));
});

test('adding the Write seal while writable mappings exist: EBUSY names the count', (t) => {
  const f = own(t, fileOf(PAGE));
  const a = f.map();
  const b = f.map({ offset: 0, length: 10 });
  assert.throws(() => f.addSeals(Seal.Write), (e) => {
    assert.equal(e.code, 'EBUSY');
    assert.match(e.message, /2 writable shared mappings of this file exist/);
    return true;
  });
  b.unmap();
  assert.throws(() => f.addSeals(Seal.Write), /1 writable shared mapping of this file exists/);
  a.unmap();
  // Read-only (copy-on-write) mappings, futex twin included, do not hold the seal back.
  const ro = own(t, f.map({ writable: false }));
  f.addSeals(Seal.Write);
  assert.equal(ro.bytes[0], 0);
  assert.ok(f.getSeals().has(Seal.Write));
});

test('seal FutureWrite: a pre-existing writable mapping keeps writing while write(2) and new writable maps are refused', (t) => {
  const f = own(t, fileOf(PAGE));
  const owner = own(t, f.map());
  f.addSeals(Seal.FutureWrite | Seal.Shrink);
  owner.bytes.set(Buffer.from('owner'), 0);
  assert.equal(f.readAllSync().subarray(0, 5).toString(), 'owner');
  assert.throws(() => f.writeSync('x', 0), { code: 'EPERM' });
  assert.throws(() => f.map({ writable: true }), (e) => e.code === 'EPERM' && /future-write/.test(e.message));
  const reader = own(t, f.map());
  assert.equal(reader.writable, false);
  // The reader's pages are the file's pages until it writes: it sees the owner's later writes.
  owner.bytes[0] = 'O'.charCodeAt(0);
  assert.equal(String.fromCharCode(reader.bytes[0]), 'O');
  assert.equal(owner.writable, true);
});

test('seal Shrink: the file cannot shrink; growing is allowed', (t) => {
  const f = own(t, fileOf(2 * PAGE));
  const m = own(t, f.map());
  f.addSeals(Seal.Shrink);
  f.truncate(4 * PAGE);
  m.bytes[2 * PAGE - 1] = 1;
  const bigger = own(t, f.map());
  assert.equal(bigger.length, 4 * PAGE);
  bigger.unmap();
  m.unmap();
  assert.throws(() => f.truncate(PAGE), (e) => e.code === 'EPERM' && /shrink/.test(e.message));
});

test('this process cannot shrink a file under its own live mapping (ERR_MEMFD_MAPPED), through any handle', async (t) => {
  const f = own(t, fileOf(4 * PAGE));
  const m = f.map({ offset: PAGE, length: PAGE + 10 }); // exposes bytes up to 2 * PAGE + 10
  const again = own(t, f.reopen());
  const twin = own(t, f.dup());
  for (const handle of [f, again, twin]) {
    assert.throws(() => handle.truncate(2 * PAGE), (e) => {
      assert.equal(e.code, 'ERR_MEMFD_MAPPED');
      assert.match(e.message, /SIGBUS/);
      return true;
    });
  }
  f.truncate(2 * PAGE + 1); // the last mapped page still lies (partly) inside the file
  f.truncate(8 * PAGE);
  m.bytes[PAGE + 9] = 1;
  m.unmap();
  f.truncate(0);
  // A mapping dropped without unmap stops guarding once its buffer is collected.
  f.truncate(2 * PAGE);
  (() => { f.map().bytes[0] = 1; })();
  assert.throws(() => f.truncate(0), { code: 'ERR_MEMFD_MAPPED' });
  for (let i = 0; i < 100; i++) {
    globalThis.gc?.();
    await new Promise((r) => setImmediate(r));
    try { f.truncate(0); return; } catch (e) { assert.equal(e.code, 'ERR_MEMFD_MAPPED'); }
  }
  if (globalThis.gc) assert.fail('the collected mapping still blocks truncate');
});

test('private: copy-on-write, allowed on a write-sealed file, never reaches the file', (t) => {
  const f = own(t, fileOf(PAGE));
  f.writeSync('orig');
  f.addSeals(Seal.Write);
  const p = own(t, f.map({ private: true }));
  assert.equal(p.private, true);
  assert.equal(p.writable, false);
  p.bytes[0] = 'X'.charCodeAt(0);
  assert.equal(Buffer.from(p.buffer, 0, 4).toString(), 'Xrig');
  assert.equal(f.readAllSync().subarray(0, 4).toString(), 'orig');
  const p2 = own(t, f.map({ private: true, writable: true }));
  assert.equal(p2.bytes[0], 'o'.charCodeAt(0));
});

test('read-only handle: default mapping is copy-on-write; writable: true is EACCES with a hint', (t) => {
  const f = own(t, fileOf(PAGE));
  f.addSeals(Seal.Shrink);
  const ro = own(t, f.reopen({ readOnly: true }));
  const m = own(t, ro.map());
  assert.equal(m.writable, false);
  assert.throws(() => ro.map({ writable: true }), (e) => e.code === 'EACCES' && /read-only/.test(e.message));
  m.bytes[0] = 1; // private copy only
  assert.equal(f.readAllSync()[0], 0);
});

test('a peer file without Seal.Shrink is refused (ERR_MEMFD_UNSAFE_MAPPING) unless unsafeAllowShrinking', (t) => {
  const f = own(t, fileOf(PAGE));
  const fd = openSync(f.path, 'r+');
  const adopted = own(t, MemFile.fromFd(fd));
  assert.equal(adopted.origin, 'adopted');
  assert.throws(() => adopted.map(), (e) => {
    assert.equal(e.code, 'ERR_MEMFD_UNSAFE_MAPPING');
    assert.match(e.message, /it was adopted from elsewhere \(MemFile\.fromFd\) and lacks the shrink seal/);
    assert.match(e.message, /SIGBUS/);
    assert.match(e.message, /unsafeAllowShrinking/);
    return true;
  });
  // A reopen of an adopted file reaches the same foreign holders: refused too, and the message says what it is.
  const reopened = own(t, adopted.reopen({ readOnly: true }));
  assert.equal(reopened.origin, 'reopened');
  assert.throws(() => reopened.map(), {
    code: 'ERR_MEMFD_UNSAFE_MAPPING', message: /it is a reopen of a file adopted from elsewhere/,
  });
  assert.throws(() => own(t, reopened.dup()).map(), { code: 'ERR_MEMFD_UNSAFE_MAPPING' });
  const risky = own(t, adopted.map({ unsafeAllowShrinking: true }));
  risky.bytes[0] = 1;
  // The creator is trusted: its own mappings need no seal.
  const mine = own(t, f.map());
  assert.equal(mine.bytes[0], 1);
  f.addSeals(Seal.Shrink);
  const safe = own(t, adopted.map());
  const safe2 = own(t, reopened.map());
  assert.equal(safe.bytes[0], 1);
  assert.equal(safe2.bytes[0], 1);
});

test('a reopen of a file this process created maps without Seal.Shrink, and the original cannot shrink it away', (t) => {
  const f = own(t, fileOf(3 * PAGE));
  assert.equal(f.getSeals().has(Seal.Shrink), false);
  for (const handle of [f.reopen({ readOnly: true }), f.reopen(), f.reopen({ readOnly: true }).dup()]) {
    own(t, handle);
    assert.equal(handle.origin, 'reopened');
    const m = handle.map();
    assert.equal(m.length, 3 * PAGE);
    // The only holders are this process's handles, and the library refuses each of them a shrink under
    // a live mapping, whichever handle made it (mappings are tracked by inode).
    for (const shrinker of [f, handle]) {
      if (handle.readOnly && shrinker === handle) continue;
      assert.throws(() => shrinker.truncate(PAGE), { code: 'ERR_MEMFD_MAPPED' });
    }
    assert.equal(f.size, 3 * PAGE);
    m.unmap();
    f.truncate(3 * PAGE); // unchanged size: allowed with or without mappings
  }
  // The owner's reopen handed on becomes a file from elsewhere where it lands.
  const adopted = own(t, MemFile.fromFd(own(t, f.reopen({ readOnly: true })).dup().releaseFd()));
  assert.equal(adopted.origin, 'adopted');
  assert.throws(() => adopted.map(), { code: 'ERR_MEMFD_UNSAFE_MAPPING' });
});

test('64-bit offsets: a sparse 8 GiB file mapped at 6 GiB', (t) => {
  const f = own(t, fileOf(0));
  const GiB = 2 ** 30;
  f.truncate(8 * GiB);
  assert.equal(f.size, 8 * GiB);
  const m = own(t, f.map({ offset: 6 * GiB, length: 2 ** 20 }));
  assert.equal(m.offset, 6 * GiB);
  m.bytes[0] = 0xab;
  m.bytes[2 ** 20 - 1] = 0xcd;
  const b = Buffer.alloc(1);
  f.readSync(b, 6 * GiB);
  assert.equal(b[0], 0xab);
  f.readSync(b, 6 * GiB + 2 ** 20 - 1);
  assert.equal(b[0], 0xcd);
  f.writeSync(Buffer.from([0x11]), 6 * GiB + 5);
  assert.equal(m.bytes[5], 0x11);
  // Unaligned offset above 4 GiB, given as a bigint.
  const m2 = own(t, f.map({ offset: 6n * BigInt(GiB) + 5n, length: 1n }));
  assert.equal(m2.bytes[0], 0x11);
  // Only the touched pages were charged: the file stays sparse.
  assert.ok(f.stat().allocatedBytes < 16 * 2 ** 20, `allocated ${f.stat().allocatedBytes}`);
});

test('mappings larger than 4 GiB: one ArrayBuffer where Node allows it, a clear RangeError where it does not', (t) => {
  const f = own(t, fileOf(0));
  const size = 5 * 2 ** 30;
  f.truncate(size);
  if (bufferConstants.MAX_LENGTH < size) {
    assert.throws(() => f.map(), (e) => e instanceof RangeError && /MAX_LENGTH/.test(e.message));
    assert.equal(mapsLines(f.name).length, 0);
    return;
  }
  const m = own(t, f.map());
  assert.equal(m.buffer.byteLength, size);
  m.bytes[size - 1] = 3;
  m.bytes[4.5 * 2 ** 30] = 4;
  const b = Buffer.alloc(1);
  f.readSync(b, size - 1);
  assert.equal(b[0], 3);
  assert.equal(new DataView(m.buffer).getUint8(4.5 * 2 ** 30), 4);
});

test('populate, advise, sync, lock', (t) => {
  const f = own(t, fileOf(16 * PAGE));
  const m = own(t, f.map({ populate: true }));
  m.bytes[0] = 1;
  const cow = own(t, f.map({ writable: false, populate: true }));
  assert.equal(cow.bytes[0], 1);
  for (const advice of ['normal', 'random', 'sequential', 'willneed', 'dontneed', 'hugepage', 'nohugepage', 'dontfork',
    'dofork', 'dontdump', 'dodump', 'cold', 'pageout', 'populate-read', 'populate-write']) {
    m.advise(advice);
  }
  assert.equal(m.bytes[0], 1); // dontneed on a shared memfd mapping keeps the contents
  m.advise('willneed', { offset: PAGE + 3, length: 10 });
  cow.advise('populate-read');
  assert.throws(() => m.advise('nonsense'), (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG_VALUE');
  assert.throws(() => m.advise('toString'), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => m.advise(3), { code: 'ERR_INVALID_ARG_TYPE' });
  if (checkedOutsideEmulation(t, 'madvise')) assert.throws(() => m.advise('free'), (e) => e.code === 'EINVAL' && /shared/.test(e.message));
  assert.throws(() => m.advise('willneed', { offset: 17 * PAGE }), { code: 'ERR_OUT_OF_RANGE' });
  // 'remove' frees the pages: the contents read back as zeros.
  m.bytes[PAGE] = 5;
  m.advise('remove', { offset: PAGE, length: PAGE });
  if (checkedOutsideEmulation(t, 'madvise')) assert.equal(m.bytes[PAGE], 0);
  m.sync();
  m.sync({ async: true });
  m.sync({ invalidate: true, offset: 5, length: 100 });
  m.lock({ length: PAGE });
  m.unlock({ length: PAGE });
});

test('lock() and populate on a read-only mapping do not copy its pages (it keeps seeing the file)', (t) => {
  const f = own(t, fileOf(2 * PAGE));
  const owner = own(t, f.map());
  const ro = own(t, f.map({ writable: false }));
  ro.lock();
  const pre = own(t, f.map({ writable: false, populate: true }));
  pre.advise('populate-read');
  assert.throws(() => ro.advise('populate-write'), (e) => e.code === 'ERR_INVALID_ARG_VALUE' && /populate-read/.test(e.message));
  owner.bytes[0] = 7;
  owner.bytes[PAGE] = 8;
  assert.equal(ro.bytes[0], 7);
  assert.equal(ro.bytes[PAGE], 8);
  assert.equal(pre.bytes[PAGE], 8);
  ro.unlock();
});

test('memfd_secret: create, map, write and read through the mapping; read/write syscalls refused with a hint', (t) => {
  if (!capabilities().memfdSecret) {
    t.skip('memfd_secret is not available on this kernel (capabilities().memfdSecret is false)');
    return;
  }
  const s = own(t, MemFile.createSecret(2 * PAGE));
  assert.equal(s.origin, 'secret');
  assert.equal(s.size, 2 * PAGE);
  const m = own(t, s.map());
  assert.equal(m.writable, true);
  m.bytes.set(Buffer.from('top secret'), PAGE);
  assert.equal(Buffer.from(m.buffer, PAGE, 10).toString(), 'top secret');
  assert.throws(() => s.readSync(Buffer.alloc(4), 0), (e) => /only reachable through map\(\)/.test(e.message));
  assert.throws(() => s.writeSync('x'), (e) => /only reachable through map\(\)/.test(e.message));
  assert.throws(() => s.map({ private: true }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => s.map({ writable: false }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => MemFile.createSecret(-1), { code: 'ERR_OUT_OF_RANGE' });
});

test('memfd_secret beyond RLIMIT_MEMLOCK: the error names the limit', (t) => {
  if (!capabilities().memfdSecret) {
    t.skip('memfd_secret is not available on this kernel');
    return;
  }
  // CAP_IPC_LOCK (root) bypasses the limit: run a child without it and with a 1 MiB limit.
  const script = `
    const { MemFile } = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)});
    const s = MemFile.createSecret(4 * 2 ** 20);
    try { s.map(); console.log('mapped'); } catch (e) { console.log(e.code + ' ' + e.message); }
  `;
  const r = spawnSync('setpriv', ['--bounding-set=-ipc_lock', '--', 'prlimit', '--memlock=1048576:1048576', '--',
    process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20000 });
  if (r.error || r.status !== 0 || r.stdout === '') {
    t.skip(`cannot drop CAP_IPC_LOCK and lower RLIMIT_MEMLOCK here (setpriv/prlimit: ${r.error?.message ?? r.stderr.trim()})`);
    return;
  }
  if (r.stdout.startsWith('mapped')) {
    t.skip('this kernel does not charge memfd_secret mappings to RLIMIT_MEMLOCK at mmap time');
    return;
  }
  assert.match(r.stdout, /^(EAGAIN|ENOMEM) /);
  assert.match(r.stdout, /RLIMIT_MEMLOCK, currently 1 MiB/);
});
