// Packaging promises: glibc floor, the prebuilt binaries' ELF facts, the exports map, what a tarball contains.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const addon = `${root}build/Release/memfd.node`;

const prebuilds = {
  'linux-x64 glibc': `${root}prebuilds/linux-x64/node.napi.glibc.node`,
  'linux-arm64 glibc': `${root}prebuilds/linux-arm64/node.napi.glibc.node`,
  'linux-x64 musl': `${root}prebuilds/linux-x64/node.napi.musl.node`,
};
// CI builds the prebuilds first (npm run build:prebuilds) and sets this, so that their checks cannot skip.
const requirePrebuilds = process.env.MEMFD_TEST_REQUIRE_PREBUILDS === '1';

function tool(t, name) {
  if (spawnSync('sh', ['-c', `command -v ${name}`]).status === 0) return true;
  if (requirePrebuilds) assert.fail(`${name} is not installed`);
  t.skip(`${name} is not installed`);
  return false;
}

function prebuild(t, label) {
  if (existsSync(prebuilds[label])) return prebuilds[label];
  if (requirePrebuilds) assert.fail(`${prebuilds[label]} is missing`);
  t.skip(`${label}: not built here (npm run build:prebuilds)`);
  return undefined;
}

/** The GLIBC_x.y versions a binary's dynamic symbols need, e.g. [[2, 2, 5], [2, 17]]. */
function glibcVersions(file) {
  const r = spawnSync('objdump', ['-T', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /_ZN2v8|_ZN4node/, 'Node-API only: no V8/node C++ symbols tying it to one Node major');
  return [...new Set([...r.stdout.matchAll(/GLIBC_([0-9.]+)/g)].map((m) => m[1]))].map((v) => v.split('.').map(Number));
}

const above = (versions, [major, minor]) => versions.filter(([a, b]) => a > major || (a === major && b > minor)).map((v) => v.join('.'));

test('glibc floor 2.17: the build from source and the glibc prebuilds need no newer symbol version', (t) => {
  if (!tool(t, 'objdump')) return;
  for (const file of [addon, prebuild(t, 'linux-x64 glibc'), prebuild(t, 'linux-arm64 glibc')].filter(Boolean)) {
    const versions = glibcVersions(file);
    assert.ok(versions.length > 0, `${file} has GLIBC_ version references`);
    assert.deepEqual(above(versions, [2, 17]), [], `${file}: symbols above GLIBC_2.17`);
  }
});

test('the floor check can fail: the same sources with node\'s _FILE_OFFSET_BITS=64 need fcntl64@GLIBC_2.28', (t) => {
  if (!tool(t, 'objdump') || !tool(t, 'gcc')) return;
  // One file of the addon compiled both ways: the define alone moves the floor (why binding.gyp drops it).
  const dir = mkdtempSync(join(tmpdir(), 'memfd-floor-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const include = ['-I', '/usr/include/node', '-I', `${root}native`, '-D_GNU_SOURCE', '-DNAPI_VERSION=8', '-fPIC', '-shared', '-O2'];
  const sources = readdirSync(`${root}native`).filter((f) => f.endsWith('.c')).map((f) => `${root}native/${f}`);
  if (!existsSync('/usr/include/node/node_api.h')) { t.skip('no Node headers in /usr/include/node'); return; }
  for (const [name, extra] of [['plain.so', []], ['offset64.so', ['-D_FILE_OFFSET_BITS=64']]]) {
    const r = spawnSync('gcc', [...include, ...extra, '-o', join(dir, name), ...sources], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  }
  assert.deepEqual(above(glibcVersions(join(dir, 'plain.so')), [2, 17]), []);
  assert.deepEqual(above(glibcVersions(join(dir, 'offset64.so')), [2, 17]), ['2.28']);
  const gyp = readFileSync(`${root}binding.gyp`, 'utf8');
  assert.match(gyp, /"defines!": \["_FILE_OFFSET_BITS=64"\]/);
});

test('arm64 prebuild: an AArch64 ELF whose LOAD segments keep 64 KiB alignment (kernels with 64 KiB pages)', (t) => {
  const file = prebuild(t, 'linux-arm64 glibc');
  if (!file || !tool(t, 'readelf')) return;
  const r = spawnSync('readelf', ['-h', '-l', '-W', file], { encoding: 'utf8' });
  assert.match(r.stdout, /Machine:\s+AArch64/);
  const aligns = [...r.stdout.matchAll(/^\s+LOAD\s.*\s(0x[0-9a-f]+)$/gm)].map((m) => Number(m[1]));
  assert.ok(aligns.length >= 2, r.stdout);
  assert.deepEqual(aligns.filter((a) => a < 0x10000), [], `LOAD alignments: ${aligns.map((a) => a.toString(16))}`);
});

test('x64 prebuilds: x86-64 ELFs; the musl one needs only musl\'s libc.so, the glibc one libc.so.6', (t) => {
  if (!tool(t, 'readelf')) return;
  for (const [label, needed] of [['linux-x64 glibc', 'libc.so.6'], ['linux-x64 musl', 'libc.so']]) {
    const file = prebuild(t, label);
    if (!file) continue;
    const r = spawnSync('readelf', ['-h', '-d', '-W', file], { encoding: 'utf8' });
    assert.match(r.stdout, /Machine:\s+Advanced Micro Devices X86-64/, label);
    assert.deepEqual([...r.stdout.matchAll(/\(NEEDED\).*\[(.*)\]/g)].map((m) => m[1]), [needed], label);
  }
});

test('musl prebuild: musl\'s dynamic loader resolves every libc function it calls (a glibc-only one, as control, fails)', (t) => {
  // No musl Node exists on the npm registry, so the musl binary cannot run its tests here. This proves the
  // part that differs from glibc: a musl-linked host that defines the Node-API/libuv functions as empty
  // placeholders dlopen()s it with RTLD_NOW, which fails on any libc function musl does not have.
  const file = prebuild(t, 'linux-x64 musl');
  if (!file || !tool(t, 'musl-gcc') || !tool(t, 'nm')) return;
  const dir = mkdtempSync(join(tmpdir(), 'memfd-musl-host-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const undefinedSymbols = spawnSync('nm', ['-D', '--undefined-only', file], { encoding: 'utf8' }).stdout
    .split('\n').map((l) => l.trim().split(/\s+/).at(-1)).filter((s) => /^(napi_|node_api_|uv_)/.test(s ?? ''));
  assert.ok(undefinedSymbols.includes('napi_create_external_arraybuffer'), undefinedSymbols.join());
  writeFileSync(join(dir, 'host.c'), `#include <dlfcn.h>
#include <stdio.h>
${undefinedSymbols.map((s) => `void ${s}(void) {}`).join('\n')}
int main(int argc, char **argv) {
  void *h = dlopen(argv[1], RTLD_NOW);
  if (!h) { printf("dlopen: %s\\n", dlerror()); return 1; }
  printf("%s\\n", dlsym(h, "napi_register_module_v1") ? "loaded, registers a Node-API module" : "no napi_register_module_v1");
  return 0;
}
`);
  const cc = spawnSync('musl-gcc', ['-rdynamic', '-o', join(dir, 'host'), join(dir, 'host.c')], { encoding: 'utf8' });
  assert.equal(cc.status, 0, cc.stderr);
  const musl = spawnSync(join(dir, 'host'), [file], { encoding: 'utf8' });
  assert.equal(musl.stdout.trim(), 'loaded, registers a Node-API module', musl.stdout + musl.stderr);
  // Control: musl's loader maps any libc.so.6 onto itself and ignores symbol versions, so only a missing
  // function can fail this. A library calling glibc's gnu_get_libc_version (musl has none) must be refused.
  writeFileSync(join(dir, 'glibc-only.c'), '#include <gnu/libc-version.h>\nconst char *v(void) { return gnu_get_libc_version(); }\n');
  const so = spawnSync('gcc', ['-shared', '-fPIC', '-o', join(dir, 'glibc-only.so'), join(dir, 'glibc-only.c')], { encoding: 'utf8' });
  assert.equal(so.status, 0, so.stderr);
  const control = spawnSync(join(dir, 'host'), [join(dir, 'glibc-only.so')], { encoding: 'utf8' });
  assert.equal(control.status, 1, control.stdout);
  assert.match(control.stdout, /dlopen: .*gnu_get_libc_version/);
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

test('package.json: no install scripts (nothing to compile at install), gypfile false, a clone builds in preprepare', () => {
  const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8'));
  // What npm 11 and 12 count as a dependency's install scripts (arborist's install-scripts.js): these, with
  // `prepare` for tarball and git sources, and a synthetic `node-gyp rebuild` when binding.gyp ships.
  for (const hook of ['preinstall', 'install', 'postinstall', 'prepare']) assert.equal(pkg.scripts[hook], undefined, hook);
  assert.equal(pkg.gypfile, false);
  // npm runs preprepare for the project itself on `npm install` (a clone), never for a dependency.
  assert.match(pkg.scripts.preprepare, /build-native\.mjs/);
  assert.match(pkg.scripts.prepack, /build-prebuilds\.mjs/);
});

test('npm pack ships dist, the prebuilds, the sources for a build from source, and nothing else', (t) => {
  // --ignore-scripts: prepack would build the prebuilds; here we look at what the files list takes.
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const files = JSON.parse(r.stdout)[0].files.map((f) => f.path);
  for (const needed of ['dist/index.js', 'dist/index.d.ts', 'dist/loader.js', 'bin/memfd.mjs', 'binding.gyp', 'native/handle.c',
    'native/socket.c', 'scripts/build-native.mjs', 'scripts/node-gyp.mjs', 'README.md', 'LICENSE', 'package.json']) {
    assert.ok(files.includes(needed), `${needed} is in the tarball`);
  }
  const allowed = /^(dist\/|native\/|examples\/|bin\/memfd\.mjs$|docs\/[^/]+\.(md|svg)$|prebuilds\/(linux-x64\/node\.napi\.(glibc|musl)\.node|linux-arm64\/node\.napi\.glibc\.node|build-info\.json)$|(binding\.gyp|README\.md|LICENSE|package\.json|scripts\/build-native\.mjs|scripts\/node-gyp\.mjs)$)/;
  assert.deepEqual(files.filter((f) => !allowed.test(f)), [], 'files outside the published set (tests, build/, dev scripts)');
  // Source maps point at src/*.ts, which is not published: maps that cannot resolve stay out.
  assert.deepEqual(files.filter((f) => f.endsWith('.map')), []);
  const shipped = files.filter((f) => f.startsWith('prebuilds/')).sort();
  if (!shipped.length && !requirePrebuilds) { t.skip('prebuilds/ not built here (npm run build:prebuilds)'); return; }
  assert.deepEqual(shipped, ['prebuilds/build-info.json', 'prebuilds/linux-arm64/node.napi.glibc.node',
    'prebuilds/linux-x64/node.napi.glibc.node', 'prebuilds/linux-x64/node.napi.musl.node']);
});

test('the published .d.ts files type-check in a strict consumer project (skipLibCheck: false)', async (t) => {
  const { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'memfd-consumer-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(root, join(dir, 'node_modules', 'memfd'));
  symlinkSync(join(root, 'node_modules', '@types'), join(dir, 'node_modules', '@types'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', noEmit: true,
      skipLibCheck: false, types: ['node'], lib: ['ES2023', 'ESNext.Disposable'] },
    files: ['consumer.ts'],
  }));
  writeFileSync(join(dir, 'consumer.ts'), `
    import { MemFile, Seal, Seals, UnixSocket, Message, Mapping, SystemError, futexWake, capabilities } from 'memfd';
    import type { SealsLike, MapOptions, CreateOptions } from 'memfd';
    const opts: CreateOptions = { allowSealing: true, hugeTLB: '2MB' };
    const file: MemFile = MemFile.create('typed', opts);
    file.addSeals(Seal.Write | Seal.Shrink);
    const seals: Seals = file.getSeals();
    const fromName: SealsLike = 'write';
    const names: SealsLike = ['write', 'shrink'];
    seals.has(fromName); seals.has(names);
    const m: Mapping = file.map({ writable: false } satisfies MapOptions);
    futexWake(new Int32Array(m.buffer), 0);
    const [a, b] = UnixSocket.pair({ type: 'seqpacket' });
    async function f(): Promise<void> {
      await a.send(Buffer.from('x'), [file]);
      const msg: Message | null = await b.receive();
      if (msg) MemFile.fromFd(msg.fds[0]!, { requireSeals: Seal.Shrink });
    }
    b.on('message', (m) => {
      // @ts-expect-error: m is a Message (typed events), its data a Buffer
      const wrong: number = m.data;
      void wrong; m.close();
    });
    void f; void capabilities().noexecSeal;
    try { file.writeSync('x', 0); } catch (e) { if (e instanceof SystemError) console.log(e.code, e.errno, e.syscall, e.hint); }
  `);
  const r = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

/** Relative imports that run at load time (`import`, `export ... from`), per module of a directory of ES modules. */
function runtimeImportGraph(sources) {
  const graph = new Map();
  for (const [file, text] of sources) {
    const edges = new Set();
    // tsc drops `import type`; what is left in the JS is evaluated when the module loads.
    for (const m of text.matchAll(/^\s*(?:import|export)\s+(?!type\s)(?:[^'";]*?\s+from\s+)?['"](\.\/[^'"]+)['"]/gm)) {
      edges.add(m[1].slice(2));
    }
    graph.set(file, edges);
  }
  return graph;
}

/** One cycle of the graph as a path (first module repeated at the end), or null. */
function findCycle(graph) {
  const state = new Map(); // 1: on the current path, 2: done
  const path = [];
  const visit = (node) => {
    state.set(node, 1);
    path.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 1) return [...path.slice(path.indexOf(next)), next];
      if (!state.has(next)) {
        const found = visit(next);
        if (found) return found;
      }
    }
    path.pop();
    state.set(node, 2);
    return null;
  };
  for (const node of graph.keys()) {
    if (!state.has(node)) {
      const found = visit(node);
      if (found) return found;
    }
  }
  return null;
}

test('no runtime import cycle among the modules of dist/', async () => {
  const { readdirSync } = await import('node:fs');
  const dist = `${root}dist/`;
  const sources = readdirSync(dist).filter((f) => f.endsWith('.js')).map((f) => [f, readFileSync(dist + f, 'utf8')]);
  assert.ok(sources.length >= 10, 'dist/ holds the compiled modules');
  const graph = runtimeImportGraph(sources);
  assert.ok(graph.get('memfile.js').has('mapping.js'), 'the parser sees the imports tsc kept');
  assert.equal(findCycle(graph)?.join(' -> ') ?? null, null);

  // Control: the same parser and search find a cycle through a re-export, and ignore `import type`.
  const control = runtimeImportGraph([
    ['a.js', "import { b } from './b.js';\n"],
    ['b.js', "export { c } from './c.js';\n"],
    ['c.js', "import './a.js';\n"],
  ]);
  assert.deepEqual(findCycle(control), ['a.js', 'b.js', 'c.js', 'a.js']);
  assert.equal(findCycle(runtimeImportGraph([['a.js', "import { b } from './b.js';"],
    ['b.js', "import type { A } from './a.js';"]])), null);
});
