// Model-based property test of MemFile on the real kernel (fast-check commands).
//
// One run: create a memfd with random options, then a random sequence of calls through several handles
// of the same file (dup shares the open file description and position; reopen makes a new one, maybe
// read-only), including misuse: use after close, wrong types, huge/negative/non-integer sizes and
// positions, seals in any order and form, concurrent async reads and writes. After every call the answer
// (value, bytes, size, seals, mode) must equal the model's, or the error must be exactly the code the
// model predicts. The process must survive all of it and leak no fd.
//
// npm test runs a bounded, seeded number of runs; `npm run test:fuzz` runs many more (MEMFD_FUZZ_RUNS,
// MEMFD_FUZZ_SEED, MEMFD_FUZZ_PATH to replay a failure).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { MemFile, Seals } from '../dist/index.js';
import { collectGarbage } from './helpers.mjs';
import {
  MAX_SAFE, assertError, assertOk, count, describe, fdCount, fuzzParams, outcome, sizeError, tally,
} from './model-harness.mjs';

const S = { Seal: 0x1, Shrink: 0x2, Grow: 0x4, Write: 0x8, FutureWrite: 0x10, Exec: 0x20 };
const NAMES = ['seal', 'shrink', 'grow', 'write', 'future-write', 'exec'];
const PAGE = 4096;
const READ_ALL_LIMIT = 1 << 20;
const IS_ROOT = process.getuid?.() === 0;
const MEMFD_NOEXEC = (() => {
  try { return Number(readFileSync('/proc/sys/vm/memfd_noexec', 'utf8')); } catch { return 0; }
})();

// ---------------------------------------------------------------------------------------------------
// The model: one inode (size, sparse contents, seals, mode) and handles onto open file descriptions.

class Inode {
  constructor(seals, mode) {
    this.size = 0n;
    this.bytes = new Map(); // bigint offset -> non-zero byte; everything else reads as 0
    this.seals = seals;
    this.mode = mode;
  }
  read(pos, len) {
    const end = pos + BigInt(len) < this.size ? pos + BigInt(len) : this.size;
    const n = end > pos ? Number(end - pos) : 0;
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.bytes.get(pos + BigInt(i)) ?? 0;
    return out;
  }
  write(pos, data) {
    for (let i = 0; i < data.length; i++) {
      if (data[i]) this.bytes.set(pos + BigInt(i), data[i]);
      else this.bytes.delete(pos + BigInt(i));
    }
    const end = pos + BigInt(data.length);
    if (data.length && end > this.size) this.size = end;
  }
  truncate(size) {
    for (const k of this.bytes.keys()) if (k >= size) this.bytes.delete(k);
    this.size = size;
  }
  zero(off, len) {
    const end = off + len;
    for (const k of this.bytes.keys()) if (k >= off && k < end) this.bytes.delete(k);
  }
  has(bits) { return (this.seals & bits) !== 0; }
}

/** Can this process open the inode again with the given access (DAC; root bypasses it)? */
function canOpen(mode, write) {
  if (IS_ROOT) return true;
  return write ? (mode & 0o600) === 0o600 : (mode & 0o400) !== 0;
}

/**
 * What the kernel must answer to a write of `len` bytes at `pos` through a writable fd
 * (mm/shmem.c shmem_write_begin): write seals refuse every write; the grow seal refuses the first chunk
 * that would end past EOF. A write that starts inside the file and ends past it may therefore write a
 * prefix that ends on a page (folio) boundary, or nothing (EPERM).
 */
function writeVerdict(inode, pos, len) {
  if (len === 0) return { kind: 'ok' };
  if (inode.has(S.Write | S.FutureWrite)) return { kind: 'error', code: 'EPERM' };
  if (inode.has(S.Grow) && pos + BigInt(len) > inode.size) {
    if (pos >= inode.size) return { kind: 'error', code: 'EPERM' };
    return { kind: 'partial', max: Number(inode.size - pos) };
  }
  return { kind: 'ok' };
}

/** Checks a write result against writeVerdict and applies it to the model; returns bytes written. */
function checkWrite(m, ofd, pos, data, res, what) {
  if (ofd.readOnly && data.length > 0) { assertError(res, 'EBADF', what); return 0; }
  const v = writeVerdict(m.inode, pos, data.length);
  if (v.kind === 'error') { assertError(res, v.code, what); return 0; }
  if (v.kind === 'partial') {
    if (!res.ok) { assertError(res, 'EPERM', what); return 0; }
    const n = res.value;
    assert.ok(Number.isInteger(n) && n > 0 && n <= v.max && (pos + BigInt(n)) % BigInt(PAGE) === 0n,
      `${what}: partial write under the grow seal must stop on a page boundary inside the file, wrote ${n} (room ${v.max})`);
    m.inode.write(pos, data.subarray(0, n));
    count('partial write under grow seal');
    return n;
  }
  assert.equal(assertOk(res, what), data.length, `${what}: bytes written`);
  m.inode.write(pos, data);
  return data.length;
}

/**
 * The handle a command uses: mostly an open one; one pick in four may be any handle, closed ones
 * included, to test use after close without letting closed handles swallow the run.
 */
function pick(m, index) {
  const open = m.handles.map((h, i) => (h.closed ? -1 : i)).filter((i) => i >= 0);
  if (index % 4 === 3 || open.length === 0) return (index >> 2) % m.handles.length;
  return open[(index >> 2) % open.length];
}

function checkClosed(res, what) {
  assertError(res, 'ERR_MEMFD_CLOSED', what);
}

// ---------------------------------------------------------------------------------------------------
// Argument generators. Positions and sizes are specs resolved against the model when the command runs,
// so that "just before / at / after the end of file" is hit often whatever the size is.

const hugeValues = [4095, 4096, 8191, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 40, 2 ** 52, MAX_SAFE - 64, MAX_SAFE];
const badSizes = [-1, -4096, 1.5, 0.1, NaN, Infinity, -Infinity, 2 ** 53, 2 ** 64, '7', '', true, null, {}, [], Symbol('s'),
  -1n, -2n, 2n ** 53n, 2n ** 64n];
const badPositions = [-2, -1.5, 1.5, NaN, Infinity, 2 ** 53, '7', true, 2n ** 53n, -2n, Symbol('p')];

/** Just before or after a page boundary: where the grow seal's partial writes happen. */
const nearPage = fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: -70, max: 70 }))
  .map(([k, d]) => ({ abs: k * PAGE + d }));

