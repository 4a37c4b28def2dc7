// The waiter queue behind UnixSocket.receive() and UnixServer.accept(): order, abort, settling all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WaiterQueue } from '../dist/waiters.js';
import { UnixServer, UnixSocket } from '../dist/index.js';

/** 'pending' when the promise has not settled after a turn of the event loop. */
const stateOf = (p) => Promise.race([p.then(() => 'resolved', () => 'rejected'), new Promise((r) => setImmediate(() => r('pending')))]);

test('waiters are served first in, first out, each with its own data', async () => {
  const q = new WaiterQueue();
  const a = q.wait(1), b = q.wait(2), c = q.wait(3);
  assert.equal(q.length, 3);
  assert.equal(q.peek(), 1);
  assert.equal(q.resolveNext('first'), true);
  assert.equal(q.peek(), 2);
  assert.equal(q.rejectNext(new Error('second')), true);
  q.resolveAll('rest');
  assert.equal(q.length, 0);
  assert.equal(q.peek(), undefined);
  assert.equal(q.resolveNext('nobody'), false);
  assert.equal(q.rejectNext(new Error('nobody')), false);
  assert.equal(await a, 'first');
  await assert.rejects(b, { message: 'second' });
  assert.equal(await c, 'rest');
});

test('an aborted waiter leaves at once with an AbortError, and the next one is served instead', async () => {
  let afterAbort = 0;
  const q = new WaiterQueue(() => { afterAbort++; });
  const ac = new AbortController();
  const aborted = q.wait('a', ac.signal);
  const kept = q.wait('b');
  ac.abort(new Error('why'));
  assert.equal(afterAbort, 1);
  assert.equal(q.length, 1);
  assert.equal(q.peek(), 'b');
  await assert.rejects(aborted, (e) => e.name === 'AbortError' && e.code === 'ABORT_ERR' && e.cause.message === 'why');
  q.resolveNext('value');
  assert.equal(await kept, 'value');
  // An already aborted signal rejects without queueing.
  await assert.rejects(q.wait('c', AbortSignal.abort()), { name: 'AbortError' });
  assert.equal(q.length, 0);
});

test('a served waiter stops listening to its signal: a later abort changes nothing', async () => {
  let afterAbort = 0;
  const q = new WaiterQueue(() => { afterAbort++; });
  const ac = new AbortController();
  const p = q.wait(undefined, ac.signal);
  const other = q.wait(undefined);
  q.resolveNext('done');
  ac.abort();
  assert.equal(afterAbort, 0);
  assert.equal(q.length, 1, 'the other waiter is still queued');
  assert.equal(await p, 'done');
  q.rejectAll(new Error('closed'));
  await assert.rejects(other, { message: 'closed' });
  // rejectAll settles who waited then; a later waiter waits for the next event.
  assert.equal(await stateOf(q.wait(undefined)), 'pending');
});

test('receive() and accept() share it: aborting one of two pending calls leaves the other to be served', { timeout: 10000 }, async (t) => {
  const [a, b] = UnixSocket.pair();
  t.after(() => { a.close(); b.close(); });
  const ac = new AbortController();
  const first = b.receive({ signal: ac.signal });
  const second = b.receive();
  ac.abort();
  await assert.rejects(first, { name: 'AbortError' });
  await a.send('hello');
  const msg = await second;
  assert.equal(msg.data.toString(), 'hello');
  msg.close();

  const server = await UnixServer.listen(`\0memfd-waiters-${process.pid}`);
  t.after(() => server.close());
  const ac2 = new AbortController();
  const abortedAccept = server.accept({ signal: ac2.signal });
  const accepted = server.accept();
  ac2.abort();
  await assert.rejects(abortedAccept, { name: 'AbortError' });
  const client = await UnixSocket.connect(`\0memfd-waiters-${process.pid}`);
  const conn = await accepted;
  conn.close();
  client.close();
  const pending = server.accept();
  server.close();
  await assert.rejects(pending, { code: 'ERR_MEMFD_SOCKET_CLOSED' });
});
