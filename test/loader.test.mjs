// The loader (src/loader.ts): which C library it sees, which files it tries, what it says when none loads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addonFile, candidates, detectLibc, libcOf } from '../dist/loader.js';
import '../dist/index.js';

const root = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const noReport = () => { throw new Error('the report must not be needed when the maps answer'); };

test('this process runs on glibc, and the maps alone say so', () => {
  assert.equal(libcOf(readFileSync('/proc/self/maps', 'utf8'), noReport), 'glibc');
  assert.equal(detectLibc(), 'glibc');
});

test('a real musl process is recognised from its own maps (Debian musl-gcc), and Alpine\'s loader name too', (t) => {
  if (spawnSync('sh', ['-c', 'command -v musl-gcc']).status !== 0) {
    t.skip('musl-gcc is not installed (apt-get install musl-tools)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'memfd-musl-maps-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'maps.c'), '#include <stdio.h>\nint main(void) { FILE *f = fopen("/proc/self/maps", "r"); ' +
    'int c; while ((c = fgetc(f)) != EOF) putchar(c); return 0; }\n');
  execFileSync('musl-gcc', ['-o', join(dir, 'maps'), join(dir, 'maps.c')]);
  // Without the sanitizer runtime that test:asan preloads into every child: it is a glibc library.
  const { LD_PRELOAD: _preload, ...env } = process.env;
  const maps = execFileSync(join(dir, 'maps'), { encoding: 'utf8', env });
  assert.match(maps, /musl/);
  assert.equal(libcOf(maps, noReport), 'musl');
  assert.equal(libcOf('7f0-7f1 r-xp 00000000 fe:00 1 /lib/ld-musl-aarch64.so.1\n', noReport), 'musl');
  // A glibc process that merely has a musl file on disk (or even mapped as data) is not musl.
  assert.equal(libcOf('7f0-7f1 r--p 00000000 fe:00 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n', noReport), 'glibc');
});

test('without libc in the maps (static Node, no /proc), Node\'s report decides', () => {
  assert.equal(libcOf(undefined, () => '2.36'), 'glibc');
  assert.equal(libcOf('', () => undefined), 'musl');
});

test('candidates: a build from source first, then the prebuild tagged for this platform, arch and libc', () => {
  assert.deepEqual(candidates('musl', {}, '/pkg', 'linux', 'x64'),
    ['/pkg/build/Release/memfd.node', '/pkg/prebuilds/linux-x64/node.napi.musl.node', '/pkg/build/Debug/memfd.node']);
  assert.deepEqual(candidates('glibc', {}, '/pkg', 'linux', 'arm64')[1], '/pkg/prebuilds/linux-arm64/node.napi.glibc.node');
  assert.deepEqual(candidates('glibc', { MEMFD_PREBUILT: '1' }, '/pkg', 'linux', 'x64'), ['/pkg/prebuilds/linux-x64/node.napi.glibc.node']);
  assert.deepEqual(candidates('glibc', { MEMFD_BINDING: '/x.node', MEMFD_PREBUILT: '1' }, '/pkg'), ['/x.node']);
});

test('this process loaded the file the environment asked for', () => {
  const file = addonFile();
  if (process.env.MEMFD_BINDING) assert.equal(file, process.env.MEMFD_BINDING);
  else if (process.env.MEMFD_PREBUILT === '1') assert.equal(file, join(root, 'prebuilds', `linux-${process.arch}`, `node.napi.${detectLibc()}.node`));
  else assert.equal(file, join(root, 'build', 'Release', 'memfd.node'));
});

test('when nothing loads, the error names every file tried, why, and the one command that builds from source', (t) => {
  // A copy of the package with dist/ only: no build, no prebuilds; plus a broken file posing as a build.
  const pkg = mkdtempSync(join(tmpdir(), 'memfd-noaddon-'));
  t.after(() => rmSync(pkg, { recursive: true, force: true }));
  cpSync(join(root, 'dist'), join(pkg, 'dist'), { recursive: true });
  writeFileSync(join(pkg, 'package.json'), readFileSync(join(root, 'package.json')));
  mkdirSync(join(pkg, 'build', 'Debug'), { recursive: true });
  writeFileSync(join(pkg, 'build', 'Debug', 'memfd.node'), 'not an ELF file');
  const env = { ...process.env };
  delete env.MEMFD_BINDING;
  delete env.MEMFD_PREBUILT;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e',
    `import(${JSON.stringify(join(pkg, 'dist', 'index.js'))}).catch((e) => { console.log(JSON.stringify({ code: e.code, message: e.message })); });`],
  { encoding: 'utf8', env });
  const { code, message } = JSON.parse(r.stdout);
  assert.equal(code, 'ERR_MEMFD_NATIVE_MISSING');
  assert.match(message, new RegExp(`${pkg}/build/Release/memfd\\.node \\(missing\\)`));
  assert.match(message, new RegExp(`${pkg}/prebuilds/linux-${process.arch}/node\\.napi\\.glibc\\.node \\(missing\\)`));
  assert.match(message, new RegExp(`${pkg}/build/Debug/memfd\\.node \\(.*(invalid ELF|too short|file too short).*\\)`));
  assert.ok(message.includes(`npm run build:native --prefix ${pkg}`), message);
});
