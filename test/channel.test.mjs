// Channel inside one process (both ends here, or a Worker): claiming, message types and sizes, ordering
// under wrap-around (a fast-check model), backpressure, zero-copy lifetimes, refusals that leave the fd
// the caller's, corruption, close as end of stream, resources after close. Crossing processes, peer
// death and the Python peer: channel-process.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { Channel, MemFile, Seal } from '../dist/index.js';
import { LIB, emulationSkip, fdCount, fdCountSettled, rssBytes, runNode } from './helpers.mjs';

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/** Both ends in this process: end B is claimed from a duplicate fd. */
function pair(options) {
  const a = Channel.create(options);
  const b = Channel.fromFd(a.dupFd());
  return { a, b, close() { a.close(); b.close(); } };
}

const fdIsOpen = (fd) => { try { fstatSync(fd); return true; } catch { return false; } };

test('create and claim: ends, sizes, pids, seals', (t) => {
  const { a, b, close } = pair({ size: 5000 });
  t.after(close);
  assert.equal(a.end, 'A');
  assert.equal(b.end, 'B');
  assert.equal(a.size, 8192); // rounded up to a power of two
  assert.equal(a.maxMessageSize, 8192 - 4);
  assert.equal(a.peerPid, process.pid);
  assert.equal(b.peerPid, process.pid);
  const probe = MemFile.fromFd(a.dupFd());
  t.after(() => probe.close());
  assert.ok(probe.getSeals().has(Seal.Shrink | Seal.Grow | Seal.Seal));
  assert.equal(probe.size, 4096 + 2 * 8192);
});

test('populate: each end faults in its mapping of the rings at once; without it pages come with use', { skip: emulationSkip('populate') }, (t) => {
  const ring = 1 << 24;
  const before = rssBytes();
  const lazy = pair({ size: ring });
  t.after(lazy.close);
  assert.ok(rssBytes() - before < 4 << 20, `lazy rings: RSS grew by ${rssBytes() - before}`);
  const a = Channel.create({ size: ring, populate: true });
  t.after(() => a.close());
  const afterA = rssBytes();
  assert.ok(afterA - before >= 2 * ring - (1 << 20), `end A populated: RSS grew by ${afterA - before}`);
  const b = Channel.fromFd(a.dupFd(), { populate: true });
  t.after(() => b.close());
  assert.ok(rssBytes() - afterA >= 2 * ring - (1 << 20), `end B populated its own mapping: ${rssBytes() - afterA}`);
  assert.equal(a.trySend('populated'), true);
  assert.equal(b.tryReceive().toString(), 'populated');
  assert.throws(() => Channel.create({ populate: 1 }), { code: 'ERR_INVALID_ARG_TYPE' });
  const fd = a.dupFd();
  t.after(() => closeSync(fd));
  assert.throws(() => Channel.fromFd(fd, { populate: 'yes' }), { code: 'ERR_INVALID_ARG_TYPE' });
});

test('every accepted data type arrives as the same bytes, both ways', (t) => {
  const { a, b, close } = pair({ size: 4096 });
  t.after(close);
  const u16 = new Uint16Array([1, 2, 0xffff]);
  const inputs = [
    [Buffer.from('buf'), Buffer.from('buf')],
    [new Uint8Array([1, 2, 3]), Buffer.from([1, 2, 3])],
    [u16, Buffer.from(u16.buffer)],
    [new DataView(new Uint8Array([9, 8, 7, 6]).buffer, 1, 2), Buffer.from([8, 7])],
    [new Uint8Array([5, 6]).buffer, Buffer.from([5, 6])],
    ['héllo ✓', Buffer.from('héllo ✓')],
    ['', Buffer.alloc(0)],
    [Buffer.alloc(0), Buffer.alloc(0)],
  ];
  for (const [from, to] of [[a, b], [b, a]]) {
    for (const [input, expected] of inputs) assert.equal(from.trySend(input), true);
    for (const [, expected] of inputs) assert.deepEqual(to.tryReceive(), expected);
    assert.equal(to.tryReceive(), undefined);
  }
});

