/**
 * Memory mappings of MemFiles: shared memory without copies.
 *
 * Safety model (details in docs/mapping.md):
 * - A {@link Mapping}'s `buffer` is an external ArrayBuffer over the mapped pages. {@link Mapping.unmap}
 *   detaches it before releasing the pages, so every view then has length 0 and reads give `undefined`:
 *   no JS call can reach unmapped memory. Native code that still holds the address (Node's thread pool)
 *   finds a quarantined anonymous placeholder there, not a hole. A Mapping dropped without unmap is
 *   unmapped once its buffer is collected.
 * - Touching a mapped page past the end of a file that someone shrank raises SIGBUS, which kills the
 *   process and cannot be caught. So a mapping past the current end of file is refused, and a file this
 *   process did not create (adopted with `fromFd`, or a reopen of such a file) must carry `Seal.Shrink`
 *   before it is mapped, unless the caller passes `unsafeAllowShrinking: true`. The creator of a file is
 *   trusted, through any of its handles (dup, reopen): they all reach the same holders.
 * @module
 */
import { constants as bufferConstants } from 'node:buffer';
import { binding, type NativeHandle, type NativeMapping } from './binding.js';
import { hugePageShortage } from './capabilities.js';
import { MAP_OPT, OPEN, STAT } from './constants.js';
import { SystemError, invalidArgType, invalidArgValue, outOfRange, rangeError, stateError } from './errors.js';
import type { MemFileOrigin } from './memfile.js';
import { Seal, Seals } from './seals.js';
import { assertMemoryFor, explainMemlock, memlockLimit } from './memory.js';
import { markUncloneable } from './uncloneable.js';
import { toBool, toOptions, toSize } from './validate.js';

/** Options of {@link MemFile.map}. */
export interface MapOptions {
  /** First byte of the file to map. Any value; the kernel maps whole pages, the buffer starts here. Default 0. */
  offset?: number | bigint;
  /** Bytes to map; `offset + length` must not pass the end of the file. Default: up to the end of the file. */
  length?: number | bigint;
  /**
   * `true`: writes through the mapping change the file (a writable `MAP_SHARED` mapping). The kernel
   * refuses it on a file with `Seal.Write` or `Seal.FutureWrite` (EPERM) and on a read-only handle (EACCES).
   *
   * `false`: the file is never changed through this mapping. Such a mapping is copy-on-write
   * (`MAP_PRIVATE`) underneath, never a `PROT_READ` one: V8 has no read-only ArrayBuffer, and one JS store
   * into a `PROT_READ` page would kill the process with SIGSEGV. Here a stray store only copies that page
   * into this process. Pages this process has not written remain the file's own pages: they show other
   * processes' changes at once. Futexes on such a mapping work across processes (they use a hidden
   * read-only shared twin of the range, because the futex syscall would otherwise copy the page).
   *
   * Default: `true` when this handle was opened for writing and the file has neither write seal.
   */
  writable?: boolean;
  /**
   * `true`: a copy-on-write (`MAP_PRIVATE`) mapping: writes stay in this process and never reach the file,
   * so the kernel allows them even on a write-sealed or read-only file. `writable` is then ignored: the
   * views can always be written and the file never is ({@link Mapping.writable} reports `false`).
   * Futexes on a private mapping are private to this process (the kernel keys them by address once a
   * page has been copied). Default `false`.
   */
  private?: boolean;
  /**
   * Pre-fault every page now instead of on first touch: `MAP_POPULATE` for a writable shared mapping,
   * `MADV_POPULATE_READ` (Linux 5.14) for a copy-on-write one, which MAP_POPULATE would copy page by page.
   * Default `false`.
   */
  populate?: boolean;
  /**
   * Map a file from elsewhere (`fromFd`, or a `reopen` of such a file) that lacks `Seal.Shrink`. Whoever else holds the file
   * can then shrink it, and the next touch of a page past the new end kills this process with SIGBUS
   * (uncatchable). Only for peers you trust as much as your own code. Default `false`.
   */
  unsafeAllowShrinking?: boolean;
}

/** `madvise(2)` advice, by the kernel's names (`MADV_POPULATE_WRITE` is `'populate-write'`). */
export type MapAdvice =
  | 'normal' | 'random' | 'sequential' | 'willneed' | 'dontneed' | 'free' | 'remove' | 'dontfork' | 'dofork'
  | 'mergeable' | 'unmergeable' | 'hugepage' | 'nohugepage' | 'dontdump' | 'dodump' | 'wipeonfork'
  | 'keeponfork' | 'cold' | 'pageout' | 'populate-read' | 'populate-write' | 'collapse';

