#!/usr/bin/env node
// Builds the Node-API addon from source into build/Release/memfd.node, with node-gyp, against the headers of
// the Node that runs this script (Node-API is ABI-stable: the result loads on every later Node major too).
//
// A clone runs this through `prepare` on `npm install`. The published package never runs it (it has no
// install script and ships prebuilds/); on a platform without a prebuilt binary (musl, other arches) users
// run it once: `cd node_modules/memfd && npm run build:native`. Extra arguments go to `node-gyp rebuild`.
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findNodeDir, findNodeGyp, nodeGypEnv } from './node-gyp.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// --from-source was needed when this script could also pick a prebuilt binary; it now always compiles.
const extraArgs = process.argv.slice(2).filter((a) => a !== '--from-source');

if (process.platform !== 'linux') {
  console.error('memfd: Linux only (memfd_create, seals and SCM_RIGHTS are Linux kernel features); skipping native build');
  process.exit(0);
}

// Without local headers (some distribution packages of Node leave them out) node-gyp downloads them.
const nodedir = findNodeDir();
if (!nodedir) {
  console.error(`memfd: no Node headers (include/node/node_api.h) next to ${process.execPath}; node-gyp will ` +
    'download them (set MEMFD_NODEDIR to a Node install prefix that has them to build offline)');
}
const nodeGyp = findNodeGyp();
if (!nodeGyp) {
  console.error('memfd: node-gyp not found; run this through npm (npm run build:native) or install node-gyp');
  process.exit(1);
}

const result = spawnSync(process.execPath, [nodeGyp, 'rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : []), ...extraArgs],
  { cwd: root, stdio: 'inherit', env: nodeGypEnv() });
if (result.status !== 0) {
  console.error(`memfd: native build failed (node-gyp exited with ${result.status ?? result.signal}); ` +
    'it needs a C compiler, make and python3');
  process.exit(result.status ?? 1);
}
