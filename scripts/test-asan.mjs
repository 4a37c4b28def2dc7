#!/usr/bin/env node
// npm run test:asan [-- <node --test arguments>]
//
// Builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/ (never touching
// ./build) and runs the whole test suite against that build. Fails when a test fails OR when any
// sanitizer report appears, in the runner's output or in the report files every process writes
// (children and grandchildren included: ASan/UBSan log_path writes one file per PID).
//
// How: node-gyp `rebuild` always writes to ./build of the package it runs in, so the package's
// binding.gyp and native/ are copied to build-asan/pkg/ with the sanitizer flags added to the copy, and
// scripts/build-native.mjs (the same offline --nodedir logic as a normal build) runs there. The tests load
// that .node through MEMFD_BINDING. A canary addon with a deliberate heap overflow and a deliberate
// signed overflow is built alongside and run first, so a broken pipeline (uninstrumented build, runtime
// not preloaded, reports going nowhere) fails loudly instead of passing with "zero reports".
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'build-asan');
const pkg = join(outDir, 'pkg');
const logDir = join(outDir, 'logs');
const canaryLogDir = join(outDir, 'canary-logs');
const SANITIZE = ['-fsanitize=address,undefined', '-fno-omit-frame-pointer', '-g', '-O1'];
const REPORT_PATTERNS = [
  /ERROR: AddressSanitizer/,
  /ERROR: LeakSanitizer/,
  /runtime error:/,
  /SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer)/,
];

function fail(message) {
  console.error(`test:asan: ${message}`);
  process.exit(1);
}

function runtimeLibrary(name) {
  const cc = process.env.CC || 'gcc';
  const r = spawnSync(cc, [`-print-file-name=${name}`], { encoding: 'utf8' });
  const path = r.stdout?.trim();
  if (r.status !== 0 || !path || !path.startsWith('/') || !existsSync(path)) {
    fail(`cannot find ${name} with \`${cc} -print-file-name=${name}\` (install gcc with its sanitizer runtimes, ` +
      'e.g. Debian: apt-get install gcc libasan8 libubsan1)');
  }
  return path;
}

