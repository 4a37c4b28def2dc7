#!/usr/bin/env node
// npm run test:prebuilt
//
// The whole test suite against the binary users get: prebuilds/linux-x64/node.napi.glibc.node (from
// npm run build:prebuilds), not the build/ a clone makes. MEMFD_PREBUILT=1 makes the loader skip build/
// (test/loader.test.mjs checks which file was loaded), and MEMFD_TEST_REQUIRE_PREBUILDS=1 turns the
// packaging tests' "not built here" skips into failures.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const prebuilt = join(root, 'prebuilds', `linux-${process.arch}`, 'node.napi.glibc.node');
if (!existsSync(prebuilt)) {
  console.error(`test:prebuilt: ${prebuilt} is missing; run npm run build:prebuilds first`);
  process.exit(1);
}
const env = { ...process.env, MEMFD_PREBUILT: '1', MEMFD_TEST_REQUIRE_PREBUILDS: '1' };
delete env.MEMFD_BINDING;
console.log(`== the test suite against ${prebuilt.slice(root.length + 1)}`);
// scripts/test.mjs is `npm test`: every test file, in a private temp directory that must be left empty.
const r = spawnSync(process.execPath, [join(root, 'scripts', 'test.mjs'), ...process.argv.slice(2)], { cwd: root, env, stdio: 'inherit' });
process.exit(r.status ?? 1);