const positionSpec = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -80, max: 80 }).map((d) => ({ rel: d })) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 3 * PAGE }).map((n) => ({ abs: n })) },
  { weight: 1, arbitrary: fc.constantFrom(...hugeValues).map((n) => ({ abs: n })) },
  { weight: 2, arbitrary: nearPage },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 64 }).map((d) => ({ belowLastPage: d })) },
  { weight: 1, arbitrary: fc.constantFrom(0, 4096, 2 ** 40).map((n) => ({ abs: n, bigint: true })) },
  { weight: 2, arbitrary: fc.constantFrom(null, undefined, -1, -1n).map((v) => ({ current: v })) },
  { weight: 1, arbitrary: fc.constantFrom(...badPositions).map((v) => ({ bad: v })) },
);

/** The argument to pass, and what the model makes of it: { arg, pos (bigint) } | { arg, current } | { arg, error }. */
function resolvePosition(spec, inode) {
  if ('bad' in spec) return { arg: spec.bad, error: spec.bad === undefined || spec.bad === null ? null : sizeError(spec.bad) };
  if ('current' in spec) return { arg: spec.current, current: true };
  let n;
  if ('belowLastPage' in spec) {
    // Just below the last page boundary inside the file: a short write from here crosses into the page
    // that holds EOF.
    const boundary = (inode.size / BigInt(PAGE)) * BigInt(PAGE);
    const v = boundary - BigInt(spec.belowLastPage);
    n = v < 0n ? 0n : v > BigInt(MAX_SAFE) ? BigInt(MAX_SAFE) : v;
  } else if ('rel' in spec) {
    const v = inode.size + BigInt(spec.rel);
    n = v < 0n ? 0n : v > BigInt(MAX_SAFE) ? BigInt(MAX_SAFE) : v;
  } else {
    n = BigInt(spec.abs);
  }
  return { arg: spec.bigint ? n : Number(n), pos: n };
}

const sizeSpec = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -300, max: 300 }).map((d) => ({ rel: d })) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 5 * PAGE }).map((n) => ({ abs: n })) },
  { weight: 1, arbitrary: fc.constantFrom(0, -0, ...hugeValues).map((n) => ({ abs: n })) },
  { weight: 2, arbitrary: nearPage },
  { weight: 1, arbitrary: fc.constantFrom(0, 100, 2 ** 40).map((n) => ({ abs: n, bigint: true })) },
  { weight: 2, arbitrary: fc.constantFrom(...badSizes).map((v) => ({ bad: v })) },
);

function resolveSize(spec, inode) {
  if ('bad' in spec) return { arg: spec.bad, error: sizeError(spec.bad) };
  const p = resolvePosition(spec, inode);
  return { arg: p.arg, size: p.pos };
}

/** Bytes to write, in every binary form the API accepts. */
const dataSpec = fc.tuple(
  fc.uint8Array({ minLength: 0, maxLength: 64 }),
  fc.constantFrom('buffer', 'uint8array', 'string', 'uint16array', 'dataview', 'arraybuffer', 'float64array'),
);

/** Returns [argument, the bytes it stands for]. */
function toData([raw, kind]) {
  const bytes = Buffer.from(raw);
  switch (kind) {
    case 'buffer': return [bytes, bytes];
    case 'uint8array': return [new Uint8Array(raw), bytes];
    case 'string': {
      const s = bytes.toString('latin1').replace(/[^\x20-\x7e]/g, 'é'); // multi-byte UTF-8 too
      return [s, Buffer.from(s, 'utf8')];
    }
    case 'uint16array': {
      const even = bytes.subarray(0, bytes.length & ~1);
      const copy = new Uint8Array(even);
      return [new Uint16Array(copy.buffer), Buffer.from(copy)];
    }
    case 'float64array': {
      const whole = bytes.subarray(0, bytes.length & ~7);
      const copy = new Uint8Array(whole);
      return [new Float64Array(copy.buffer), Buffer.from(copy)];
    }
    case 'dataview': {
      // A view into the middle of a larger buffer: offsets must be honoured.
      const backing = new Uint8Array(bytes.length + 8);
      backing.set(bytes, 3);
      return [new DataView(backing.buffer, 3, bytes.length), bytes];
    }
    case 'arraybuffer': return [new Uint8Array(raw).buffer, bytes];
    default: throw new Error(kind);
  }
}

/** Seal sets in every accepted form: bits, names, a Seals, a Set of names, mixed arrays, one name. */
const sealSpec = fc.tuple(
  // Mostly one to three seals at a time (so that states such as "grow only" are common), sometimes any set.
  fc.oneof(
    { weight: 3, arbitrary: fc.array(fc.constantFrom(1, 2, 4, 8, 16, 32), { maxLength: 3 }).map((a) => a.reduce((x, y) => x | y, 0)) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 0x3f }) },
  ),
  fc.constantFrom('bits', 'names', 'seals', 'set', 'mixed', 'single-name'),
  fc.boolean(),
).map(([bits, form, reverse]) => {
  let names = NAMES.filter((_, i) => bits & (1 << i));
  if (reverse) names = names.reverse();
  switch (form) {
    case 'bits': return { arg: bits, bits };
    case 'names': return { arg: names, bits };
    case 'seals': return { arg: new Seals(bits), bits };
    case 'set': return { arg: new Set(names), bits };
    case 'mixed': return { arg: names.map((n, i) => (i % 2 ? 1 << NAMES.indexOf(n) : n)), bits };
    case 'single-name': return names.length ? { arg: names[0], bits: 1 << NAMES.indexOf(names[0]) } : { arg: [], bits: 0 };
    default: throw new Error(form);
  }
});

/** Invalid seal arguments and the library's answer, before any syscall. */
const badSeals = [
  [0x40, 'ERR_OUT_OF_RANGE'], [0x80 | 0x8, 'ERR_OUT_OF_RANGE'], [-1, 'ERR_OUT_OF_RANGE'], [1.5, 'ERR_OUT_OF_RANGE'],
  [NaN, 'ERR_OUT_OF_RANGE'], [2 ** 32, 'ERR_OUT_OF_RANGE'], [[0x40], 'ERR_OUT_OF_RANGE'], [['write', 0.5], 'ERR_OUT_OF_RANGE'],
  [['nope'], 'ERR_INVALID_ARG_VALUE'], ['WRITE', 'ERR_INVALID_ARG_VALUE'], [['write', 'Write'], 'ERR_INVALID_ARG_VALUE'],
  [[{}], 'ERR_INVALID_ARG_TYPE'], [[null], 'ERR_INVALID_ARG_TYPE'], [null, 'ERR_INVALID_ARG_TYPE'],
  [undefined, 'ERR_INVALID_ARG_TYPE'], [{ write: true }, 'ERR_INVALID_ARG_TYPE'], [true, 'ERR_INVALID_ARG_TYPE'],
  [8n, 'ERR_INVALID_ARG_TYPE'],
  // A Seals can carry bits this library does not know (read from a newer kernel); handing one to
  // addSeals must be refused like the same number, not sent to the kernel.
  [new Seals(0x40), 'ERR_OUT_OF_RANGE'], [new Seals(0x48), 'ERR_OUT_OF_RANGE'],
];