test('argument errors are thrown before anything is written', (t) => {
  const { a, b, close } = pair({ size: 256 });
  t.after(close);
  assert.throws(() => a.trySend(42), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => a.trySend(Buffer.alloc(253)), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => a.trySend('x'.repeat(253)), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => a.tryReserve(253), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => a.tryReserve(-1), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => Channel.create({ size: 2 ** 31 }), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => Channel.create({ size: '1' }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => Channel.create({ spinMicros: -1 }), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => Channel.fromFd(-1), { code: 'ERR_OUT_OF_RANGE' });
  assert.equal(b.tryReceive(), undefined, 'nothing was written by the refused calls');
  // The largest message fits an empty ring wherever the indices are, once the reader has skipped the
  // padding that the wrap needed (frames never wrap; docs/channel.md).
  for (let i = 0; i < 5; i++) {
    if (!a.trySend(Buffer.alloc(252, i))) {
      assert.equal(b.tryReceive(), undefined);
      assert.equal(a.trySend(Buffer.alloc(252, i)), true);
    }
    assert.equal(a.trySend(Buffer.alloc(0)), false);
    assert.deepEqual(b.tryReceive(), Buffer.alloc(252, i));
    assert.equal(a.trySend(Buffer.alloc(8 * i + 3, 1)), true);
    assert.equal(b.tryReceive().length, 8 * i + 3);
  }
});

test('model: random sizes, interleavings and wrap-around keep order, content and counts', () => {
  fc.assert(fc.property(
    fc.constantFrom(64, 128, 256, 1024),
    fc.array(fc.oneof(fc.nat(40), fc.nat(300), fc.constant(-1)), { minLength: 1, maxLength: 300 }),
    (size, ops) => {
      const { a, b, close } = pair({ size });
      try {
        const pending = [];
        let seq = 0;
        for (const op of ops) {
          if (op === -1) {
            const got = b.tryReceive();
            const want = pending.shift();
            if (want === undefined) assert.equal(got, undefined);
            else assert.deepEqual(got, want);
            continue;
          }
          const len = op % (size - 3); // 0 .. size - 4
          const msg = Buffer.alloc(len, seq++ & 0xff);
          if (len >= 4) msg.writeUInt32LE(seq, 0);
          if (a.trySend(msg)) pending.push(msg);
          else if (pending.length === 0) {
            // An empty ring takes any message up to maxMessageSize once the reader has skipped the
            // padding of a wrap.
            assert.equal(b.tryReceive(), undefined);
            assert.equal(a.trySend(msg), true);
            pending.push(msg);
          }
        }
        for (const want of pending) assert.deepEqual(b.tryReceive(), want);
        assert.equal(b.tryReceive(), undefined);
      } finally {
        close();
      }
    }), { numRuns: 150 });
});

test('zero copy: a loan is written in place, a view is read in place; both detach at the end', (t) => {
  const { a, b, close } = pair({ size: 256 });
  t.after(close);
  const loan = a.tryReserve(100);
  assert.equal(loan.bytes.length, 100);
  assert.throws(() => a.trySend('x'), { code: 'ERR_MEMFD_CHANNEL_BUSY' });
  loan.bytes.fill(7);
  assert.equal(b.tryReceive(), undefined, 'nothing is visible before commit');
  loan.commit(60);
  assert.equal(loan.bytes.length, 0, 'the loan is detached after commit');
  assert.throws(() => loan.commit(), { code: 'ERR_MEMFD_CHANNEL_LOAN_DONE' });

  const view = b.tryReceiveView();
  assert.equal(view.length, 60);
  assert.deepEqual(Buffer.from(view.bytes), Buffer.alloc(60, 7));
  const kept = view.bytes;
  assert.throws(() => b.tryReceive(), { code: 'ERR_MEMFD_CHANNEL_BUSY' });
  // While the view is held its bytes are not reused: the writer finds no room for a large message.
  assert.equal(a.trySend(Buffer.alloc(200, 1)), false);
  view.release();
  assert.equal(kept.length, 0, 'a released view is detached');
  assert.equal(kept[0], undefined);
  assert.equal(view.length, 60);
  view.release(); // harmless
  assert.equal(b.tryReceive(), undefined); // skips the padding the refused send left before the wrap
  // Now the writer reuses the space; the old view still shows nothing.
  assert.equal(a.trySend(Buffer.alloc(200, 1)), true);
  assert.equal(kept.length, 0);
  assert.deepEqual(b.tryReceive(), Buffer.alloc(200, 1));

  const aborted = a.tryReserve(10);
  aborted.bytes.fill(1);
  aborted.abort();
  assert.equal(aborted.bytes.length, 0);
  assert.equal(b.tryReceive(), undefined, 'an aborted loan sends nothing');
  const empty = a.tryReserve(0);
  empty.commit();
  const emptyView = b.tryReceiveView();
  assert.equal(emptyView.length, 0);
  emptyView.release();

  // Close detaches what is still lent out.
  const open = a.tryReserve(8);
  a.close();
  assert.equal(open.bytes.length, 0);
  assert.throws(() => open.commit(), { code: 'ERR_MEMFD_CHANNEL_CLOSED' });
});

test('zero copy: a loan\'s or a view\'s ArrayBuffer is the message alone, and it and everything taken from it are detached at the end', (t) => {
  const { a, b, close } = pair({ size: 4096 });
  t.after(close);
  for (let round = 0; round < 50; round++) {
    const len = 1 + ((round * 397) % 1500);
    const loan = a.tryReserve(len);
    const loanBuffer = loan.bytes.buffer;
    // The message alone: postMessage(loan.bytes) or Buffer.from(loan.bytes.buffer) reach nothing else.
    assert.deepEqual([loanBuffer.byteLength, loan.bytes.byteOffset], [len, 0]);
    const loanPart = loan.bytes.subarray(1), loanNode = Buffer.from(loanBuffer);
    loan.bytes.fill(round & 0xff);
    loan.commit();
    for (const [what, x] of [['bytes', loan.bytes], ['subarray', loanPart], ['Buffer', loanNode]]) assert.equal(x.length, 0, `loan ${what}, round ${round}`);
    assert.equal(loanBuffer.byteLength, 0, `loan ArrayBuffer, round ${round}`);

    const view = b.tryReceiveView();
    assert.deepEqual([view.bytes.buffer.byteLength, view.bytes.byteOffset], [len, 0]);
    assert.deepEqual(Buffer.from(view.bytes), Buffer.alloc(len, round & 0xff));
    const viewBuffer = view.bytes.buffer, viewNode = Buffer.from(viewBuffer);
    view.release();
    assert.equal(viewBuffer.byteLength, 0, `view ArrayBuffer, round ${round}`);
    assert.equal(viewNode.length, 0, `view Buffer, round ${round}`);
  }
});

test('zero copy, messages of one size lapping the ring (spare windows on Node 22+): every ended loan and view stays detached while later ones reuse its offset', (t) => {
  const { a, b, close } = pair({ size: 4096 });
  t.after(close);
  const ended = [];
  for (let round = 0; round < 200; round++) {
    const len = round < 100 ? 500 : 1 + (round % 3) * 250; // one size, then three sizes at shifting offsets
    const loan = a.tryReserve(len);
    assert.equal(loan.bytes.buffer.byteLength, len, `loan ${round}: a window of the message alone`);
    const loanPart = loan.bytes.subarray(1);
    if (round % 10 === 7) loan.bytes.buffer.transfer?.(); // the user moves it away: commit still works
    else loan.bytes.fill(round & 0xff);
    loan.commit();
    const view = b.tryReceiveView();
    assert.equal(view.length, len);
    if (round % 10 !== 7) assert.ok(view.bytes.every((x) => x === (round & 0xff)), `view ${round} shows the message`);
    const viewPart = view.bytes.subarray(1);
    view.release();
    ended.push(loan.bytes, loanPart, view.bytes, viewPart);
    for (const [i, x] of ended.entries()) assert.equal(x.length, 0, `round ${round}: an ended loan's or view's bytes (${i}) are detached`);
  }
});

test('a window moved away with transfer() before the channel detached it keeps its pages after close(), and only them', {
  skip: typeof ArrayBuffer.prototype.transfer === 'function' ? false : 'ArrayBuffer.prototype.transfer() needs Node 22 or later',
}, async () => {
  // In a child: the failure this guards against is writing into memory that is no longer the ring's (the
  // range unmapped and reused by the JS heap or another mapping), or a SIGSEGV.
  const r = await runNode(`
    import { Channel, MemFile } from ${JSON.stringify(LIB)};
    const a = Channel.create({ size: 1 << 16 });
    const b = Channel.fromFd(a.dupFd());
    const ringFile = MemFile.fromFd(a.dupFd());           // a second open of the memfd, to look at the ring
    const loan = a.tryReserve(1000);
    let escaped = loan.bytes.buffer.transfer();           // out of the channel's reach: it cannot detach it
    loan.commit(0);
    b.tryReceive();
    a.close(); b.close();
    // Enough unmaps that a quarantined placeholder would be gone, and new mappings that could take the range.
    for (let i = 0; i < 400; i++) { const f = MemFile.create('churn'); f.truncate(1 << 16); f.map({ writable: true }).unmap(); f.close(); }
    const others = [];
    for (let i = 0; i < 50; i++) { const f = MemFile.create('other'); f.truncate(1 << 16); others.push({ f, m: f.map({ writable: true }) }); }
    new Uint8Array(escaped).fill(0xa5);
    const ring = ringFile.readAllSync();
    const intoRing = ring.subarray(4096 + 4, 4096 + 4 + 1000).every((x) => x === 0xa5);
    const intoOthers = others.filter(({ f }) => f.readAllSync().includes(0xa5)).length;
    escaped = null;
    for (let i = 0; i < 10; i++) { gc(); await new Promise((r) => setTimeout(r, 10)); }
    const { readFileSync } = await import('node:fs');
    const stillMapped = readFileSync('/proc/self/maps', 'utf8').includes('memfd-channel');
    console.log(JSON.stringify({ intoRing, intoOthers, stillMapped }));
  `, { args: ['--expose-gc'] });
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { intoRing: true, intoOthers: 0, stillMapped: false });
});

