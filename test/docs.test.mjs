// The documentation's JavaScript must run on Node 20, the oldest Node this package supports: Node 20
// (and 22) cannot parse `using`, so a JavaScript snippet that shows it also shows the try/finally form.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';

const root = new URL('..', import.meta.url);
const USING = /(?:^|[\s;{}(`])(?:await\s+)?using\s+[A-Za-z_$][\w$]*\s*=/m;

/** Fenced blocks a reader would paste into a .js/.mjs file: tagged js, javascript, mjs, cjs, or untagged. */
function javascriptBlocks(markdown) {
  return [...markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```/gm)]
    .filter((m) => ['', 'js', 'javascript', 'mjs', 'cjs'].includes(m[1]))
    .map((m) => ({ code: m[2], line: markdown.slice(0, m.index).split('\n').length }));
}

/** Blocks that use `using` without a try/finally next to it. */
function usingWithoutFallback(markdown) {
  return javascriptBlocks(markdown).filter((b) => USING.test(b.code) && !/\bfinally\b/.test(b.code)).map((b) => b.line);
}

test('JavaScript snippets in README and docs never show `using` without the try/finally form', () => {
  const files = ['README.md', ...readdirSync(new URL('docs/', root)).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  let blocks = 0;
  for (const file of files) {
    const text = readFileSync(new URL(file, root), 'utf8');
    blocks += javascriptBlocks(text).length;
    assert.deepEqual(usingWithoutFallback(text), [], `${file}: lines of snippets with \`using\` and no try/finally`);
  }
  assert.ok(blocks >= 10, `found the JavaScript snippets (${blocks})`);
});

test('JavaScript examples contain no `using` (they run as they are on Node 20)', () => {
  const examples = readdirSync(new URL('examples/', root)).filter((f) => /\.(m|c)?js$/.test(f));
  assert.ok(examples.length >= 5);
  for (const f of examples) {
    assert.doesNotMatch(readFileSync(new URL(`examples/${f}`, root), 'utf8'), USING, `examples/${f}`);
  }
});

test('the check finds `using` in a snippet and accepts TypeScript or a try/finally next to it (control)', () => {
  const fence = '```';
  assert.deepEqual(usingWithoutFallback(`text\n${fence}js\nusing file = MemFile.create();\n${fence}\n`), [2]);
  assert.deepEqual(usingWithoutFallback(`${fence}\nawait using sock = await UnixSocket.connect(p);\n${fence}\n`), [1]);
  assert.deepEqual(usingWithoutFallback(`${fence}ts\nusing file = MemFile.create();\n${fence}\n`), []);
  assert.deepEqual(usingWithoutFallback(`${fence}js\nconst f = MemFile.create();\ntry {} finally { f.close(); }\n` +
    `// TypeScript: using f = MemFile.create();\n${fence}\n`), []);
  assert.deepEqual(usingWithoutFallback(`${fence}js\nconst using = 1; // not a declaration\n${fence}\n`), []);
});

test('a snippet headed by its example file (\`// examples/NAME\`) is that file, word for word', () => {
  // The examples run in CI (test/examples.test.mjs); a snippet that drifted from its file would not be.
  const files = ['README.md', ...readdirSync(new URL('docs/', root)).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  let checked = 0;
  for (const file of files) {
    for (const b of javascriptBlocks(readFileSync(new URL(file, root), 'utf8'))) {
      const named = /^\/\/ (examples\/[\w.-]+\.m?js)\n/.exec(b.code);
      if (!named) continue;
      checked++;
      assert.equal(b.code, readFileSync(new URL(named[1], root), 'utf8'), `${file}:${b.line} differs from ${named[1]}`);
    }
  }
  assert.ok(checked >= 2, `only ${checked} snippets name their example file`);
});

test('every ERR_MEMFD_* code the library can throw is listed in the README', () => {
  const readme = readFileSync(new URL('README.md', root), 'utf8');
  const sources = [
    ...readdirSync(new URL('src/', root)).filter((f) => f.endsWith('.ts')).map((f) => `src/${f}`),
    ...readdirSync(new URL('native/', root)).filter((f) => f.endsWith('.c')).map((f) => `native/${f}`),
  ];
  const codes = new Set();
  for (const f of sources) {
    for (const m of readFileSync(new URL(f, root), 'utf8').matchAll(/ERR_MEMFD_[A-Z0-9_]*[A-Z0-9]/g)) codes.add(m[0]);
  }
  codes.delete('ERR_MEMFD_INTERNAL'); // a bug in the library itself, not a state users handle
  assert.ok(codes.size > 20, `found only ${codes.size} codes: the scan is broken`);
  const missing = [...codes].filter((c) => !readme.includes('`' + c + '`')).sort();
  assert.deepEqual(missing, [], 'codes missing from the README table');
});