// ---------------------------------------------------------------------------------------------------
// Commands. Each: check(model) says when it applies; run(model, real) calls the real API and compares.

class WriteSync {
  constructor(h, data, pos, form) { Object.assign(this, { h, data, pos, form }); }
  check() { return true; }
  async run(m, r) {
    const i = pick(m, this.h);
    const [arg, bytes] = toData(this.data);
    const p = resolvePosition(this.pos, m.inode);
    const what = `${this}`;
    // The options form ({ position }) is equivalent to the positional form.
    const call = () => (this.form ? r.files[i].writeSync(arg, { position: p.arg }) : r.files[i].writeSync(arg, p.arg));
    const res = await outcome(call);
    const hm = m.handles[i];
    if (hm.closed) return checkClosed(res, what);
    if (p.error) return assertError(res, p.error, what);
    const pos = p.current ? hm.ofd.pos : p.pos;
    const n = checkWrite(m, hm.ofd, pos, bytes, res, what);
    if (p.current) hm.ofd.pos += BigInt(n);
  }
  toString() { return `writeSync(h${this.h}, ${this.data[1]}[${this.data[0].length}], ${describe(this.pos)}${this.form ? ', options' : ''})`; }
}

/**
 * A write that starts `d` bytes below the last page boundary inside the file and ends `extra` bytes past
 * EOF (sizes computed from the model): under the grow seal the kernel writes the part before the page
 * that holds EOF and refuses the rest; without it the file grows.
 */
class WriteAcrossEof {
  constructor(h, d, extra) { Object.assign(this, { h, d, extra }); }
  check(m) { return m.inode.size >= BigInt(PAGE) && m.inode.size < BigInt(MAX_SAFE - PAGE); }
  async run(m, r) {
    const i = pick(m, this.h);
    const boundary = (m.inode.size / BigInt(PAGE)) * BigInt(PAGE);
    const pos = boundary - BigInt(this.d);
    const len = Number(m.inode.size - pos) + this.extra;
    const data = Buffer.alloc(len, 0x5a);
    const res = await outcome(() => r.files[i].writeSync(data, Number(pos)));
    const hm = m.handles[i];
    if (hm.closed) return checkClosed(res, `${this}`);
    checkWrite(m, hm.ofd, pos, data, res, `${this} at ${pos}, ${len} bytes, size ${m.inode.size}`);
  }
  toString() { return `writeAcrossEof(h${this.h}, ${this.d} below the last boundary, ${this.extra} past EOF)`; }
}

class ReadSync {
  constructor(h, len, pos, form) { Object.assign(this, { h, len, pos, form }); }
  check() { return true; }
  async run(m, r) {
    const i = pick(m, this.h);
    const p = resolvePosition(this.pos, m.inode);
    // Read into the middle of a larger buffer through the options form, or into a whole buffer.
    const buffer = Buffer.alloc(this.len + 16, 0xee);
    const call = this.form
      ? () => r.files[i].readSync(buffer, { offset: 8, length: this.len, position: p.arg })
      : () => r.files[i].readSync(buffer.subarray(8, 8 + this.len), p.arg);
    const res = await outcome(call);
    const hm = m.handles[i];
    const what = `${this}`;
    if (hm.closed) return checkClosed(res, what);
    if (p.error) return assertError(res, p.error, what);
    const pos = p.current ? hm.ofd.pos : p.pos;
    const want = m.inode.read(pos, this.len);
    const n = assertOk(res, what);
    assert.equal(n, want.length, `${what}: bytes read`);
    assert.deepEqual(buffer.subarray(8, 8 + n), want, `${what}: contents`);
    assert.ok(buffer.subarray(0, 8).every((b) => b === 0xee) && buffer.subarray(8 + n).every((b) => b === 0xee),
      `${what}: bytes outside the target range were touched`);
    if (p.current) hm.ofd.pos += BigInt(n);
  }
  toString() { return `readSync(h${this.h}, ${this.len}, ${describe(this.pos)}${this.form ? ', options' : ''})`; }
}

/**
 * Concurrent async reads and writes on the thread pool, through any handles, on disjoint regions, so that
 * the final state does not depend on the order the kernel ran them in. Writes: as writeVerdict against
 * the size before the batch (under the grow seal the size cannot change; without it, each write just
 * extends the file). Reads: exact inside the old size; between the old and the new size they may stop at
 * the old end or see zeros of the grown file.
 */
class AsyncBatch {
  constructor(base, ops) { Object.assign(this, { base, ops }); }
  check() { return true; }
  async run(m, r) {
    const basePos = resolvePosition(this.base, m.inode);
    const limit = BigInt(MAX_SAFE - 8 * 512);
    const start = basePos.pos > limit ? limit : basePos.pos;
    const planned = this.ops.map((op, k) => ({ ...op, i: pick(m, op.h), pos: start + BigInt(k * 512) }));
    const before = m.inode.size;
    const promises = planned.map((op) => {
      const f = r.files[op.i];
      if (op.kind === 'write') {
        const [arg] = toData(op.data);
        return outcome(() => f.write(arg, Number(op.pos)));
      }
      op.buffer = Buffer.alloc(op.len);
      return outcome(() => f.read(op.buffer, Number(op.pos)));
    });
    const results = await Promise.all(promises);
    // Writes first (their effect on the model), then reads against before/after.
    const snapshot = new Inode(m.inode.seals, m.inode.mode);
    snapshot.size = before;
    snapshot.bytes = new Map(m.inode.bytes);
    planned.forEach((op, k) => {
      if (op.kind !== 'write') return;
      const what = `${this} op ${k} write(h${op.i}) at ${op.pos}`;
      if (m.handles[op.i].closed) return checkClosed(results[k], what);
      const [, bytes] = toData(op.data);
      checkWrite(m, m.handles[op.i].ofd, op.pos, bytes, { ...results[k] }, what);
    });
    planned.forEach((op, k) => {
      if (op.kind !== 'read') return;
      const what = `${this} op ${k} read(h${op.i}, ${op.len}) at ${op.pos}`;
      if (m.handles[op.i].closed) return checkClosed(results[k], what);
      const n = assertOk(results[k], what);
      const low = snapshot.read(op.pos, op.len).length;
      const high = m.inode.read(op.pos, op.len).length;
      assert.ok(n >= Math.min(low, high) && n <= Math.max(low, high), `${what}: read ${n}, expected ${low}..${high}`);
      assert.deepEqual(op.buffer.subarray(0, n), m.inode.read(op.pos, n), `${what}: contents`);
    });
  }
  toString() { return `asyncBatch(${describe(this.base)}, [${this.ops.map((o) => `${o.kind}@h${o.h}`).join(', ')}])`; }
}