test('spare windows are taken again: one-size messages make new windows in the first lap only (1 MiB ring, 4 KiB messages)', {
  skip: typeof ArrayBuffer.prototype.transfer === 'function' ? false : 'spare windows need ArrayBuffer.prototype.transfer() (Node 22 or later)',
}, async () => {
  // Counted in a child, where the binding's window function can be wrapped without touching this process.
  const r = await runNode(`
    import { binding } from ${JSON.stringify(new URL('../dist/binding.js', import.meta.url).href)};
    import { Channel } from ${JSON.stringify(LIB)};
    const made = binding.channelWindow;
    let windows = 0;
    binding.channelWindow = (...args) => { windows++; return made(...args); };
    const a = Channel.create({ size: 1 << 20 });
    const b = Channel.fromFd(a.dupFd());
    const counts = [];
    for (let lap = 0; lap < 4; lap++) {
      windows = 0;
      for (let i = 0; i < 255; i++) { // a lap: 255 frames of 4104 bytes, then padding
        const loan = a.tryReserve(4096);
        loan.bytes[0] = i;
        loan.commit();
        const view = b.tryReceiveView();
        if (view.bytes[0] !== (i & 0xff)) throw new Error('wrong byte');
        view.release();
      }
      counts.push(windows);
    }
    a.close(); b.close();
    console.log(JSON.stringify(counts));
  `);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), [510, 0, 0, 0], 'new windows per lap (a loan and a view per message)');
});

