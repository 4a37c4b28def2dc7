// Where node-gyp and the Node headers are, for the build scripts (build-native.mjs, build-prebuilds.mjs).
// node-gyp would download headers by default; these machines and many CI sandboxes are offline, and every
// Node release ships its headers under <prefix>/include/node, so the builds pass --nodedir instead.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';

/** A Node install prefix holding include/node/node_api.h, or undefined. */
export function findNodeDir() {
  const candidates = [
    process.env.MEMFD_NODEDIR,
    resolve(dirname(process.execPath), '..'),
    '/usr',
    '/usr/local',
  ].filter(Boolean);
  return candidates.find((dir) => existsSync(join(dir, 'include', 'node', 'node_api.h')));
}

/** node-gyp's bin/node-gyp.js: npm's own when run by npm, else a local install, else the one next to node. */
export function findNodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) {
    return process.env.npm_config_node_gyp;
  }
  try {
    return createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  } catch { /* not installed locally */ }
  const npmBundled = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  return existsSync(npmBundled) ? npmBundled : undefined;
}

/** The environment for node-gyp: npm 11 warns on every call about a user-level `nodedir` key; we pass --nodedir. */
export function nodeGypEnv(extra = {}) {
  const env = { ...process.env, ...extra };
  delete env.npm_config_nodedir;
  return env;
}
