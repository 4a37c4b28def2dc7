#!/usr/bin/env node
// Builds the Node-API addon with node-gyp against the headers of the Node that runs this script.
// Why not plain `node-gyp rebuild`: node-gyp would try to download headers, and these machines (and many
// CI sandboxes) are offline. Every Node release ships its headers under <prefix>/include/node, so we
// point --nodedir there. Node-API is ABI-stable, so the result loads on every later Node major too.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const fromSource = process.argv.includes('--from-source') || Boolean(process.env.MEMFD_BUILD_FROM_SOURCE);
const extraArgs = process.argv.slice(2).filter((a) => a !== '--from-source');

if (process.platform !== 'linux') {
  console.error('memfd: Linux only (memfd_create, seals and SCM_RIGHTS are Linux kernel features); skipping native build');
  process.exit(0);
}

function findNodeDir() {
  const candidates = [
    process.env.MEMFD_NODEDIR,
    resolve(dirname(process.execPath), '..'),
    '/usr',
    '/usr/local',
  ].filter(Boolean);
  for (const dir of candidates) {
    if (existsSync(join(dir, 'include', 'node', 'node_api.h'))) return dir;
  }
  return undefined;
}

function findNodeGyp() {
  // npm exposes its bundled node-gyp to lifecycle scripts; outside npm, fall back to a local install.
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) {
    return process.env.npm_config_node_gyp;
  }
  const require = createRequire(import.meta.url);
  for (const id of ['node-gyp/bin/node-gyp.js']) {
    try { return require.resolve(id); } catch { /* try the next */ }
  }
  const npmBundled = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (existsSync(npmBundled)) return npmBundled;
  return undefined;
}

// A published package can ship prebuilt binaries (npm run prebuild); npm 12 no longer runs dependency
// install scripts by default, so those are what most users load. Use one when it loads here, unless the
// user asks to build from source.
const prebuildDir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
if (!fromSource && existsSync(prebuildDir) && !extraArgs.length) {
  const { readdirSync } = await import('node:fs');
  for (const f of readdirSync(prebuildDir).filter((n) => n.endsWith('.node'))) {
    const probe = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(join(prebuildDir, f))})`], { stdio: 'ignore' });
    if (probe.status === 0) {
      console.log(`memfd: using prebuilt ${join('prebuilds', `${process.platform}-${process.arch}`, f)} (set MEMFD_BUILD_FROM_SOURCE=1 to compile)`);
      process.exit(0);
    }
  }
}

const nodedir = findNodeDir();
if (!nodedir) {
  console.error('memfd: cannot find Node headers (include/node/node_api.h) next to ' + process.execPath +
    '; set MEMFD_NODEDIR to a Node install prefix');
  process.exit(1);
}
const nodeGyp = findNodeGyp();
if (!nodeGyp) {
  console.error('memfd: node-gyp not found; run this through npm (npm run build:native) or install node-gyp');
  process.exit(1);
}

const args = [nodeGyp, 'rebuild', `--nodedir=${nodedir}`, ...extraArgs];
const env = { ...process.env };
// npm 11 warns on every call about a user-level `nodedir` key; we pass --nodedir ourselves.
delete env.npm_config_nodedir;
const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env });
if (result.status !== 0) {
  console.error(`memfd: native build failed (node-gyp exited with ${result.status ?? result.signal})`);
  process.exit(result.status ?? 1);
}
