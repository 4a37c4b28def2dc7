// The README's synopsis and the examples run as shown; CommonJS users can require() the package.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from './helpers.mjs';

const root = new URL('..', import.meta.url).pathname;

test('README synopsis (examples/synopsis.mjs) runs as shown', async () => {
  const r = await run(process.execPath, ['examples/synopsis.mjs'], { cwd: root });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^seal\|shrink\|grow\|write\|exec$/m);
  assert.match(r.stdout, /^EPERM pwrite EPERM: operation not permitted, pwrite/m);
  assert.match(r.stdout, /^child sees pixels\.\.\.$/m);
});

test('demo part 1 (examples/demo.mjs): seals are enforced in this process and in a child', async () => {
  const r = await run(process.execPath, ['examples/demo.mjs'], { cwd: root });
  assert.equal(r.code, 0, r.stderr);
  assert.equal((r.stdout.match(/refused by the kernel: EPERM/g) ?? []).length, 4);
  assert.match(r.stdout, /write -> EPERM/);
  assert.match(r.stdout, /content unchanged: true/);
});

test('CommonJS code loads the package with require() (require(esm))', async () => {
  const r = await run(process.execPath, ['-e', `
    const { MemFile, Seal } = require('memfd');
    const f = MemFile.from('from cjs');
    console.log(f.readAllSync().toString(), f.getSeals().has(Seal.Write));
    f.close();
  `], { cwd: root });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'from cjs true');
});

test('examples/exec.mjs runs an in-memory executable and a default memfd refuses to run', async () => {
  const r = await run(process.execPath, ['examples/exec.mjs'], { cwd: root });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /exec: true {2}-> exit 0: hello from a program that only exists in memory/);
  assert.match(r.stdout, /exec: false -> EACCES \(mode 666, seals exec\)/);
});

test('demo part 2 (examples/handoff.mjs): a sealed memfd handed to a child over a socket pair, next to a pipe', async () => {
  const r = await run(process.execPath, ['examples/handoff.mjs', '--size', '8'], { cwd: root });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /seals seal\|shrink\|grow\|write/);
  assert.match(r.stdout, /verified 8388608 bytes/);
  assert.match(r.stdout, /read 8388608 bytes from a pipe and verified them/);
  assert.match(r.stdout, /hand-over \(send \/ transfer\)\s+[\d.]+ ms\s+[\d.]+ ms/);
});

test('examples/share-memory.mjs: Atomics counter and futex across two processes', async () => {
  const r = await run(process.execPath, ['examples/share-memory.mjs', '200000'], { cwd: root });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /: 400,000 \(expected 400,000\)/);
});

test('examples/python-interop.mjs: sealed memfds both ways with a python3 stdlib peer', async (t) => {
  const { hasPython } = await import('./helpers.mjs');
  if (!(await hasPython())) { t.skip('python3 with socket.send_fds is not installed'); return; }
  const r = await run(process.execPath, ['examples/python-interop.mjs'], { cwd: root });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /node: got "reply" with from-python \(seal\|shrink\|grow\|write\): python saw 8388608 bytes, sha256 [0-9a-f]{64}, message 'hello python'/);
});

test('examples/readonly-handoff.mjs: FutureWrite owner pattern, reader refused and sees live updates', async () => {
  const r = await run(process.execPath, ['examples/readonly-handoff.mjs'], { cwd: root });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /owner: seals shrink\|grow\|future-write\|exec; my mapping stays writable: true/);
  for (const what of ['write\\(2\\)', 'writable map', 'truncate']) assert.match(r.stdout, new RegExp(`reader: ${what} refused: EPERM`));
  assert.match(r.stdout, /reader: version 3: "update number 3 from the owner"/);
});

test('README synopsis part 2 (examples/synopsis-map.mjs): map, send, receive, adopt', async () => {
  const r = await run(process.execPath, ['examples/synopsis-map.mjs'], { cwd: root });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), '67108864 07070707');
});