/** An async write or read at the current position (alone: the position makes concurrent ones order-dependent). */
class AsyncAtCurrent {
  constructor(h, kind, data, len) { Object.assign(this, { h, kind, data, len }); }
  check() { return true; }
  async run(m, r) {
    const i = pick(m, this.h);
    const hm = m.handles[i];
    const what = `${this}`;
    if (this.kind === 'write') {
      const [arg, bytes] = toData(this.data);
      const res = await outcome(() => r.files[i].write(arg));
      if (hm.closed) return checkClosed(res, what);
      hm.ofd.pos += BigInt(checkWrite(m, hm.ofd, hm.ofd.pos, bytes, res, what));
    } else {
      const buffer = Buffer.alloc(this.len);
      const res = await outcome(() => r.files[i].read(buffer, null));
      if (hm.closed) return checkClosed(res, what);
      const want = m.inode.read(hm.ofd.pos, this.len);
      assert.equal(assertOk(res, what), want.length, what);
      assert.deepEqual(buffer.subarray(0, want.length), want, what);
      hm.ofd.pos += BigInt(want.length);
    }
  }
  toString() { return `async ${this.kind} at current position (h${this.h})`; }
}

/** An async write started, then close() at once: the write finishes on the old fd (documented contract). */
class WriteThenClose {
  constructor(h, data, pos) { Object.assign(this, { h, data, pos }); }
  check(m) { return mayClose(m); }
  async run(m, r) {
    const i = pick(m, this.h);
    const hm = m.handles[i];
    const [arg, bytes] = toData(this.data);
    const pos = BigInt(this.pos);
    const promise = outcome(() => r.files[i].write(arg, this.pos));
    r.files[i].close();
    const res = await promise;
    assert.equal(r.files[i].closed, true);
    assert.equal(r.files[i].fd, -1);
    if (hm.closed) return checkClosed(res, `${this}`);
    checkWrite(m, hm.ofd, pos, bytes, res, `${this}`);
    hm.closed = true;
  }
  toString() { return `write-then-close(h${this.h}, ${this.data[0].length} bytes @${this.pos})`; }
}

class Truncate {
  constructor(h, size, omit) { Object.assign(this, { h, size, omit }); }
  check() { return true; }
  async run(m, r) {
    const i = pick(m, this.h);
    const s = this.omit ? { arg: undefined, size: 0n } : resolveSize(this.size, m.inode);
    const res = await outcome(() => (this.omit ? r.files[i].truncate() : r.files[i].truncate(s.arg)));
    const hm = m.handles[i];
    const what = `${this} -> ${describe(s.arg)}`;
    if (hm.closed) return checkClosed(res, what);
    if (s.error) return assertError(res, s.error, what);
    if (hm.ofd.readOnly) return assertError(res, 'EINVAL', what); // ftruncate on an fd not open for writing
    if ((s.size < m.inode.size && m.inode.has(S.Shrink)) || (s.size > m.inode.size && m.inode.has(S.Grow))) {
      return assertError(res, 'EPERM', what);
    }
    assertOk(res, what);
    m.inode.truncate(s.size);
  }
  toString() { return `truncate(h${this.h}, ${this.omit ? '' : describe(this.size)})`; }
}

class Allocate {
  constructor(h, off, len, keepSize) { Object.assign(this, { h, off, len, keepSize }); }
  check() { return true; }
  async run(m, r) {
    const i = pick(m, this.h);
    const o = resolvePosition(this.off, m.inode);
    const off = 'current' in o ? { arg: o.arg, error: o.arg === -1 || o.arg === -1n ? 'ERR_OUT_OF_RANGE' : 'ERR_INVALID_ARG_TYPE' } : o;
    const options = this.keepSize === undefined ? undefined : { keepSize: this.keepSize };
    const res = await outcome(() => r.files[i].allocate(off.arg, this.len, options));
    const hm = m.handles[i];
    const what = `${this} -> offset ${describe(off.arg)}`;
    if (hm.closed) return checkClosed(res, what);
    if (off.error) return assertError(res, off.error, what);
    if (this.len === 0) return assertError(res, 'ERR_OUT_OF_RANGE', what);
    if (hm.ofd.readOnly) return assertError(res, 'EBADF', what);
    const end = off.pos + BigInt(this.len);
    // The grow seal refuses any allocation past the end, even with keepSize (shmem_fallocate).
    if (m.inode.has(S.Grow) && end > m.inode.size) return assertError(res, 'EPERM', what);
    assertOk(res, what);
    if (!this.keepSize && end > m.inode.size) m.inode.size = end;
  }
  toString() { return `allocate(h${this.h}, ${describe(this.off)}, ${this.len}, keepSize ${this.keepSize})`; }
}

/**
 * Allocation of petabytes: only generated where the model says the kernel refuses it before allocating
 * a page (read-only fd, or the grow seal). Elsewhere it would really try to reserve that memory.
 */
const HUGE_ALLOCATION = MAX_SAFE - 1;

