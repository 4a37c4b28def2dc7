// Send coalescing (issue 11): the first send of a synchronous run goes out at once, the ones after it are
// staged (bytes copied, MemFiles pinned) and go out together with one sendmmsg at the end of the run.
// These tests pin down what send() guarantees with it, on the real kernel: call order across staged,
// synchronous (raw fd), large and queued sends; a flush that meets a full buffer midway; a failure of
// one staged message; the peer dying between staging and flush; close() and process.exit() right after
// sends; the caller's buffer and MemFile reusable at once; streams; Workers.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { MemFile, UnixServer, UnixSocket } from '../dist/index.js';
import { LIB, fdCount, ourFds } from './helpers.mjs';

const settle = () => new Promise((r) => setImmediate(r));

function header(i, size = 8) {
  const b = Buffer.alloc(Math.max(size, 4), i & 0xff);
  b.writeUInt32LE(i, 0);
  return b;
}

/** Receives `n` messages from `b`, in order; returns them (data copied, fd inodes, text of memfds). */
async function receiveAll(b, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const msg = await b.receive();
    assert.ok(msg, `message ${i} arrived before the end of the stream`);
    out.push({ data: Buffer.from(msg.data), inodes: msg.fds.map((fd) => fs.fstatSync(fd).ino) });
    msg.close();
  }
  return out;
}

test('call order holds across staged, synchronous (raw fd), large and queued sends, message by message', async () => {
  const [a, b] = UnixSocket.pair();
  const file = MemFile.from('pinned file');
  const raw = fs.openSync('/dev/null', 'r');
  try {
    const rawIno = fs.fstatSync(raw).ino;
    const fileIno = file.stat().ino;
    const plan = []; // [kind, size]
    for (let i = 0; i < 40; i++) plan.push(['small', 8]);
    plan.splice(3, 0, ['raw', 8]);
    plan.splice(7, 0, ['large', 40 * 1024]);
    plan.splice(9, 0, ['memfile', 100]);
    plan.splice(12, 0, ['raw', 0]);
    // Then enough large messages to fill the socket buffer: later sends of this run are queued.
    for (let i = 0; i < 12; i++) plan.push(['large', 60 * 1024]);
    for (let i = 0; i < 30; i++) plan.push([i % 4 === 0 ? 'memfile' : 'small', 16]);
    const sends = plan.map(([kind, size], i) => {
      const data = header(i, size);
      const fds = kind === 'raw' ? [raw] : kind === 'memfile' ? [file] : [];
      return a.send(data, fds);
    });
    assert.ok(a.pendingSends > 0, 'some sends wait (staged or queued)');
    const got = receiveAll(b, plan.length);
    await Promise.all(sends);
    const msgs = await got;
    for (let i = 0; i < plan.length; i++) {
      const [kind, size] = plan[i];
      assert.equal(msgs[i].data.length, Math.max(size, 4), `message ${i} (${kind}) length`);
      assert.equal(msgs[i].data.readUInt32LE(0), i, `message ${i} (${kind}) in order`);
      assert.deepEqual(msgs[i].inodes, kind === 'raw' ? [rawIno] : kind === 'memfile' ? [fileIno] : [], `message ${i} (${kind}) fds`);
    }
    assert.equal(a.pendingSends, 0);
  } finally {
    fs.closeSync(raw);
    file.close();
    a.close();
    b.close();
  }
});

test('a flush that fills the socket buffer midway: the rest waits, in order, and every message arrives once', async () => {
  const [a, b] = UnixSocket.pair();
  try {
    a.setSendBufferSize(8192);
    const n = 64;
    let resolved = 0;
    const sends = [];
    for (let i = 0; i < n; i++) sends.push(a.send(header(i, 1500)).then(() => { resolved++; }));
    await settle(); // the microtask flushed the stage; the receiver has not read
    // Part of the stage went out with sendmmsg, the rest met EAGAIN and waits for writability.
    assert.ok(resolved > 1 && resolved < n, `some but not all sends went out before the receiver read (${resolved})`);
    assert.equal(a.pendingSends, n - resolved);
    const msgs = await receiveAll(b, n);
    await Promise.all(sends);
    assert.deepEqual(msgs.map((m) => m.data.readUInt32LE(0)), [...Array(n).keys()]);
    assert.equal(a.pendingSends, 0);
  } finally {
    a.close();
    b.close();
  }
});

