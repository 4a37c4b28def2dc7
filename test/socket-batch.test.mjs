// The batch receive path (issue 11): one native call drains the queued messages of a seqpacket socket into
// one buffer sized by FIONREAD, and receive() / for await / 'message' serve them from a small queue.
// These tests pin down what must not change with it: order, boundaries, fds, truncation, end of stream,
// bounded read-ahead, and fds closed by hand inside a batch.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { MemFile, UnixSocket } from '../dist/index.js';
import { fdCount, ourFds } from './helpers.mjs';

function memfdWith(text) {
  const f = MemFile.create('batch');
  f.writeSync(Buffer.from(text));
  return f;
}

test('mixed sizes, empty messages and fds keep their order and boundaries across many batches', async () => {
  const before = fdCount();
  const [a, b] = UnixSocket.pair();
  const files = [];
  const expected = [];
  try {
    const sends = [];
    for (let i = 0; i < 400; i++) {
      const size = i % 7 === 0 ? 0 : (i * 37) % 3000;
      const data = Buffer.alloc(size, i & 0xff);
      let fds = null;
      if (i % 5 === 0) {
        const f = memfdWith(`file ${i}`);
        files.push(f);
        fds = [f];
      }
      expected.push({ size, fill: i & 0xff, file: fds ? `file ${i}` : null });
      sends.push(a.send(data, fds));
    }
    let i = 0;
    const reader = (async () => {
      for await (const msg of b) {
        const e = expected[i];
        assert.equal(msg.data.length, e.size, `message ${i} length`);
        assert.ok(msg.data.every((x) => x === e.fill), `message ${i} bytes`);
        if (e.file) {
          assert.equal(msg.fds.length, 1, `message ${i} fds`);
          const f = MemFile.fromFd(msg.fds[0]);
          assert.equal(f.readAllSync().toString(), e.file);
          f.close();
        } else {
          assert.equal(msg.fds.length, 0);
        }
        msg.close();
        if (++i === expected.length) break;
      }
    })();
    await Promise.all(sends);
    await reader;
    assert.equal(i, 400);
  } finally {
    for (const f of files) f.close();
    a.close();
    b.close();
  }
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(fdCount(), before);
});

test('zero-length messages that carry only fds arrive, in order with data messages', async () => {
  const [a, b] = UnixSocket.pair();
  try {
    const f = memfdWith('only fds');
    await a.send('x');
    await a.send(null, [f, f]);
    await a.send('');
    await a.send('y', [f]);
    await a.send(null, [f]);
    f.close();
    const got = [];
    for (let k = 0; k < 5; k++) {
      const m = await b.receive();
      got.push([m.data.toString(), m.fds.length]);
      m.close();
    }
    assert.deepEqual(got, [['x', 0], ['', 2], ['', 0], ['y', 1], ['', 1]]);
  } finally {
    a.close();
    b.close();
  }
});

test('the end of the stream after a batch: every queued message first, then null', async () => {
  const [a, b] = UnixSocket.pair();
  try {
    for (let i = 0; i < 10; i++) await a.send(`m${i}`);
    a.close();
    const got = [];
    for (;;) {
      const m = await b.receive();
      if (m === null) break;
      got.push(m.data.toString());
    }
    assert.deepEqual(got, Array.from({ length: 10 }, (_, i) => `m${i}`));
    assert.equal(await b.receive(), null);
    assert.equal(b.ended, true);
  } finally {
    b.close();
  }
});

test('an fd budget smaller than a message is still ERR_MEMFD_FDS_TRUNCATED, read ahead or not, and nothing leaks', async () => {
  const [a, b] = UnixSocket.pair();
  try {
    const f = memfdWith('x');
    const before = fdCount();
    // Three messages queued; the first receive reads them in one batch (socket budget 253).
    await a.send('one');
    await a.send('three fds', [f, f, f]);
    await a.send('after');
    await a.send('four fds', [f, f, f, f]);
    await a.send('end');
    f.close();
    const one = await b.receive();
    assert.equal(one.data.toString(), 'one');
    // Served from the batch to a receive with a smaller budget: refused as the kernel would have.
    await assert.rejects(b.receive({ maxFds: 2 }), (e) => e.code === 'ERR_MEMFD_FDS_TRUNCATED' && /maxFds 2/.test(e.message));
    const after = await b.receive();
    assert.equal(after.data.toString(), 'after');
    await assert.rejects(b.receive({ maxFds: 1 }), (e) => e.code === 'ERR_MEMFD_FDS_TRUNCATED');
    const end = await b.receive();
    assert.equal(end.data.toString(), 'end');
    assert.equal(fdCount(), before - 1, 'only our own memfd was closed');
    // And read from the kernel with the small budget (nothing read ahead).
    const g = memfdWith('y');
    await a.send('two fds', [g, g]);
    g.close();
    await assert.rejects(b.receive({ maxFds: 1 }), (e) => e.code === 'ERR_MEMFD_FDS_TRUNCATED');
    assert.equal(fdCount(), before - 1);
  } finally {
    a.close();
    b.close();
  }
});

