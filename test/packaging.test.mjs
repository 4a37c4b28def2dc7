// Packaging promises: the addon's glibc floor, the exports map, what a published tarball contains.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const addon = `${root}build/Release/memfd.node`;

test('the addon needs no glibc newer than 2.28 (prebuilt binaries load on older distributions)', (t) => {
  const r = spawnSync('objdump', ['-T', addon], { encoding: 'utf8' });
  if (r.error) { t.skip('objdump is not installed'); return; }
  const versions = [...r.stdout.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  assert.ok(versions.length > 0);
  const newer = versions.filter(([a, b]) => a > 2 || (a === 2 && b > 28)).map((v) => v.join('.'));
  assert.deepEqual(newer, [], 'symbols above GLIBC_2.28');
  // Node-API only: no V8/node C++ symbols that would tie the binary to one Node major.
  assert.doesNotMatch(r.stdout, /_ZN2v8|_ZN4node/);
});

test('package.json: ESM only, exports map with types, Node >= 20.19, no runtime dependencies', () => {
  const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8'));
  assert.equal(pkg.name, 'memfd');
  assert.equal(pkg.type, 'module');
  assert.equal(pkg.exports['.'].types, './dist/index.d.ts');
  assert.equal(pkg.exports['.'].default, './dist/index.js');
  assert.equal(pkg.engines.node, '>=20.19');
  assert.equal(pkg.license, 'MIT');
  assert.equal(pkg.dependencies, undefined);
  assert.ok(existsSync(`${root}dist/index.d.ts`));
});

test('npm pack ships dist, the C sources, binding.gyp and the build script, and no tests', () => {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const files = JSON.parse(r.stdout)[0].files.map((f) => f.path);
  for (const needed of ['dist/index.js', 'dist/index.d.ts', 'binding.gyp', 'native/handle.c', 'native/socket.c',
    'scripts/build-native.mjs', 'README.md', 'LICENSE', 'package.json']) {
    assert.ok(files.includes(needed), `${needed} is in the tarball`);
  }
  assert.equal(files.some((f) => f.startsWith('test/') || f.startsWith('build/') || f.startsWith('node_modules/')), false);
});
