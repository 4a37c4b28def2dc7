/**
 * Finds and loads the native addon: a build from source when there is one, else the prebuilt binary shipped
 * for this platform, architecture and C library. Internal.
 *
 * Our own 60 lines instead of node-gyp-build: no runtime dependency, musl detected from the running process
 * (node-gyp-build only looks for /etc/alpine-release), and an error that says what was tried and how to build.
 * The file names follow prebuildify's tags (`node.napi.glibc.node`), which tools that bundle native
 * files recognise.
 * @module
 */
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type Libc = 'glibc' | 'musl';

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** What `npm run build:native` needs, and the one command that runs it for this installed package. */
export const buildFromSourceHint = `build it from source (needs a C compiler, make and python3): npm run build:native --prefix ${packageRoot}`;

/**
 * Which C library this process runs on, from the files it has mapped (/proc/self/maps). musl's libc is its
 * own dynamic loader: Alpine maps /lib/ld-musl-<arch>.so.1, Debian's musl maps the file that name links to,
 * /usr/lib/<arch>-linux-musl/libc.so. glibc maps libc.so.6. Asking the process beats looking for files on
 * disk: Debian with the musl package installed has /lib/ld-musl-x86_64.so.1 too. When the maps name neither
 * (a statically linked Node), Node's report decides: it carries `glibcVersionRuntime` only on glibc.
 */
export function libcOf(maps: string | undefined, glibcVersionRuntime: () => string | undefined): Libc {
  const paths = (maps ?? '').split('\n').map((line) => line.split(/\s+/)[5] ?? '').filter((p) => p.startsWith('/'));
  if (paths.some((p) => /\/(ld-musl-|libc\.musl-)[^/]*$/.test(p) || /musl[^/]*\/libc\.so$/.test(p))) return 'musl';
  if (paths.some((p) => /\/(libc\.so\.6|libc-2\.\d+\.so)$/.test(p))) return 'glibc';
  return glibcVersionRuntime() ? 'glibc' : 'musl';
}

export function detectLibc(): Libc {
  let maps: string | undefined;
  try {
    maps = readFileSync('/proc/self/maps', 'utf8');
  } catch { /* no procfs mounted: fall back on the report */ }
  // getReport() costs a few milliseconds: asked only when the maps do not answer.
  return libcOf(maps, () =>
    (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime);
}

/**
 * The files to try, in order. `MEMFD_BINDING` names one file and nothing else is tried (the sanitizer and
 * multi-version test runs use it); `MEMFD_PREBUILT=1` skips builds from source (tests of the shipped binary).
 * A build from source wins otherwise: it exists only because someone built it on this machine.
 */
export function candidates(libc: Libc, env: NodeJS.ProcessEnv = process.env, root = packageRoot,
  platform: string = process.platform, arch: string = process.arch): string[] {
  if (env.MEMFD_BINDING) return [env.MEMFD_BINDING];
  const prebuilt = join(root, 'prebuilds', `${platform}-${arch}`, `node.napi.${libc}.node`);
  if (env.MEMFD_PREBUILT === '1') return [prebuilt];
  return [join(root, 'build', 'Release', 'memfd.node'), prebuilt, join(root, 'build', 'Debug', 'memfd.node')];
}

let loadedFile: string | undefined;

/** The addon file this process loaded (diagnostics and tests). */
export function addonFile(): string | undefined {
  return loadedFile;
}

export function loadAddon(): unknown {
  if (process.platform !== 'linux') {
    const err = new Error(`memfd only works on Linux (this is ${process.platform}): memfd_create, file seals and ` +
      'SCM_RIGHTS are Linux kernel features');
    (err as NodeJS.ErrnoException).code = 'ERR_MEMFD_UNSUPPORTED_PLATFORM';
    throw err;
  }
  const require = createRequire(import.meta.url);
  const libc = detectLibc();
  const tried: string[] = [];
  for (const file of candidates(libc)) {
    if (!existsSync(file)) {
      tried.push(`${file} (missing)`);
      continue;
    }
    try {
      const addon: unknown = require(file);
      loadedFile = file;
      return addon;
    } catch (e) {
      tried.push(`${file} (${(e as Error).message.split('\n')[0]})`);
    }
  }
  const err = new Error(`memfd: no native addon loads on linux-${process.arch} (${libc}). Prebuilt binaries ship ` +
    `for linux-x64 (glibc >= 2.17, musl) and linux-arm64 (glibc >= 2.17); ${buildFromSourceHint}\nTried:\n  ` +
    tried.join('\n  '));
  (err as NodeJS.ErrnoException).code = 'ERR_MEMFD_NATIVE_MISSING';
  throw err;
}