/** A byte range inside a mapping (relative to {@link Mapping.offset}); default the whole mapping. */
export interface MapRange {
  offset?: number | bigint;
  length?: number | bigint;
}

/** Options of {@link Mapping.sync}. */
export interface SyncOptions extends MapRange {
  /** `MS_ASYNC`: schedule and return instead of waiting. Default `false` (`MS_SYNC`). */
  async?: boolean;
  /** `MS_INVALIDATE`: drop other mappings' cached copies. Default `false`. */
  invalidate?: boolean;
}

interface MappingConstants {
  madvise: Record<MapAdvice, number>;
  MS_ASYNC: number;
  MS_SYNC: number;
  MS_INVALIDATE: number;
  O_CLOEXEC: number;
  pageSize: number;
}

const constants = (binding as unknown as { mappingConstants: MappingConstants }).mappingConstants;
/** memfd_secret's only flag; its value differs between architectures, so it comes from the C headers. */
export const O_CLOEXEC = constants.O_CLOEXEC;

const MAP_OPT_SHARED = MAP_OPT.SHARED, MAP_OPT_POPULATE = MAP_OPT.POPULATE, MAP_OPT_FUTEX_TWIN = MAP_OPT.FUTEX_TWIN;
const O_ACCMODE = OPEN.ACCMODE, O_RDONLY = OPEN.RDONLY;

/**
 * @internal What this module needs of a file: plain data from the caller (MemFile), so that mapping does
 * not depend on the MemFile class at run time.
 */
export interface MappableFile {
  readonly handle: NativeHandle;
  readonly name: string;
  readonly origin: MemFileOrigin;
  /**
   * This process created the file ('created', 'secret', or a reopen of such a file): the holders of the
   * file are this process and whoever it handed an fd to, so it may be mapped without `Seal.Shrink`.
   */
  readonly createdHere: boolean;
  /** 0 for a file of ordinary pages. */
  readonly hugePageBytes: number;
}

/** @internal what the futex functions need to know about a buffer. */
export interface MappingState {
  record: NativeMapping;
  mapping: Mapping;
}
/** Buffers of live mappings: lets the futex functions accept a plain Int32Array over `mapping.buffer`. */
const buffers = new WeakMap<ArrayBuffer, MappingState>();
/** @internal */
export function mappingOfBuffer(buffer: ArrayBufferLike): MappingState | undefined {
  return buffers.get(buffer as ArrayBuffer);
}

const token = { allowed: false };

/**
 * Live mappings of each file (by device and inode, so dup()s and reopen()s of one file meet) in this
 * thread, with the end of the bytes they expose. MemFile.truncate() consults it: shrinking a file under
 * one of this process's own mappings would turn the next touch into SIGBUS. An entry leaves on unmap()
 * or once its buffer is collected (no view left, nothing can touch the pages).
 */
interface LiveRange { end: number }
const liveByInode = new Map<string, Set<LiveRange>>();
const released = new FinalizationRegistry<{ key: string; range: LiveRange }>(({ key, range }) => forget(key, range));

function forget(key: string, range: LiveRange): void {
  const set = liveByInode.get(key);
  if (set?.delete(range) && set.size === 0) liveByInode.delete(key);
}

function statOf(handle: NativeHandle): Float64Array {
  const v = new Float64Array(STAT.FIELDS);
  binding.fstat(handle, v);
  return v;
}
const inodeKey = (st: Float64Array) => `${st[0]}:${st[1]}`;

/** @internal MemFile.truncate: refuses to shrink below the end of a live mapping of the file. */
export function assertShrinkKeepsMappings(file: MappableFile, size: number): void {
  if (liveByInode.size === 0) return;
  const { handle, hugePageBytes } = file;
  const set = liveByInode.get(inodeKey(statOf(handle)));
  if (!set) return;
  // A page stays valid while any byte of it lies before the end of file.
  const granule = hugePageBytes || constants.pageSize;
  const safeEnd = Math.ceil(size / granule) * granule;
  let furthest = 0;
  for (const range of set) furthest = Math.max(furthest, range.end);
  if (furthest > safeEnd) {
    throw stateError('ERR_MEMFD_MAPPED', `Refusing to shrink ${JSON.stringify(file.name)} to ${size} bytes: a live mapping ` +
      `in this process reaches byte ${furthest}, and touching mapped pages past the end of the file kills the process ` +
      'with SIGBUS. Unmap it first');
  }
}

