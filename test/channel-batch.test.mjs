// Channel batches: trySendMany/sendMany (a prefix that fits, one publish) and tryReceiveMany/receiveMany (a
// run of frames in one copy): order and content across wrap-around, partial sends, backpressure against a
// slow reader in a child process, max, end of stream, argument errors before any write, busy rules with
// loans and views, a corrupted ring (in a child process), and the Python peer of examples/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import fc from 'fast-check';
import { Channel, ChannelBatch, MemFile } from '../dist/index.js';
import { run, runNode } from './helpers.mjs';

const PEER = new URL('./channel-peer.mjs', import.meta.url).pathname;
const PY = new URL('../examples/channel-python.py', import.meta.url).pathname;
const delay = (ms) => new Promise((r) => setTimeout(r, ms));

function pair(options) {
  const a = Channel.create(options);
  const b = Channel.fromFd(a.dupFd());
  return { a, b, close() { a.close(); b.close(); } };
}

/** The i-th message of the cross-process test (channel-peer.mjs 'batch-slow-reader' checks the same). */
function batchMessage(i) {
  const m = Buffer.alloc((i * 37) % 300);
  for (let j = 0; j < m.length; j++) m[j] = (i + j) & 0xff;
  if (m.length >= 4) m.writeUInt32LE(i, 0);
  return m;
}

/** Every message of a batch, through all three ways of reading it, which must agree. */
function messagesOf(batch) {
  assert.ok(batch instanceof ChannelBatch);
  assert.ok(batch.count >= 1);
  const viaMessage = [], viaOffsets = [];
  for (let i = 0; i < batch.count; i++) {
    viaMessage.push(Buffer.from(batch.message(i)));
    const start = batch.offsetOf(i);
    assert.ok(start + batch.lengthOf(i) <= batch.bytes.length);
    viaOffsets.push(Buffer.from(batch.bytes.subarray(start, start + batch.lengthOf(i))));
  }
  assert.deepEqual(viaOffsets, viaMessage);
  assert.deepEqual([...batch].map((m) => Buffer.from(m)), viaMessage);
  return viaMessage;
}

test('model: batches of random sizes (0-byte messages included) keep order and content through wrap-around', () => {
  fc.assert(fc.property(
    fc.constantFrom(64, 128, 256, 1024),
    fc.array(fc.oneof(
      fc.array(fc.oneof(fc.nat(40), fc.nat(300), fc.constant(0)), { maxLength: 12 }), // a trySendMany
      fc.integer({ min: 1, max: 6 }).map((max) => ({ max })), // a tryReceiveMany(max)
      fc.constant({ max: undefined }),
    ), { minLength: 1, maxLength: 120 }),
    (size, ops) => {
      const { a, b, close } = pair({ size });
      try {
        const pending = [];
        let seq = 0;
        const receive = (max) => {
          const batch = b.tryReceiveMany(max);
          if (batch === undefined) {
            assert.equal(pending.length, 0, 'undefined only when nothing was sent (a padding frame is skipped)');
            return 0;
          }
          if (max !== undefined) assert.ok(batch.count <= max, `${batch.count} > max ${max}`);
          assert.ok(batch.bytes.length <= size, 'a batch never copies more than the ring');
          for (const got of messagesOf(batch)) assert.deepEqual(got, pending.shift());
          return batch.count;
        };
        for (const op of ops) {
          if (!Array.isArray(op)) {
            receive(op.max);
            continue;
          }
          const msgs = op.map((n) => {
            const m = Buffer.alloc(n % (size - 3), seq & 0xff);
            if (m.length >= 4) m.writeUInt32LE(seq, 0);
            seq++;
            return m;
          });
          let sent = a.trySendMany(msgs);
          assert.ok(sent >= 0 && sent <= msgs.length);
          if (sent === 0 && msgs.length > 0 && pending.length === 0) {
            // An empty ring takes the first message once the reader has skipped a wrap's padding.
            assert.equal(b.tryReceiveMany(), undefined);
            sent = a.trySendMany(msgs);
            assert.ok(sent >= 1);
          }
          pending.push(...msgs.slice(0, sent));
        }
        while (pending.length > 0) assert.ok(receive() > 0, 'what was sent arrives');
        assert.equal(b.tryReceiveMany(), undefined);
        assert.equal(b.tryReceive(), undefined);
      } finally {
        close();
      }
    }), { numRuns: 150 });
});

