// Shared test helpers: real kernel state only (fd tables, /proc), no mocks.
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { spawn } from 'node:child_process';

/** Number of open fds of this process. */
export function fdCount() {
  return readdirSync('/proc/self/fd').length;
}

/**
 * fdCount() once it is `expected`, or after 1 s. Handles (a pidfd's poll, a socket) close their fd in a libuv
 * close callback, a turn of the event loop after close(), and a busy machine can delay that turn.
 */
export async function fdCountSettled(expected) {
  for (let i = 0; i < 100 && fdCount() !== expected; i++) await new Promise((r) => setTimeout(r, 10));
  return fdCount();
}

/** Memfds and sockets open in this process (Node may open fds of its own meanwhile: not counted). */
export function ourFds() {
  let n = 0;
  for (const e of readdirSync('/proc/self/fd')) {
    try {
      const t = readlinkSync(`/proc/self/fd/${e}`);
      if (t.startsWith('/memfd:') || t.startsWith('socket:')) n++;
    } catch { /* the directory's own fd */ }
  }
  return n;
}

/** Flags of one fd from /proc/self/fdinfo (octal in the file). */
export function fdInfoFlags(fd) {
  const m = /^flags:\s+([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  return parseInt(m[1], 8);
}

export const O_CLOEXEC = 0o2000000;

/**
 * Runs `open` so that the fd it opens gets the number `n`, which the caller has just closed. The kernel hands
 * out the lowest free number, and a lower one may be free (a dropped file's fd the garbage collector closed,
 * or one of Node's own): once in CI on Node 20, one was. Every hole below `n` is plugged with /dev/null while
 * `open` runs. Another thread of the process may also hold `n` for a moment (once in CI a file was open
 * under it right after the caller closed it): then this waits for `n` to be free again, up to 2 s, and
 * says what held it if it never was.
 */
export function reuseFdNumber(n, open) {
  const heldBy = new Set();
  for (let attempt = 0; attempt < 400; attempt++) {
    const plugs = [];
    try {
      for (;;) {
        const fd = openSync('/dev/null', 'r');
        if (fd < n) { plugs.push(fd); continue; }
        closeSync(fd);
        if (fd === n) return open();
        break;
      }
    } finally {
      for (const fd of plugs) closeSync(fd);
    }
    try { heldBy.add(readlinkSync(`/proc/self/fd/${n}`)); } catch { /* free again already */ }
    sleepMs(5);
  }
  throw new Error(`fd ${n} did not become free within 2 s; it was held by ${[...heldBy].join(', ') || '?'}`);
}

/** Blocks this thread for `ms` (a wait that does not return to the event loop). */
export function sleepMs(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Lines of /proc/self/maps that mention `needle`. */
export function mapsLines(needle) {
  return readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes(needle));
}

/** Resident set size in bytes. */
export function rssBytes() {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(m[1]) * 1024;
}

/** Runs a command, collects stdout/stderr, resolves with { code, signal, stdout, stderr }. */
export function run(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => { stdout += d; });
    child.stderr?.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Runs an inline ES module in a fresh Node process (cwd = repo root so '../dist' paths resolve). */
export function runNode(source, options = {}) {
  const { args = [], ...rest } = options;
  return run(process.execPath, [...args, '--input-type=module', '-e', source], { cwd: new URL('..', import.meta.url).pathname, ...rest });
}

/** Absolute URL of the built library, for child scripts. */
export const LIB = new URL('../dist/index.js', import.meta.url).href;

/** Forces finalizers to run: several GC passes with turns of the event loop in between. */
export async function collectGarbage(rounds = 4) {
  for (let i = 0; i < rounds; i++) {
    globalThis.gc();
    await new Promise((r) => setImmediate(r));
  }
}

/** Is python3 available? */
export async function hasPython() {
  try {
    const r = await run('python3', ['-c', 'import os, socket; print(hasattr(os, "memfd_create") and hasattr(socket, "send_fds"))']);
    return r.code === 0 && r.stdout.trim() === 'True';
  } catch {
    return false;
  }
}

/** Node 20 cannot parse `using`: register the resource's disposal when the test ends instead. */
export function own(t, resource) {
  t.after(() => resource[Symbol.dispose]());
  return resource;
}

/**
 * Is this process run by qemu-user on a CPU of another architecture (npm run test:arm64)? The script that
 * starts qemu says so (MEMFD_TEST_EMULATOR=qemu-user), and the CPU must disagree with process.arch:
 * qemu-user passes the host's /proc/cpuinfo through, so an x86 vendor_id under a non-x86 process.arch can
 * only be emulation. Both are required, so that the skips below can never fire on real hardware.
 */
export const underEmulation = process.env.MEMFD_TEST_EMULATOR === 'qemu-user' &&
  !['x64', 'ia32'].includes(process.arch) &&
  /^vendor_id\s*:\s*(GenuineIntel|AuthenticAMD)/m.test(readFileSync('/proc/cpuinfo', 'utf8'));

/**
 * Time limits written for real hardware are multiplied by this. qemu-user translates every instruction: a
 * Node process starts, spawns a Worker and exits ~7x slower here (measured: 4.9 s instead of 0.66 s, the
 * same with or without a futex wait in the Worker), more under load. Limits stay limits: a hang still fails.
 */
export const timeScale = underEmulation ? 10 : 1;

/** What qemu-user does differently from a kernel; each test that meets one skips under emulation only. */
export const EMULATION_SKIPS = {
  fdBudget: 'qemu-user receives control data into a buffer of its own: fds beyond the receiver\'s budget stay ' +
    'open in the process and MSG_CTRUNC is not raised',
  madvise: 'qemu-user handles madvise itself and passes little to the kernel: MADV_REMOVE frees nothing, ' +
    'MADV_FREE on a shared mapping succeeds instead of EINVAL',
  hostKernel: 'the kernel under qemu-user is the x86-64 host\'s: /proc fdinfo flags carry x86-64 values ' +
    '(O_LARGEFILE 0100000), while an arm64 build names arm64\'s (0400000)',
  rss: 'the RSS and PSS of a qemu-user process include its cache of translated code, which grows as new code runs',
  hugeTLBMap: 'qemu-user cannot map hugetlbfs files: every mmap of one fails with EINVAL (measured with qemu 7.2: ' +
    'a 4 MiB file of 2MB pages that the pool could serve, too)',
  populate: 'qemu-user maps guest memory itself and does not pass MAP_POPULATE or MADV_POPULATE_WRITE on to the ' +
    'kernel: nothing is faulted in ahead (measured: 7 MB of RSS instead of 32 MB for two 16 MiB rings)',
};

/** For a test's options: `{ skip: emulationSkip('fdBudget') }` skips under qemu-user, with the reason. */
export function emulationSkip(key) {
  if (!EMULATION_SKIPS[key]) throw new Error(`unknown emulation skip ${key}`);
  return underEmulation ? `under qemu-user: ${EMULATION_SKIPS[key]}` : false;
}

/**
 * For one check inside a longer test: false under qemu-user, after saying in the test's output which check
 * was left out and why; true everywhere else. `if (checkedOutsideEmulation(t, 'madvise')) assert...`.
 */
export function checkedOutsideEmulation(t, key) {
  if (!EMULATION_SKIPS[key]) throw new Error(`unknown emulation skip ${key}`);
  if (!underEmulation) return true;
  t.diagnostic(`under qemu-user, one check left out: ${EMULATION_SKIPS[key]}`);
  return false;
}