test('an oversized datagram in the middle of a stage rejects alone (EMSGSIZE, with the hint); the others arrive', async () => {
  for (const type of ['seqpacket', 'dgram']) {
    const [a, b] = UnixSocket.pair({ type });
    try {
      a.setSendBufferSize(8192); // the kernel doubles it: 16 KiB, so a 16 KiB datagram does not fit
      const results = await Promise.allSettled([
        a.send(header(0)), a.send(header(1)), a.send(header(2, 16 * 1024)), a.send(header(3)), a.send(header(4)),
      ]);
      assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled'], type);
      assert.equal(results[2].reason.code, 'EMSGSIZE');
      assert.equal(results[2].reason.syscall, 'sendmmsg');
      assert.match(results[2].reason.message, /send a memfd instead/);
      const msgs = await receiveAll(b, 4);
      assert.deepEqual(msgs.map((m) => m.data.readUInt32LE(0)), [0, 1, 3, 4], type);
    } finally {
      a.close();
      b.close();
    }
  }
});

test('the peer dies between staging and flush: every staged send rejects with EPIPE/ECONNRESET, nothing unhandled', async () => {
  const unhandled = [];
  const onUnhandled = (e) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  const [a, b] = UnixSocket.pair();
  const file = MemFile.from('x');
  const before = file.stat().ino;
  // The peer's only other reference lives in a child: killing it closes the peer at a known moment.
  const child = spawn('sleep', ['1000'], { stdio: ['ignore', 'ignore', 'ignore', b.fd] });
  b.close();
  try {
    await settle();
    await settle();
    const first = a.send(header(0));
    const staged = [1, 2, 3, 4].map((i) => a.send(header(i), i % 2 ? [file] : []));
    file.close(); // pinned by the staged sends
    process.kill(child.pid, 'SIGKILL');
    // Synchronously, before the flush microtask: wait until the child is gone (its fds are closed).
    for (;;) {
      let state;
      try { state = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1][0]; } catch { break; }
      if (state === 'Z' || state === 'X') break;
    }
    await first;
    const results = await Promise.allSettled(staged);
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.ok(['EPIPE', 'ECONNRESET'].includes(r.reason.code), r.reason.code);
    }
    assert.equal(a.pendingSends, 0);
    await settle();
    assert.deepEqual(unhandled, []);
    assert.ok(before > 0);
  } finally {
    process.off('unhandledRejection', onUnhandled);
    child.kill('SIGKILL');
    a.close();
  }
});

test('send(a); send(b); close() delivers both', async () => {
  for (const type of ['seqpacket', 'stream', 'dgram']) {
    const [a, b] = UnixSocket.pair({ type });
    try {
      const p1 = a.send('first;');
      const p2 = a.send('second;');
      a.close();
      await Promise.all([p1, p2]);
      let text = '';
      while (text.length < 'first;second;'.length) {
        const m = await b.receive();
        text += m.data.toString();
        m.close();
      }
      assert.equal(text, 'first;second;', type);
    } finally {
      b.close();
    }
  }
});