test('batch reading and per-message calls mix on one ring', (t) => {
  const { a, b, close } = pair({ size: 1024 });
  t.after(close);
  for (let round = 0; round < 40; round++) {
    const msgs = Array.from({ length: 7 }, (_, i) => Buffer.alloc((round * 7 + i) % 90, round));
    assert.equal(a.trySendMany(msgs.slice(0, 3)), 3);
    assert.equal(a.trySend(msgs[3]), true);
    assert.equal(a.trySendMany(msgs.slice(4)), 3);
    assert.deepEqual(b.tryReceive(), msgs[0]);
    const got = [];
    while (got.length < 6) got.push(...messagesOf(b.tryReceiveMany(4)));
    assert.deepEqual(got, msgs.slice(1));
    assert.equal(b.tryReceiveMany(), undefined);
  }
});

test('trySendMany sends the prefix that fits and publishes it once; a run ends at the padding of a wrap', (t) => {
  const { a, b, close } = pair({ size: 256 });
  t.after(close);
  const msgs = Array.from({ length: 10 }, (_, i) => Buffer.alloc(40, i)); // 48-byte frames: 5 fit
  assert.equal(a.trySendMany(msgs), 5);
  assert.equal(a.trySendMany(msgs.slice(5)), 0, 'a full ring takes none');
  assert.equal(a.trySendMany([]), 0);
  const batch = b.tryReceiveMany();
  assert.deepEqual(messagesOf(batch), msgs.slice(0, 5));
  assert.equal(batch.bytes.length, 5 * 48, 'the copy ends at the tail');
  assert.equal(b.tryReceiveMany(), undefined);

  const { a: c, b: d, close: close2 } = pair({ size: 256 });
  t.after(close2);
  assert.equal(c.trySendMany(msgs.slice(0, 3)), 3);
  assert.equal(d.tryReceiveMany().count, 3); // head at ring offset 144
  // Frames at 144 and 192; 240..255 is too short for the third: padding there, then offsets 0 and 48.
  assert.equal(c.trySendMany(msgs.slice(3, 7)), 4);
  const beforeWrap = d.tryReceiveMany();
  assert.deepEqual(messagesOf(beforeWrap), msgs.slice(3, 5), 'a run ends at the padding of a wrap');
  assert.equal(beforeWrap.bytes.length, 2 * 48, 'the copy holds no padding');
  assert.deepEqual(messagesOf(d.tryReceiveMany()), msgs.slice(5, 7));
  assert.equal(d.tryReceiveMany(), undefined);
  assert.equal(c.trySendMany(msgs.slice(0, 6)), 5, 'the padding was consumed with the run before it');
});

test('one trySendMany rings a sleeping reader once, where trySend rings per message', (t) => {
  const { a, b, close } = pair({ size: 4096 });
  t.after(close);
  // End B's sleep flags (bit 0: waits for data) and bell, as a sleeping reader leaves them (docs/channel.md).
  const file = MemFile.fromFd(a.dupFd());
  const mapping = file.map();
  t.after(() => { mapping.unmap(); file.close(); });
  const header = new Int32Array(mapping.buffer, 0, 1024);
  const SLEEP_B = (64 + 64 + 4) / 4, BELL_B = (64 + 64 + 8) / 4;
  const msgs = Array.from({ length: 10 }, (_, i) => `m${i}`);
  Atomics.store(header, SLEEP_B, 1);
  let bell = Atomics.load(header, BELL_B);
  assert.equal(a.trySendMany(msgs), 10);
  assert.equal(Atomics.load(header, BELL_B) - bell, 1, 'one wake-up for the batch');
  bell = Atomics.load(header, BELL_B);
  for (const m of msgs) a.trySend(m);
  assert.equal(Atomics.load(header, BELL_B) - bell, 10, 'one per message without a batch');
  Atomics.store(header, SLEEP_B, 0);
  bell = Atomics.load(header, BELL_B);
  a.trySendMany(msgs);
  assert.equal(Atomics.load(header, BELL_B), bell, 'none while the reader is awake');
  assert.equal(b.tryReceiveMany().count, 30);
});