test('a transfer() polyfill installed before the library (one that copies, one that throws, one that returns its receiver) changes nothing in zero copy', async () => {
  for (const polyfill of ['copies', 'throws', 'returns itself']) {
    const r = await runNode(`
      // As es-shims' arraybuffer.prototype.transfer installs it on Node 20 (here on every Node): a copy into a
      // new ArrayBuffer and a structuredClone transfer to detach the original (which copies, or throws, for
      // a window). Or one that throws.
      Object.defineProperty(ArrayBuffer.prototype, 'transfer', { configurable: true, writable: true, value: function transfer() {
        if (${JSON.stringify(polyfill)} === 'throws') throw new TypeError('not here');
        if (${JSON.stringify(polyfill)} === 'returns itself') return this;
        const out = new ArrayBuffer(this.byteLength);
        new Uint8Array(out).set(new Uint8Array(this));
        try { structuredClone(this, { transfer: [this] }); } catch { /* Node 26: not transferable */ }
        return out;
      } });
      const { Channel } = await import(${JSON.stringify(LIB)});
      const a = Channel.create({ size: 4096 });
      const b = Channel.fromFd(a.dupFd());
      let wrong = 0, attached = 0;
      for (let i = 0; i < 200; i++) {
        const loan = a.tryReserve(500);
        loan.bytes.fill(i & 0xff);
        loan.commit();
        const v = b.tryReceiveView();
        if (!v.bytes.every((x) => x === (i & 0xff))) wrong++;
        const bytes = v.bytes;
        v.release();
        attached += (loan.bytes.length !== 0) + (bytes.length !== 0);
      }
      a.close(); b.close();
      console.log(JSON.stringify({ wrong, attached }));
    `);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { wrong: 0, attached: 0 }, `a polyfill that ${polyfill}`);
  }
});

test('a loan\'s bytes.buffer shadowed by the user (here with the open view\'s) does not change which window ends', (t) => {
  const { a, b, close } = pair({ size: 4096 });
  t.after(close);
  b.trySend(new Uint8Array(16).fill(5));
  const view = a.tryReceiveView();
  const loan = a.tryReserve(16);
  Object.defineProperty(loan.bytes, 'buffer', { value: view.bytes.buffer });
  const loanBytes = loan.bytes;
  loanBytes.fill(1);
  loan.commit();
  assert.equal(loanBytes.length, 0, 'the loan\'s own window is detached');
  assert.deepEqual([...view.bytes], Array(16).fill(5), 'the view is untouched and still open');
  view.release();
  assert.deepEqual([...b.tryReceive()], Array(16).fill(1));
});

test('markAsUntransferable() on a view\'s buffer: release() and close() go on, with a warning where it cannot be detached, and the process exits cleanly', async () => {
  const r = await runNode(`
    import { markAsUntransferable } from 'node:worker_threads';
    import { Channel } from ${JSON.stringify(LIB)};
    const warnings = [];
    process.on('warning', (w) => warnings.push(w.code));
    const a = Channel.create({ size: 4096 });
    const b = Channel.fromFd(a.dupFd());
    a.trySend(Buffer.from('first'));
    const view = b.tryReceiveView();
    const kept = view.bytes;
    markAsUntransferable(view.bytes.buffer); // Node 26: a detach key, which Node-API's detach would abort on
    view.release();
    a.trySend(Buffer.from('second'));
    const next = b.tryReceive().toString();
    a.trySend(Buffer.from('third'));
    const open = b.tryReceiveView();
    markAsUntransferable(open.bytes.buffer);
    a.close(); b.close();                   // with that view still open
    await new Promise((r) => setTimeout(r, 10));
    console.log(JSON.stringify({ next, detached: kept.length === 0, warned: warnings.includes('MEMFD_WINDOW_KEPT') }));
  `);
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.next, 'second');
  assert.ok(out.detached !== out.warned, `detached, or else a warning: ${r.stdout}`);
});

