// Native hand-over of received fds: a Message's handle owns each fd it received, and MemFile.fromFd /
// UnixSocket.fromFd in the same thread take the fd over from it through the process-wide owned-fd table
// (no JS registry). Another thread cannot take it over (that would race with the owning thread).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readlinkSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { UnixSocket, MemFile, Seal } from '../dist/index.js';
import { collectGarbage, fdCount, LIB } from './helpers.mjs';

const isOpen = (fd) => { try { readlinkSync(`/proc/self/fd/${fd}`); return true; } catch { return false; } };
const settle = () => new Promise((r) => setTimeout(r, 20));

async function receiveOneFile(text, options) {
  const [a, b] = UnixSocket.pair();
  const file = MemFile.from(text, options);
  await a.send(Buffer.from('m'), [file]);
  file.close();
  const msg = await b.receive();
  return { a, b, msg };
}

test('MemFile.fromFd takes a received fd over: closing or collecting the Message leaves it open', async () => {
  const { a, b, msg } = await receiveOneFile('handed over');
  const fd = msg.fds[0];
  const file = MemFile.fromFd(fd);
  assert.equal(file.fd, fd);
  msg.close();
  assert.ok(isOpen(fd), 'msg.close() must not close an adopted fd');
  assert.throws(() => msg.take(0), { code: 'ERR_MEMFD_FD_TAKEN' });
  assert.deepEqual(msg.takeFds(), []);
  assert.equal(file.readAllSync().toString(), 'handed over');

  // The same with a message that is only garbage-collected.
  let { msg: dropped } = await (async () => {
    await a.send(Buffer.from('m'), [file]);
    return { msg: await b.receive() };
  })();
  const fd2 = dropped.fds[0];
  const second = MemFile.fromFd(fd2);
  dropped = null;
  await collectGarbage();
  assert.ok(isOpen(fd2), 'collecting the Message must not close an adopted fd');
  assert.equal(second.readAllSync().toString(), 'handed over');
  second.close();
  assert.ok(!isOpen(fd2));
  file.close();
  assert.ok(!isOpen(fd));
  a.close();
  b.close();
  await settle();
});

test('a received fd is handed over once: a second adoption of the same number is refused', async () => {
  const { a, b, msg } = await receiveOneFile('once');
  const fd = msg.fds[0];
  const file = MemFile.fromFd(fd);
  assert.throws(() => MemFile.fromFd(fd), { code: 'ERR_MEMFD_FD_ALREADY_OWNED' });
  assert.throws(() => UnixSocket.fromFd(fd), { code: 'ENOTSOCK' });
  file.close();
  msg.close();
  a.close();
  b.close();
  await settle();
});

test('a failed adoption of a received fd leaves the message in charge of it', async () => {
  const { a, b, msg } = await receiveOneFile('unsealed', { seal: false });
  const fd = msg.fds[0];
  assert.throws(() => MemFile.fromFd(fd, { requireSeals: Seal.Write }), { code: 'ERR_MEMFD_MISSING_SEALS' });
  assert.throws(() => UnixSocket.fromFd(fd), { code: 'ENOTSOCK' });
  assert.ok(isOpen(fd));
  msg.close();
  assert.ok(!isOpen(fd), 'the message still owned the fd and closed it');
  a.close();
  b.close();
  await settle();
});

test('a received socket is handed over to UnixSocket.fromFd; the message then leaves it alone', async () => {
  const [a, b] = UnixSocket.pair();
  const [c, d] = UnixSocket.pair();
  await a.send(Buffer.from('s'), [c]);
  c.close();
  let msg = await b.receive();
  const fd = msg.fds[0];
  const adopted = UnixSocket.fromFd(fd);
  assert.throws(() => MemFile.fromFd(fd), (e) => e.code === 'ERR_MEMFD_FD_ALREADY_OWNED' || e.code === 'ERR_MEMFD_NOT_A_MEMFD');
  assert.throws(() => msg.take(0), { code: 'ERR_MEMFD_FD_TAKEN' });
  msg = null;
  await collectGarbage();
  await adopted.send(Buffer.from('still open'));
  assert.equal((await d.receive()).data.toString(), 'still open');
  for (const s of [a, b, adopted, d]) s.close();
  await settle();
});

async function adoptInWorker(fd) {
  const w = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.lib).then(({ MemFile }) => {
      try { const f = MemFile.fromFd(workerData.fd); const text = f.readAllSync().toString(); f.close(); parentPort.postMessage('adopted:' + text); }
      catch (e) { parentPort.postMessage(e.code); }
    });
  `, { eval: true, workerData: { lib: LIB, fd } });
  try {
    return await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  } finally {
    await w.terminate();
  }
}

test('another thread cannot take a received fd over unless it was taken with msg.take() first', async () => {
  const { a, b, msg } = await receiveOneFile('cross-thread');
  const fd = msg.fds[0];
  assert.equal(await adoptInWorker(fd), 'ERR_MEMFD_FD_ALREADY_OWNED');
  assert.ok(isOpen(fd), 'the refused worker left the fd alone');
  const raw = msg.take(0);
  assert.equal(raw, fd);
  assert.equal(await adoptInWorker(raw), 'adopted:cross-thread');
  assert.ok(!isOpen(raw), 'the worker owned and closed it');
  msg.close();
  a.close();
  b.close();
  await settle();
});

test('10,000 messages with an fd each, received and dropped, leave the fd count flat', async () => {
  const [a, b] = UnixSocket.pair();
  const file = MemFile.from('x');
  await collectGarbage();
  await settle();
  const before = fdCount();
  // In a function of its own: a suspended async frame may keep its last `msg` (and so the last receive
  // batch) alive in a register, depending on the Node version.
  await (async () => {
    for (let round = 0; round < 10_000 / 32; round++) {
      for (let i = 0; i < 32; i++) void a.send(Buffer.from('m'), [file]);
      for (let i = 0; i < 32; i++) {
        const msg = await b.receive();
        // A quarter is adopted (and closed), the rest is left to the garbage collector.
        if (i % 4 === 0) MemFile.fromFd(msg.fds[0]).close();
      }
      await new Promise((r) => setImmediate(r));
    }
  })();
  await collectGarbage(8);
  await settle();
  assert.ok(fdCount() <= before + 2, `fd count ${fdCount()} vs ${before} before`);
  file.close();
  a.close();
  b.close();
  await settle();
});