test('receiveMany honours max, waits for a message, and returns the rest then null after the peer closed', async (t) => {
  const { a, b, close } = pair({ size: 4096 });
  t.after(close);
  const msgs = Array.from({ length: 10 }, (_, i) => `m${i}`);
  assert.equal(a.trySendMany(msgs), 10);
  assert.deepEqual(messagesOf(await b.receiveMany(3)).map(String), msgs.slice(0, 3));
  assert.deepEqual(messagesOf(b.tryReceiveMany(4)).map(String), msgs.slice(3, 7));
  assert.deepEqual(messagesOf(b.tryReceiveMany(1)).map(String), msgs.slice(7, 8));
  assert.deepEqual(messagesOf(b.tryReceiveMany()).map(String), msgs.slice(8));
  const pending = b.receiveMany();
  await delay(20);
  a.trySendMany(['late', '', 'r']);
  a.close();
  assert.deepEqual(messagesOf(await pending).map(String), ['late', '', 'r']);
  assert.equal(await b.receiveMany(), null);
  assert.equal(b.tryReceiveMany(), undefined);
  assert.equal(b.ended, true);
  // A pending receiveMany ends with null when this end closes; a closed end returns null at once.
  const { a: c, b: d, close: close2 } = pair({ size: 4096 });
  t.after(close2);
  const waiting = d.receiveMany();
  await delay(10);
  d.close();
  assert.equal(await waiting, null);
  assert.equal(await d.receiveMany(), null);
  assert.throws(() => d.tryReceiveMany(), { code: 'ERR_MEMFD_CHANNEL_CLOSED' });
  assert.throws(() => c.trySendMany(['x']), { code: 'ERR_MEMFD_CHANNEL_CLOSED' });
  await assert.rejects(c.sendMany(['x']), { code: 'ERR_MEMFD_CHANNEL_CLOSED' });
});