class AllocateHugeRefused {
  constructor(h, keepSize) { Object.assign(this, { h, keepSize }); }
  check(m) {
    const hm = m.handles[pick(m, this.h)];
    // The grow seal refuses only when the range ends past EOF: a file already grown to 2^53 by a write
    // at a huge position would accept this, and the kernel would fill all memory.
    return hm.closed || hm.ofd.readOnly || ((m.inode.seals & S.Grow) !== 0 && BigInt(HUGE_ALLOCATION) > m.inode.size);
  }
  async run(m, r) {
    const i = pick(m, this.h);
    const hm = m.handles[i];
    if (!hm.closed) {
      // Guard on the real state before asking for petabytes: if the model were wrong here, the kernel would
      // really start filling memory (global OOM), so disagreement fails the test before the call.
      const f = r.files[i];
      assert.equal(f.readOnly, hm.ofd.readOnly, `${this}: readOnly of the real handle`);
      assert.equal(f.getSeals().bits, m.inode.seals, `${this}: seals of the real file`);
      assert.equal(f.size, Number(m.inode.size), `${this}: size of the real file`);
      assert.ok(f.readOnly || (f.getSeals().has(S.Grow) && f.size < HUGE_ALLOCATION), `${this}: the kernel must refuse`);
    }
    const res = await outcome(() => r.files[i].allocate(0, HUGE_ALLOCATION, { keepSize: this.keepSize }));
    if (hm.closed) return checkClosed(res, `${this}`);
    assertError(res, hm.ofd.readOnly ? 'EBADF' : 'EPERM', `${this}`);
  }
  toString() { return `allocate(h${this.h}, 0, 2^53 - 2, keepSize ${this.keepSize}) [refused]`; }
}

class PunchHole {
  constructor(h, off, len) { Object.assign(this, { h, off, len }); }
  check() { return true; }
  async run(m, r) {
    const i = pick(m, this.h);
    const o = resolvePosition(this.off, m.inode);
    const off = 'current' in o ? { arg: o.arg, error: o.arg === -1 || o.arg === -1n ? 'ERR_OUT_OF_RANGE' : 'ERR_INVALID_ARG_TYPE' } : o;
    const res = await outcome(() => r.files[i].punchHole(off.arg, this.len));
    const hm = m.handles[i];
    const what = `${this} -> offset ${describe(off.arg)}`;
    if (hm.closed) return checkClosed(res, what);
    if (off.error) return assertError(res, off.error, what);
    if (this.len === 0) return assertError(res, 'ERR_OUT_OF_RANGE', what);
    if (hm.ofd.readOnly) return assertError(res, 'EBADF', what);
    if (m.inode.has(S.Write | S.FutureWrite)) return assertError(res, 'EPERM', what);
    assertOk(res, what);
    m.inode.zero(off.pos, BigInt(this.len));
  }
  toString() { return `punchHole(h${this.h}, ${describe(this.off)}, ${this.len})`; }
}

class AddSeals {
  constructor(h, spec, bad) { Object.assign(this, { h, spec, bad }); }
  check() { return true; }
  async run(m, r) {
    const i = pick(m, this.h);
    const arg = this.bad ? this.bad[0] : this.spec.arg;
    const res = await outcome(() => r.files[i].addSeals(arg));
    const hm = m.handles[i];
    const what = `${this}`;
    if (hm.closed) return checkClosed(res, what);
    if (this.bad) return assertError(res, this.bad[1], what);
    // memfd_add_seals (mm/memfd.c): writable fd, then Seal.Seal, then the exec rule.
    if (hm.ofd.readOnly) return assertError(res, 'EPERM', what);
    if (m.inode.has(S.Seal)) return assertError(res, 'EPERM', what);
    let bits = this.spec.bits;
    if ((bits & S.Exec) && (m.inode.mode & 0o111)) bits |= S.Shrink | S.Grow | S.Write | S.FutureWrite;
    m.inode.seals |= bits;
    assert.equal(assertOk(res, what), undefined, `${what}: returns nothing`);
    const seals = r.files[i].getSeals();
    assert.ok(seals instanceof Seals, `${what}: getSeals() gives a Seals`);
    assert.equal(seals.bits, m.inode.seals, `${what}: seals now ${seals}`);
  }
  toString() { return `addSeals(h${this.h}, ${this.bad ? `bad ${describe(this.bad[0])}` : `${describe(this.spec.arg)} = 0x${this.spec.bits.toString(16)}`})`; }
}

/** Everything the file says about itself must match the model. */
class Observe {
  constructor(h) { this.h = h; }
  check() { return true; }
  async run(m, r) {
    const i = pick(m, this.h);
    const f = r.files[i];
    const hm = m.handles[i];
    if (hm.closed) {
      assert.equal(f.closed, true);
      assert.equal(f.fd, -1);
      for (const [name, call] of [['size', () => f.size], ['getSeals', () => f.getSeals()], ['stat', () => f.stat()],
        ['readOnly', () => f.readOnly], ['path', () => f.path], ['readAllSync', () => f.readAllSync()],
        ['readAll', () => f.readAll()], ['seal', () => f.seal()], ['createReadStream', () => f.createReadStream()],
        ['createWriteStream', () => f.createWriteStream()], ['map', () => f.map()]]) {
        checkClosed(await outcome(call), `${name} after close`);
      }
      f.close(); // closing twice is harmless
      return;
    }
    assert.equal(f.closed, false);
    assert.ok(Number.isInteger(f.fd) && f.fd >= 0);
    assert.equal(f.size, Number(m.inode.size), 'size');
    assert.equal(f.getSeals().bits, m.inode.seals, `seals: ${f.getSeals()}`);
    assert.equal(f.readOnly, hm.ofd.readOnly, 'readOnly');
    // (A number closed by hand is dead or someone else's; the MemFile itself works on.)
    if (!hm.handClosed) assert.equal(MemFile.isMemFd(f.fd), true, 'isMemFd');
    const st = f.stat();
    assert.equal(st.size, Number(m.inode.size), 'stat size');
    assert.equal(st.mode & 0o7777, m.inode.mode, `mode ${(st.mode & 0o7777).toString(8)}`);
    assert.equal(st.isFile(), true);
    if (m.inode.size <= BigInt(READ_ALL_LIMIT)) {
      const want = m.inode.read(0n, Number(m.inode.size));
      assert.deepEqual(f.readAllSync(), want, 'readAllSync');
      assert.deepEqual(await f.readAll(), want, 'readAll');
    }
  }
  toString() { return `observe(h${this.h})`; }
}

class Chmod {
  constructor(h, mode) { Object.assign(this, { h, mode }); }
  check() { return true; }
  async run(m, r) {
    const i = pick(m, this.h);
    const res = await outcome(() => r.files[i].chmod(this.mode));
    const hm = m.handles[i];
    const what = `${this}`;
    if (hm.closed) return checkClosed(res, what);
    // The exec seal fixes the executable bits (shmem_setattr); other bits may change.
    if (m.inode.has(S.Exec) && ((m.inode.mode ^ this.mode) & 0o111)) return assertError(res, 'EPERM', what);
    assertOk(res, what);
    m.inode.mode = this.mode;
  }
  toString() { return `chmod(h${this.h}, 0o${this.mode.toString(8)})`; }
}