test('close() detaches the spare windows: after it and a collection the ring is no longer mapped', async () => {
  const r = await runNode(`
    import { Channel } from ${JSON.stringify(LIB)};
    import { readFileSync } from 'node:fs';
    const a = Channel.create({ size: 1 << 16 });
    const b = Channel.fromFd(a.dupFd());
    for (let i = 0; i < 1000; i++) {
      const loan = a.tryReserve(1000);
      loan.bytes[999] = i & 0xff;
      loan.commit();
      const view = b.tryReceiveView();
      if (view.bytes[999] !== (i & 0xff)) throw new Error('wrong byte');
      view.release();
    }
    const mappedBefore = readFileSync('/proc/self/maps', 'utf8').includes('memfd-channel');
    a.close(); b.close();
    for (let i = 0; i < 10; i++) { gc(); await new Promise((r) => setTimeout(r, 10)); }
    const stillMapped = readFileSync('/proc/self/maps', 'utf8').includes('memfd-channel');
    console.log(JSON.stringify({ mappedBefore, stillMapped }));
  `, { args: ['--expose-gc'] });
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { mappedBefore: true, stillMapped: false });
});

test('zero copy of large messages across wrap-around', async (t) => {
  const { a, b, close } = pair({ size: 1 << 16 });
  t.after(close);
  const got = [];
  const reader = (async () => {
    for (;;) {
      const v = await b.receiveView();
      if (v === null) return;
      got.push(v.bytes[0] === v.bytes[v.length - 1] ? v.bytes[0] : -1);
      v.release();
    }
  })();
  for (let i = 0; i < 50; i++) {
    const loan = await a.reserve(20000 + i * 37);
    loan.bytes.fill(i);
    loan.commit();
  }
  a.close();
  await reader;
  assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => i));
});

test('backpressure: trySend says false when full, send waits for the reader', async (t) => {
  const { a, b, close } = pair({ size: 1024 });
  t.after(close);
  let sent = 0;
  while (a.trySend(Buffer.alloc(100, sent))) sent++;
  assert.equal(sent, 9); // 104-byte frames: 9 fit in 1024 bytes
  let done = false;
  const sending = a.send(Buffer.alloc(100, 99)).then(() => { done = true; });
  await delay(30);
  assert.equal(done, false, 'send waits while the ring is full');
  assert.deepEqual(b.tryReceive(), Buffer.alloc(100, 0));
  await sending;
  for (let i = 1; i < sent; i++) assert.deepEqual(b.tryReceive(), Buffer.alloc(100, i));
  assert.deepEqual(b.tryReceive(), Buffer.alloc(100, 99));
});

test('close is the end of the stream; for-await ends there; leaving it early does not close', async (t) => {
  const { a, b, close } = pair({ size: 4096 });
  t.after(close);
  a.trySend('1');
  a.trySend('2');
  for await (const m of b) {
    assert.equal(m.toString(), '1');
    break;
  }
  assert.equal(b.closed, false);
  assert.equal(b.trySend('still open'), true);
  assert.equal(a.tryReceive().toString(), 'still open');
  const pending = b.receive();
  await delay(20);
  a.trySend('3');
  a.close();
  assert.equal((await pending).toString(), '2');
  const rest = [];
  for await (const m of b) rest.push(m.toString());
  assert.deepEqual(rest, ['3']);
  assert.equal(await b.receive(), null);
  assert.equal(b.ended, true);
  assert.equal(b.peerClosed, true);
  assert.throws(() => b.trySend('x'), { code: 'ERR_MEMFD_CHANNEL_CLOSED' });
  assert.throws(() => a.trySend('x'), { code: 'ERR_MEMFD_CHANNEL_CLOSED' });
});

test('a pending receive ends with null when the peer closes; pending receives here end at close()', async (t) => {
  const { a, b, close } = pair({ size: 4096 });
  t.after(close);
  const p = b.receive();
  setTimeout(() => a.close(), 20);
  assert.equal(await p, null);
  const q = b.receive();
  b.close();
  assert.equal(await q, null);
  assert.equal(await b.receive(), null);
});

test('a pending send rejects when this end closes', async (t) => {
  const { a, b, close } = pair({ size: 256 });
  t.after(close);
  while (a.trySend(Buffer.alloc(100)));
  const p = a.send(Buffer.alloc(100));
  a.close();
  await assert.rejects(p, { code: 'ERR_MEMFD_CHANNEL_CLOSED' });
});