test('datagrams: each arrives whole, sized by FIONREAD, one per call', async () => {
  const [a, b] = UnixSocket.pair({ type: 'dgram' });
  try {
    const sizes = [5, 0, 70000, 1, 4096];
    for (const s of sizes) await a.send(Buffer.alloc(s, 7));
    for (const s of sizes) {
      const m = await b.receive();
      assert.equal(m.data.length, s);
    }
  } finally {
    a.close();
    b.close();
  }
});

test('read-ahead is bounded: one receive takes at most one batch of fd-carrying messages out of the kernel', async () => {
  await new Promise((r) => setTimeout(r, 20)); // sockets of earlier tests close in libuv's close callback
  const base = ourFds();
  const [a, b] = UnixSocket.pair();
  try {
    const f = memfdWith('z');
    // Not awaited: once the kernel queue is full the rest waits in the sender's queue.
    const sends = [];
    for (let i = 0; i < 300; i++) sends.push(a.send('m', [f]));
    f.close();
    await new Promise((r) => setImmediate(r));
    const before = fdCount();
    const m = await b.receive();
    const held = fdCount() - before;
    assert.ok(held >= 1 && held <= 64, `received fds held after one receive: ${held}`);
    m.close();
    // The rest is still in the kernel: the next receives get every message, in order.
    let n = 1;
    while (n < 300) {
      const x = await b.receive();
      assert.equal(x.data.toString(), 'm');
      x.close();
      n++;
    }
    await Promise.all(sends);
  } finally {
    a.close();
    b.close();
  }
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(ourFds(), base);
});

test('fds closed by hand inside one batch, numbers reused: msg.close() leaves the new files alone', async () => {
  const [a, b] = UnixSocket.pair();
  const reused = [];
  try {
    const f = memfdWith('w');
    for (let i = 0; i < 32; i++) await a.send(`m${i}`, [f]);
    f.close();
    const msgs = [];
    for (let i = 0; i < 32; i++) msgs.push(await b.receive());
    for (let i = 0; i < 32; i += 2) {
      fs.closeSync(msgs[i].fds[0]);
      reused.push(fs.openSync('/dev/null', 'r'));    // likely takes the number just closed
    }
    for (const m of msgs) m.close();
    for (const fd of reused) assert.ok(fs.fstatSync(fd).isCharacterDevice(), `fd ${fd} is still our /dev/null`);
    // Messages whose fds were never read were closed by msg.close() as well.
    assert.throws(() => msgs[1].take(), { code: 'ERR_MEMFD_FD_TAKEN' });
  } finally {
    for (const fd of reused) fs.closeSync(fd);
    a.close();
    b.close();
  }
});

test("'message' listeners and a mix of receive() get every message once, in order", async () => {
  const [a, b] = UnixSocket.pair();
  try {
    for (let i = 0; i < 100; i++) await a.send(String(i));
    const seen = [];
    await new Promise((resolve) => {
      const onMessage = (m) => {
        seen.push(Number(m.data.toString()));
        if (seen.length === 50) {
          b.off('message', onMessage);
          resolve();
        }
      };
      b.on('message', onMessage);
    });
    for (let i = 50; i < 100; i++) seen.push(Number((await b.receive()).data.toString()));
    assert.deepEqual(seen, Array.from({ length: 100 }, (_, i) => i));
  } finally {
    a.close();
    b.close();
  }
});

test('take() and takeFds() inside a batch give the numbers away; close() after them closes nothing of theirs', async () => {
  const [a, b] = UnixSocket.pair();
  try {
    const f = memfdWith('t');
    await a.send('a', [f, f]);
    await a.send('b', [f]);
    f.close();
    const m1 = await b.receive();
    const m2 = await b.receive();
    const t = m1.take(1);
    const rest = m2.takeFds();
    m1.close();
    m2.close();
    assert.ok(fs.fstatSync(t).isFile());
    assert.equal(rest.length, 1);
    assert.ok(fs.fstatSync(rest[0]).isFile());
    fs.closeSync(t);
    fs.closeSync(rest[0]);
  } finally {
    a.close();
    b.close();
  }
});