/**
 * Memory of a {@link MemFile} mapped into this process (`mmap(2)`), seen through an ArrayBuffer without
 * copying. Changes through a shared mapping are visible at once to every process mapping the same file,
 * and to read/write on it.
 *
 * Lifetime: {@link Mapping.unmap} (or `using`) releases the pages at once. The buffer is detached
 * first, so every view of it then has length 0 and reads give `undefined`: nothing can touch unmapped
 * memory. A Mapping that is dropped without unmap is unmapped after its buffer (and every view of it)
 * is garbage-collected, never twice. Closing the MemFile does not affect its mappings: the kernel keeps
 * the file alive while it is mapped.
 *
 * The buffer cannot be moved to a Worker: it is external memory, and Node 20 copies it on transfer while
 * Node 22 and later throw `DataCloneError`. Posting the Mapping itself throws `DataCloneError` on Node
 * >= 22.10 (older Node delivers `{}`). Map the file in the Worker instead (post `file.dup().releaseFd()`).
 */
export class Mapping implements Disposable {
  readonly #record: NativeMapping;
  readonly #buffer: ArrayBuffer;
  readonly #bytes: Uint8Array;
  readonly #offset: number;
  readonly #length: number;
  readonly #writable: boolean;
  readonly #readOnly: boolean; // writable: false without private: true (copy-on-write stands in for PROT_READ)
  readonly #name: string;
  readonly #inode: string;
  readonly #live: LiveRange;
  #unmapped = false;

