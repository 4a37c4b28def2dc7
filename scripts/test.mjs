#!/usr/bin/env node
// npm test [-- test/a.test.mjs ...]: the test files (default: every test/*.test.mjs) with node:test, one
// file at a time, in a private temp directory (TMPDIR, which os.tmpdir() and Python's tempfile honour).
// Whatever a test, an example or a child process leaves in it fails the run: a shared /tmp could not
// tell one run's leftovers from another's.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const requested = process.argv.slice(2);
// Listed here: Node 20 expands no globs in `node --test`.
const files = requested.length ? requested
  : readdirSync(join(root, 'test')).filter((f) => f.endsWith('.test.mjs')).sort().map((f) => join('test', f));

const privateTmp = mkdtempSync(join(tmpdir(), 'memfd-test-run-'));
const child = spawn(process.execPath, ['--expose-gc', '--test', '--test-concurrency=1', ...files], {
  // No compile cache: Node 22 would keep it in the temp directory (node-compile-cache/) when a tool such
  // as tsc enables it, and it is not a test's leftover.
  cwd: root, stdio: 'inherit', env: { ...process.env, TMPDIR: privateTmp, NODE_DISABLE_COMPILE_CACHE: '1' },
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('close', (code, signal) => {
  const left = readdirSync(privateTmp);
  rmSync(privateTmp, { recursive: true, force: true });
  let status = code ?? 1;
  if (signal) console.error(`node --test ended by ${signal}`);
  if (left.length > 0) {
    console.error(`\nThe tests left ${left.length} entr${left.length === 1 ? 'y' : 'ies'} in the temp directory ` +
      `(clean up what a test creates): ${left.sort().join(', ')}`);
    status ||= 1;
  }
  process.exit(status);
});