class Dup {
  constructor(h, cloexec) { Object.assign(this, { h, cloexec }); }
  check(m) { return m.handles.length < 8; }
  async run(m, r) {
    const i = pick(m, this.h);
    const res = await outcome(() => r.files[i].dup(this.cloexec === undefined ? undefined : { cloexec: this.cloexec }));
    const hm = m.handles[i];
    if (hm.closed) return checkClosed(res, `${this}`);
    const f = assertOk(res, `${this}`);
    r.files.push(f);
    m.handles.push({ ofd: hm.ofd, closed: false }); // same open file description: shared position and mode
    // (A number closed by hand is free again: the new file may show it.)
    if (!hm.handClosed) assert.notEqual(f.fd, r.files[i].fd);
  }
  toString() { return `dup(h${this.h}, cloexec ${this.cloexec})`; }
}

class Reopen {
  constructor(h, readOnly) { Object.assign(this, { h, readOnly }); }
  check(m) { return m.handles.length < 8; }
  async run(m, r) {
    const i = pick(m, this.h);
    const res = await outcome(() => r.files[i].reopen(this.readOnly === undefined ? undefined : { readOnly: this.readOnly }));
    const hm = m.handles[i];
    const what = `${this}`;
    if (hm.closed) return checkClosed(res, what);
    // Opening /proc/self/fd/N is a new open(2) of the inode: the mode bits decide (root bypasses them),
    // not the access mode of the handle it came from.
    if (!canOpen(m.inode.mode, !this.readOnly)) return assertError(res, 'EACCES', what);
    const f = assertOk(res, what);
    assert.equal(f.origin, 'reopened');
    r.files.push(f);
    m.handles.push({ ofd: { pos: 0n, readOnly: !!this.readOnly }, closed: false });
  }
  toString() { return `reopen(h${this.h}, readOnly ${this.readOnly})`; }
}

/** Keeps one handle open most of the time, so that closed handles do not swallow the rest of a run. */
function mayClose(m) {
  return m.handles.filter((h) => !h.closed).length >= 2;
}

class Close {
  constructor(h) { this.h = h; }
  check(m) { return mayClose(m); }
  async run(m, r) {
    const i = pick(m, this.h);
    const res = await outcome(() => r.files[i].close());
    assertOk(res, `${this}`);
    m.handles[i].closed = true;
    assert.equal(r.files[i].fd, -1);
    assert.equal(r.files[i].closed, true);
  }
  toString() { return `close(h${this.h})`; }
}

/**
 * fs.closeSync(file.fd): a mistake the library must survive. The MemFile works on a private fd, so in the
 * model nothing changes; the number is then reused by a decoy file that the library must never touch.
 */
class CloseFdByHand {
  constructor(h) { this.h = h; }
  check(m) { return m.handles.some((h) => !h.closed); }
  async run(m, r) {
    const i = pick(m, this.h);
    if (m.handles[i].closed || m.handles[i].handClosed) return;
    const n = r.files[i].fd;
    closeSync(n);
    m.handles[i].handClosed = true;
    r.decoys.push(openSync('/dev/null', 'r')); // most likely gets n back
    count('fd closed by hand');
  }
  toString() { return `closeSync(h${this.h}.fd)`; }
}

/** Drops a MemFile without closing it: the garbage collector's safety net closes it (maybe with a decoy on its number). */
class Forget {
  constructor(h) { this.h = h; }
  check(m) { return mayClose(m) && typeof globalThis.gc === 'function'; }
  async run(m, r) {
    const i = pick(m, this.h);
    if (m.handles[i].closed) return;
    r.files[i] = r.placeholder; // a closed MemFile: what the model expects from a closed handle
    m.handles[i].closed = true;
    globalThis.gc();
    await new Promise((resolve) => setImmediate(resolve));
    count('forgotten');
  }
  toString() { return `forget(h${this.h})`; }
}