  /** @internal use {@link MemFile.map}. */
  constructor(record: NativeMapping, buffer: ArrayBuffer, offset: number, length: number, writable: boolean,
    readOnly: boolean, name: string, inode: string) {
    if (!token.allowed) throw new TypeError('Illegal constructor: use MemFile.map()');
    this.#record = record;
    this.#buffer = buffer;
    this.#bytes = new Uint8Array(buffer);
    this.#offset = offset;
    this.#length = length;
    this.#writable = writable;
    this.#readOnly = readOnly;
    this.#name = name;
    this.#inode = inode;
    buffers.set(buffer, { record, mapping: this });
    this.#live = { end: offset + length };
    let set = liveByInode.get(inode);
    if (!set) liveByInode.set(inode, (set = new Set()));
    set.add(this.#live);
    released.register(buffer, { key: inode, range: this.#live }, this.#live);
    markUncloneable(this);
  }

  /**
   * The mapped bytes as an ArrayBuffer (external memory: no copy). After {@link Mapping.unmap} it is
   * detached (`byteLength` 0). Build any view on it: `new Int32Array(m.buffer)` for Atomics and futexes.
   */
  get buffer(): ArrayBuffer {
    return this.#buffer;
  }

  /** A Uint8Array over {@link Mapping.buffer} (length 0 after unmap). */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  /** Offset in the file of the first mapped byte. */
  get offset(): number {
    return this.#offset;
  }

  /** Mapped bytes (as when mapped; the buffer's `byteLength` drops to 0 after unmap). */
  get length(): number {
    return this.#length;
  }

  /**
   * True when writes through this mapping change the file (a writable shared mapping). False for a
   * copy-on-write mapping, where writes only change this process's copy of the pages written.
   */
  get writable(): boolean {
    return this.#writable;
  }

  /**
   * True for a copy-on-write (`MAP_PRIVATE`) mapping: requested with `private: true`, or made for
   * `writable: false` (see {@link MapOptions.writable}). Always `!writable`.
   */
  get private(): boolean {
    return !this.#writable;
  }

  /** False after {@link Mapping.unmap}. */
  get mapped(): boolean {
    return !this.#unmapped;
  }

  /**
   * `msync(2)`. A memfd has no backing store to write back (its pages are the file), so this is cheap
   * and rarely needed: every mapping and read/write sees a store at once. Options: `async` (`MS_ASYNC`),
   * `invalidate` (`MS_INVALIDATE`), and a sub-range.
   */
  sync(options?: SyncOptions): void {
    this.#check('sync');
    const opts = toOptions<SyncOptions>(options);
    const isAsync = toBool(opts.async, 'options.async', false);
    const invalidate = toBool(opts.invalidate, 'options.invalidate', false);
    const [off, len] = this.#range(opts, 'options');
    const flags = (isAsync ? constants.MS_ASYNC : constants.MS_SYNC) | (invalidate ? constants.MS_INVALIDATE : 0);
    binding.msync(this.#record, flags, off, len);
  }

  /**
   * Tells the kernel how the memory will be used (`madvise`), e.g. `'willneed'` to read ahead,
   * `'populate-write'` to pre-fault writable pages (Linux 5.14), `'hugepage'` for transparent huge pages,
   * `'dontneed'` to drop this process's page table entries (a shared memfd keeps its contents; a
   * copy-on-write mapping drops its private copies). `'remove'` frees the file's pages in the range (the
   * contents become zeros, as with punchHole). `'populate-write'` on a read-only mapping is refused: it
   * would copy every page and cut the mapping off from the file.
   * Unknown names throw `ERR_INVALID_ARG_VALUE` before any syscall; advice the kernel does not support
   * for this kind of mapping is its EINVAL.
   */
  advise(advice: MapAdvice, range?: MapRange): void {
    if (typeof advice !== 'string') throw invalidArgType('advice', 'of type string', advice);
    const value = Object.hasOwn(constants.madvise, advice) ? constants.madvise[advice] : undefined;
    if (value === undefined) {
      throw invalidArgValue('advice', advice, `must be one of ${Object.keys(constants.madvise).join(', ')}`);
    }
    if (advice === 'populate-write' && this.#readOnly) {
      throw invalidArgValue('advice', advice, "would copy every page of this read-only mapping into this process and cut " +
        "it off from the file; use 'populate-read'");
    }
    this.#check('advise');
    const [off, len] = this.#range(toOptions<MapRange>(range, 'range'), 'range');
    try {
      binding.madvise(this.#record, value, off, len);
    } catch (e) {
      throw explainAdvise(e, advice, this.#writable);
    }
  }

  /**
   * Locks the pages in RAM (`mlock`): they are faulted in now and never swapped. Limited by
   * RLIMIT_MEMLOCK for unprivileged processes. On a read-only mapping this locks the file's pages
   * without copying them; on a `private: true` mapping the kernel copies every page first.
   */
  lock(range?: MapRange): void {
    this.#check('lock');
    const [off, len] = this.#range(toOptions<MapRange>(range, 'range'), 'range');
    try {
      binding.mlock(this.#record, true, off, len);
    } catch (e) {
      throw explainMemlock(e);
    }
  }

  /** Undoes {@link Mapping.lock} (`munlock`). */
  unlock(range?: MapRange): void {
    this.#check('unlock');
    const [off, len] = this.#range(toOptions<MapRange>(range, 'range'), 'range');
    binding.mlock(this.#record, false, off, len);
  }

  /**
   * Releases the pages after detaching {@link Mapping.buffer}: every view then has length 0, and the
   * file's pages are no longer mapped. Pending {@link futexWaitAsync} calls on it reject with
   * `ERR_MEMFD_UNMAPPED`. Calling it again does nothing.
   *
   * Node operations still running on the thread pool with the buffer (`crypto.randomFill`, `zlib`,
   * `fs.read` into it) do not crash: the address range becomes zero-filled anonymous memory, held in a
   * bounded quarantine for a while, where late writes are discarded and late reads see zeros. Unmap
   * after their callbacks all the same (docs/mapping.md, "Use after unmap").
   *
   * One exception: if the buffer was moved into a new ArrayBuffer with `ArrayBuffer.prototype.transfer()`
   * (Node 22+), that new buffer now owns the pages and cannot be detached from here, so they stay mapped
   * until it is garbage-collected (unmapping under it would crash the process).
   */
  unmap(): void {
    if (this.#unmapped) return;
    binding.unmap(this.#record);
    this.#unmapped = true;
    buffers.delete(this.#buffer);
    forget(this.#inode, this.#live);
    released.unregister(this.#live);
  }

  /** Same as {@link Mapping.unmap}, for `using`. */
  [Symbol.dispose](): void {
    this.unmap();
  }

  get [Symbol.toStringTag](): string {
    return 'Mapping';
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    if (this.#unmapped) return `Mapping { file: ${JSON.stringify(this.#name)}, unmapped: true }`;
    return `Mapping { file: ${JSON.stringify(this.#name)}, offset: ${this.#offset}, length: ${this.#length}, ` +
      `writable: ${this.#writable}, private: ${!this.#writable} }`;
  }

  #check(method: string): void {
    if (this.#unmapped) {
      throw stateError('ERR_MEMFD_UNMAPPED', `Mapping of ${JSON.stringify(this.#name)} was unmapped before ${method}()`);
    }
  }

  #range(opts: MapRange, name: string): [number, number] {
    const off = opts.offset === undefined ? 0 : toSize(opts.offset, `${name}.offset`);
    if (off > this.#length) throw outOfRange(`${name}.offset`, `<= ${this.#length}`, off);
    const len = opts.length === undefined ? this.#length - off : toSize(opts.length, `${name}.length`);
    if (len > this.#length - off) throw outOfRange(`${name}.length`, `<= ${this.#length - off}`, len);
    return [off, len];
  }
}

function explainAdvise(e: unknown, advice: string, writable: boolean): unknown {
  if (!(e instanceof SystemError) || e.hint) return e;
  if (e.code === 'EINVAL') {
    return e.withHint(`the kernel does not accept '${advice}' for this ${writable ? 'shared' : 'copy-on-write'} file mapping ` +
      '(or does not know it: populate-* need Linux 5.14, collapse 6.1)');
  }
  if (advice === 'remove' && e.code === 'EACCES' && !writable) {
    return e.withHint("'remove' frees the file's pages, which needs a writable shared mapping");
  }
  if (advice === 'remove' && e.code === 'EPERM') return e.withHint("'remove' punches a hole, and the file is sealed against writing");
  return e;
}

function pastEof(offset: number, length: number, size: number): Error {
  return rangeError('ERR_MEMFD_MAPPING_PAST_EOF', `Cannot map ${length} bytes at offset ${offset}: the file is ${size} bytes long. ` +
    'Touching a mapped page past the end of the file raises SIGBUS, which kills the process; grow the file ' +
    '(truncate/allocate) first');
}

function explainMmap(e: unknown, origin: MemFileOrigin, seals: number, writable: boolean,
  readOnlyFd: boolean, hugePageBytes: number, length: number): unknown {
  if (!(e instanceof SystemError) || e.hint) return e;
  switch (e.code) {
    case 'EPERM':
      if (writable && (seals & (Seal.Write | Seal.FutureWrite))) {
        return e.withHint(`the file has the ${new Seals(seals & (Seal.Write | Seal.FutureWrite))} seal, which forbids new ` +
          'writable shared mappings; map it with writable: false (copy-on-write: the file is never changed)');
      }
      break;
    case 'EACCES':
      if (writable && readOnlyFd) {
        return e.withHint('this MemFile was opened read-only, so it cannot be mapped writable and shared; ' +
          'map it with writable: false (copy-on-write: the file is never changed)');
      }
      break;
    case 'ENOMEM': case 'EAGAIN':
      if (origin === 'secret') {
        return e.withHint(`memfd_secret memory is locked memory and counts against RLIMIT_MEMLOCK, currently ${memlockLimit()} ` +
          'for this process (raise it with `ulimit -l`, LimitMEMLOCK= in systemd, or CAP_IPC_LOCK)');
      }
      // A shared hugeTLB mapping reserves its huge pages at mmap time: ENOMEM is then almost always the pool.
      if (hugePageBytes) return e.withHint(hugePageShortage(hugePageBytes, length));
      if (e.code === 'ENOMEM') {
        return e.withHint('no address space left for the mapping, or too many mappings (vm.max_map_count); unmap some');
      }
      break;
    case 'EINVAL':
      if (hugePageBytes) return e.withHint(`hugeTLB files map whole huge pages (${hugePageBytes} bytes)`);
      break;
  }
  return e;
}

/** @internal behind {@link MemFile.map}. */
export function mapFile(file: MappableFile, options?: MapOptions): Mapping {
  const opts = toOptions<MapOptions>(options);
  const isPrivate = toBool(opts.private, 'options.private', false);
  const populate = toBool(opts.populate, 'options.populate', false);
  const unsafeAllowShrinking = toBool(opts.unsafeAllowShrinking, 'options.unsafeAllowShrinking', false);
  if (opts.writable !== undefined && typeof opts.writable !== 'boolean') {
    throw invalidArgType('options.writable', 'of type boolean', opts.writable);
  }
  const offset = opts.offset === undefined ? 0 : toSize(opts.offset, 'options.offset');
  const requestedLength = opts.length === undefined ? undefined : toSize(opts.length, 'options.length');

  const { handle, origin, hugePageBytes, createdHere } = file;
  const st = statOf(handle);
  const size = st[7]!;
  let seals = 0;
  try { seals = binding.getSeals(handle); } catch { /* memfd_secret and non-tmpfs files have no seals */ }

  if (!createdHere && !(seals & Seal.Shrink) && !unsafeAllowShrinking) {
    const whence = origin === 'reopened'
      ? 'it is a reopen of a file adopted from elsewhere (MemFile.fromFd)'
      : 'it was adopted from elsewhere (MemFile.fromFd)';
    throw stateError('ERR_MEMFD_UNSAFE_MAPPING',
      `Refusing to map ${JSON.stringify(file.name)}: ${whence} and lacks the shrink seal ` +
      `(it has ${new Seals(seals)}). Whoever else holds this file could shrink it, and this process would then ` +
      'die of SIGBUS (uncatchable) on the next touch of a page past the new end. Ask whoever sent the fd to add ' +
      'Seal.Shrink (MemFile.fromFd(fd, { requireSeals: Seal.Shrink }) checks it), or pass ' +
      '{ unsafeAllowShrinking: true } if you trust every holder of the file');
  }

  if (offset > size) throw pastEof(offset, requestedLength ?? 0, size);
  const length = requestedLength ?? size - offset;
  if (length === 0) {
    throw rangeError('ERR_OUT_OF_RANGE', requestedLength === undefined
      ? `Cannot map ${JSON.stringify(file.name)}: ${size === 0 ? 'the file is empty' : 'nothing lies past the offset'}, ` +
        'and mmap cannot map 0 bytes; set a size first (truncate)'
      : 'Cannot map 0 bytes: mmap needs a length of at least 1');
  }
  if (offset + length > size) throw pastEof(offset, length, size);
  if (length > bufferConstants.MAX_LENGTH) {
    // Node 20 creates external ArrayBuffers as Buffers and refuses more than 4 GiB.
    throw rangeError('ERR_OUT_OF_RANGE', `Cannot map ${length} bytes at once: this Node.js version exposes at most ` +
      `${bufferConstants.MAX_LENGTH} bytes (buffer.constants.MAX_LENGTH) as one ArrayBuffer; map a smaller window ` +
      'with offset and length');
  }

  let readOnlyFd = false;
  try { readOnlyFd = (binding.fdFlags(binding.handleOwnFd(handle))[1] & O_ACCMODE) === O_RDONLY; } catch { /* unknown */ }
  const writable = !isPrivate && (opts.writable ?? (!readOnlyFd && !(seals & (Seal.Write | Seal.FutureWrite))));
  if (origin === 'secret' && !writable) {
    // secretmem only supports MAP_SHARED, and a PROT_READ mapping would crash on the first JS store.
    throw invalidArgValue(isPrivate ? 'options.private' : 'options.writable', isPrivate ? true : false,
      'is not possible for memfd_secret memory, which can only be mapped shared and writable');
  }

  if (populate && !hugePageBytes) {
    // Pre-faulting a sparse range charges every page now; refuse what the machine cannot give.
    assertMemoryFor(Math.max(0, length - st[9]! * 512), 'mmap', `map({ populate: true }) of ${length} bytes`);
  }
  const granule = hugePageBytes || constants.pageSize;
  // A read-only mapping is copy-on-write underneath; its futexes need a shared twin (native/mapping.c).
  // An explicitly private mapping is this process's own memory, futexes included.
  const flags = (writable ? MAP_OPT_SHARED : 0) | (populate ? MAP_OPT_POPULATE : 0) |
    (!writable && !isPrivate ? MAP_OPT_FUTEX_TWIN : 0);
  let record: NativeMapping, buffer: ArrayBuffer;
  try {
    [record, buffer] = binding.mmap(handle, offset, length, granule, flags);
  } catch (e) {
    throw explainMmap(e, origin, seals, writable, readOnlyFd, hugePageBytes, length);
  }
  token.allowed = true;
  try {
    return new Mapping(record, buffer, offset, length, writable, !writable && !isPrivate, file.name, inodeKey(st));
  } finally {
    token.allowed = false;
  }
}