test('fromFd refusals leave the fd open and the caller\'s', async (t) => {
  const r = openSync('/dev/null', 'r');
  t.after(() => closeSync(r));
  assert.throws(() => Channel.fromFd(r), { code: 'ERR_MEMFD_NOT_A_CHANNEL' });
  assert.ok(fdIsOpen(r));

  const plain = MemFile.create('not-a-channel');
  plain.truncate(4096 + 2 * 4096);
  const unsealed = plain.dup().releaseFd();
  t.after(() => closeSync(unsealed));
  assert.throws(() => Channel.fromFd(unsealed), { code: 'ERR_MEMFD_NOT_A_CHANNEL', message: /sealed/ });
  assert.ok(fdIsOpen(unsealed));

  plain.addSeals(Seal.Shrink | Seal.Grow);
  const noMagic = plain.dup().releaseFd();
  t.after(() => closeSync(noMagic));
  assert.throws(() => Channel.fromFd(noMagic), { code: 'ERR_MEMFD_NOT_A_CHANNEL', message: /magic/ });
  assert.ok(fdIsOpen(noMagic));
  plain.close();

  const a = Channel.create({ size: 4096 });
  t.after(() => a.close());
  // The creating process owns a.fd: adopting the same number again is refused, and it stays open.
  // The advice is the channel's (dupFd), not MemFile's (dup().releaseFd()).
  assert.throws(() => Channel.fromFd(a.fd), { code: 'ERR_MEMFD_FD_ALREADY_OWNED', message: /post ch\.dupFd\(\)/ });
  assert.ok(fdIsOpen(a.fd));
  const first = a.dupFd();
  const second = a.dupFd();
  t.after(() => closeSync(second));
  const b = Channel.fromFd(first);
  t.after(() => b.close());
  assert.throws(() => Channel.fromFd(second), { code: 'ERR_MEMFD_CHANNEL_END_TAKEN' });
  assert.ok(fdIsOpen(second));
  b.close();
  assert.throws(() => Channel.fromFd(second), { code: 'ERR_MEMFD_CHANNEL_END_TAKEN' }, 'end B is claimed once, ever');

  const ro = openSync(`/proc/self/fd/${a.fd}`, 'r');
  t.after(() => closeSync(ro));
  assert.throws(() => Channel.fromFd(ro), { code: 'ERR_MEMFD_NOT_A_CHANNEL', message: /read-only/ });
  assert.ok(fdIsOpen(ro));
});

test('a corrupted header or frame gives ERR_MEMFD_CHANNEL_CORRUPT, never a crash', async () => {
  // In a child process: a bug here could mean an out-of-bounds access.
  const r = await runNode(`
    import { Channel, MemFile } from './dist/index.js';
    const results = [];
    const attempt = (label, fn) => { try { fn(); results.push(label + ': no error'); } catch (e) { results.push(label + ': ' + e.code); } };
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
    // ring 0 (A to B): tail at byte 256, head at 320; data at 4096.
    scenario('tail beyond the ring', ({ h }) => { h[256 / 4] = 4096; }, ({ b }) => b.tryReceive());
    scenario('misaligned tail', ({ h }) => { h[256 / 4] = 3; }, ({ b }) => b.tryReceive());
    scenario('frame length too large', ({ a, u32 }) => { a.trySend('hello'); u32[4096 / 4] = 0x7fffffff; }, ({ b }) => b.tryReceive());
    scenario('frame passes the tail', ({ a, u32 }) => { a.trySend('hello'); u32[4096 / 4] = 200; }, ({ b }) => b.tryReceive());
    scenario('padding passes the tail', ({ a, u32 }) => { a.trySend('hello'); u32[4096 / 4] = 0xffffffff; }, ({ b }) => b.tryReceive());
    scenario('frame view too large', ({ a, u32 }) => { a.trySend('hello'); u32[4096 / 4] = 252 + 8; }, ({ b }) => b.tryReceiveView());
    scenario('head beyond the tail', ({ a, h }) => { a.trySend(Buffer.alloc(200)); h[320 / 4] = -1024; }, ({ a }) => { a.trySend(Buffer.alloc(200)); });
    // Header fields checked by fromFd: sizes that do not add up, indices out of range.
    for (const [label, word, value] of [['ring size', 3, 1000], ['header size', 2, 8192], ['ring indices', 64, 12345]]) {
      const a = Channel.create({ size: 256 });
      const evil = MemFile.fromFd(a.dupFd()).map();
      new Int32Array(evil.buffer)[word] = value;
      const fd = a.dupFd();
      attempt('fromFd ' + label, () => Channel.fromFd(fd));
      a.close(); evil.unmap();
    }
    const a = Channel.create({ size: 256 });
    const evil = MemFile.fromFd(a.dupFd()).map();
    new Int32Array(evil.buffer)[1] = 99;
    const fd = a.dupFd();
    attempt('fromFd version', () => Channel.fromFd(fd));
    // A pending receive rejects with the error too.
    const c = Channel.create({ size: 256 });
    const d = Channel.fromFd(c.dupFd());
    const evil2 = MemFile.fromFd(c.dupFd()).map();
    const pending = d.receive();
    await new Promise((r) => setTimeout(r, 20));
    c.trySend('x');
    new Uint32Array(evil2.buffer)[4096 / 4] = 0x12345678; // before d's wake-up reaches its event loop
    try { await pending; results.push('pending: no error'); } catch (e) { results.push('pending: ' + e.code); }
    console.log(JSON.stringify(results));
    c.close(); d.close();
  `);
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.code, 0, r.stderr);
  const results = JSON.parse(r.stdout);
  for (const line of results) {
    if (line.startsWith('fromFd version')) assert.match(line, /ERR_MEMFD_NOT_A_CHANNEL$/);
    else assert.match(line, /ERR_MEMFD_CHANNEL_CORRUPT$/, line);
  }
  assert.equal(results.length, 19);
});

