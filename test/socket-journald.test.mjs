// systemd-journald as a real peer: a 300 KB entry is sent as a sealed memfd (examples/journald.ts) and read
// back with journalctl. Starts journald itself when its socket is absent, and stops what it started.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const JOURNALD = '/lib/systemd/systemd-journald';
const SOCKET = '/run/systemd/journal/socket';
const example = fileURLToPath(new URL('../dist-examples/journald.js', import.meta.url));
const hasJournalctl = spawnSync('journalctl', ['--version'], { stdio: 'ignore' }).status === 0;
const skip = !existsSync(JOURNALD) ? `${JOURNALD} is not installed (no systemd-journald on this machine)`
  : !hasJournalctl ? 'journalctl is not installed'
  : process.getuid() !== 0 && !existsSync(SOCKET) ? `${SOCKET} is absent and starting journald needs root`
  : false;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** True when something answers on the journal socket (a socket file alone may be stale). */
async function journalAlive() {
  if (!existsSync(SOCKET)) return false;
  const { UnixSocket } = await import('../dist/index.js');
  try {
    (await UnixSocket.connect(SOCKET, { type: 'dgram' })).close();
    return true;
  } catch {
    return false;
  }
}

let journald = null;
before(async () => {
  if (skip || await journalAlive()) return;
  journald = spawn(JOURNALD, [], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !(await journalAlive()); i++) await sleep(50);
});
after(async () => {
  if (!journald) return;
  journald.kill('SIGTERM');
  if (journald.exitCode === null && journald.signalCode === null) await new Promise((r) => journald.once('exit', r));
});

test('journald receives a 300 KB entry sent as a sealed memfd and journalctl reads it back', { skip, timeout: 30_000 }, async () => {
  assert.ok(existsSync(example), 'dist-examples/journald.js is missing: run `npm run build`');
  assert.ok(await journalAlive(), 'journald did not answer on its socket within 5 s');
  const fdsBefore = readdirSync('/proc/self/fd').length;
  const tag = `memfd-test-${process.pid}`;
  const id = randomUUID();
  const size = 300 * 1024;
  const run = spawnSync(process.execPath, [example, '--tag', tag, '--id', id, '--size', String(size)], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  const report = JSON.parse(run.stdout);
  assert.equal(report.sent, 'memfd', 'a 300 KB entry must travel as a memfd');
  assert.equal(report.bytes, size);

  let entry;
  for (let i = 0; i < 50 && !entry; i++) {
    const out = spawnSync('journalctl', ['-t', tag, '-o', 'json', '--all', '--no-pager'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    for (const line of out.stdout.split('\n')) {
      if (!line.trim()) continue;
      const e = JSON.parse(line);
      if (e.MEMFD_EXAMPLE_ID === id) entry = e;
    }
    if (!entry) await sleep(100);
  }
  assert.ok(entry, 'journalctl did not show the entry within 5 s');
  const message = Array.isArray(entry.MESSAGE) ? Buffer.from(entry.MESSAGE) : Buffer.from(entry.MESSAGE, 'utf8');
  assert.equal(message.length, size);
  const line = 'memfd sends large journal entries through a sealed memory file.\n';
  const expected = Buffer.from(line.repeat(Math.ceil(size / line.length)).slice(0, size));
  assert.equal(createHash('sha256').update(message).digest('hex'), createHash('sha256').update(expected).digest('hex'));
  assert.equal(entry.SYSLOG_IDENTIFIER, tag);
  assert.equal(entry.MEMFD_EXAMPLE_BYTES, String(size));
  assert.equal(Number(entry._PID), run.pid, 'journald saw the sender through SCM_CREDENTIALS');
  assert.equal(readdirSync('/proc/self/fd').length, fdsBefore);
});

test('small entries go in the datagram itself', { skip, timeout: 30_000 }, async () => {
  assert.ok(await journalAlive());
  const id = randomUUID();
  const run = spawnSync(process.execPath, [example, '--tag', `memfd-small-${process.pid}`, '--id', id, '--message', 'small entry'], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(JSON.parse(run.stdout).sent, 'datagram');
  let found = false;
  for (let i = 0; i < 50 && !found; i++) {
    const out = spawnSync('journalctl', ['-t', `memfd-small-${process.pid}`, '-o', 'json', '--no-pager'], { encoding: 'utf8' });
    found = out.stdout.includes(id);
    if (!found) await sleep(100);
  }
  assert.ok(found);
});
