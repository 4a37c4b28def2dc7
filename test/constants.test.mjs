// Constants shared by C and TypeScript come from one place per side (native/constants.h, src/constants.ts)
// and must agree, key for key: a value changed or added on one side only fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as tsConstants from '../dist/constants.js';
import { MAX_FDS_PER_MESSAGE, Seal } from '../dist/index.js';

const header = readFileSync(new URL('../native/constants.h', import.meta.url), 'utf8');

/** `#define MEMFD_X value` lines of a header: numbers (decimal or hex) and string literals. */
function parseDefines(text) {
  const defines = new Map();
  for (const m of text.matchAll(/^#define\s+MEMFD_(\w+)\s+(0x[0-9a-fA-F]+|\d+|"[^"]*")(?:\s|$)/gm)) {
    defines.set(m[1], m[2].startsWith('"') ? JSON.parse(m[2]) : Number(m[2]));
  }
  // Every MEMFD_ define must be one the parser understood: a form it skipped would pass unchecked.
  const all = [...text.matchAll(/^#define\s+MEMFD_(\w+)/gm)].map((m) => m[1]).filter((n) => n !== 'CONSTANTS_H');
  assert.deepEqual(all.filter((n) => !defines.has(n)), [], 'defines the parser cannot read');
  return defines;
}

/** `GROUP.KEY` of every exported object of src/constants.ts, as the header spells it: `GROUP_KEY`. */
function flattenTs(module) {
  const flat = new Map();
  for (const [group, values] of Object.entries(module)) {
    assert.equal(typeof values, 'object', `${group} is a group of constants`);
    for (const [key, value] of Object.entries(values)) flat.set(`${group}_${key}`, value);
  }
  return flat;
}

test('native/constants.h and src/constants.ts hold the same names with the same values', () => {
  const c = parseDefines(header);
  const ts = flattenTs(tsConstants);
  assert.ok(c.size >= 30 && ts.size >= 30, `both sides parsed (${c.size} defines, ${ts.size} TS constants)`);
  assert.deepEqual([...ts.keys()].filter((k) => !c.has(k)), [], 'in TS, missing from the header');
  assert.deepEqual([...c.keys()].filter((k) => !ts.has(k)), [], 'in the header, missing from TS');
  for (const [name, value] of c) assert.equal(ts.get(name), value, `MEMFD_${name}`);
});

test('the comparison fails on a mismatch (control)', () => {
  const changed = parseDefines(header.replace(/(#define MEMFD_SEAL_SHRINK )0x2/, '$10x4'));
  assert.equal(changed.get('SEAL_SHRINK'), 4);
  assert.notEqual(flattenTs(tsConstants).get('SEAL_SHRINK'), changed.get('SEAL_SHRINK'));
  assert.throws(() => parseDefines('#define MEMFD_ODD (1 << 3)\n'), /defines the parser cannot read/);
});

test('public constants are built from the shared ones', () => {
  assert.equal(Seal.Shrink, tsConstants.SEAL.SHRINK);
  assert.equal(Seal.FutureWrite, tsConstants.SEAL.FUTURE_WRITE);
  assert.equal(Object.keys(Seal).length, Object.keys(tsConstants.SEAL).length);
  assert.equal(MAX_FDS_PER_MESSAGE, tsConstants.SCM.MAX_FD);
});