test('Worker threads: messages both ways, and a terminated Worker ends the stream', async (t) => {
  const a = Channel.create({ size: 1 << 16 });
  t.after(() => a.close());
  const lib = new URL('../dist/index.js', import.meta.url).href;
  const worker = new Worker(`
    const { workerData } = require('node:worker_threads');
    import(${JSON.stringify(lib)}).then(async ({ Channel }) => {
      const b = Channel.fromFd(workerData.fd);
      for await (const m of b) {
        if (m.toString() === 'stop') break;
        await b.send(Buffer.concat([Buffer.from('echo:'), m]));
      }
      await b.send('parked');
      await new Promise(() => setInterval(() => {}, 1000)); // keeps b open until terminate()
    });
  `, { eval: true, workerData: { fd: a.dupFd() } });
  for (let i = 0; i < 200; i++) {
    await a.send(`m${i}`);
    assert.equal((await a.receive()).toString(), `echo:m${i}`);
  }
  await a.send('stop');
  assert.equal((await a.receive()).toString(), 'parked');
  const pending = a.receive();
  await worker.terminate();
  assert.equal(await pending, null, 'the Worker\'s env teardown closed its end');
});

test('an idle channel with a pending receive costs no CPU and keeps no extra fds after close', async () => {
  const before = fdCount();
  const { a, b, close } = pair({ size: 4096 });
  const pending = b.receive();
  await delay(50); // past the spin, asleep
  const cpu0 = process.cpuUsage();
  await delay(300);
  const cpu = process.cpuUsage(cpu0);
  const ms = (cpu.user + cpu.system) / 1000;
  assert.ok(ms < 15, `idle for 300 ms cost ${ms} ms of CPU`);
  a.trySend('wake');
  assert.equal((await pending).toString(), 'wake');
  close();
  assert.equal(await fdCountSettled(before), before, 'every fd (memfds, pidfds) is closed');
});

test('a dropped channel is closed by the garbage collector with a warning, and the peer sees the end', async () => {
  const r = await runNode(`
    import { Channel } from './dist/index.js';
    const warnings = [];
    process.on('warning', (w) => warnings.push(w.code + ' ' + w.message));
    const a = Channel.create({ size: 4096 });
    let b = Channel.fromFd(a.dupFd());
    b.trySend('last words');
    b = null;
    for (let i = 0; i < 10 && warnings.length === 0; i++) {
      globalThis.gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    const got = await a.receive();
    const end = await a.receive();
    console.log(JSON.stringify({ warnings, got: got?.toString(), end }));
    a.close();
  `, { args: ['--expose-gc'] });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.warnings.length, 1, out.warnings.join('\n'));
  assert.match(out.warnings[0], /^MEMFD_CLOSED_BY_GC A Channel was closed by the garbage collector \(fd \d+\)/);
  assert.equal(out.got, 'last words');
  assert.equal(out.end, null);
});

test('un-awaited sends, loans and concurrent receives keep the order of the calls', async (t) => {
  const { a, b, close } = pair({ size: 256 });
  t.after(close);
  const sends = [];
  for (let i = 0; i < 100; i++) sends.push(a.send(Buffer.alloc(40, i)));
  assert.equal(a.trySend('x'), false, 'a trySend does not overtake waiting sends');
  assert.equal(a.tryReserve(1), undefined);
  const receives = [];
  for (let i = 0; i < 100; i++) receives.push(b.receive());
  assert.equal(b.tryReceive(), undefined, 'a tryReceive does not overtake waiting receives');
  const got = await Promise.all(receives);
  await Promise.all(sends);
  assert.deepEqual(got.map((m) => m[0]), Array.from({ length: 100 }, (_, i) => i));

  // A send made while a loan is open waits for the loan, and goes after it.
  const loan = a.tryReserve(3);
  loan.bytes.set([1, 2, 3]);
  const after = a.send('after');
  const viewing = b.receiveView();
  loan.commit();
  await after;
  const view = await viewing;
  assert.deepEqual([...view.bytes], [1, 2, 3]);
  const next = b.receive(); // waits for the view's release
  await delay(10);
  view.release();
  assert.equal((await next).toString(), 'after');
});