test('a batch: accessors, index errors, views into its own copy that later sends do not change', (t) => {
  const { a, b, close } = pair({ size: 256 });
  t.after(close);
  a.trySendMany([Buffer.from('abc'), Buffer.alloc(0), new Uint16Array([0x4241]), 'é']);
  const batch = b.tryReceiveMany();
  assert.equal(batch.count, 4);
  assert.deepEqual([0, 1, 2, 3].map((i) => batch.lengthOf(i)), [3, 0, 2, 2]);
  assert.deepEqual([0, 1, 2, 3].map((i) => batch.offsetOf(i)), [4, 12, 20, 28]);
  assert.equal(batch.message(2).toString(), 'AB');
  assert.equal(batch.message(3).toString(), 'é');
  assert.equal(batch.message(0).buffer, batch.bytes.buffer, 'a message is a view into the batch');
  for (const bad of [-1, 4, 1.5, NaN, 2 ** 32]) {
    assert.throws(() => batch.message(bad), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => batch.offsetOf(bad), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => batch.lengthOf(bad), { code: 'ERR_OUT_OF_RANGE' });
  }
  assert.throws(() => batch.message('1'), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  assert.equal(Object.prototype.toString.call(batch), '[object ChannelBatch]');
  const kept = batch.message(0);
  for (let i = 0; i < 20; i++) {
    a.trySendMany([Buffer.alloc(100, 0xee)]);
    b.tryReceiveMany();
  }
  assert.equal(kept.toString(), 'abc', 'the batch owns its copy');
});

test('release() detaches everything the batch handed out and recycles its memory for the next batch', (t) => {
  const { a, b, close } = pair({ size: 4096 });
  t.after(close);
  a.trySendMany(['first', 'second']);
  const batch = b.tryReceiveMany();
  const first = batch.message(0), bytes = batch.bytes, iterated = [...batch];
  assert.equal(batch.released, false);
  batch.release();
  assert.equal(batch.released, true);
  for (const view of [first, bytes, batch.bytes, ...iterated]) assert.equal(view.length, 0, 'detached');
  assert.equal(first[0], undefined);
  assert.throws(() => batch.message(0), { code: 'ERR_MEMFD_CHANNEL_BATCH_RELEASED' });
  assert.equal(batch.count, 2);
  assert.equal(batch.lengthOf(1), 6);
  batch.release(); // harmless
  // The next batches (in the recycled memory, and larger ones in new memory) are whole and correct.
  for (let round = 0; round < 50; round++) {
    const msgs = Array.from({ length: 1 + (round % 9) }, (_, i) => Buffer.alloc((round * 13 + i * 29) % 400, round + i));
    assert.equal(a.trySendMany(msgs), msgs.length);
    const got = [];
    while (got.length < msgs.length) {
      const next = b.tryReceiveMany();
      got.push(...messagesOf(next));
      if (round % 2 === 0) next.release();
      else next[Symbol.dispose]();
    }
    assert.deepEqual(got, msgs);
    assert.equal(first.length, 0, 'an old view never shows a later batch');
  }
  // After close a release is harmless.
  a.trySendMany(['x']);
  const last = b.tryReceiveMany();
  b.close();
  last.release();
  assert.equal(last.bytes.length, 0);
});

test('argument errors come before anything is written', async (t) => {
  const { a, b, close } = pair({ size: 256 });
  t.after(close);
  for (const bad of [42, 'abc', Buffer.from('x'), { length: 1, 0: 'x' }, undefined]) {
    assert.throws(() => a.trySendMany(bad), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    await assert.rejects(a.sendMany(bad), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  }
  assert.throws(() => a.trySendMany(['ok', 42]), { code: 'ERR_INVALID_ARG_TYPE', message: /messages\[1\]/ });
  assert.throws(() => a.trySendMany(['ok', null]), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => a.trySendMany(['ok', Buffer.alloc(253)]),
    { name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: /messages\[1\]\.byteLength/ });
  assert.throws(() => a.trySendMany(['x', 'é'.repeat(127)]), { code: 'ERR_OUT_OF_RANGE' }); // 254 bytes of UTF-8
  await assert.rejects(a.sendMany([Buffer.alloc(1), Buffer.alloc(300)]), { code: 'ERR_OUT_OF_RANGE' });
  for (const bad of [0, -1, 1.5, NaN, Infinity]) {
    assert.throws(() => b.tryReceiveMany(bad), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    await assert.rejects(b.receiveMany(bad), { code: 'ERR_OUT_OF_RANGE' });
  }
  assert.throws(() => b.tryReceiveMany('2'), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.equal(b.tryReceive(), undefined, 'nothing was written by the refused calls');
  // A sparse array: the hole is undefined, a TypeError.
  assert.throws(() => a.trySendMany([, 'x']), { code: 'ERR_INVALID_ARG_TYPE' }); // eslint-disable-line no-sparse-arrays
  assert.equal(a.trySendMany(['', Buffer.alloc(252), new ArrayBuffer(3), new DataView(new ArrayBuffer(8), 2, 4)]), 1);
  assert.equal(b.tryReceiveMany().count, 1);
});

test('busy rules: loans and views, and the order of pending sends and receives', async (t) => {
  const { a, b, close } = pair({ size: 1024 });
  t.after(close);
  const loan = a.tryReserve(10);
  assert.throws(() => a.trySendMany(['x']), { code: 'ERR_MEMFD_CHANNEL_BUSY' });
  const many = a.sendMany(['after', 'the', 'loan']); // waits for the loan
  assert.throws(() => a.trySend('x'), { code: 'ERR_MEMFD_CHANNEL_BUSY' });
  const single = a.send('last');
  loan.bytes.fill(0x6c);
  loan.commit(4);
  await Promise.all([many, single]);

  const view = b.tryReceiveView();
  assert.equal(Buffer.from(view.bytes).toString(), 'llll');
  assert.throws(() => b.tryReceiveMany(), { code: 'ERR_MEMFD_CHANNEL_BUSY' });
  const batchAfterView = b.receiveMany(2); // waits for the release
  const receiveAfter = b.receive();
  view.release();
  assert.equal(b.tryReceiveMany(), undefined, 'a try call never overtakes pending receives');
  assert.deepEqual(messagesOf(await batchAfterView).map(String), ['after', 'the']);
  assert.equal((await receiveAfter).toString(), 'loan');
  assert.deepEqual(messagesOf(b.tryReceiveMany()).map(String), ['last']);

  // Ordered with other sends: a partial sendMany keeps its place in front of a later send.
  const msgs = Array.from({ length: 30 }, (_, i) => Buffer.alloc(60, i)); // 64-byte frames: 16 fit
  const p1 = a.sendMany(msgs);
  const p2 = a.send('tail');
  assert.equal(a.trySendMany(['overtake?']), 0, 'a try call never overtakes a pending sendMany');
  assert.equal(a.trySend('overtake?'), false);
  let settled = false;
  void p1.then(() => { settled = true; });
  await delay(20);
  assert.equal(settled, false, 'sendMany waits for room');
  const got = [];
  while (got.length < 31) {
    const batch = await b.receiveMany(7);
    got.push(...messagesOf(batch));
  }
  await Promise.all([p1, p2]);
  assert.deepEqual(got, [...msgs, Buffer.from('tail')]);
  // The caller's array may change after the call: what was passed is what is sent.
  const list = ['one', 'two'];
  let filled = 0;
  while (a.trySend('')) filled++; // 8-byte frames: the ring is full to the last byte
  const p3 = a.sendMany(list);
  list[0] = 'changed';
  list.length = 1;
  const got2 = [];
  while (got2.length < filled + 2) got2.push(...messagesOf(await b.receiveMany()));
  await p3;
  assert.deepEqual(got2.slice(filled).map(String), ['one', 'two']);
});

test('a pending sendMany rejects when an end closes (after sending the prefix that fit)', async (t) => {
  const { a, b, close } = pair({ size: 256 });
  t.after(close);
  const p = a.sendMany(Array.from({ length: 10 }, () => Buffer.alloc(40)));
  await delay(10);
  b.close();
  await assert.rejects(p, { code: 'ERR_MEMFD_CHANNEL_CLOSED' });
  const { a: c, close: close2 } = pair({ size: 256 });
  t.after(close2);
  const q = c.sendMany(Array.from({ length: 10 }, () => Buffer.alloc(40)));
  c.close();
  await assert.rejects(q, { code: 'ERR_MEMFD_CHANNEL_CLOSED' });
});

test('sendMany against a slow reader in a child process: backpressure, order, content', async (t) => {
  const ch = Channel.create({ size: 1024 });
  t.after(() => ch.close());
  const child = spawn(process.execPath, [PEER, '3', 'batch-slow-reader'], { stdio: ['ignore', 'pipe', 'inherit', ch.fd] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => JSON.parse((await lines.next()).value);
  const exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
  assert.deepEqual(await next(), { ready: true });
  const msgs = Array.from({ length: 1000 }, (_, i) => batchMessage(i));
  const t0 = performance.now();
  let done = false;
  const sending = ch.sendMany(msgs).then(() => { done = true; });
  const last = ch.send('end');
  assert.equal(ch.trySendMany(['no']), 0, 'queued behind the pending sendMany');
  await delay(20);
  assert.equal(done, false, 'the ring (1 KiB) holds a few of the 150 KB: sendMany waits for the reader');
  await sending;
  await last;
  // The reader takes at most 5 messages per millisecond: 1000 need at least about 200 ms.
  assert.ok(performance.now() - t0 >= 150, `sendMany resolved after ${(performance.now() - t0).toFixed(0)} ms`);
  ch.close();
  const report = await next();
  assert.deepEqual({ ...report, batches: undefined, largest: undefined },
    { received: 1001, bad: 0, last: 'end', batches: undefined, largest: undefined });
  assert.ok(report.largest <= 5 && report.largest > 1, `largest batch ${report.largest}`);
  assert.deepEqual(await exited, { code: 0, signal: null });
});

test('a corrupted ring gives ERR_MEMFD_CHANNEL_CORRUPT to the batch reader, never a crash or bytes past the tail', async () => {
  // In a child process: a bug here could mean an out-of-bounds access.
  const r = await runNode(`
    import { Channel, MemFile } from './dist/index.js';
    const results = [];
    const attempt = (label, fn) => {
      try { const v = fn(); results.push(label + ': no error ' + (v && v.count)); } catch (e) { results.push(label + ': ' + e.code); }
    };
    const scenario = (label, corruptFn, action) => {
      const a = Channel.create({ size: 256 });
      const b = Channel.fromFd(a.dupFd());
      const evil = MemFile.fromFd(a.dupFd()).map();
      const h = new Int32Array(evil.buffer);
      const u32 = new Uint32Array(evil.buffer);
      corruptFn({ a, b, h, u32 });
      attempt(label, () => action({ a, b }));
      attempt(label + ' (again)', () => action({ a, b }));
      a.close(); b.close(); evil.unmap();
    };
    // ring 0 (A to B): tail at byte 256, head at 320; data at 4096. Three frames of 8 bytes ('abcd').
    const three = (a) => a.trySendMany(['abcd', 'efgh', 'ijkl']);
    scenario('tail beyond the ring', ({ h }) => { h[256 / 4] = 4096; }, ({ b }) => b.tryReceiveMany());
    scenario('misaligned tail', ({ a, h }) => { three(a); h[256 / 4] = 20; }, ({ b }) => b.tryReceiveMany());
    scenario('second length beyond the ring', ({ a, u32 }) => { three(a); u32[(4096 + 8) / 4] = 0x7fffffff; }, ({ b }) => b.tryReceiveMany());
    scenario('second length passes the tail', ({ a, u32 }) => { three(a); u32[(4096 + 8) / 4] = 20; }, ({ b }) => b.tryReceiveMany());
    scenario('last length passes the tail', ({ a, u32 }) => { three(a); u32[(4096 + 16) / 4] = 5; }, ({ b }) => b.tryReceiveMany());
    scenario('second frame padding past the tail', ({ a, u32 }) => { three(a); u32[(4096 + 8) / 4] = 0xffffffff; }, ({ b }) => b.tryReceiveMany());
    scenario('first frame hostile', ({ a, u32 }) => { three(a); u32[4096 / 4] = 250; }, ({ b }) => b.tryReceiveMany());
    scenario('hostile length, max 1 reads only the first', ({ a, u32 }) => { three(a); u32[(4096 + 8) / 4] = 0x7fffffff; }, ({ b }) => b.tryReceiveMany(1));
    // A tail moved back under the reader's head after a batch.
    scenario('tail behind the head', ({ a, b, h }) => { three(a); b.tryReceiveMany(); h[256 / 4] = 8; }, ({ b }) => b.tryReceiveMany());
    // A pending receiveMany rejects with it too.
    const c = Channel.create({ size: 256 });
    const d = Channel.fromFd(c.dupFd());
    const evil2 = MemFile.fromFd(c.dupFd()).map();
    const pending = d.receiveMany();
    await new Promise((r) => setTimeout(r, 20));
    c.trySendMany(['x', 'y']);
    new Uint32Array(evil2.buffer)[(4096 + 8) / 4] = 0x12345678; // before d's wake-up reaches its event loop
    try { await pending; results.push('pending: no error'); } catch (e) { results.push('pending: ' + e.code); }
    console.log(JSON.stringify(results));
    c.close(); d.close();
  `);
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.code, 0, r.stderr);
  const results = JSON.parse(r.stdout);
  assert.equal(results.length, 19);
  for (const line of results) {
    if (line.startsWith('hostile length, max 1 reads only the first:')) assert.equal(line, 'hostile length, max 1 reads only the first: no error 1');
    else if (line.startsWith('hostile length, max 1 reads only the first (again)')) assert.match(line, /ERR_MEMFD_CHANNEL_CORRUPT$/, line);
    else assert.match(line, /ERR_MEMFD_CHANNEL_CORRUPT$/, line);
  }
});

test('for await still yields one Buffer per message after batches were sent', async (t) => {
  const { a, b, close } = pair({ size: 4096 });
  t.after(close);
  a.trySendMany(['1', '2', '3']);
  for await (const m of b) {
    assert.equal(m.toString(), '1');
    break;
  }
  a.trySendMany(['4']);
  a.close();
  const rest = [];
  for await (const m of b) rest.push(m.toString());
  assert.deepEqual(rest, ['2', '3', '4']);
});

test('the Python peer: Node sends with sendMany and reads the echoes with receiveMany', async (t) => {
  const ch = Channel.create({ size: 4096 });
  t.after(() => ch.close());
  const py = spawn('python3', [PY, 'echo', '3'], { stdio: ['ignore', 'pipe', 'inherit', ch.fd] });
  let out = '';
  py.stdout.on('data', (d) => { out += d; });
  const exited = new Promise((r) => py.on('exit', (code) => r(code)));
  const msgs = Array.from({ length: 400 }, (_, i) => Buffer.alloc(i * 11 % 700, i & 0xff));
  const sender = (async () => { for (let i = 0; i < msgs.length; i += 50) await ch.sendMany(msgs.slice(i, i + 50)); })();
  const got = [];
  while (got.length < msgs.length) got.push(...messagesOf(await ch.receiveMany()));
  await sender;
  assert.deepEqual(got, msgs.map((m) => Buffer.concat([Buffer.from('py:'), m])));
  ch.close();
  assert.equal(await exited, 0);
  assert.deepEqual(JSON.parse(out), { echoed: 400 });
});

test('the batch recipe of docs/channel.md (examples/channel-batch.mjs) runs as shown on this Node', async () => {
  const r = await run(process.execPath, ['examples/channel-batch.mjs'], { cwd: new URL('..', import.meta.url).pathname });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'child: 10000 messages, total 495000, fewer batches than messages: true\n');
});
