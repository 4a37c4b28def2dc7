#!/usr/bin/env node
// npm run build:prebuilds [-- --install-toolchains] [--force]
//
// Builds every binary the published package carries, from source, on an x86-64 Debian/Ubuntu machine:
//
//   prebuilds/linux-x64/node.napi.glibc.node     gcc                      glibc >= 2.17
//   prebuilds/linux-arm64/node.napi.glibc.node   gcc-aarch64-linux-gnu    glibc >= 2.17, 64 KiB segments
//   prebuilds/linux-x64/node.napi.musl.node      musl-tools (musl-gcc)    any musl libc.so
//
// The names follow prebuildify's tags (node.napi.<libc>.node) so that tools which know that layout
// (bundlers, packagers that unpack native files) recognise them; src/loader.ts picks among them.
// `npm pack` and `npm publish` run this as `prepack`, so a tarball cannot be packed without all three.
// Each target is built by node-gyp in its own copy of binding.gyp + native/ under build-prebuilds/, so the
// developer's build/ is never touched, then stripped and checked (machine, glibc floor, libc it needs,
// Node-API-only symbols, arm64 page alignment). prebuilds/build-info.json records what was built from
// which sources; when the sources and binaries are unchanged the build is skipped (--force rebuilds).
//
// Missing compilers are named with the apt-get line that installs them; --install-toolchains runs it.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findNodeDir, findNodeGyp, nodeGypEnv } from './node-gyp.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const staging = join(root, 'build-prebuilds');
const prebuilds = join(root, 'prebuilds');
const infoFile = join(prebuilds, 'build-info.json');
const args = process.argv.slice(2);
const force = args.includes('--force');
const installToolchains = args.includes('--install-toolchains');
const GLIBC_FLOOR = [2, 17];

const targets = [
  {
    id: 'linux-x64-glibc', dir: 'linux-x64', file: 'node.napi.glibc.node', arch: 'x64', libc: 'glibc', machine: 'X86-64',
    tools: { gcc: 'gcc', make: 'make', python3: 'python3', objdump: 'binutils', readelf: 'binutils', strip: 'binutils' },
    env: {}, strip: 'strip',
  },
  {
    id: 'linux-arm64-glibc', dir: 'linux-arm64', file: 'node.napi.glibc.node', arch: 'arm64', libc: 'glibc', machine: 'AArch64',
    tools: { 'aarch64-linux-gnu-gcc': 'gcc-aarch64-linux-gnu', 'aarch64-linux-gnu-strip': 'binutils-aarch64-linux-gnu' },
    env: { CC: 'aarch64-linux-gnu-gcc', CXX: 'aarch64-linux-gnu-g++', LINK: 'aarch64-linux-gnu-gcc', AR: 'aarch64-linux-gnu-ar' },
    strip: 'aarch64-linux-gnu-strip',
  },
  {
    id: 'linux-x64-musl', dir: 'linux-x64', file: 'node.napi.musl.node', arch: 'x64', libc: 'musl', machine: 'X86-64',
    tools: { 'musl-gcc': 'musl-tools' },
    // musl-gcc puts only musl's headers on the include path; linux/futex.h and friends come from the kernel
    // headers, reached through a folder of symlinks searched after musl's own (see kernelHeaders()).
    env: { CC: 'musl-gcc', CXX: 'musl-gcc', LINK: 'musl-gcc' },
    strip: 'strip',
  },
];

function fail(message) {
  console.error(`build:prebuilds: ${message}`);
  process.exit(1);
}

function run(cmd, argv, options = {}) {
  return spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 64 << 20, ...options });
}

const has = (tool) => run('sh', ['-c', `command -v ${tool}`]).status === 0;

function checkToolchains() {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    fail(`builds on x86-64 Linux (Debian or Ubuntu) only; this is ${process.platform}-${process.arch}`);
  }
  const missing = new Set();
  for (const t of targets) for (const [tool, pkg] of Object.entries(t.tools)) if (!has(tool)) missing.add(pkg);
  if (!existsSync('/usr/include/linux/futex.h') || !existsSync('/usr/include/x86_64-linux-gnu/asm')) missing.add('linux-libc-dev');
  if (!missing.size) return;
  const line = `apt-get update && apt-get install -y ${[...missing].sort().join(' ')}`;
  if (!installToolchains) {
    fail(`missing toolchains (packages: ${[...missing].join(', ')}). Install them with\n  ${line}\n` +
      'or run `npm run build:prebuilds -- --install-toolchains` as root.');
  }
  console.log(`== installing toolchains: ${line}`);
  const r = run('sh', ['-c', `${line.replace('apt-get update', 'apt-get update -qq')} -qq`], { stdio: 'inherit' });
  if (r.status !== 0) fail(`could not install toolchains (${line} exited with ${r.status})`);
}

/** sha256 over everything that goes into a binary: the build inputs and this script. */
function sourcesDigest() {
  const hash = createHash('sha256');
  const files = ['binding.gyp', 'scripts/build-prebuilds.mjs',
    ...readdirSync(join(root, 'native')).sort().map((f) => `native/${f}`)];
  for (const f of files) hash.update(`${f}\0`).update(readFileSync(join(root, f))).update('\0');
  return hash.digest('hex');
}

const sha256 = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');