// 1. A copy of the native sources with sanitizer flags, plus the canary target.
function prepareTree() {
  rmSync(pkg, { recursive: true, force: true });
  mkdirSync(join(pkg, 'scripts'), { recursive: true });
  cpSync(join(root, 'native'), join(pkg, 'native'), { recursive: true });
  for (const script of ['build-native.mjs', 'node-gyp.mjs']) cpSync(join(root, 'scripts', script), join(pkg, 'scripts', script));
  cpSync(join(root, 'scripts', 'asan-canary.c'), join(pkg, 'native-canary', 'asan-canary.c'));
  // binding.gyp is JSON plus gyp's # comment lines.
  const gyp = JSON.parse(readFileSync(join(root, 'binding.gyp'), 'utf8').replace(/^\s*#.*$/gm, ''));
  for (const target of gyp.targets) {
    target.cflags = [...(target.cflags ?? []), ...SANITIZE];
    target.ldflags = [...(target.ldflags ?? []), '-fsanitize=address,undefined'];
  }
  gyp.targets.push({
    target_name: 'asan_canary',
    sources: ['native-canary/asan-canary.c'],
    defines: ['NAPI_VERSION=8'],
    cflags: [...SANITIZE, '-O0'],
    ldflags: ['-fsanitize=address,undefined'],
  });
  writeFileSync(join(pkg, 'binding.gyp'), JSON.stringify(gyp, null, 2));
}

function build() {
  console.log('== test:asan: building the addon with -fsanitize=address,undefined in build-asan/pkg');
  const r = spawnSync(process.execPath, [join(pkg, 'scripts', 'build-native.mjs')], { cwd: pkg, stdio: 'inherit' });
  if (r.status !== 0) fail(`sanitizer build failed (exit ${r.status ?? r.signal})`);
}

// 2. Prove the build is instrumented: undefined __asan_/__ubsan_ symbols and the runtimes as dependencies.
function verifyInstrumented(file) {
  const nm = spawnSync('nm', ['-D', file], { encoding: 'utf8' });
  if (nm.status !== 0) fail(`nm -D ${file} failed: ${nm.stderr}`);
  const asanSymbols = nm.stdout.split('\n').filter((l) => /\b__asan_/.test(l)).length;
  const ubsanSymbols = nm.stdout.split('\n').filter((l) => /\b__ubsan_handle_/.test(l)).length;
  const ldd = spawnSync('ldd', [file], { encoding: 'utf8' });
  const linked = ldd.stdout ?? '';
  if (!asanSymbols || !ubsanSymbols || !/libasan\.so/.test(linked) || !/libubsan\.so/.test(linked)) {
    fail(`${file} is not instrumented (asan symbols ${asanSymbols}, ubsan handlers ${ubsanSymbols}, ldd:\n${linked})`);
  }
  console.log(`== ${file.slice(root.length + 1)}: ${asanSymbols} __asan_ symbols, ${ubsanSymbols} __ubsan_handle_ symbols, ` +
    'links libasan and libubsan');
}

function sanitizerEnv(logs) {
  const preload = [runtimeLibrary('libasan.so'), runtimeLibrary('libubsan.so')];
  return {
    ...process.env,
    // Every process started from here on (node, the test files, and their python3/sh/node children)
    // gets the runtimes preloaded. Non-instrumented programs run fine under a preloaded ASan runtime; the
    // link-order check is disabled because children such as python3 load it only through LD_PRELOAD.
    LD_PRELOAD: [...preload, process.env.LD_PRELOAD].filter(Boolean).join(':'),
    // detect_leaks=0: V8 and Node keep allocations alive until exit on purpose; LeakSanitizer would
    // report those, not ours. fd and mapping leaks are covered by the lifecycle tests instead.
    // handle_sigbus=0: the mapping tests provoke SIGBUS on purpose (in children: a peer shrinks a mapped
    // file) and check that it kills the process; ASan would turn it into a report and SIGABRT.
    // quarantine_size_mb=8 (default 256): freed memory is held back to catch use-after-free; 8 MiB still
    // catches reuse of recent frees, and keeps the "RSS stays flat over 10,000 cycles" tests meaningful.
    ASAN_OPTIONS: `detect_leaks=0:abort_on_error=1:verify_asan_link_order=0:handle_sigbus=0:quarantine_size_mb=8:log_path=${logs}/asan`,
    UBSAN_OPTIONS: `halt_on_error=1:print_stacktrace=1:log_path=${logs}/ubsan`,
  };
}

function reportFiles(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).map((f) => join(dir, f)).filter((f) => readFileSync(f, 'utf8').trim() !== '');
}

function findReports(text) {
  return REPORT_PATTERNS.filter((p) => p.test(text)).map((p) => p.source);
}

// 3. The canary must be caught, or the run below would prove nothing.
function canary(canaryFile) {
  const env = sanitizerEnv(canaryLogDir);
  for (const [fn, want] of [['overflow', /ERROR: AddressSanitizer: heap-buffer-overflow/], ['undefinedBehaviour', /runtime error:/]]) {
    rmSync(canaryLogDir, { recursive: true, force: true });
    mkdirSync(canaryLogDir, { recursive: true });
    const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(canaryFile)}).${fn}()`],
      { env, encoding: 'utf8' });
    const text = reportFiles(canaryLogDir).map((f) => readFileSync(f, 'utf8')).join('\n') + r.stdout + r.stderr;
    if (!want.test(text) || r.status === 0) {
      fail(`the sanitizer canary ${fn}() was NOT caught (exit ${r.status}, signal ${r.signal}); output:\n${text}`);
    }
  }
  rmSync(canaryLogDir, { recursive: true, force: true });
  console.log('== canary: a deliberate heap overflow and a deliberate signed overflow are both caught');
}

// 4. The suite itself must load the instrumented build.
function verifyLoaded(env, addon) {
  const probe = `import(${JSON.stringify(join(root, 'dist', 'index.js'))}).then(() => {
    const maps = require('node:fs').readFileSync('/proc/self/maps', 'utf8');
    process.stdout.write(String(maps.includes(${JSON.stringify(addon)}) && maps.includes('libasan')));
  })`;
  const r = spawnSync(process.execPath, ['-e', probe], { env, encoding: 'utf8' });
  if (r.stdout !== 'true') fail(`dist/index.js did not load ${addon} under the sanitizer runtime: ${r.stdout}${r.stderr}`);
}

async function main() {
  if (process.platform !== 'linux') fail('Linux only');
  if (!existsSync(join(root, 'dist', 'index.js'))) fail('dist/ is missing: run `npm run build` first');
  prepareTree();
  build();
  const addon = join(pkg, 'build', 'Release', 'memfd.node');
  const canaryFile = join(pkg, 'build', 'Release', 'asan_canary.node');
  verifyInstrumented(addon);
  canary(canaryFile);

  rmSync(logDir, { recursive: true, force: true });
  mkdirSync(logDir, { recursive: true });
  const env = { ...sanitizerEnv(logDir), MEMFD_BINDING: addon };
  verifyLoaded(env, addon);

  const testArgs = process.argv.slice(2);
  // Test files listed explicitly: Node 22 takes `node --test test/` as a module path, Node 20 expands no globs.
  const allTests = readdirSync(join(root, 'test')).filter((f) => f.endsWith('.test.mjs')).sort().map((f) => join('test', f));
  const args = ['--expose-gc', '--test', '--test-concurrency=1', ...(testArgs.length ? testArgs : allTests)];
  console.log(`== node ${args.join(' ')}  (MEMFD_BINDING=${addon.slice(root.length + 1)}, ASan+UBSan preloaded)`);
  const started = Date.now();
  let output = '';
  const code = await new Promise((resolvePromise) => {
    const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d) => { output += d; process.stdout.write(d); });
    child.stderr.on('data', (d) => { output += d; process.stderr.write(d); });
    child.on('close', (c, signal) => resolvePromise(c ?? (signal ? 128 : 1)));
  });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);

  const files = reportFiles(logDir);
  for (const f of files) {
    console.error(`\n===== sanitizer report ${f.slice(root.length + 1)} =====\n${readFileSync(f, 'utf8')}`);
  }
  const inOutput = findReports(output);
  const reportCount = files.length + (inOutput.length ? 1 : 0);
  console.log(`\n== test:asan: suite exit ${code} in ${seconds} s; sanitizer report files: ${files.length}; ` +
    `report lines in output: ${inOutput.length ? inOutput.join(', ') : 'none'}`);
  if (code !== 0) fail(`the test suite failed under the sanitizers (exit ${code})`);
  if (reportCount) fail(`${reportCount} sanitizer report(s) although the tests passed: see above`);
  console.log('== test:asan: passed with zero sanitizer reports');
}

main().catch((e) => fail(e.stack ?? String(e)));