/** Wrong types and out-of-range arguments: refused before any syscall, with the file unchanged. */
const MISUSE = [
  ['writeSync(123)', (f) => f.writeSync(123), 'ERR_INVALID_ARG_TYPE'],
  ['writeSync(undefined)', (f) => f.writeSync(undefined), 'ERR_INVALID_ARG_TYPE'],
  ['writeSync(null)', (f) => f.writeSync(null), 'ERR_INVALID_ARG_TYPE'],
  ['writeSync({})', (f) => f.writeSync({}), 'ERR_INVALID_ARG_TYPE'],
  ['writeSync([1,2])', (f) => f.writeSync([1, 2]), 'ERR_INVALID_ARG_TYPE'],
  ['writeSync(buf, {offset: 5})', (f) => f.writeSync(Buffer.alloc(4), { offset: 5 }), 'ERR_OUT_OF_RANGE'],
  ['writeSync(buf, {length: 5})', (f) => f.writeSync(Buffer.alloc(4), { length: 5 }), 'ERR_OUT_OF_RANGE'],
  ['readSync("abc")', (f) => f.readSync('abc'), 'ERR_INVALID_ARG_TYPE'],
  ['readSync(undefined)', (f) => f.readSync(undefined), 'ERR_INVALID_ARG_TYPE'],
  ['readSync(buf, {offset: 5})', (f) => f.readSync(Buffer.alloc(4), { offset: 5 }), 'ERR_OUT_OF_RANGE'],
  ['readSync(buf, {offset: 2, length: 3})', (f) => f.readSync(Buffer.alloc(4), { offset: 2, length: 3 }), 'ERR_OUT_OF_RANGE'],
  ['readSync(buf, {offset: -1})', (f) => f.readSync(Buffer.alloc(4), { offset: -1 }), 'ERR_OUT_OF_RANGE'],
  ['readSync(buf, {offset: "1"})', (f) => f.readSync(Buffer.alloc(4), { offset: '1' }), 'ERR_INVALID_ARG_TYPE'],
  ['readSync(buf, {length: 1.5})', (f) => f.readSync(Buffer.alloc(4), { length: 1.5 }), 'ERR_OUT_OF_RANGE'],
  ['write(123)', (f) => f.write(123), 'ERR_INVALID_ARG_TYPE'],
  ['write(buf, -5)', (f) => f.write(Buffer.alloc(1), -5), 'ERR_OUT_OF_RANGE'],
  ['read("x")', (f) => f.read('x'), 'ERR_INVALID_ARG_TYPE'],
  ['read(buf, 1.5)', (f) => f.read(Buffer.alloc(1), 1.5), 'ERR_OUT_OF_RANGE'],
  ['allocate(0, 0)', (f) => f.allocate(0, 0), 'ERR_OUT_OF_RANGE'],
  ['allocate(-1, 1)', (f) => f.allocate(-1, 1), 'ERR_OUT_OF_RANGE'],
  ['allocate(0, 1, {keepSize: 1})', (f) => f.allocate(0, 1, { keepSize: 1 }), 'ERR_INVALID_ARG_TYPE'],
  ['allocate(0, 1, "x")', (f) => f.allocate(0, 1, 'x'), 'ERR_INVALID_ARG_TYPE'],
  ['allocate("0", 1)', (f) => f.allocate('0', 1), 'ERR_INVALID_ARG_TYPE'],
  ['punchHole(0, 0)', (f) => f.punchHole(0, 0), 'ERR_OUT_OF_RANGE'],
  ['punchHole(0, -1)', (f) => f.punchHole(0, -1), 'ERR_OUT_OF_RANGE'],
  ['punchHole(0, 2**53)', (f) => f.punchHole(0, 2 ** 53), 'ERR_OUT_OF_RANGE'],
  ['chmod(0o10000)', (f) => f.chmod(0o10000), 'ERR_OUT_OF_RANGE'],
  ['chmod("755")', (f) => f.chmod('755'), 'ERR_INVALID_ARG_TYPE'],
  ['chmod(-1)', (f) => f.chmod(-1), 'ERR_OUT_OF_RANGE'],
  ['reopen({readOnly: 1})', (f) => f.reopen({ readOnly: 1 }), 'ERR_INVALID_ARG_TYPE'],
  ['reopen("ro")', (f) => f.reopen('ro'), 'ERR_INVALID_ARG_TYPE'],
  ['dup({cloexec: "no"})', (f) => f.dup({ cloexec: 'no' }), 'ERR_INVALID_ARG_TYPE'],
  ['createReadStream({start: 5, end: 1})', (f) => f.createReadStream({ start: 5, end: 1 }), 'ERR_OUT_OF_RANGE'],
  ['createReadStream({highWaterMark: 0})', (f) => f.createReadStream({ highWaterMark: 0 }), 'ERR_OUT_OF_RANGE'],
  ['createWriteStream({start: -1})', (f) => f.createWriteStream({ start: -1 }), 'ERR_OUT_OF_RANGE'],
];

class Misuse {
  constructor(h, which) { Object.assign(this, { h, which }); }
  check() { return true; }
  async run(m, r) {
    const i = pick(m, this.h);
    const [name, call, code] = MISUSE[this.which];
    const res = await outcome(() => call(r.files[i]));
    if (m.handles[i].closed) return checkClosed(res, name);
    assertError(res, code, name);
  }
  toString() { return `misuse(h${this.h}, ${MISUSE[this.which][0]})`; }
}

const handleIndex = fc.nat({ max: 31 });
const writeSync = fc.tuple(handleIndex, dataSpec, positionSpec, fc.boolean()).map(([h, d, p, form]) => new WriteSync(h, d, p, form));
const addSeals = fc.tuple(handleIndex, sealSpec).map(([h, s]) => new AddSeals(h, s, null));
const truncate = fc.tuple(handleIndex, sizeSpec, fc.nat({ max: 9 })).map(([h, s, n]) => new Truncate(h, s, n === 0));
const commands = [
  // Listed twice or three times: more likely (writes, seals and size changes make the interesting states).
  writeSync, writeSync, writeSync, addSeals, addSeals, truncate,
  fc.tuple(handleIndex, fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 64 })).map(([h, d, e]) => new WriteAcrossEof(h, d, e)),
  fc.tuple(handleIndex, fc.nat({ max: 200 }), positionSpec, fc.boolean()).map(([h, len, p, form]) => new ReadSync(h, len, p, form)),
  fc.tuple(positionSpec.filter((p) => 'rel' in p || 'abs' in p),
    fc.array(fc.oneof(
      fc.record({ kind: fc.constant('write'), h: handleIndex, data: dataSpec }),
      fc.record({ kind: fc.constant('read'), h: handleIndex, len: fc.nat({ max: 300 }) }),
    ), { minLength: 2, maxLength: 6 })).map(([base, ops]) => new AsyncBatch(base, ops)),
  fc.tuple(handleIndex, fc.constantFrom('write', 'read'), dataSpec, fc.nat({ max: 100 })).map(([h, k, d, len]) => new AsyncAtCurrent(h, k, d, len)),
  fc.tuple(handleIndex, dataSpec, fc.integer({ min: 0, max: 3 * PAGE })).map(([h, d, pos]) => new WriteThenClose(h, d, pos)),
  truncate,
  fc.tuple(handleIndex, positionSpec, fc.oneof(fc.integer({ min: 1, max: 2 * PAGE }), fc.constant(0)),
    fc.constantFrom(undefined, false, true)).map(([h, o, len, k]) => new Allocate(h, o, len, k)),
  fc.tuple(handleIndex, fc.boolean()).map(([h, k]) => new AllocateHugeRefused(h, k)),
  fc.tuple(handleIndex, positionSpec, fc.oneof(fc.integer({ min: 1, max: 3 * PAGE }), fc.constantFrom(0, MAX_SAFE, 2 ** 40)))
    .map(([h, o, len]) => new PunchHole(h, o, len)),
  fc.tuple(handleIndex, fc.constantFrom(...badSeals)).map(([h, b]) => new AddSeals(h, null, b)),
  handleIndex.map((h) => new Observe(h)),
  fc.tuple(handleIndex, fc.integer({ min: 0, max: 0o777 })).map(([h, mode]) => new Chmod(h, mode)),
  fc.tuple(handleIndex, fc.constantFrom(undefined, true, false)).map(([h, c]) => new Dup(h, c)),
  fc.tuple(handleIndex, fc.constantFrom(undefined, true, false, true)).map(([h, ro]) => new Reopen(h, ro)),
  handleIndex.map((h) => new Close(h)),
  fc.tuple(handleIndex, fc.nat({ max: MISUSE.length - 1 })).map(([h, w]) => new Misuse(h, w)),
  handleIndex.map((h) => new CloseFdByHand(h)),
  handleIndex.map((h) => new Forget(h)),
];