function upToDate(digest) {
  if (force || !existsSync(infoFile)) return false;
  try {
    const info = JSON.parse(readFileSync(infoFile, 'utf8'));
    return info.sources === digest && targets.every((t) => {
      const entry = info.binaries.find((b) => b.id === t.id);
      const file = join(prebuilds, t.dir, t.file);
      return entry && existsSync(file) && sha256(file) === entry.sha256;
    });
  } catch {
    return false;
  }
}

function kernelHeaders() {
  const dir = join(staging, 'musl-kernel-headers');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  symlinkSync('/usr/include/linux', join(dir, 'linux'));
  symlinkSync('/usr/include/asm-generic', join(dir, 'asm-generic'));
  symlinkSync('/usr/include/x86_64-linux-gnu/asm', join(dir, 'asm'));
  return dir;
}

function build(target, nodedir, nodeGyp) {
  const work = join(staging, target.id);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  cpSync(join(root, 'binding.gyp'), join(work, 'binding.gyp'));
  cpSync(join(root, 'native'), join(work, 'native'), { recursive: true });
  const env = nodeGypEnv(target.env);
  if (target.libc === 'musl') env.CFLAGS = `-idirafter ${kernelHeaders()}`;
  const started = Date.now();
  const r = run(process.execPath, [nodeGyp, 'rebuild', `--nodedir=${nodedir}`, `--arch=${target.arch}`], { cwd: work, env });
  if (r.status !== 0) {
    process.stderr.write(r.stdout + r.stderr);
    fail(`${target.id}: node-gyp exited with ${r.status ?? r.signal}`);
  }
  const out = join(prebuilds, target.dir, target.file);
  mkdirSync(dirname(out), { recursive: true });
  copyFileSync(join(work, 'build', 'Release', 'memfd.node'), out);
  const s = run(target.strip, ['--strip-unneeded', out]);
  if (s.status !== 0) fail(`${target.id}: ${target.strip} failed: ${s.stderr}`);
  const facts = inspect(target, out);
  console.log(`${relative(root, out)}: ${facts.bytes} bytes, ${target.libc}` +
    (facts.glibcFloor ? ` >= ${facts.glibcFloor}` : '') + `, segments aligned to ${facts.segmentAlign / 1024} KiB, ` +
    `built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { id: target.id, file: relative(root, out), platform: 'linux', arch: target.arch, libc: target.libc, ...facts,
    compiler: run(env.CC ?? 'gcc', ['--version']).stdout.split('\n')[0] };
}

/** Reads the binary back and refuses one that would not load where its name says it does. */
function inspect(target, file) {
  const header = run('readelf', ['-h', '-d', '-l', '-W', file]).stdout;
  const machine = /Machine:\s+(.*)/.exec(header)?.[1] ?? '';
  if (!machine.replace(/[\s-]/g, '').toLowerCase().includes(target.machine.replace('-', '').toLowerCase())) {
    fail(`${target.id}: readelf says the machine is "${machine}"`);
  }
  const needed = [...header.matchAll(/\(NEEDED\)\s+Shared library: \[(.*?)\]/g)].map((m) => m[1]);
  const segmentAlign = Math.max(...[...header.matchAll(/^\s+LOAD\s.*\s(0x[0-9a-f]+)$/gm)].map((m) => Number(m[1])));
  if (target.arch === 'arm64' && segmentAlign < 0x10000) {
    fail(`${target.id}: LOAD segments aligned to ${segmentAlign} bytes; kernels with 64 KiB pages need 0x10000`);
  }
  const symbols = run('objdump', ['-T', file]).stdout;
  if (/_ZN2v8|_ZN4node/.test(symbols)) fail(`${target.id}: uses V8/node C++ symbols, not only Node-API`);
  const versions = [...symbols.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  let glibcFloor;
  if (target.libc === 'glibc') {
    const floor = versions.reduce((a, b) => (b[0] - a[0] || b[1] - a[1]) > 0 ? b : a, [2, 0]);
    if (floor[0] - GLIBC_FLOOR[0] > 0 || (floor[0] === GLIBC_FLOOR[0] && floor[1] > GLIBC_FLOOR[1])) {
      fail(`${target.id}: needs glibc ${floor.join('.')}, above the promised ${GLIBC_FLOOR.join('.')}`);
    }
    glibcFloor = floor.join('.');
  } else if (versions.length || needed.join() !== 'libc.so') {
    fail(`${target.id}: a musl binary must need only libc.so and no GLIBC_ versions (needs ${needed.join(', ')})`);
  }
  return { bytes: readFileSync(file).length, sha256: sha256(file), needed, glibcFloor, segmentAlign };
}

checkToolchains();
const digest = sourcesDigest();
if (upToDate(digest)) {
  console.log('build:prebuilds: prebuilds/ already matches the sources (build-info.json); --force rebuilds');
  process.exit(0);
}
const nodedir = findNodeDir() ?? fail('cannot find Node headers (include/node/node_api.h); set MEMFD_NODEDIR');
const nodeGyp = findNodeGyp() ?? fail('node-gyp not found; run this through npm (npm run build:prebuilds)');
rmSync(prebuilds, { recursive: true, force: true });
const binaries = targets.map((t) => build(t, nodedir, nodeGyp));
writeFileSync(infoFile, JSON.stringify({ sources: digest, nodeHeaders: process.version, binaries }, null, 2) + '\n');
console.log(`build:prebuilds: ${binaries.length} binaries in prebuilds/ (details in prebuilds/build-info.json)`);
