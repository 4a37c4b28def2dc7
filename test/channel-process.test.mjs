// Channel between real processes: a Node child, a SIGKILLed peer (mid-message) on either end, and the
// Python peer of examples/channel-python.py in both directions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Channel } from '../dist/index.js';
import { fdCount, fdCountSettled, run } from './helpers.mjs';

const PEER = new URL('./channel-peer.mjs', import.meta.url).pathname;
const PARENT = new URL('./channel-parent.mjs', import.meta.url).pathname;
const PY = new URL('../examples/channel-python.py', import.meta.url).pathname;
const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/** Spawns a child with the channel's fd as fd 3; `lines` yields its stdout JSON lines. */
function spawnPeer(ch, role) {
  const child = spawn(process.execPath, [PEER, '3', role], { stdio: ['ignore', 'pipe', 'inherit', ch.fd] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => JSON.parse((await lines.next()).value);
  const exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
  return { child, next, exited };
}

test('a child process echoes messages of random sizes through wrap-around, in order, then ends', async (t) => {
  const ch = Channel.create({ size: 8192 });
  t.after(() => ch.close());
  const { next, exited } = spawnPeer(ch, 'echo');
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  const sent = [];
  const sender = (async () => {
    for (let i = 0; i < 3000; i++) {
      const m = Buffer.alloc(rand() % 3000);
      for (let j = 0; j < m.length; j += 97) m[j] = (i + j) & 0xff;
      if (m.length >= 4) m.writeUInt32LE(i, 0);
      sent.push(m);
      await ch.send(m);
    }
  })();
  for (let i = 0; i < 3000; i++) {
    const got = await ch.receive();
    while (sent.length <= i) await delay(0);
    assert.deepEqual(got, Buffer.concat([Buffer.from('node:'), sent[i]]), `message ${i}`);
  }
  await sender;
  ch.close();
  assert.deepEqual(await next(), { echoed: 3000 });
  assert.deepEqual(await exited, { code: 0, signal: null });
});

// Loops that the JIT optimizes while the other process changes shared memory must see the change.
/**
 * Calls `step` until it returns true (then true) or 20 s pass (then false). The inner loop calls nothing
 * but `step`, so an engine could only see the other process through the loads the channel makes; the clock
 * is read between inner loops.
 */
function hotLoop(step) {
  const until = performance.now() + 20000;
  while (performance.now() < until) {
    for (let i = 0; i < 100000; i++) if (step()) return true;
  }
  return false;
}

test('a hot trySend loop sees the reader close: it throws ERR_MEMFD_CHANNEL_CLOSED', async (t) => {
  const ch = Channel.create({ size: 65536 });
  t.after(() => ch.close());
  const { child, next, exited } = spawnPeer(ch, 'hot-read-then-close');
  t.after(() => child.kill());
  const m = Buffer.alloc(16, 1);
  let sent = 0, code;
  hotLoop(() => {
    try {
      if (ch.trySend(m)) sent++;
      return false;
    } catch (e) {
      code = e.code;
      return true;
    }
  });
  assert.equal(code, 'ERR_MEMFD_CHANNEL_CLOSED');
  assert.ok(sent >= 20000, `sent ${sent}`);
  assert.deepEqual(await next(), { received: 20000 });
  assert.deepEqual(await exited, { code: 0, signal: null });
});

for (const [what, attempt] of [
  ['trySend', (ch, m) => ch.trySend(m)],
  ['trySendMany([])', (ch) => ch.trySendMany([])],
]) {
  test(`${what} behind a queued send() writes nothing, and a hot loop of it still sees the peer close`, async (t) => {
    const ch = Channel.create({ size: 4096 });
    t.after(() => ch.close());
    const { child, next, exited } = spawnPeer(ch, 'close-later');
    t.after(() => child.kill());
    assert.deepEqual(await next(), { ready: true });
    const m = Buffer.alloc(100, 1);
    while (ch.trySend(m));
    // No room: this send waits in the queue, so every later trySend*() returns at once without writing.
    const queuedOutcome = ch.send(m).then(() => 'sent', (e) => e.code);
    let sentAnyway = false, code;
    hotLoop(() => {
      try {
        sentAnyway ||= Boolean(attempt(ch, m));
        return false;
      } catch (e) {
        code = e.code;
        return true;
      }
    });
    assert.equal(sentAnyway, false, 'nothing may be sent while a send() waits');
    assert.equal(code, 'ERR_MEMFD_CHANNEL_CLOSED');
    assert.equal(await queuedOutcome, 'ERR_MEMFD_CHANNEL_CLOSED');
    assert.deepEqual(await next(), { closed: true });
    assert.deepEqual(await exited, { code: 0, signal: null });
  });
}

test('a hot tryReceive loop reaches the end of the stream after the writer closes', async (t) => {
  const ch = Channel.create({ size: 65536 });
  t.after(() => ch.close());
  const { child, next, exited } = spawnPeer(ch, 'hot-send-then-close');
  t.after(() => child.kill());
  let received = 0;
  hotLoop(() => {
    if (ch.tryReceive() !== undefined) received++;
    else return ch.ended;
    return false;
  });
  assert.equal(received, 20000);
  assert.ok(ch.ended);
  assert.deepEqual(await next(), { sent: 20000 });
  assert.deepEqual(await exited, { code: 0, signal: null });
});

/**
 * A peer's death must be noticed within 100 ms of its SIGKILL. Nearly all of that time is the kernel tearing
 * the killed process down (the notice follows the child's 'exit' by 0.1 ms here: 7-12 ms when the machine
 * is idle, 15-30 ms with both cores busy), which a loaded machine can stretch past 100 ms on its own. So
 * `attempt` (one whole scenario, resolving with { ms, exitMs }: kill to notice, kill to 'exit') runs up to
 * three times, and the test fails only if none was noticed within the bound; every time is in the message.
 * A notice that never comes fails the test through its 30 s timeout instead of hanging the run.
 */
async function noticedWithin100ms(t, attempt) {
  const times = [];
  let ms = Infinity;
  for (let i = 0; i < 3 && ms > 100; i++) {
    const result = await attempt();
    ms = result.ms;
    times.push(`${ms.toFixed(1)} (exit seen after ${result.exitMs.toFixed(1)})`);
  }
  t.diagnostic(`noticed after ${times.join(', ')} ms`);
  assert.ok(ms <= 100, `noticed after ${times.join(', ')} ms`);
}

/** Resolves with the time from `t0` to the child's 'exit' event. */
const exitTime = (child, t0) => new Promise((r) => child.on('exit', () => r(performance.now() - t0)));

test('SIGKILL of the peer mid-message: the pending receive ends with null within 100 ms', { timeout: 30000 }, async (t) => {
  await noticedWithin100ms(t, async () => {
    const fdsBefore = fdCount();
    const ch = Channel.create({ size: 4096 });
    const { child, next, exited } = spawnPeer(ch, 'die-mid-message');
    const closed = new Promise((r) => child.on('close', r)); // after its stdout pipe is closed too
    try {
      assert.deepEqual(await next(), { ready: true });
      for (let i = 0; i < 3; i++) assert.equal((await ch.receive()).toString(), `m${i}`);
      const pending = ch.receive();
      await delay(50); // asleep on the futex by now
      const t0 = performance.now();
      const exitMs = exitTime(child, t0);
      child.kill('SIGKILL');
      assert.equal(await pending, null);
      const ms = performance.now() - t0;
      assert.equal(ch.peerClosed, true);
      assert.equal(ch.ended, true);
      assert.equal((await exited).signal, 'SIGKILL');
      await assert.rejects(ch.send('anyone?'), { code: 'ERR_MEMFD_CHANNEL_CLOSED' });
      ch.close();
      await closed;
      assert.equal(await fdCountSettled(fdsBefore), fdsBefore, 'memfd and pidfd are closed');
      return { ms, exitMs: await exitMs };
    } finally {
      ch.close();
      child.kill();
    }
  });
});

test('SIGKILL of the reader: a send waiting for room rejects within 100 ms', { timeout: 30000 }, async (t) => {
  await noticedWithin100ms(t, async () => {
    const ch = Channel.create({ size: 4096 });
    const { child, next } = spawnPeer(ch, 'fill-and-hang');
    try {
      assert.deepEqual(await next(), { ready: true });
      while (ch.trySend(Buffer.alloc(100)));
      const pending = ch.send(Buffer.alloc(100));
      const settled = pending.then(() => 'sent', (e) => e.code);
      await delay(50);
      const t0 = performance.now();
      const exitMs = exitTime(child, t0);
      child.kill('SIGKILL');
      assert.equal(await settled, 'ERR_MEMFD_CHANNEL_CLOSED');
      return { ms: performance.now() - t0, exitMs: await exitMs };
    } finally {
      ch.close();
      child.kill();
    }
  });
});

test('SIGKILL of end A: end B\'s pending receive ends within 100 ms', { timeout: 30000 }, async (t) => {
  await noticedWithin100ms(t, async () => {
    const parent = spawn(process.execPath, [PARENT, 'watch-parent'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: parent.stdout })[Symbol.asyncIterator]();
    const next = async () => JSON.parse((await lines.next()).value);
    const { childPid } = await next();
    try {
      assert.deepEqual(await next(), { ready: true });
      await delay(100);
      const killedAt = Date.now();
      const exitMs = exitTime(parent, performance.now());
      parent.kill('SIGKILL');
      const report = await next(); // relayed by the grandchild through the inherited stdout
      assert.equal(report.ended, true);
      return { ms: report.at - killedAt, exitMs: await exitMs };
    } finally {
      parent.kill('SIGKILL');
      try { process.kill(childPid, 0); await delay(200); } catch { /* gone: it exits once its receive ends */ }
    }
  });
});

test('Node to Python: the Python peer claims end B and echoes until Node closes', async (t) => {
  const ch = Channel.create({ size: 4096 });
  t.after(() => ch.close());
  const py = spawn('python3', [PY, 'echo', '3'], { stdio: ['ignore', 'pipe', 'inherit', ch.fd] });
  let out = '';
  py.stdout.on('data', (d) => { out += d; });
  const exited = new Promise((r) => py.on('exit', (code) => r(code)));
  const msgs = Array.from({ length: 500 }, (_, i) => Buffer.alloc(i * 7 % 1500, i & 0xff));
  const sender = (async () => { for (const m of msgs) await ch.send(m); })();
  for (const m of msgs) assert.deepEqual(await ch.receive(), Buffer.concat([Buffer.from('py:'), m]));
  await sender;
  assert.ok(ch.peerPid > 0 && ch.peerPid === py.pid);
  ch.close();
  assert.equal(await exited, 0);
  assert.deepEqual(JSON.parse(out), { echoed: 500 });
});

test('Python to Node: the Python peer creates the channel, Node claims end B and echoes', async () => {
  const r = await run('python3', [PY, 'drive', '300', '--', process.execPath, PEER, '--fd-follows']);
  assert.equal(r.code, 0, r.stderr);
  const { replies, child } = JSON.parse(r.stdout.trim().split('\n').pop());
  assert.equal(child, 0);
  assert.equal(replies.length, 300);
  for (let i = 0; i < 300; i++) {
    const expected = Buffer.concat([Buffer.from(`node:msg ${i} `), Buffer.from(Array.from({ length: i % 50 }, (_, k) => k))]);
    assert.equal(replies[i], expected.toString('hex'));
  }
});

test('the recipe of docs/channel.md (examples/channel.mjs) runs as shown on this Node', async () => {
  const r = await run(process.execPath, ['examples/channel.mjs'], { cwd: new URL('..', import.meta.url).pathname });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'parent got: got 5 bytes: hello\nparent got: and 3 numbers\n' +
    'parent got: and 4096 bytes in place, all 42: true\n');
});
