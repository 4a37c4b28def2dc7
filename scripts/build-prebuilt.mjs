#!/usr/bin/env node
// Copies the freshly built addon into prebuilds/<platform>-<arch>/memfd.napi.node, stripped, for
// publishing. Node-API makes one binary good for every Node major; the glibc floor is what limits which
// distributions can load it, so it is printed (and checked against a maximum).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'build', 'Release', 'memfd.node');
if (!existsSync(built)) {
  console.error('build:prebuilt: build/Release/memfd.node is missing; run npm run build:native first');
  process.exit(1);
}
const dir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
mkdirSync(dir, { recursive: true });
const target = join(dir, 'memfd.napi.node');
copyFileSync(built, target);
spawnSync('strip', ['--strip-unneeded', target], { stdio: 'inherit' });

const symbols = spawnSync('objdump', ['-T', target], { encoding: 'utf8' });
const versions = [...(symbols.stdout ?? '').matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
const floor = versions.reduce((a, b) => (b[0] > a[0] || (b[0] === a[0] && b[1] > a[1]) ? b : a), [2, 0]);
console.log(`prebuild: ${target} (needs glibc >= ${floor.join('.')})`);
const MAX = [2, 28];
if (floor[0] > MAX[0] || (floor[0] === MAX[0] && floor[1] > MAX[1])) {
  console.error(`build:prebuilt: glibc floor ${floor.join('.')} is above ${MAX.join('.')}; avoid newer glibc symbols`);
  process.exit(1);
}