test('send(x) right before process.exit(0) is delivered, and so are sends from later exit listeners (a child process)', { timeout: 60_000 }, async () => {
  const [a, b] = UnixSocket.pair();
  const source = `
    import { UnixSocket, MemFile } from ${JSON.stringify(LIB)};
    const s = UnixSocket.fromFd(3);
    const f = MemFile.from('exit file');
    for (let i = 0; i < 5; i++) s.send('m' + i, i === 4 ? [f] : []);
    f.close();
    // An 'exit' listener registered after the library's own flush listener: its sends go out too.
    process.on('exit', () => { s.send('m5'); s.send('m6'); });
    process.exit(0);
  `;
  try {
    const child = spawn(process.execPath, ['--input-type=module', '-e', source], {
      cwd: new URL('..', import.meta.url).pathname, stdio: ['ignore', 'inherit', 'inherit', b.fd],
    });
    const code = await new Promise((r) => child.on('exit', r));
    assert.equal(code, 0);
    const texts = [];
    for (let i = 0; i < 7; i++) {
      const m = await a.receive();
      texts.push(m.data.toString());
      if (i === 4) {
        const f = MemFile.fromFd(m.fds[0]);
        assert.equal(f.readAllSync().toString(), 'exit file');
        f.close();
      }
      m.close();
    }
    assert.deepEqual(texts, ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6']);
  } finally {
    a.close();
    b.close();
  }
});

test("mutating the caller's buffer after send() does not change what arrives", async () => {
  const [a, b] = UnixSocket.pair();
  try {
    const buf = Buffer.from('AAAAAAAA');
    const big = Buffer.alloc(10000, 'C');
    const sends = [a.send(buf), a.send(buf), a.send(big)];
    buf.fill('B');
    big.fill('D');
    const sends2 = [a.send(buf), a.send(buf.subarray(0, 4))];
    buf.fill('E');
    await Promise.all([...sends, ...sends2]);
    const msgs = await receiveAll(b, 5);
    assert.deepEqual(msgs.map((m) => m.data.toString().slice(0, 8)), ['AAAAAAAA', 'AAAAAAAA', 'CCCCCCCC', 'BBBBBBBB', 'BBBB']);
    assert.ok(msgs[2].data.every((x) => x === 0x43));
  } finally {
    a.close();
    b.close();
  }
});

test('a MemFile sent staged and closed right after send() arrives as that file; the fd count stays flat', async () => {
  const [a, b] = UnixSocket.pair();
  try {
    const round = async (r) => {
      const files = [0, 1, 2, 3, 4, 5].map((i) => MemFile.from(`round ${r} file ${i}`));
      const sends = files.map((f, i) => a.send(header(i), [f]));
      assert.equal(a.pendingSends, files.length - 1, 'the first went out at once, the rest are staged');
      for (const f of files) f.close(); // the staged ones are pinned: closed for us, sent all the same
      assert.ok(files.every((f) => f.closed));
      await Promise.all(sends);
      for (let i = 0; i < files.length; i++) {
        const m = await b.receive();
        const got = MemFile.fromFd(m.fds[0]);
        assert.equal(got.readAllSync().toString(), `round ${r} file ${i}`);
        got.close();
        m.close();
      }
    };
    await round(-1);
    const before = fdCount();
    for (let r = 0; r < 200; r++) await round(r);
    await settle();
    assert.equal(fdCount(), before);
  } finally {
    a.close();
    b.close();
  }
});

test('MemFiles dropped right after a staged send that then has to wait are kept alive until they went out', { timeout: 60_000 }, async () => {
  const [a, b] = UnixSocket.pair();
  try {
    a.setSendBufferSize(4096);
    const n = 40;
    const sends = [];
    // Nobody keeps the MemFiles: only the staged (then queued) messages refer to them.
    for (let i = 0; i < n; i++) sends.push(a.send(header(i, 1000), [MemFile.from(`dropped ${i}`)]));
    await settle();
    assert.ok(a.pendingSends > 0, 'part of the stage waits for writability');
    // Let the garbage collector and the MemFiles' safety net run while they wait.
    for (let r = 0; r < 4; r++) {
      globalThis.gc();
      await new Promise((res) => setTimeout(res, 5));
    }
    for (let i = 0; i < n; i++) {
      const m = await b.receive();
      assert.equal(m.data.readUInt32LE(0), i);
      const f = MemFile.fromFd(m.fds[0]);
      assert.equal(f.readAllSync().toString(), `dropped ${i}`);
      f.close();
      m.close();
    }
    await Promise.all(sends);
  } finally {
    a.close();
    b.close();
  }
});

test('stream sockets: staged messages arrive as the concatenation, fds with the first byte of their own message', async () => {
  const [a, b] = UnixSocket.pair({ type: 'stream' });
  try {
    const n = 200;
    const files = new Map();
    const sends = [];
    let expected = '';
    for (let i = 0; i < n; i++) {
      const text = `<${i}:${'x'.repeat(i % 13)}>`;
      expected += text;
      let fds = [];
      if (i % 9 === 4) {
        const f = MemFile.from(`stream file ${i}`);
        files.set(i, f);
        fds = [f];
      }
      sends.push(a.send(text, fds));
    }
    for (const f of files.values()) f.close();
    await Promise.all(sends);
    let text = '';
    const seen = [];
    while (text.length < expected.length) {
      const m = await b.receive();
      const chunk = m.data.toString();
      // One recvmsg reads across writes until it reaches the write that carried fds, and stops after it:
      // a chunk holds the start of exactly one message that carried an fd when it brings fds, none otherwise.
      const starts = [...chunk.matchAll(/<(\d+):/g)].map((x) => Number(x[1])).filter((i) => files.has(i));
      if (m.fds.length > 0) {
        assert.equal(starts.length, 1, `one fd-carrying message starts in a chunk with fds: ${chunk.slice(0, 40)}`);
        const i = starts[0];
        assert.equal(m.fds.length, 1);
        const f = MemFile.fromFd(m.fds[0]);
        assert.equal(f.readAllSync().toString(), `stream file ${i}`, 'the fds of that message');
        f.close();
        seen.push(i);
      } else {
        assert.equal(starts.length, 0, 'no fd-carrying message starts in a chunk without fds');
      }
      text += chunk;
      m.close();
    }
    assert.equal(text, expected);
    assert.deepEqual(seen, [...files.keys()]);
  } finally {
    a.close();
    b.close();
  }
});

test('stream sockets: a stage cut by a full buffer keeps the rest queued and the bytes in order', async () => {
  const [a, b] = UnixSocket.pair({ type: 'stream' });
  try {
    a.setSendBufferSize(4096);
    const n = 64;
    const f = MemFile.from('cut');
    let expected = '';
    const sends = [];
    for (let i = 0; i < n; i++) {
      const text = `[${i}]${String(i % 10).repeat(3000)}`;
      expected += text;
      sends.push(a.send(text, i % 16 === 1 ? [f] : []));
    }
    f.close();
    await settle();
    assert.ok(a.pendingSends > 0 && a.pendingSends < n, `part waits (${a.pendingSends})`);
    let text = '';
    let fds = 0;
    while (text.length < expected.length) {
      const m = await b.receive();
      text += m.data.toString();
      fds += m.fds.length;
      m.close();
    }
    await Promise.all(sends);
    assert.equal(text, expected);
    assert.equal(fds, 4);
  } finally {
    a.close();
    b.close();
  }
});

test('Workers: staged sends go out at the end of the run and at process.exit(); a terminated Worker leaks nothing', async () => {
  const name = `\0memfd-coalesce-${process.pid}`;
  const server = await UnixServer.listen(name);
  try {
    const worker = (mode) => new Worker(`
      const { workerData } = require('node:worker_threads');
      import(workerData.lib).then(async ({ UnixSocket, MemFile }) => {
        const s = await UnixSocket.connect(workerData.name);
        const f = MemFile.from('worker file');
        for (let i = 0; i < 5; i++) s.send('w' + i, [f]);
        f.close();
        if (workerData.mode === 'exit') process.exit(0);
        if (workerData.mode === 'block') {
          // Never reaches the end of the run: the flush microtask does not run before terminate().
          require('node:worker_threads').parentPort.postMessage('staged');
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
        }
      });
    `, { eval: true, workerData: { lib: LIB, name, mode } });
    for (const mode of ['run', 'exit']) {
      const w = worker(mode);
      const conn = await server.accept();
      const texts = [];
      for (let i = 0; i < 5; i++) {
        const m = await conn.receive();
        texts.push(m.data.toString());
        const g = MemFile.fromFd(m.fds[0]);
        assert.equal(g.readAllSync().toString(), 'worker file');
        g.close();
        m.close();
      }
      assert.deepEqual(texts, ['w0', 'w1', 'w2', 'w3', 'w4'], mode);
      await new Promise((r) => w.on('exit', r));
      assert.equal(await conn.receive(), null, `${mode}: then the end of the stream`);
      conn.close();
    }
    // Memfds and sockets only: a terminated Worker's own loop fds (eventfd, epoll) go away on Node's schedule.
    const before = ourFds();
    for (let r = 0; r < 5; r++) {
      const w = worker('block');
      const conn = await server.accept();
      await new Promise((r2) => w.once('message', r2));
      await w.terminate();
      // What went out synchronously arrives; the staged rest dies with the Worker; then the end.
      const m = await conn.receive();
      assert.equal(m.data.toString(), 'w0');
      m.close();
      assert.equal(await conn.receive(), null);
      conn.close();
    }
    await settle();
    assert.equal(ourFds(), before);
  } finally {
    server.close();
  }
});