test('tryReceiveInto copies into a caller buffer; a message too long for it stays in the ring', (t) => {
  const { a, b, close } = pair({ size: 4096 });
  t.after(close);
  const target = Buffer.alloc(8);
  assert.equal(b.tryReceiveInto(target), undefined);
  a.trySend('hello');
  a.trySend('a longer message');
  assert.equal(b.tryReceiveInto(target), 5);
  assert.equal(target.subarray(0, 5).toString(), 'hello');
  assert.throws(() => b.tryReceiveInto(target), { code: 'ERR_OUT_OF_RANGE' });
  assert.equal(b.tryReceiveInto(new Uint16Array(8)), 16);
  assert.equal(b.tryReceiveInto(new ArrayBuffer(4)), undefined);
  assert.throws(() => b.tryReceiveInto('x'), { code: 'ERR_INVALID_ARG_TYPE' });
});

test('every receive gives back exactly its own frame: one-at-a-time protocols cannot fill both rings', (t) => {
  // Each side of an echo loop that blocks on its own sends relies on this: a receive makes room for one
  // more message, no less (a stall) and no more (a read-ahead that gave a run back at once let a Python
  // peer and this end fill both rings and wait for each other). 28-byte messages are 32-byte frames: 32 of
  // them fill a 1 KiB ring exactly.
  const { a, b, close } = pair({ size: 1024 });
  t.after(close);
  const msg = (i) => Buffer.alloc(28, i);
  let sent = 0;
  while (a.trySend(msg(sent))) sent++;
  assert.equal(sent, 32);
  const roomFor = () => { let n = 0; while (a.trySend(msg(sent))) { sent++; n++; } return n; };
  let next = 0;
  assert.deepEqual(b.tryReceive(), msg(next++));
  assert.equal(roomFor(), 1);

  const view = b.tryReceiveView();
  assert.deepEqual(Buffer.from(view.bytes), msg(next++));
  assert.throws(() => b.tryReceive(), { code: 'ERR_MEMFD_CHANNEL_BUSY' });
  assert.equal(roomFor(), 0, 'a view holds its frame until released');
  view.release();
  assert.equal(view.bytes.length, 0);
  assert.equal(roomFor(), 1);

  assert.throws(() => b.tryReceiveInto(Buffer.alloc(27)), { code: 'ERR_OUT_OF_RANGE' });
  assert.equal(roomFor(), 0, 'a message too long for the target stays, and so does its frame');
  const into = Buffer.alloc(64);
  assert.equal(b.tryReceiveInto(into), 28);
  assert.deepEqual(into.subarray(0, 28), msg(next++));
  assert.equal(roomFor(), 1);

  const batch = b.tryReceiveMany(3);
  assert.equal(batch.count, 3);
  for (const m of batch) assert.deepEqual(m, msg(next++));
  batch.release();
  assert.equal(roomFor(), 3);

  // Received Buffers are the caller's: each its own bytes, and later sends change none of them.
  const x = b.tryReceive(), y = b.tryReceive();
  assert.deepEqual(x, msg(next++));
  assert.deepEqual(y, msg(next++));
  x.fill(0xee);
  assert.deepEqual(y, msg(next - 1));
  assert.equal(roomFor(), 2);
  assert.deepEqual(y, msg(next - 1));

  for (let m = b.tryReceive(); m !== undefined; m = b.tryReceive()) assert.deepEqual(m, msg(next++));
  assert.equal(next, sent);
  assert.equal(roomFor(), 32);
});

test('a corrupt frame behind good ones: tryReceive delivers the good ones first, a batch that reaches it fails at once', async () => {
  // In a child process: a bug here could mean an out-of-bounds access. A batch checks every frame of its
  // run before it copies (channel-batch.test.mjs); either way the channel has failed from there on.
  const r = await runNode(`
    import { Channel, MemFile } from './dist/index.js';
    const results = [];
    for (const [label, value] of [['length', 0x7fffffff], ['padding', 0xffffffff], ['past the tail', 64]]) {
      const a = Channel.create({ size: 256 });
      const b = Channel.fromFd(a.dupFd());
      const evil = MemFile.fromFd(a.dupFd()).map();
      for (const m of ['m0', 'm1', 'm2', 'm3']) a.trySend(m);
      new Uint32Array(evil.buffer)[(4096 + 2 * 8) / 4] = value; // the third frame's length word
      for (const receive of [() => b.tryReceive(), () => b.tryReceiveMany()]) {
        const got = [];
        try {
          for (let m = receive(); m !== undefined; m = receive()) got.push(...(m.count === undefined ? [m] : m).map(String));
        } catch (e) { got.push(e.code); }
        results.push(label + ': ' + got.join(' '));
      }
      a.close(); b.close(); evil.unmap();
    }
    console.log(JSON.stringify(results));
  `);
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), [
    'length: m0 m1 ERR_MEMFD_CHANNEL_CORRUPT', 'length: ERR_MEMFD_CHANNEL_CORRUPT',
    'padding: m0 m1 ERR_MEMFD_CHANNEL_CORRUPT', 'padding: ERR_MEMFD_CHANNEL_CORRUPT',
    'past the tail: m0 m1 ERR_MEMFD_CHANNEL_CORRUPT', 'past the tail: ERR_MEMFD_CHANNEL_CORRUPT',
  ]);
});
