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
    const seals: Seals = file.addSeals(Seal.Write | Seal.Shrink);
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