const createOptions = fc.record({
  allowSealing: fc.constantFrom(undefined, true, false),
  exec: fc.constantFrom(undefined, false, true),
  cloexec: fc.constantFrom(undefined, true, false),
  name: fc.oneof(fc.constant(undefined), fc.string({ maxLength: 40 }).filter((s) => !s.includes('\0')),
    fc.constant('x'.repeat(249)), fc.constant('é'.repeat(124))),
}, { requiredKeys: [] });

/** The model's initial state for MemFile.create options (memfd_create with MFD_NOEXEC_SEAL or MFD_EXEC). */
function initialInode(opts) {
  if (opts.exec === true) return new Inode(opts.allowSealing === false ? S.Seal : 0, 0o777);
  return new Inode(S.Exec | (opts.allowSealing === false ? S.Seal : 0), 0o666);
}

test('MemFile model: random operation sequences match the kernel model', async () => {
  const fdsBefore = fdCount();
  let runs = 0;
  let steps = 0;
  await fc.assert(
    fc.asyncProperty(createOptions, fc.commands(commands, { maxCommands: 60, size: '+1' }), async (opts, cmds) => {
      runs++;
      const { name, ...options } = opts;
      const res = await outcome(() => MemFile.create(name, options));
      if (opts.exec === true && MEMFD_NOEXEC === 2) {
        assertError(res, 'EACCES', 'exec: true under vm.memfd_noexec = 2');
        return;
      }
      const file = assertOk(res, `create(${describe(opts)})`);
      const placeholder = MemFile.create('forgotten');
      placeholder.close();
      // decoys: files opened on numbers closed by hand; the library must never close or write them.
      const real = { files: [file], decoys: [], placeholder };
      try {
        assert.equal(file.name, name ?? 'memfd');
        assert.equal(file.origin, 'created');
        const inode = initialInode(opts);
        assert.equal(file.getSeals().bits, inode.seals, `initial seals ${file.getSeals()}`);
        assert.equal(file.stat().mode & 0o7777, inode.mode, 'initial mode');
        const model = { inode, handles: [{ ofd: { pos: 0n, readOnly: false }, closed: false }] };
        await fc.asyncModelRun(() => ({ model, real }), [...cmds].map((c) => ({
          check: (m) => c.check(m),
          run: async (m, r) => {
            steps++;
            if (process.env.MEMFD_MODEL_TRACE) appendFileSync(process.env.MEMFD_MODEL_TRACE, `${c}\n`);
            await c.run(m, r);
          },
          toString: () => c.toString(),
        })));
      } finally {
        for (const f of real.files) f.close();
        if (real.decoys.length > 0 && typeof globalThis.gc === 'function') {
          globalThis.gc();
          await new Promise((resolve) => setImmediate(resolve));
        }
        for (const fd of real.decoys) {
          const st = fstatSync(fd);
          assert.ok(st.isCharacterDevice() && st.size === 0, `decoy fd ${fd} was closed, replaced or written by the library`);
          closeSync(fd);
        }
      }
    }),
    fuzzParams(300),
  );
  if (typeof globalThis.gc === 'function') await collectGarbage();
  assert.ok(runs > 0 && steps > runs, `ran ${runs} sequences, ${steps} steps`);
  assert.equal(fdCount(), fdsBefore, 'no fd leaked by any run');
  console.log(`# model-memfile: ${runs} runs, ${steps} steps; outcomes ${JSON.stringify(Object.fromEntries(tally))}`);
  // The answers that make this test worth running must really have been exercised.
  if (!process.env.MEMFD_FUZZ_PATH) {
    const needsGc = typeof globalThis.gc === 'function' ? ['forgotten'] : [];
    for (const code of ['ok', 'fd closed by hand', ...needsGc, 'partial write under grow seal', 'EPERM', 'EBADF', 'EINVAL', 'ERR_MEMFD_CLOSED', 'ERR_OUT_OF_RANGE', 'ERR_INVALID_ARG_TYPE',
      'ERR_INVALID_ARG_VALUE']) {
      assert.ok((tally.get(code) ?? 0) > 0, `no ${code} outcome in ${runs} runs: the generators no longer reach it`);
    }
  }
});

test('MemFile model: creation arguments are validated before any syscall', async () => {
  const before = fdCount();
  const cases = [
    [() => MemFile.create('a\0b'), 'ERR_INVALID_ARG_VALUE'],
    [() => MemFile.create('x'.repeat(250)), 'ERR_OUT_OF_RANGE'],
    [() => MemFile.create('é'.repeat(125)), 'ERR_OUT_OF_RANGE'],
    [() => MemFile.create(123), 'ERR_INVALID_ARG_TYPE'],
    [() => MemFile.create(null), 'ERR_INVALID_ARG_TYPE'],
    [() => MemFile.create('o', 'x'), 'ERR_INVALID_ARG_TYPE'],
    [() => MemFile.create('o', []), 'ERR_INVALID_ARG_TYPE'],
    [() => MemFile.create('o', { exec: 'yes' }), 'ERR_INVALID_ARG_TYPE'],
    [() => MemFile.create('o', { allowSealing: 0 }), 'ERR_INVALID_ARG_TYPE'],
    [() => MemFile.create('o', { hugeTLB: '3MB' }), 'ERR_INVALID_ARG_VALUE'],
    [() => MemFile.create('o', { hugeTLB: 2 }), 'ERR_INVALID_ARG_TYPE'],
    [() => MemFile.from(42), 'ERR_INVALID_ARG_TYPE'],
    [() => MemFile.from('x', { seal: 0x40 }), 'ERR_OUT_OF_RANGE'],
    [() => MemFile.fromFd(-1), 'ERR_OUT_OF_RANGE'],
    [() => MemFile.fromFd(2 ** 31), 'ERR_OUT_OF_RANGE'],
    [() => MemFile.fromFd('3'), 'ERR_INVALID_ARG_TYPE'],
    [() => MemFile.fromFd(1.5), 'ERR_OUT_OF_RANGE'],
    [() => MemFile.isMemFd(-3), 'ERR_OUT_OF_RANGE'],
  ];
  for (const [call, code] of cases) assertError(await outcome(call), code, call.toString());
  assert.throws(() => new MemFile(), TypeError, 'no public constructor');
  assert.equal(fdCount(), before, 'no fd was opened by a refused call');
});
