// Shared pieces of the model-based property tests (test/model-*.test.mjs). Importing this file has no
// side effects (node --test also runs it as a file with no tests).
//
// Each model test file: a fast-check `commands` run where every command performs one real call on the
// real kernel and checks its answer against a small model of what the kernel must answer. A command
// either matches the model's value, or throws exactly the error code the model predicts. Adding a model
// for another resource (Mapping, UnixSocket) = one more test file with its own commands, using these
// helpers and fuzzParams() so that `npm run test:fuzz` picks it up.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';

/**
 * Outcomes seen so far (error codes, 'ok', and anything a test counts): a model test asserts at the end
 * that the interesting answers really happened, so a generator that drifts into trivia fails loudly.
 */
export const tally = new Map();
export function count(key) {
  tally.set(key, (tally.get(key) ?? 0) + 1);
}

/** Runs, seed and replay path: bounded and seeded in `npm test`, longer with `npm run test:fuzz`. */
export function fuzzParams(defaultRuns) {
  const params = {
    numRuns: Number(process.env.MEMFD_FUZZ_RUNS) || defaultRuns,
    seed: process.env.MEMFD_FUZZ_SEED !== undefined ? Number(process.env.MEMFD_FUZZ_SEED) : 20260623,
    verbose: 1,
    includeErrorInReport: true,
  };
  // To replay a failure, copy the seed and path that fast-check printed.
  if (process.env.MEMFD_FUZZ_PATH) params.path = process.env.MEMFD_FUZZ_PATH;
  return params;
}

/** The outcome of a call, sync or async: { ok: true, value } or { ok: false, error }. */
export async function outcome(fn) {
  try {
    return { ok: true, value: await fn() };
  } catch (error) {
    return { ok: false, error };
  }
}

/**
 * Asserts that an outcome is the error `code`. Kernel errors (E*) must have the shape of Node's fs
 * errors (negative errno, a syscall name, message starting with the code); library errors (ERR_*) must
 * be real Error objects with that code. Anything else (a string thrown, a crash-shaped error) fails.
 */
export function assertError(res, code, what) {
  count(code);
  assert.equal(res.ok, false, `${what}: expected ${code}, but it succeeded with ${describe(res.value)}`);
  const e = res.error;
  assert.ok(e instanceof Error, `${what}: threw a non-Error: ${describe(e)}`);
  assert.equal(e.code, code, `${what}: expected ${code}, got ${e.code}: ${e.stack}`);
  if (/^E[A-Z]+$/.test(code)) {
    assert.ok(Number.isInteger(e.errno) && e.errno < 0, `${what}: errno ${e.errno}`);
    assert.equal(typeof e.syscall, 'string', `${what}: syscall`);
    assert.ok(e.message.startsWith(`${code}: `), `${what}: message ${e.message}`);
  }
}

/** Asserts success and returns the value. */
export function assertOk(res, what) {
  count('ok');
  if (!res.ok) assert.fail(`${what}: expected success, got ${res.error?.code}: ${res.error?.stack ?? res.error}`);
  return res.value;
}

export function describe(v) {
  if (typeof v === 'bigint') return `${v}n`;
  if (Buffer.isBuffer(v)) return `<Buffer ${v.length} bytes>`;
  if (typeof v === 'symbol' || v === undefined) return String(v);
  try {
    return JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? `${x}n` : typeof x === 'symbol' || x === undefined ? String(x)
      : typeof x === 'number' && !Number.isFinite(x) ? String(x) : x)) ?? String(v);
  } catch {
    return String(v);
  }
}

/** Open fds of this process (leak checks). */
export function fdCount() {
  return readdirSync('/proc/self/fd').length;
}

/**
 * Library argument validation for sizes and positions (src/validate.ts), as the tests expect it: numbers
 * must be integers in [0, 2^53 - 1]; bigints in the same range; anything else is a type error.
 * Returns null when valid, or the error code.
 */
export const MAX_SAFE = Number.MAX_SAFE_INTEGER;
export function sizeError(v) {
  if (typeof v === 'bigint') return v < 0n || v > BigInt(MAX_SAFE) ? 'ERR_OUT_OF_RANGE' : null;
  if (typeof v !== 'number') return 'ERR_INVALID_ARG_TYPE';
  return Number.isInteger(v) && v >= 0 && v <= MAX_SAFE ? null : 'ERR_OUT_OF_RANGE';
}

/** Positions: like sizes, but undefined, null, -1 and -1n mean "the current file position". */
export function isCurrentPosition(v) {
  return v === undefined || v === null || v === -1 || v === -1n;
}
