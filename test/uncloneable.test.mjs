// Posting the library's objects to another thread: a loud DataCloneError where Node can refuse
// (worker_threads.markAsUncloneable, Node >= 22.10), the documented fallback elsewhere, and the recipes
// that do move files and received fds to a Worker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as workerThreads from 'node:worker_threads';
import { MessageChannel, Worker } from 'node:worker_threads';
import { MemFile, Message, Seal, UnixServer, UnixSocket } from '../dist/index.js';
import { readlinkSync } from 'node:fs';
import { fdCount } from './helpers.mjs';

const linkOf = (fd) => { try { return readlinkSync(`/proc/self/fd/${fd}`); } catch { return ''; } };

const LIB = new URL('../dist/index.js', import.meta.url).href;
const canRefuse = typeof workerThreads.markAsUncloneable === 'function';

/** What arrives on the other end of a MessagePort, or the error postMessage threw. */
async function post(value) {
  const { port1, port2 } = new MessageChannel();
  try {
    return await new Promise((resolve, reject) => {
      port2.once('message', (v) => resolve({ arrived: v }));
      try { port1.postMessage(value); } catch (e) { reject(e); }
    });
  } catch (e) {
    return { threw: e };
  } finally {
    port1.close();
  }
}

async function everyKind(t) {
  const file = MemFile.create('uncloneable');
  file.truncate(4096);
  const mapping = file.map();
  const [a, b] = UnixSocket.pair();
  const server = await UnixServer.listen(`\0memfd-uncloneable-${process.pid}`);
  await a.send('x', [file]);
  const message = await b.receive();
  t.after(() => { message.close(); a.close(); b.close(); server.close(); mapping.unmap(); file.close(); });
  return { file, mapping, message, socket: a, server };
}

test('posting a MemFile, Mapping, Message, UnixSocket or UnixServer throws DataCloneError (Node >= 22.10)',
  { skip: canRefuse ? false : `worker_threads.markAsUncloneable is missing on Node ${process.version} (added in 22.10)` },
  async (t) => {
    for (const [kind, value] of Object.entries(await everyKind(t))) {
      const r = await post(value);
      assert.equal(r.threw?.name, 'DataCloneError', `${kind}: ${r.threw ?? JSON.stringify(r.arrived)}`);
    }
    // The same through a Worker's postMessage, the usual way to hit it.
    const file = MemFile.create('to-a-worker');
    t.after(() => file.close());
    const worker = new Worker('require("node:worker_threads").parentPort.on("message", () => {})', { eval: true });
    t.after(() => worker.terminate());
    assert.throws(() => worker.postMessage(file), { name: 'DataCloneError' });
    assert.throws(() => worker.postMessage({ nested: [file] }), { name: 'DataCloneError' });
  });

test('where Node cannot refuse, objects arrive as plain copies that own nothing (the documented fallback)',
  { skip: canRefuse ? 'this Node refuses to clone them (tested above)' : false },
  async (t) => {
    const kinds = await everyKind(t);
    const before = fdCount();
    assert.deepEqual((await post(kinds.file)).arrived, {});
    assert.deepEqual((await post(kinds.mapping)).arrived, {});
    const copy = (await post(kinds.message)).arrived;
    assert.ok(!(copy instanceof Message));
    assert.deepEqual(copy.fds, [...kinds.message.fds], 'only the numbers travel; the message still owns the fds');
    assert.equal(copy.data.length, 1);
    // Sockets hold listener functions, which no Node can clone.
    assert.equal((await post(kinds.socket)).threw?.name, 'DataCloneError');
    assert.equal((await post(kinds.server)).threw?.name, 'DataCloneError');
    assert.equal(fdCount(), before, 'posting duplicated no fd');
  });

test('the recipes work on every Node: dup().releaseFd() for a MemFile, take() for a received fd', { timeout: 20000 }, async (t) => {
  const file = MemFile.from('shared bytes', { seal: true });
  t.after(() => file.close());
  const [a, b] = UnixSocket.pair();
  t.after(() => { a.close(); b.close(); });
  await a.send('x', [file]);
  const msg = await b.receive();
  t.after(() => msg.close());
  const worker = new Worker(`
    import { parentPort } from 'node:worker_threads';
    const { MemFile, Seal } = await import(${JSON.stringify(LIB)});
    parentPort.on('message', (fd) => {
      const f = MemFile.fromFd(fd, { requireSeals: Seal.Shrink });
      const m = f.map();
      const text = Buffer.from(m.bytes).toString();
      m.unmap();
      f.close(); // before answering: the main thread checks the fd is gone once it has the answer
      parentPort.postMessage(text);
    });`, { eval: true, type: 'module' });
  t.after(() => worker.terminate());
  const ask = (fd) => new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.postMessage(fd);
  });
  const released = file.dup().releaseFd();
  assert.equal(await ask(released), 'shared bytes');
  const taken = msg.take(0);
  assert.equal(await ask(taken), 'shared bytes');
  assert.throws(() => msg.take(0), { code: 'ERR_MEMFD_FD_TAKEN' });
  assert.equal(file.readAllSync().toString(), 'shared bytes', 'the original stays usable');
  // The worker owned both fds and closed them (the numbers no longer name the memfd here).
  for (const fd of [released, taken]) assert.equal(linkOf(fd)?.startsWith('/memfd:memfd'), false);
});
