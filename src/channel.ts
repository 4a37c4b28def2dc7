/**
 * Messages between processes (or Worker threads) over shared memory: one memfd holds a header page and
 * one ring per direction. While both sides are busy a message costs no syscall at all; a side that waits
 * sleeps on a futex in the header and is woken only when its sleep flag says so.
 *
 * The wire format is documented in docs/channel.md (Python and C peers speak it too). The peer is not
 * trusted: every index and length read from shared memory is checked before use, and a corrupted header
 * or frame gives `ERR_MEMFD_CHANNEL_CORRUPT`, never an out-of-bounds access.
 * @module
 */
import { binding, type NativeChannelEnd, type NativeMapping } from './binding.js';
import { invalidArgType, outOfRange, stateError } from './errors.js';
import { mappingOfBuffer, type Mapping } from './mapping.js';
import { MemFile } from './memfile.js';
import { Seal } from './seals.js';
import { ResourceKind, warnClosedByGc, warnWindowKept } from './warnings.js';
import { toBool, toFd, toInt, toOptions } from './validate.js';

// ---- Wire format, version 1 (docs/channel.md). Byte offsets in the header page. ----
const MAGIC = 0x4344464d; // "MFDC" in memory
const VERSION = 1;
const HEADER_BYTES = 4096;
const OFF_MAGIC = 0, OFF_VERSION = 4, OFF_HEADER_BYTES = 8, OFF_RING_BYTES = 12, OFF_CLAIM = 16;
const OFF_PID = [20, 24] as const; // pid of end A, of end B
/** Per end, on its own cache line: closed flag, sleep flags, bell (the futex word that end sleeps on). */
const endBase = (end: number) => 64 + 64 * end;
const END_CLOSED = 0, END_SLEEP = 4, END_BELL = 8, END_FLAGS = 12;
/** Per direction (0: A to B, 1: B to A): the writer's tail and the reader's head, on separate lines. */
const ringBase = (dir: number) => 256 + 128 * dir;
const RING_TAIL = 0, RING_HEAD = 64;
/** Sleep flag bits: what the sleeping end waits for. */
const SLEEP_DATA = 1, SLEEP_SPACE = 2;
/**
 * End flag: this end's process is registered for membarrier(GLOBAL_EXPEDITED) barriers. When both ends set
 * it, both publish with a plain store, and a sleeper calls membarrier(GLOBAL_EXPEDITED) and looks again
 * LATE_FENCE_MS into a sleep (docs/channel.md, "Publishing without a fence").
 */
const FLAG_MEMBARRIER = 1;
/** A frame's length word with this value pads to the end of the ring; the next frame starts at its start. */
const PAD = 0xffffffff;
const FRAME_HEADER = 4;
const MIN_RING = 64, MAX_RING = 2 ** 30;
const EVENT_BELL = 1, EVENT_PEER_EXIT = 2, EVENT_BELL_SUPERSEDED = 3;
/** A spinning wait starts yielding the CPU (sched_yield) after this long. */
const YIELD_AFTER_MS = 0.002;
/** How long a sleep on a peer that publishes without a fence trusts the bell alone (#fenceAndLookAgain). */
const LATE_FENCE_MS = 1;
const ESRCH = 3;

let membarrierReady: boolean | undefined;
/**
 * Whether this process's ends may publish without a fence, asked once per process (registering took
 * 0.2-3 ms here). Only on x86-64, where a plain store keeps the order of the stores before it (the
 * message) and the only reordering left, a later load passing the store, is what the sleeper's membarrier
 * covers. On arm64 `Atomics.store` is already a cheap release store.
 */
const membarrierRegistered = (): boolean =>
  (membarrierReady ??= process.arch === 'x64' && native.channelMembarrierRegister() === 0);

/**
 * x86-64 loads never pass earlier loads or locked instructions, so a plain load of a peer's word orders
 * like `Atomics.load` there, for 0.6 instead of ~6 ns (V8 calls a builtin for every `Atomics.load`); see
 * Channel.#peerWord for where that is used and what it relies on. On arm64 a plain load may pass an
 * earlier store-release, so it stays `Atomics.load`.
 */
const PLAIN_PEER_LOADS = process.arch === 'x64';

/**
 * ArrayBuffer.prototype.transfer (Node 22 and later; Node 20 has none), taken at load with Reflect.apply so
 * that a prototype patched later cannot change them. V8's detaches a window (an ArrayBuffer over the ring),
 * with every view of it, and moves the memory to a new ArrayBuffer in about 0.3 µs, where a new window costs
 * 2.5-3 µs (Node-API makes a Node Buffer with a tracked finalizer record for each). So an ending loan or
 * view moves its window out of the user's reach into a spare, which the next loan or view of the same ring
 * offset and length takes: messages of one size come back to the same offsets lap after lap.
 * A shim installed before us (a polyfill on Node 20, say) may copy, throw or hand back its receiver: the
 * first transfer is checked (#movedInPlace), and such a one is never used again (transferMoves false:
 * windows are made and detached through Node-API, as on Node 20).
 */
const transferBuffer = (ArrayBuffer.prototype as { transfer?: (this: ArrayBuffer) => ArrayBuffer }).transfer;
const apply = Reflect.apply;
let transferMoves: boolean | undefined = transferBuffer === undefined ? false : undefined;
/**
 * Detaches a window that a user may hold, for good. Where V8's transfer is used, by transfer: a buffer that
 * markAsUntransferable() gave a detach key (Node 26) makes it throw, where Node-API's detach would abort the
 * process. Such a buffer is left as it is, with a warning; its pages stay mapped while it lives (mapping.c
 * counts live windows), so reading it cannot fault. (Where a shim replaced V8's transfer before this module
 * loaded, Node-API detaches, and a marked buffer on Node 26 still aborts: docs/channel.md says so.)
 */
function revokeWindow(window: ArrayBuffer): void {
  if (window.byteLength === 0) return; // detached already (its user transferred it away, say)
  if (transferMoves === false) {
    native.channelDetach(window);
    return;
  }
  const moved = moveWindow(window);
  if (moved !== undefined) native.channelDetach(moved);
}

/**
 * Detaches `window` (and every view of it) with V8's transfer, returning its memory in a new ArrayBuffer
 * that no user has seen; undefined, with a warning, for a buffer with a detach key (see revokeWindow).
 */
function moveWindow(window: ArrayBuffer): ArrayBuffer | undefined {
  try {
    return apply(transferBuffer!, window, []) as ArrayBuffer;
  } catch {
    warnWindowKept();
    return undefined;
  }
}

/**
 * Spare windows kept per channel end: a 1 MiB ring of 4 KiB messages has 255 offsets. When it is full a
 * moved window is dropped rather than another evicted (a ring with more offsets than that still hits on the
 * ones kept; evicting the oldest would make every one miss), and after SPARE_MISSES_BEFORE_RESET misses in
 * a row every spare goes, so that offsets the messages no longer use do not fill it for good.
 */
const SPARE_WINDOWS_MAX = 256;
const SPARE_MISSES_BEFORE_RESET = 4 * SPARE_WINDOWS_MAX;

const native = binding;

/** Options of {@link Channel.create}. */
export interface ChannelOptions {
  /**
   * Bytes of each ring (one per direction), rounded up to a power of two between 64 and 2^30. The largest
   * message is `size - 4` bytes ({@link Channel.maxMessageSize}). Default 1 MiB. Pages are only allocated
   * as the ring is used.
   */
  size?: number;
  /** Debug name of the memfd (`/memfd:NAME` in /proc/PID/fd). Default `'memfd-channel'`. */
  name?: string;
  /**
   * How long an async wait spins (checking shared memory, on the event loop's thread) before it sleeps on
   * the futex, in microseconds. Spinning cuts latency while both sides are busy; 0 sleeps at once. On
   * x86-64 a message published in the very nanoseconds a wait goes to sleep can arrive 1 ms late (seen with
   * 0, in about 1.5% of rounds of a test that lines the two up on purpose; docs/channel.md, "Publishing
   * without a fence"). Default 50.
   */
  spinMicros?: number;
  /** Watch the peer's process with a pidfd so that its death ends the stream. Default `true`. */
  watchPeer?: boolean;
  /**
   * Fault in this end's mapping of both rings now (`MAP_POPULATE`, one system call) instead of one page
   * fault per 4 KiB on first use, which costs more than copying the page (about 22 µs per fault on the
   * project's VM). The pages are allocated (and charged) at once. Each end decides for its own mapping.
   * Default `false`: pages are allocated as the ring is used.
   */
  populate?: boolean;
}

/** Options of {@link Channel.fromFd}. */
export interface ChannelFromFdOptions {
  /** See {@link ChannelOptions.spinMicros}. */
  spinMicros?: number;
  /** See {@link ChannelOptions.watchPeer}. */
  watchPeer?: boolean;
  /** See {@link ChannelOptions.populate}. */
  populate?: boolean;
}

/** What {@link Channel.trySend} and {@link Channel.send} accept; strings are sent as UTF-8. */
export type ChannelData = string | ArrayBufferView | ArrayBuffer | SharedArrayBuffer;

const enc = (data: unknown, name = 'data'): Uint8Array | string => {
  if (typeof data === 'string') return data;
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (typeof SharedArrayBuffer !== 'undefined' && data instanceof SharedArrayBuffer) return new Uint8Array(data);
  throw invalidArgType(name, 'of type string or an instance of Buffer, TypedArray, DataView or ArrayBuffer', data);
};

// `length`, not `byteLength` (equal for a Uint8Array): Node 20's V8 calls the byteLength getter of a Buffer
// as a builtin (about 10 ns) where it inlines `length` (about 2 ns); it shows at millions of messages.
const byteLength = (m: Uint8Array | string) => (typeof m === 'string' ? Buffer.byteLength(m, 'utf8') : m.length);
const frameBytes = (len: number) => (len + FRAME_HEADER + 7) & ~7;

/** Resources a Channel holds, kept apart from it so that the garbage-collection safety net can free them. */
interface Held {
  end: NativeChannelEnd;
  file: MemFile;
  mapping: Mapping;
  /** Windows (zero-copy loans and views) not yet detached. */
  windows: Set<ArrayBuffer>;
}

function release(held: Held): void {
  for (const w of held.windows) revokeWindow(w);
  held.windows.clear();
  native.channelEndClose(held.end);
  held.mapping.unmap();
  held.file.close();
}

const leaked = new FinalizationRegistry<Held>((held) => {
  const fd = held.file.closed ? -1 : held.file.fd;
  release(held);
  warnClosedByGc(ResourceKind.Channel, fd);
});

interface Waiter { bits: number; resolve: () => void }
/**
 * A pending send (`message`), reserve (neither `message` nor `many`) or sendMany (`many`, of which the first
 * `sent` are in the ring; `len` is then 0: the lengths were checked when it was called).
 */
interface TxJob {
  len: number;
  message: Uint8Array | string | undefined;
  many?: { messages: readonly (Uint8Array | string)[]; lengths: number[] | undefined; sent: number };
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}
const RX_COPY = 0, RX_VIEW = 1, RX_MANY = 2;
/** `spun`: the caller already spun for this receive (see receive()); its first wait goes straight to sleep. */
interface RxJob { kind: number; max: number; resolve: (v: unknown) => void; reject: (e: unknown) => void; spun?: boolean }

/**
 * A loan of ring space from {@link Channel.tryReserve} / {@link Channel.reserve}: fill {@link bytes} in
 * place, then {@link commit} to send them (no copy). Until then no other send is possible on this end.
 * After commit or abort, `bytes` is detached (length 0).
 */
export class ChannelLoan implements Disposable {
  readonly #channel: Channel;
  readonly #capacity: number;
  #bytes: Uint8Array;
  /** The window, taken at creation: `bytes.buffer` is the user's to shadow. */
  readonly #buffer: ArrayBuffer;
  #done = false;

  /** @internal */
  constructor(channel: Channel, bytes: Uint8Array, capacity: number) {
    this.#channel = channel;
    this.#bytes = bytes;
    this.#buffer = bytes.buffer as ArrayBuffer;
    this.#capacity = capacity;
  }

  /** The reserved bytes, inside the ring. Detached once the loan is committed or aborted. */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  /** True once committed or aborted. */
  get done(): boolean {
    return this.#done;
  }

  /** Sends the first `length` bytes (default: all that were reserved). */
  commit(length: number = this.#capacity): void {
    if (this.#done) throw stateError('ERR_MEMFD_CHANNEL_LOAN_DONE', 'This loan was already committed or aborted');
    toInt(length, 'length', 0, this.#capacity);
    this.#done = true;
    channelInternals.commit(this.#channel, this, length);
  }

  /** Gives the space back; nothing is sent. Harmless after commit. */
  abort(): void {
    if (this.#done) return;
    this.#done = true;
    channelInternals.abort(this.#channel, this);
  }

  /** Aborts an uncommitted loan. */
  [Symbol.dispose](): void {
    this.abort();
  }

  /** @internal */
  get buffer(): ArrayBuffer {
    return this.#buffer;
  }
}

/**
 * A received message read in place from {@link Channel.tryReceiveView} / {@link Channel.receiveView}.
 * Its bytes stay in the ring, so the writer cannot reuse them, until {@link release}; after release
 * `bytes` is detached (length 0), so it can never show bytes the writer has written since.
 */
export class ChannelView implements Disposable {
  readonly #channel: Channel;
  #bytes: Uint8Array;
  /** The window, taken at creation: `bytes.buffer` is the user's to shadow. */
  readonly #buffer: ArrayBuffer;
  readonly #length: number;
  #released = false;

  /** @internal */
  constructor(channel: Channel, bytes: Uint8Array, length: number) {
    this.#channel = channel;
    this.#bytes = bytes;
    this.#buffer = bytes.buffer as ArrayBuffer;
    this.#length = length;
  }

  /** The message, in the ring. Length 0 after release. */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  /** The message's length (kept after release). */
  get length(): number {
    return this.#length;
  }

  get released(): boolean {
    return this.#released;
  }

  /** Gives the bytes back to the writer. Harmless when called again. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    channelInternals.release(this.#channel, this);
  }

  [Symbol.dispose](): void {
    this.release();
  }

  /** @internal */
  get buffer(): ArrayBuffer {
    return this.#buffer;
  }
}

/**
 * Messages received together by {@link Channel.tryReceiveMany} / {@link Channel.receiveMany}: a run of
 * consecutive messages taken out of the ring with one copy, after which the ring's space is given back at
 * once (one index store, at most one wake-up of the writer). The batch owns its copy (its own
 * ArrayBuffer), which the writer can never change.
 *
 * {@link message} and the iterator return Buffers that are views into the batch's copy (no copy per
 * message; they keep the batch's memory alive). The cheapest access, with no object per message, is
 * {@link bytes} from {@link offsetOf}(i) for {@link lengthOf}(i) bytes.
 *
 * {@link release} is optional: it hands the batch's memory to the channel's next batch, so that a reading
 * loop allocates nothing (fresh memory costs a page fault per 4 KiB on first touch, more than the copy).
 * Without it the memory is garbage-collected like any Buffer's.
 *
 * @example
 * ```js
 * const batch = ch.tryReceiveMany();          // undefined when nothing is waiting
 * if (batch) {
 *   for (const m of batch) handle(m);         // m: a Buffer per message, in order
 *   batch.release();                          // optional: recycle the memory (m is empty from here on)
 * }
 * ```
 */
export class ChannelBatch implements Iterable<Buffer>, Disposable {
  readonly #channel: Channel;
  readonly #bytes: Buffer;
  /** Per message: its offset in #bytes, then its length; validated when read from the ring, never re-read. */
  readonly #index: Uint32Array;
  readonly #count: number;
  #released = false;

  /** @internal */
  constructor(channel: Channel, bytes: Buffer, index: Uint32Array, count: number) {
    this.#channel = channel;
    this.#bytes = bytes;
    this.#index = index;
    this.#count = count;
  }

  /** True after {@link release}. */
  get released(): boolean {
    return this.#released;
  }

  /**
   * Gives the batch's memory to this channel's next batch. Every Buffer obtained from the batch
   * ({@link bytes}, {@link message}, the iterator) is detached: length 0, so that none of them can show the
   * next batch's bytes. {@link message} throws `ERR_MEMFD_CHANNEL_BATCH_RELEASED` from here on; the counts,
   * offsets and lengths stay readable. Harmless when called again.
   */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    // Transferring moves the memory to a new ArrayBuffer and detaches the old one with all its views.
    const old = this.#bytes.buffer as ArrayBuffer;
    let moved: ArrayBuffer;
    try {
      moved = structuredClone(old, { transfer: [old] });
    } catch {
      return; // a runtime that cannot transfer it: the memory is not reused, so the views may stay
    }
    channelInternals.recycle(this.#channel, moved);
  }

  [Symbol.dispose](): void {
    this.release();
  }

  /** How many messages (at least 1). */
  get count(): number {
    return this.#count;
  }

  /**
   * The batch's copy of the run of frames: message `i` is at {@link offsetOf}(i), {@link lengthOf}(i) bytes
   * long. Between the payloads are the frame headers as the peer wrote them: do not parse them, the offsets
   * and lengths here are the checked ones.
   */
  get bytes(): Buffer {
    return this.#bytes;
  }

  /** Where message `i` starts in {@link bytes}. */
  offsetOf(i: number): number {
    return this.#index[2 * this.#at(i)]!;
  }

  /** The length of message `i` in bytes. */
  lengthOf(i: number): number {
    return this.#index[2 * this.#at(i) + 1]!;
  }

  /** Message `i` (0 .. count - 1): a Buffer over the batch's copy. */
  message(i: number): Buffer {
    const k = 2 * this.#at(i), start = this.#index[k]!;
    if (this.#released) throw stateError('ERR_MEMFD_CHANNEL_BATCH_RELEASED', 'message() of a released batch');
    return this.#bytes.subarray(start, start + this.#index[k + 1]!);
  }

  /** The messages in order, one Buffer each (see {@link message}). */
  *[Symbol.iterator](): Iterator<Buffer> {
    for (let i = 0; i < this.#count; i++) yield this.message(i);
  }

  get [Symbol.toStringTag](): string {
    return 'ChannelBatch';
  }

  #at(i: number): number {
    if (i >>> 0 === i && i < this.#count) return i;
    if (typeof i !== 'number') throw invalidArgType('i', 'of type number', i);
    throw outOfRange('i', `an integer >= 0 and < ${this.#count}`, i);
  }
}

interface ChannelInternals {
  commit(ch: Channel, loan: ChannelLoan, length: number): void;
  abort(ch: Channel, loan: ChannelLoan): void;
  release(ch: Channel, view: ChannelView): void;
  recycle(ch: Channel, memory: ArrayBuffer): void;
}
let channelInternals: ChannelInternals;

const token = { allowed: false };

function toSpin(value: unknown, name: string): number {
  if (value === undefined) return 50;
  return toInt(value, name, 0, 1_000_000);
}

function ringSizeOf(value: unknown): number {
  if (value === undefined) return 1 << 20;
  if (typeof value !== 'number') throw invalidArgType('options.size', 'of type number', value);
  if (!Number.isInteger(value) || value < 1 || value > MAX_RING) {
    throw outOfRange('options.size', `an integer >= 1 and <= ${MAX_RING}`, value);
  }
  let size = MIN_RING;
  while (size < value) size *= 2;
  return size;
}

/**
 * Received copies from 4 KiB (where Buffer.allocUnsafe() stops using its 8 KiB pool) up to this size are
 * carved out of shared slabs the same way: one allocation per slab instead of one per message (a fresh
 * ArrayBuffer per 4 KiB message cost more than the copy). Each Buffer owns its bytes; the slab lives as
 * long as any of them. Larger copies get their own ArrayBuffer (allocated and filled in one native slice).
 */
const SLAB_LIMIT = 64 * 1024, SLAB_BYTES = 1024 * 1024;
let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
let slabUsed = 0;

function copyOut(from: Uint8Array, start: number, len: number): Buffer {
  if (len < 4096) { // Buffer's own pool
    const small = Buffer.allocUnsafe(len);
    small.set(from.subarray(start, start + len));
    return small;
  }
  if (len > SLAB_LIMIT) return Buffer.from(from.buffer.slice(start, start + len));
  if (slabUsed + len > SLAB_BYTES) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    slabUsed = 0;
  }
  const out = Buffer.from(slab.buffer, slabUsed, len);
  out.set(from.subarray(start, start + len));
  slabUsed = (slabUsed + len + 7) & ~7;
  return out;
}

/** Faults in a peer's channel file once its sizes are checked (MAP_POPULATE would trust the file's size). */
function prefault(mapping: Mapping): void {
  try {
    mapping.advise('populate-write');
  } catch (e) {
    if ((e as { code?: string }).code !== 'EINVAL') throw e;
    // Before Linux 5.14: a read per page allocates it (a memfd has no shared zero page). Reads only: the
    // peer may be writing to the rings already.
    const words = new Int32Array(mapping.buffer);
    for (let i = 0; i < words.length; i += 1024) Atomics.load(words, i);
  }
}

const notAChannel = (fd: number, why: string) =>
  stateError('ERR_MEMFD_NOT_A_CHANNEL', `fd ${fd} is not a memfd Channel: ${why}; the fd was left open`);
const corrupt = (why: string) => stateError('ERR_MEMFD_CHANNEL_CORRUPT', `The channel's shared memory is corrupt: ${why}`);

/**
 * A two-way message channel over shared memory. {@link Channel.create} makes end A and the memfd;
 * another process (or Worker) claims end B with {@link Channel.fromFd}, once.
 *
 * Messages (0 to {@link maxMessageSize} bytes) arrive whole, in order, exactly once. `trySend` /
 * `tryReceive` never wait; `send` waits for room, `receive` for a message, or resolves `null` once the
 * peer has closed its end (or died) and everything it sent has been read. `for await` ends there too;
 * leaving the loop early does not close the channel.
 *
 * @example
 * ```js
 * const ch = Channel.create({ size: 1 << 20 });
 * const child = spawn(process.execPath, ['child.mjs'], { stdio: ['inherit', 'inherit', 'inherit', ch.fd] });
 * await ch.send('hello');
 * for await (const msg of ch) console.log(msg.toString());
 * ch.close();
 * // child.mjs
 * const peer = Channel.fromFd(3);
 * const msg = await peer.receive();
 * ```
 */
export class Channel implements Disposable, AsyncDisposable, AsyncIterable<Buffer> {
  readonly #held: Held;
  readonly #end: 0 | 1;
  readonly #cap: number;
  readonly #mask: number;
  readonly #i32: Int32Array;
  readonly #record: NativeMapping;
  readonly #spinMs: number;
  readonly #watchPeer: boolean;

  readonly #txBytes: Buffer;
  readonly #txWords: Uint32Array;
  readonly #txOffset: number; // of the ring in the mapping
  readonly #iTxTail: number;
  readonly #iTxHead: number;
  #txTail: number;
  #txHeadSeen: number;

  readonly #all: Uint8Array; // the whole mapping
  readonly #rxWords: Uint32Array;
  readonly #rxOffset: number;
  readonly #iRxTail: number;
  readonly #iRxHead: number;
  #rxHead: number;
  #rxTailSeen: number;

  readonly #iMySleep: number;
  readonly #iMyBell: number;
  readonly #iPeerSleep: number;
  readonly #iPeerClosed: number;
  readonly #iPeerPid: number;
  readonly #iPeerFlags: number;
  readonly #iMyFlags: number;
  /** This end set FLAG_MEMBARRIER: it publishes without a fence when the peer set it too. */
  #membarrier: boolean;

  #closed = false;
  #peerClosed = false; // seen closed in shared memory, or its process exited
  #peerDead = false;
  #watching = false;
  #failure: Error | undefined;
  #waiters: Waiter[] = [];
  #armed = false;
  /** The timer of #fenceAndLookAgain while a wait sleeps on a peer that publishes without a fence. */
  #lateFence: ReturnType<typeof setTimeout> | undefined;
  #loan: ChannelLoan | undefined;
  #loanWaiters: (() => void)[] = [];
  /** UTF-8 lengths of the strings in the last #encodeMany call's messages (by index). */
  #stringLengths: number[] | undefined;
  #viewWaiters: (() => void)[] = [];
  readonly #txQueue: TxJob[] = [];
  readonly #rxQueue: RxJob[] = [];
  #loanFrame = 0;
  #view: ChannelView | undefined;
  #viewFrame = 0;
  /**
   * Windows of ended loans and views, moved out of the ArrayBuffers their users saw (transferBuffer), by
   * mapping offset. Each is also in #held.windows, so close() and the GC safety net detach it.
   */
  readonly #spareWindows = new Map<number, ArrayBuffer>();
  /** Windows opened without a spare since the last hit, while the spares were full. */
  #spareMisses = 0;
  /** Offsets and lengths of a batch being read (pairs), grown on demand; a batch gets an exact copy. */
  #scratch = new Uint32Array(512);
  /** Memory of a released batch, for the next batch (see ChannelBatch.release). */
  #spare: ArrayBuffer | undefined;
  /** Native code holds it weakly (strongly only while a wait is armed): the channel keeps it alive. */
  readonly #onEventFn: (event: number) => void;

  static {
    channelInternals = {
      commit: (ch, loan, length) => ch.#commit(loan, length),
      abort: (ch, loan) => ch.#abortLoan(loan),
      release: (ch, view) => ch.#releaseView(view),
      recycle: (ch, memory) => {
        // One spare, the larger: a reading loop's runs are mostly of one size.
        if (!ch.#closed && (ch.#spare === undefined || ch.#spare.byteLength < memory.byteLength)) ch.#spare = memory;
      },
    };
  }

  /** @internal use {@link Channel.create} or {@link Channel.fromFd}. */
  constructor(file: MemFile, mapping: Mapping, end: 0 | 1, ring: number, spinMicros: number, watchPeer: boolean) {
    if (!token.allowed) throw new TypeError('Illegal constructor: use Channel.create() or Channel.fromFd()');
    this.#end = end;
    this.#cap = ring;
    this.#mask = ring - 1;
    this.#spinMs = spinMicros / 1000;
    this.#watchPeer = watchPeer;
    const buffer = mapping.buffer;
    this.#record = mappingOfBuffer(buffer)!.record;
    this.#i32 = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    const tx = end, rx = 1 - end, peer = 1 - end;
    this.#txOffset = HEADER_BYTES + tx * ring;
    this.#rxOffset = HEADER_BYTES + rx * ring;
    this.#txBytes = Buffer.from(buffer, this.#txOffset, ring);
    this.#all = new Uint8Array(buffer);
    this.#txWords = new Uint32Array(buffer, this.#txOffset, ring / 4);
    this.#rxWords = new Uint32Array(buffer, this.#rxOffset, ring / 4);
    this.#iTxTail = (ringBase(tx) + RING_TAIL) / 4;
    this.#iTxHead = (ringBase(tx) + RING_HEAD) / 4;
    this.#iRxTail = (ringBase(rx) + RING_TAIL) / 4;
    this.#iRxHead = (ringBase(rx) + RING_HEAD) / 4;
    this.#iMySleep = (endBase(end) + END_SLEEP) / 4;
    this.#iMyBell = (endBase(end) + END_BELL) / 4;
    this.#iPeerSleep = (endBase(peer) + END_SLEEP) / 4;
    this.#iPeerClosed = (endBase(peer) + END_CLOSED) / 4;
    this.#iPeerPid = OFF_PID[peer] / 4;
    this.#iPeerFlags = (endBase(peer) + END_FLAGS) / 4;
    this.#iMyFlags = (endBase(end) + END_FLAGS) / 4;
    this.#membarrier = membarrierRegistered();
    // Our own indices are ours alone: read once (checked by the caller), then kept locally.
    this.#txTail = Atomics.load(this.#i32, this.#iTxTail) >>> 0;
    this.#txHeadSeen = Atomics.load(this.#i32, this.#iTxHead) >>> 0;
    this.#rxHead = Atomics.load(this.#i32, this.#iRxHead) >>> 0;
    this.#rxTailSeen = Atomics.load(this.#i32, this.#iRxTail) >>> 0;
    this.#onEventFn = (event: number) => this.#onEvent(event);
    const nativeEnd = native.channelEndOpen(file.fd, endBase(end) + END_BELL, endBase(peer) + END_BELL,
      endBase(end) + END_CLOSED, this.#onEventFn);
    this.#held = { end: nativeEnd, file, mapping, windows: new Set() };
    leaked.register(this, this.#held, this.#held);
  }

  /**
   * Creates a channel (end A): a memfd sized for the header and both rings, sealed against shrinking and
   * growing. Hand {@link fd} to the other process (spawn stdio, a UnixSocket) for {@link Channel.fromFd}.
   */
  static create(options?: ChannelOptions): Channel {
    const opts = toOptions<ChannelOptions>(options);
    const ring = ringSizeOf(opts.size);
    const spin = toSpin(opts.spinMicros, 'options.spinMicros');
    const watchPeer = toBool(opts.watchPeer, 'options.watchPeer', true);
    const populate = toBool(opts.populate, 'options.populate', false);
    const name = opts.name ?? 'memfd-channel';
    if (typeof name !== 'string') throw invalidArgType('options.name', 'of type string', name);
    const file = MemFile.create(name);
    let mapping: Mapping | undefined;
    try {
      file.truncate(HEADER_BYTES + 2 * ring);
      file.addSeals(Seal.Shrink | Seal.Grow | Seal.Seal);
      mapping = file.map({ writable: true, populate });
      const h = new Int32Array(mapping.buffer, 0, HEADER_BYTES / 4);
      h[OFF_VERSION / 4] = VERSION;
      h[OFF_HEADER_BYTES / 4] = HEADER_BYTES;
      h[OFF_RING_BYTES / 4] = ring;
      h[OFF_PID[0] / 4] = process.pid;
      h[(endBase(0) + END_FLAGS) / 4] = membarrierRegistered() ? FLAG_MEMBARRIER : 0;
      Atomics.store(h, OFF_MAGIC / 4, MAGIC);
      token.allowed = true;
      try {
        return new Channel(file, mapping, 0, ring, spin, watchPeer);
      } finally {
        token.allowed = false;
      }
    } catch (e) {
      mapping?.unmap();
      file.close();
      throw e;
    }
  }

  /**
   * Claims end B of the channel whose memfd is `fd` (inherited at spawn, received over a socket, or a
   * duplicate from {@link dupFd} in a Worker). The Channel owns the fd from then on.
   *
   * Refusals leave the fd open and the caller's: `ERR_MEMFD_NOT_A_CHANNEL` (not a memfd, not sealed
   * against shrink and grow, wrong magic or version), `ERR_MEMFD_CHANNEL_CORRUPT` (sizes or indices that
   * do not add up), `ERR_MEMFD_CHANNEL_END_TAKEN` (end B was claimed before), `ERR_MEMFD_FD_ALREADY_OWNED`
   * (another object of this process owns the fd).
   */
  static fromFd(fd: number, options?: ChannelFromFdOptions): Channel {
    toFd(fd);
    const opts = toOptions<ChannelFromFdOptions>(options);
    const spin = toSpin(opts.spinMicros, 'options.spinMicros');
    const watchPeer = toBool(opts.watchPeer, 'options.watchPeer', true);
    const populate = toBool(opts.populate, 'options.populate', false);
    let file: MemFile;
    try {
      file = MemFile.fromFd(fd);
    } catch (e) {
      if ((e as { code?: string }).code === 'ERR_MEMFD_NOT_A_MEMFD') {
        const err = notAChannel(fd, 'it is not a memfd');
        (err as Error & { cause?: unknown }).cause = e;
        throw err;
      }
      if ((e as { code?: string }).code === 'ERR_MEMFD_FD_ALREADY_OWNED') {
        // MemFile's advice (file.dup().releaseFd()) does not apply to a channel's fd.
        const err = stateError('ERR_MEMFD_FD_ALREADY_OWNED', `fd ${fd} is already owned by another memfd object in ` +
          'this process (the Channel that made it, or a MemFile); for the other end in a Worker, post ch.dupFd(): ' +
          'a new fd that the Worker owns; the fd was left open');
        (err as Error & { cause?: unknown }).cause = e;
        throw err;
      }
      throw e;
    }
    let mapping: Mapping | undefined;
    try {
      const seals = file.getSeals().bits;
      if ((seals & (Seal.Shrink | Seal.Grow)) !== (Seal.Shrink | Seal.Grow)) {
        throw notAChannel(fd, 'the memfd is not sealed against shrinking and growing');
      }
      const size = file.size;
      if (size < HEADER_BYTES) throw notAChannel(fd, `the file has ${size} bytes, less than a header`);
      if (file.readOnly) throw notAChannel(fd, 'the fd is open read-only');
      mapping = file.map({ writable: true }); // populated below, once the sizes are known to add up
      const h = new Int32Array(mapping.buffer, 0, HEADER_BYTES / 4);
      const magic = Atomics.load(h, OFF_MAGIC / 4) >>> 0;
      if (magic !== MAGIC) throw notAChannel(fd, `bad magic 0x${magic.toString(16)}`);
      const version = h[OFF_VERSION / 4]!;
      if (version !== VERSION) throw notAChannel(fd, `wire format version ${version}, this library speaks ${VERSION}`);
      const headerBytes = h[OFF_HEADER_BYTES / 4]!, ring = h[OFF_RING_BYTES / 4]!;
      if (headerBytes !== HEADER_BYTES) throw corrupt(`header size ${headerBytes}`);
      if (!(ring >= MIN_RING && ring <= MAX_RING && (ring & (ring - 1)) === 0)) throw corrupt(`ring size ${ring}`);
      if (size !== HEADER_BYTES + 2 * ring) throw corrupt(`file size ${size} does not match the ring size ${ring}`);
      for (const dir of [0, 1]) {
        const tail = Atomics.load(h, (ringBase(dir) + RING_TAIL) / 4) >>> 0;
        const head = Atomics.load(h, (ringBase(dir) + RING_HEAD) / 4) >>> 0;
        if (((tail - head) >>> 0) > ring || (tail & 7) !== 0 || (head & 7) !== 0) {
          throw corrupt(`ring ${dir} has head ${head} and tail ${tail}`);
        }
      }
      if (Atomics.load(h, OFF_CLAIM / 4) !== 0) {
        throw stateError('ERR_MEMFD_CHANNEL_END_TAKEN', `End B of the channel on fd ${fd} is already claimed; the fd was left open`);
      }
      if (populate) prefault(mapping);
      // The claim comes before the construction, which is undone (claim given back) if it fails.
      if (Atomics.compareExchange(h, OFF_CLAIM / 4, 0, 1) !== 0) {
        throw stateError('ERR_MEMFD_CHANNEL_END_TAKEN', `End B of the channel on fd ${fd} is already claimed; the fd was left open`);
      }
      let channel: Channel;
      token.allowed = true;
      try {
        channel = new Channel(file, mapping, 1, ring, spin, watchPeer);
      } catch (e) {
        Atomics.store(h, OFF_CLAIM / 4, 0);
        throw e;
      } finally {
        token.allowed = false;
      }
      // Only now that the end is ours: a claim given back must not leave the flag to the next claimant.
      Atomics.store(h, (endBase(1) + END_FLAGS) / 4, channel.#membarrier ? FLAG_MEMBARRIER : 0);
      Atomics.store(h, OFF_PID[1] / 4, process.pid);
      // Wake end A whether or not it sleeps: it learns our pid (to watch us) on its next look.
      native.channelEndRing(channel.#held.end);
      channel.#startWatching();
      return channel;
    } catch (e) {
      if (mapping?.mapped) mapping.unmap();
      if (!file.closed) file.releaseFd();
      throw e;
    }
  }

  // ---- public surface ----

  /** The memfd's fd (for spawn stdio, or to send over a UnixSocket). Owned by the Channel. */
  get fd(): number {
    return this.#held.file.fd;
  }

  /** `'A'` for the end made by {@link Channel.create}, `'B'` for the one claimed by {@link Channel.fromFd}. */
  get end(): 'A' | 'B' {
    return this.#end === 0 ? 'A' : 'B';
  }

  /** Bytes of each ring. */
  get size(): number {
    return this.#cap;
  }

  /** The largest message: the ring size minus the 4-byte frame header. */
  get maxMessageSize(): number {
    return this.#cap - FRAME_HEADER;
  }

  /** True after {@link close}. */
  get closed(): boolean {
    return this.#closed;
  }

  /** True once this end knows that the peer closed its end or exited (messages may still be waiting). */
  get peerClosed(): boolean {
    if (!this.#peerClosed && !this.#closed && Atomics.load(this.#i32, this.#iPeerClosed) !== 0) this.#peerClosed = true;
    return this.#peerClosed;
  }

  /** The peer's pid as recorded in the header (0 while end B is unclaimed). */
  get peerPid(): number {
    this.#assertOpen('peerPid');
    return Atomics.load(this.#i32, this.#iPeerPid);
  }

  /**
   * Sends `data` if the ring has room now: `true`, else `false` (nothing written; also while earlier
   * `send()`s or `reserve()`s of this end still wait, so that messages keep the order of the calls). A
   * message longer than {@link maxMessageSize} is a RangeError. Throws `ERR_MEMFD_CHANNEL_CLOSED` when this
   * end is closed, the peer closed its end, or the peer's process is known to have exited (noticed by the
   * event loop; until then a message to a killed peer may still go into the ring, as into a socket
   * buffer), and `ERR_MEMFD_CHANNEL_BUSY` while a loan is open.
   */
  trySend(data: ChannelData): boolean {
    const m = enc(data);
    const len = byteLength(m);
    this.#assertCanSend(len, 'trySend', false);
    return this.#txQueue.length === 0 && this.#trySend(m, len);
  }

  /**
   * Sends `data`, waiting for room (backpressure), and after the sends and loans this end started before.
   * Rejects like {@link trySend} throws (a pending send rejects when either end closes).
   */
  async send(data: ChannelData): Promise<void> {
    const m = enc(data);
    const len = byteLength(m);
    this.#assertCanSend(len, 'send', true);
    if (this.#txQueue.length === 0 && !this.#loan && this.#trySend(m, len)) return;
    await new Promise<unknown>((resolve, reject) => this.#enqueueTx({ len, message: m, resolve, reject }));
  }

  /**
   * Sends as many of `messages` as fit now, in order (a prefix of the array), and returns how many went:
   * all of them, fewer when the ring filled up, 0 when none fit or earlier `send()`s / `sendMany()`s /
   * `reserve()`s of this end still wait. The messages are published together (one index store) and the
   * reader is woken at most once, which is what makes small messages cheap.
   *
   * Every message is checked before anything is written: a non-array or a message of the wrong type is a
   * TypeError, one longer than {@link maxMessageSize} a RangeError. State errors as {@link trySend}.
   */
  trySendMany(messages: readonly ChannelData[]): number {
    const encoded = this.#encodeMany(messages);
    this.#assertCanSend(0, 'trySendMany', false);
    if (this.#txQueue.length > 0) return 0;
    return this.#trySendMany(encoded, this.#stringLengths, 0);
  }

  /**
   * Sends all of `messages`, in order, waiting for room as needed (backpressure), after the sends and
   * loans this end started before; nothing sent later overtakes them. Checks and rejections as
   * {@link trySendMany} and {@link send}; when it rejects after it started (an end closed), a prefix of
   * the messages may have been sent.
   */
  async sendMany(messages: readonly ChannelData[]): Promise<void> {
    // A copy of the caller's array: changes to it while the messages wait must not change what is sent.
    let encoded = this.#encodeMany(messages);
    if (encoded === messages) encoded = encoded.slice();
    const lengths = this.#stringLengths;
    this.#assertCanSend(0, 'sendMany', true);
    let sent = 0;
    if (this.#txQueue.length === 0 && !this.#loan) {
      sent = this.#trySendMany(encoded, lengths, 0);
      if (sent === encoded.length) return;
    }
    const many = { messages: encoded, lengths, sent };
    await new Promise<unknown>((resolve, reject) => this.#enqueueTx({ len: 0, message: undefined, many, resolve, reject }));
  }

  /**
   * A message if one is waiting now: a Buffer that the caller owns (a copy). `undefined` when none is
   * waiting (or earlier `receive()`s of this end are still waiting for one), also after the end of the
   * stream (see {@link ended}). `ERR_MEMFD_CHANNEL_BUSY` while a view is unreleased.
   */
  tryReceive(): Buffer | undefined {
    this.#assertCanReceive('tryReceive');
    if (this.#rxQueue.length > 0) return undefined;
    return this.#tryReceive() ?? undefined;
  }

  /**
   * Copies the next waiting message into `target` (from its start) and returns its length; `undefined`
   * when none is waiting. No allocation: the fastest way to receive into a buffer you reuse. A message
   * longer than `target` is a RangeError and stays in the ring (read it with a larger target or a view).
   */
  tryReceiveInto(target: ArrayBufferView | ArrayBuffer): number | undefined {
    const into = target instanceof Uint8Array ? target : ArrayBuffer.isView(target)
      ? new Uint8Array(target.buffer, target.byteOffset, target.byteLength)
      : target instanceof ArrayBuffer ? new Uint8Array(target) : undefined;
    if (into === undefined) throw invalidArgType('target', 'an instance of Buffer, TypedArray, DataView or ArrayBuffer', target);
    this.#assertCanReceive('tryReceiveInto');
    if (this.#rxQueue.length > 0) return undefined;
    const index = this.#nextFrame();
    if (index === null || index === undefined) return undefined;
    const len = this.#rxWords[index >> 2]!;
    if (len > into.byteLength) {
      throw outOfRange('target.byteLength', `>= ${len} (the length of the next message)`, into.byteLength);
    }
    const start = this.#rxOffset + index + FRAME_HEADER;
    into.set(this.#all.subarray(start, start + len));
    this.#publishHead((this.#rxHead + frameBytes(len)) >>> 0);
    return len;
  }

  /**
   * The next message, or `null` once the peer has closed or died and every message has been read (and
   * after this end's `close()`). Concurrent calls are served in order; one waits for an unreleased view.
   */
  receive(): Promise<Buffer | null> {
    // Not an async function, and the spin happens here rather than in #pumpRx: a message that arrives
    // while we spin is returned in an already resolved promise, without the queue, the pump's await and the
    // adoption of one promise by another (several microtask turns, a third of a 64 B round trip).
    if (this.#closed) return Promise.resolve(null);
    let spun = false;
    try {
      this.#assertOpen('receive');
      if (this.#rxQueue.length === 0 && !this.#view) {
        let m = this.#tryReceive();
        if (m === undefined && this.#spinMs > 0) {
          spun = true;
          if (this.#spin(SLEEP_DATA)) m = this.#tryReceive();
        }
        if (m !== undefined) return Promise.resolve(m);
      }
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<Buffer | null>((resolve, reject) =>
      this.#enqueueRx({ kind: RX_COPY, max: 1, resolve: resolve as (v: unknown) => void, reject, spun }));
  }

  /**
   * The messages waiting now, as one {@link ChannelBatch}: a run of consecutive messages (at most `max`,
   * default all) copied out of the ring at once. A run ends where the ring wraps, so a batch may hold fewer
   * than are waiting; call again. `undefined` when none is waiting (or earlier `receive*()` calls of this
   * end still wait), also after the end of the stream. `ERR_MEMFD_CHANNEL_BUSY` while a view is unreleased.
   */
  tryReceiveMany(max?: number): ChannelBatch | undefined {
    const limit = max === undefined ? Infinity : toInt(max, 'max', 1, Number.MAX_SAFE_INTEGER);
    this.#assertCanReceive('tryReceiveMany');
    if (this.#rxQueue.length > 0) return undefined;
    return this.#tryReceiveMany(limit) ?? undefined;
  }

  /**
   * Like {@link tryReceiveMany}, waiting for at least one message; `null` once the peer has closed or died
   * and every message has been read (as {@link receive}). Served in order with the other receives.
   */
  async receiveMany(max?: number): Promise<ChannelBatch | null> {
    const limit = max === undefined ? Infinity : toInt(max, 'max', 1, Number.MAX_SAFE_INTEGER);
    if (this.#closed) return null;
    this.#assertOpen('receiveMany');
    if (this.#rxQueue.length === 0 && !this.#view) {
      const b = this.#tryReceiveMany(limit);
      if (b !== undefined) return b;
    }
    return new Promise<ChannelBatch | null>((resolve, reject) =>
      this.#enqueueRx({ kind: RX_MANY, max: limit, resolve: resolve as (v: unknown) => void, reject }));
  }

  /** True once the peer is gone and every message it sent has been read. */
  get ended(): boolean {
    if (this.#closed) return true;
    return this.#rxIsEmpty() && this.#peerGoneNow() && this.#rxIsEmpty();
  }

  /**
   * Reserves `length` bytes of ring space for a message written in place: fill `loan.bytes`, then
   * `loan.commit()`. `undefined` when there is no room now (or earlier sends still wait). One loan at a
   * time per end: `trySend` and `tryReserve` throw `ERR_MEMFD_CHANNEL_BUSY` meanwhile, `send` and
   * `reserve` wait for the loan to end.
   */
  tryReserve(length: number): ChannelLoan | undefined {
    toInt(length, 'length', 0, this.maxMessageSize);
    this.#assertCanSend(length, 'tryReserve', false);
    if (this.#txQueue.length > 0) return undefined;
    return this.#tryReserve(length);
  }

  /** Like {@link tryReserve}, waiting for room (and for earlier sends and loans of this end). */
  async reserve(length: number): Promise<ChannelLoan> {
    toInt(length, 'length', 0, this.maxMessageSize);
    this.#assertCanSend(length, 'reserve', true);
    if (this.#txQueue.length === 0 && !this.#loan) {
      const loan = this.#tryReserve(length);
      if (loan) return loan;
    }
    return new Promise<ChannelLoan>((resolve, reject) =>
      this.#enqueueTx({ len: length, message: undefined, resolve: resolve as (v: unknown) => void, reject }));
  }

  /**
   * The next message read in place, if one is waiting now: its bytes stay in the ring until
   * `view.release()`. `ERR_MEMFD_CHANNEL_BUSY` while the previous view is unreleased.
   */
  tryReceiveView(): ChannelView | undefined {
    this.#assertCanReceive('tryReceiveView');
    if (this.#rxQueue.length > 0) return undefined;
    return this.#tryReceiveView() ?? undefined;
  }

  /** Like {@link tryReceiveView}, waiting (also for the previous view's release); `null` at the end. */
  async receiveView(): Promise<ChannelView | null> {
    if (this.#closed) return null;
    this.#assertOpen('receiveView');
    if (this.#rxQueue.length === 0 && !this.#view) {
      const v = this.#tryReceiveView();
      if (v !== undefined) return v;
    }
    return new Promise<ChannelView | null>((resolve, reject) =>
      this.#enqueueRx({ kind: RX_VIEW, max: 1, resolve: resolve as (v: unknown) => void, reject }));
  }

  // Pending async sends (and reserves) and receives wait in FIFO queues, served by one pump per direction,
  // so that neither a later call nor a synchronous try* call overtakes them.

  #enqueueTx(job: TxJob): void {
    this.#txQueue.push(job);
    if (this.#txQueue.length === 1) void this.#pumpTx();
  }

  async #pumpTx(): Promise<void> {
    const queue = this.#txQueue;
    while (queue.length > 0) {
      const job = queue[0]!;
      try {
        const many = job.many;
        this.#assertCanSend(job.len, many ? 'sendMany' : job.message === undefined ? 'reserve' : 'send', true);
        if (this.#loan) {
          await new Promise<void>((resolve) => this.#loanWaiters.push(resolve));
          continue;
        }
        if (many) {
          many.sent += this.#trySendMany(many.messages, many.lengths, many.sent);
          if (many.sent === many.messages.length) {
            queue.shift();
            job.resolve(undefined);
            continue;
          }
        } else {
          const done = job.message === undefined ? this.#tryReserve(job.len) : this.#trySend(job.message, job.len);
          if (done) {
            queue.shift();
            job.resolve(job.message === undefined ? done : undefined);
            continue;
          }
        }
      } catch (e) {
        queue.shift();
        job.reject(e);
        continue;
      }
      await this.#wait(SLEEP_SPACE);
    }
  }

  #enqueueRx(job: RxJob): void {
    this.#rxQueue.push(job);
    if (this.#rxQueue.length === 1) void this.#pumpRx();
  }

  async #pumpRx(): Promise<void> {
    const queue = this.#rxQueue;
    while (queue.length > 0) {
      const job = queue[0]!;
      try {
        if (this.#closed) {
          queue.shift();
          job.resolve(null);
          continue;
        }
        this.#assertOpen(job.kind === RX_VIEW ? 'receiveView' : job.kind === RX_MANY ? 'receiveMany' : 'receive');
        if (this.#view) {
          await new Promise<void>((resolve) => this.#viewWaiters.push(resolve));
          continue;
        }
        const got = job.kind === RX_VIEW ? this.#tryReceiveView()
          : job.kind === RX_MANY ? this.#tryReceiveMany(job.max) : this.#tryReceive();
        if (got !== undefined) {
          queue.shift();
          job.resolve(got);
          continue;
        }
      } catch (e) {
        queue.shift();
        job.reject(e);
        continue;
      }
      const spun = job.spun === true;
      job.spun = false;
      await this.#wait(SLEEP_DATA, spun);
    }
  }

  #endLoan(): void {
    this.#loan = undefined;
    const waiters = this.#loanWaiters;
    this.#loanWaiters = [];
    for (const w of waiters) w();
  }

  #endView(): void {
    this.#view = undefined;
    const waiters = this.#viewWaiters;
    this.#viewWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * A new fd (close-on-exec) for the same memfd, owned by the caller: for {@link Channel.fromFd} in a
   * Worker of this process (an fd owned here cannot be adopted twice) or to send over a socket.
   */
  dupFd(): number {
    this.#assertOpen('dupFd');
    return this.#held.file.dup().releaseFd();
  }

  /**
   * Closes this end: the peer's `receive()` resolves `null` once it has read what was sent. Pending
   * receives here resolve `null`, pending sends reject with `ERR_MEMFD_CHANNEL_CLOSED`; loans and views
   * are detached. Harmless when already closed.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#spare = undefined;
    this.#spareWindows.clear(); // detached with every window by release()
    leaked.unregister(this.#held);
    release(this.#held);
    this.#endLoan();
    this.#endView();
    this.#wakeWaiters();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  /** Messages until the end of the stream. Breaking out of the loop leaves the channel open. */
  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    for (;;) {
      const m = await this.receive();
      if (m === null) return;
      yield m;
    }
  }

  get [Symbol.toStringTag](): string {
    return 'Channel';
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    if (this.#closed) return `Channel { end: '${this.end}', closed: true }`;
    return `Channel { end: '${this.end}', fd: ${this.fd}, size: ${this.#cap}, peerClosed: ${this.peerClosed} }`;
  }

  // ---- checks ----

  #assertOpen(method: string): void {
    if (this.#closed) throw stateError('ERR_MEMFD_CHANNEL_CLOSED', `Channel was closed before ${method}()`);
    if (this.#failure) throw this.#failure;
  }

  #assertCanSend(len: number, method: string, mayWaitForLoan: boolean): void {
    if (len > this.#cap - FRAME_HEADER) {
      throw outOfRange('data.byteLength', `<= ${this.#cap - FRAME_HEADER} (the ring size minus framing)`, len);
    }
    this.#assertOpen(method);
    if (this.#loan && !mayWaitForLoan) {
      throw stateError('ERR_MEMFD_CHANNEL_BUSY', `${method}() while a reserved loan is neither committed nor aborted`);
    }
    // The peer's closed flag shares a cache line with its sleep flags, which every publish reads anyway.
    // Atomics.load, not #peerWord: a caller may poll this (a trySend() behind a queued send(), trySendMany([]))
    // with nothing in between that writes shared memory.
    if (this.#peerClosed || Atomics.load(this.#i32, this.#iPeerClosed) !== 0) {
      this.#peerClosed = true;
      throw stateError('ERR_MEMFD_CHANNEL_CLOSED', `${method}(): the peer ${this.#peerDead ? 'exited' : 'closed its end'}`);
    }
  }

  #assertCanReceive(method: string): void {
    this.#assertOpen(method);
    if (this.#view) throw stateError('ERR_MEMFD_CHANNEL_BUSY', `${method}() before the previous view was released`);
  }

  #fail(error: Error): never {
    if (!this.#failure) {
      this.#failure = error;
      this.#wakeWaiters();
    }
    throw error;
  }

  // ---- writing ----

  /** Room for `n` more bytes at the tail, re-reading the reader's head only when the cached one says no. */
  #room(n: number, tail = this.#txTail): boolean {
    const cap = this.#cap;
    if (cap - ((tail - this.#txHeadSeen) >>> 0) >= n) return true;
    const head = Atomics.load(this.#i32, this.#iTxHead) >>> 0;
    const used = (tail - head) >>> 0;
    if (used > cap || (head & 7) !== 0) this.#fail(corrupt(`the reader's head ${head} is not within the ring (tail ${tail})`));
    this.#txHeadSeen = head;
    return cap - used >= n;
  }

  /** The ring offset where a frame of `len` bytes goes, after padding to the ring start when needed; -1: no room. */
  #claim(len: number): number {
    const need = frameBytes(len);
    let index = this.#txTail & this.#mask;
    const contiguous = this.#cap - index;
    if (need > contiguous) {
      // Frames never wrap: pad to the end of the ring (published at once, so the reader frees the space).
      if (!this.#room(contiguous)) return -1;
      this.#txWords[index >> 2] = PAD;
      this.#publishTail((this.#txTail + contiguous) >>> 0);
      index = 0;
    }
    if (!this.#room(need)) return -1;
    return index;
  }

  /**
   * Both ends take part in membarrier barriers: a plain store publishes. On x86-64 `Atomics.store` is a locked
   * exchange that waits for the cache line the reader keeps reading, most of a small message's cost.
   * What the plain store relies on, deliberately: V8 emits a typed-array store where the code has it, after
   * the frame's length word and the `set`/`write` call that copied the payload (it does not move stores
   * across calls or other stores); x86-64 makes stores visible in program order; and libc's memcpy ends its
   * non-temporal stores with an SFENCE (glibc does; musl makes none). The one reordering left, our later
   * load of the sleep flags passing the store, is what the sleeper's barrier covers (#fenceAndLookAgain).
   */
  #publishesWithoutFence(): boolean {
    return this.#membarrier && (this.#peerWord(this.#iPeerFlags) & FLAG_MEMBARRIER) !== 0;
  }

  /**
   * A word of the peer's header block (sleep flags, flags) that each publish reads once, next to the store
   * of an index. On x86-64 a plain load (PLAIN_PEER_LOADS): two `Atomics.load` builtin calls fewer per
   * publish, about 8% more 64 B messages per second one per call (docs/performance.md, Channel). Words
   * that a loop may poll with nothing else in between stay `Atomics.load`: the indices, and the closed flag.
   * What a plain load relies on besides the hardware order (at #publishesWithoutFence; the fenced publish
   * is a locked exchange, which no later load passes): that the JIT reads the word where the code does.
   * The JavaScript memory model would let it reuse an earlier plain load of a word nothing in between
   * wrote; V8 does not for typed-array elements (TurboFan's load elimination does not track them, and
   * Turboshaft marks them not load-eliminable, since views of different types can alias one buffer), in
   * every V8 of the supported Node range. The plain-store publish relies on V8 the same way.
   */
  #peerWord(index: number): number {
    return PLAIN_PEER_LOADS ? this.#i32[index]! : Atomics.load(this.#i32, index);
  }

  #publishTail(tail: number): void {
    this.#txTail = tail;
    if (this.#publishesWithoutFence()) this.#i32[this.#iTxTail] = tail | 0;
    else Atomics.store(this.#i32, this.#iTxTail, tail | 0);
    if ((this.#peerWord(this.#iPeerSleep) & SLEEP_DATA) !== 0) native.channelEndRing(this.#held.end);
  }

  #trySend(m: Uint8Array | string, len: number): boolean {
    const index = this.#claim(len);
    if (index < 0) {
      this.#peerGoneNow(); // a full ring is when a closed peer matters to a writer
      return false;
    }
    this.#txWords[index >> 2] = len;
    if (typeof m === 'string') this.#txBytes.write(m, index + FRAME_HEADER, len, 'utf8');
    else this.#txBytes.set(m, index + FRAME_HEADER);
    this.#publishTail((this.#txTail + frameBytes(len)) >>> 0);
    return true;
  }

  /**
   * Checks every message of a batch before any is written. Returns the messages as Uint8Arrays or strings
   * (the caller's array itself when all are Uint8Arrays: no allocation on the fast path) and leaves the
   * UTF-8 lengths of strings in #stringLengths (undefined when there is no string).
   */
  #encodeMany(messages: readonly ChannelData[]): readonly (Uint8Array | string)[] {
    if (!Array.isArray(messages)) throw invalidArgType('messages', 'an instance of Array', messages);
    const max = this.#cap - FRAME_HEADER;
    const n = messages.length;
    let encoded: (Uint8Array | string)[] | undefined, lengths: number[] | undefined;
    for (let i = 0; i < n; i++) {
      const data = messages[i];
      let len: number;
      if (data instanceof Uint8Array && encoded === undefined) {
        len = data.length;
      } else {
        encoded ??= (messages as Uint8Array[]).slice(0, i);
        const m = enc(data, `messages[${i}]`);
        encoded.push(m);
        if (typeof m === 'string') {
          len = Buffer.byteLength(m, 'utf8');
          (lengths ??= new Array<number>(n))[i] = len;
        } else {
          len = m.length;
        }
      }
      if (len > max) throw outOfRange(`messages[${i}].byteLength`, `<= ${max} (the ring size minus framing)`, len);
    }
    this.#stringLengths = lengths;
    return encoded ?? (messages as readonly Uint8Array[]);
  }

  /** Writes messages[from..] while they fit, publishes the tail once; returns how many were written. */
  #trySendMany(messages: readonly (Uint8Array | string)[], lengths: readonly number[] | undefined, from: number): number {
    const cap = this.#cap, mask = this.#mask, words = this.#txWords, bytes = this.#txBytes;
    const start = this.#txTail, n = messages.length;
    let tail = start, i = from;
    for (; i < n; i++) {
      const m = messages[i]!;
      const len = typeof m === 'string' ? lengths![i]! : m.length, need = frameBytes(len);
      let index = tail & mask;
      const contiguous = cap - index;
      if (need > contiguous) {
        // Frames never wrap: pad to the end of the ring (published with the rest, or alone if nothing fits).
        if (!this.#room(contiguous, tail)) break;
        words[index >> 2] = PAD;
        tail = (tail + contiguous) >>> 0;
        index = 0;
      }
      if (!this.#room(need, tail)) break;
      words[index >> 2] = len;
      if (typeof m === 'string') bytes.write(m, index + FRAME_HEADER, len, 'utf8');
      else bytes.set(m, index + FRAME_HEADER);
      tail = (tail + need) >>> 0;
    }
    if (tail !== start) this.#publishTail(tail);
    if (i < n) this.#peerGoneNow(); // a full ring is when a closed peer matters to a writer
    return i - from;
  }

  #tryReserve(length: number): ChannelLoan | undefined {
    const index = this.#claim(length);
    if (index < 0) {
      this.#peerGoneNow(); // a full ring is when a closed peer matters to a writer
      return undefined;
    }
    const loan = new ChannelLoan(this, this.#openWindow(this.#txOffset + index + FRAME_HEADER, length), length);
    this.#loan = loan;
    this.#loanFrame = index;
    return loan;
  }

  /**
   * `length` bytes at `offset` of the mapping as a view over a window of their own (an external ArrayBuffer
   * that is the message alone: what users do with `.buffer` stays within the message), which #endWindow
   * detaches when the loan or view ends. A spare window of that offset and length is taken when there is one.
   */
  #openWindow(offset: number, length: number): Uint8Array {
    if (length === 0) return new Uint8Array(0);
    const spare = this.#spareWindows.get(offset);
    if (spare !== undefined) {
      this.#spareWindows.delete(offset);
      if (spare.byteLength === length) {
        this.#spareMisses = 0;
        return new Uint8Array(spare);
      }
      this.#dropSpare(spare);
    }
    if (this.#spareWindows.size >= SPARE_WINDOWS_MAX && ++this.#spareMisses >= SPARE_MISSES_BEFORE_RESET) {
      for (const w of this.#spareWindows.values()) this.#dropSpare(w);
      this.#spareWindows.clear();
      this.#spareMisses = 0;
    }
    let window = native.channelWindow(this.#record, offset, length);
    if (transferMoves !== false) {
      // Users get a moved window, never the one Node tracks for its finalizer: at exit Node detaches that
      // one without a key, and a detach key a user gave it (markAsUntransferable) would abort the process.
      // A transfer that fails on a window nobody has seen, or copies it, is a polyfill's: not used again.
      const created = window;
      try {
        window = apply(transferBuffer!, created, []) as ArrayBuffer;
        transferMoves ??= this.#movedInPlace(created, window, offset, length);
      } catch {
        transferMoves = false;
      }
      if (transferMoves === false) {
        if (created.byteLength !== 0) native.channelDetach(created);
        window = native.channelWindow(this.#record, offset, length);
      }
    }
    this.#held.windows.add(window);
    return new Uint8Array(window);
  }

  /**
   * Ends the window of a loan or view at mapping offset `offset`, before its frame is published or given
   * back: detached, with every view of it, so that its bytes can never be seen or written through it again.
   * Where V8's transfer exists the memory moves to a spare window that only this end holds.
   */
  #endWindow(buffer: ArrayBuffer, offset: number): void {
    if (!this.#held.windows.delete(buffer)) return;
    // byteLength 0: the user detached it (transferred it away, say); there is nothing to move.
    if (transferMoves === false || buffer.byteLength === 0) {
      revokeWindow(buffer);
      return;
    }
    const moved = moveWindow(buffer);
    if (moved === undefined) return;
    // Held before anything else can throw, so that close() detaches it whatever happens next.
    this.#held.windows.add(moved);
    if (this.#spareWindows.size >= SPARE_WINDOWS_MAX) this.#dropSpare(moved);
    else this.#spareWindows.set(offset, moved);
  }

  /**
   * Whether `moved`, what the first transfer of the window `from` (`length` bytes at mapping offset
   * `offset`) returned, is that window's memory in a new ArrayBuffer with `from` detached, as V8's transfer
   * does: a shim may copy, or hand back `from` itself. The memory is probed with a write that is undone at
   * once: the frame is claimed but not published (loan) or not yet given back (view), so the peer is not
   * looking at it.
   */
  #movedInPlace(from: ArrayBuffer, moved: ArrayBuffer, offset: number, length: number): boolean {
    if (moved === from || from.byteLength !== 0 || !(moved instanceof ArrayBuffer) || moved.byteLength !== length) {
      return false;
    }
    const probe = new Uint8Array(moved, 0, 1);
    const was = probe[0]!;
    probe[0] = was ^ 0xff;
    const inPlace = this.#all[offset] === (was ^ 0xff);
    probe[0] = was;
    return inPlace;
  }

  /** Detaches a spare window that is no longer kept (never seen by a user, so it has no detach key). */
  #dropSpare(window: ArrayBuffer): void {
    this.#held.windows.delete(window);
    native.channelDetach(window);
  }

  #commit(loan: ChannelLoan, length: number): void {
    if (this.#loan !== loan) throw stateError('ERR_MEMFD_CHANNEL_CLOSED', 'The channel was closed before commit()');
    this.#endWindow(loan.buffer, this.#txOffset + this.#loanFrame + FRAME_HEADER);
    this.#txWords[this.#loanFrame >> 2] = length;
    this.#publishTail((this.#txTail + frameBytes(length)) >>> 0);
    this.#endLoan();
  }

  #abortLoan(loan: ChannelLoan): void {
    if (this.#loan !== loan) return;
    this.#endWindow(loan.buffer, this.#txOffset + this.#loanFrame + FRAME_HEADER);
    this.#endLoan();
  }

  // ---- reading ----

  /** True when nothing is waiting, re-reading the writer's tail only when the cached one says so. */
  #rxIsEmpty(): boolean {
    if (this.#rxHead !== this.#rxTailSeen) return false;
    const tail = Atomics.load(this.#i32, this.#iRxTail) >>> 0;
    if (((tail - this.#rxHead) >>> 0) > this.#cap || (tail & 7) !== 0) {
      this.#fail(corrupt(`the writer's tail ${tail} is not within the ring (head ${this.#rxHead})`));
    }
    this.#rxTailSeen = tail;
    return tail === this.#rxHead;
  }

  #peerGoneNow(): boolean {
    if (this.#peerClosed) return true;
    if (Atomics.load(this.#i32, this.#iPeerClosed) !== 0) this.#peerClosed = true;
    return this.#peerClosed;
  }

  /**
   * The ring offset of the next message's frame (padding skipped, checked against the ring and the tail),
   * undefined when none is waiting, null at the end of the stream.
   */
  #nextFrame(): number | null | undefined {
    for (;;) {
      // Closed or died: what it published before is visible after we saw that, so one more look decides.
      if (this.#rxIsEmpty() && !(this.#peerGoneNow() && !this.#rxIsEmpty())) {
        return this.#peerClosed ? null : undefined;
      }
      const head = this.#rxHead;
      const index = head & this.#mask;
      const available = (this.#rxTailSeen - head) >>> 0;
      const len = this.#rxWords[index >> 2]!;
      if (len === PAD) {
        const skip = this.#cap - index;
        if (skip > available) this.#fail(corrupt(`padding of ${skip} bytes at ${index} passes the tail`));
        this.#publishHead((head + skip) >>> 0);
        continue;
      }
      if (len > this.#cap - FRAME_HEADER || index + FRAME_HEADER + len > this.#cap || frameBytes(len) > available) {
        this.#fail(corrupt(`frame of ${len} bytes at ${index} (${available} bytes published)`));
      }
      return index;
    }
  }

  #publishHead(head: number): void {
    this.#rxHead = head;
    if (this.#publishesWithoutFence()) this.#i32[this.#iRxHead] = head | 0;
    else Atomics.store(this.#i32, this.#iRxHead, head | 0);
    if ((this.#peerWord(this.#iPeerSleep) & SLEEP_SPACE) !== 0) native.channelEndRing(this.#held.end);
  }

  #tryReceive(): Buffer | null | undefined {
    const index = this.#nextFrame();
    if (index === null || index === undefined) return index;
    const len = this.#rxWords[index >> 2]!;
    const start = this.#rxOffset + index + FRAME_HEADER;
    const out = copyOut(this.#all, start, len);
    this.#publishHead((this.#rxHead + frameBytes(len)) >>> 0);
    return out;
  }

  #tryReceiveView(): ChannelView | null | undefined {
    const index = this.#nextFrame();
    if (index === null || index === undefined) return index;
    const len = this.#rxWords[index >> 2]!;
    const view = new ChannelView(this, this.#openWindow(this.#rxOffset + index + FRAME_HEADER, len), len);
    this.#view = view;
    this.#viewFrame = frameBytes(len);
    return view;
  }

  /**
   * A batch of the frames from the next one up to `max`, the tail or the end of the ring (a run is
   * contiguous: one copy). Every length is checked as in #nextFrame and kept from that one read; the
   * batch never re-reads shared memory. A padding frame ends the run and is consumed with it.
   */
  #tryReceiveMany(max: number): ChannelBatch | null | undefined {
    const first = this.#nextFrame();
    if (first === null || first === undefined) return first;
    const cap = this.#cap, words = this.#rxWords;
    const available = (this.#rxTailSeen - this.#rxHead) >>> 0;
    const run = Math.min(available, cap - first);
    let scratch = this.#scratch;
    let pos = 0, count = 0, skip = 0;
    while (count < max && pos < run) {
      const index = first + pos;
      const len = words[index >> 2]!;
      if (len === PAD) {
        skip = cap - index;
        if (skip > available - pos) this.#fail(corrupt(`padding of ${skip} bytes at ${index} passes the tail`));
        break;
      }
      if (len > cap - FRAME_HEADER || index + FRAME_HEADER + len > cap || frameBytes(len) > available - pos) {
        this.#fail(corrupt(`frame of ${len} bytes at ${index} (${available - pos} bytes published)`));
      }
      if (2 * count + 2 > scratch.length) {
        const grown = new Uint32Array(scratch.length * 2);
        grown.set(scratch);
        this.#scratch = scratch = grown;
      }
      scratch[2 * count] = pos + FRAME_HEADER;
      scratch[2 * count + 1] = len;
      count++;
      pos += frameBytes(len);
    }
    // The batch's own ArrayBuffer (so that release() can detach it): a released batch's, or a new one
    // rounded up to a power of two so that it can serve later runs of other lengths.
    let memory = this.#spare;
    if (memory !== undefined && memory.byteLength >= pos) this.#spare = undefined;
    else memory = Buffer.allocUnsafeSlow(pos <= 1024 ? 1024 : 2 ** Math.ceil(Math.log2(pos))).buffer as ArrayBuffer;
    const copy = Buffer.from(memory, 0, pos);
    const start = this.#rxOffset + first;
    copy.set(this.#all.subarray(start, start + pos));
    this.#publishHead((this.#rxHead + pos + skip) >>> 0);
    return new ChannelBatch(this, copy, scratch.slice(0, 2 * count), count);
  }

  #releaseView(view: ChannelView): void {
    if (this.#view !== view) return; // closed meanwhile: the window is already detached
    // The head stays on the view's frame while it is open (every other receive waits or throws BUSY).
    this.#endWindow(view.buffer, this.#rxOffset + (this.#rxHead & this.#mask) + FRAME_HEADER);
    this.#publishHead((this.#rxHead + this.#viewFrame) >>> 0);
    this.#endView();
  }

  // ---- waiting ----

  #ready(bits: number): boolean {
    if (this.#closed || this.#failure || this.#peerClosed) return true;
    if (Atomics.load(this.#i32, this.#iPeerClosed) !== 0) return true;
    if ((bits & SLEEP_DATA) !== 0 && (Atomics.load(this.#i32, this.#iRxTail) >>> 0) !== this.#rxHead) return true;
    if ((bits & SLEEP_SPACE) !== 0 && (Atomics.load(this.#i32, this.#iTxHead) >>> 0) !== this.#txHeadSeen) return true;
    return false;
  }

  /** The spin stage of a wait (`spinMicros`): true as soon as something this end waits for may have happened. */
  #spin(bits: number): boolean {
    const start = performance.now();
    const until = start + this.#spinMs, yieldFrom = start + YIELD_AFTER_MS;
    let now = start;
    do {
      for (let i = 0; i < 64; i++) if (this.#ready(bits)) return true;
      // After a while, give the CPU away between looks: when the peer is waiting for this core (more
      // runnable threads than cores), spinning on would only delay it by a time slice.
      if (now > yieldFrom) native.channelYield();
      now = performance.now();
    } while (now < until);
    return false;
  }

  /**
   * Resolves once something this end waits for (`bits`) may have happened; undefined when the spin found it
   * (`spun`: the caller spun already, go straight to sleep). Callers re-check.
   */
  #wait(bits: number, spun = false): Promise<void> | undefined {
    if (!spun && this.#spinMs > 0 && this.#spin(bits)) return undefined;
    // The sleep protocol: flag first, then read the bell, then look again. A writer that publishes after
    // our look sees the flag and rings; if it rang between the bell read and the arm, the thread sees a
    // changed bell and reports at once.
    Atomics.or(this.#i32, this.#iMySleep, bits);
    const bell = Atomics.load(this.#i32, this.#iMyBell) >>> 0;
    this.#startWatching();
    if (this.#ready(bits)) {
      if (this.#waiters.length === 0) Atomics.store(this.#i32, this.#iMySleep, 0);
      return undefined;
    }
    return new Promise<void>((resolve) => {
      this.#waiters.push({ bits, resolve });
      if (this.#lateFence === undefined && this.#publishesWithoutFence()) {
        this.#lateFence = setTimeout(() => this.#fenceAndLookAgain(), LATE_FENCE_MS).unref();
      }
      // Already armed: keep the older expected value. Re-arming with the bell read now would swallow a
      // ring that arrived for an earlier waiter since it armed (the thread would wait for the new value).
      if (!this.#armed) {
        native.channelEndArm(this.#held.end, bell);
        this.#armed = true;
      }
    });
  }

  /**
   * The heavy half of the handshake with a peer that publishes without a fence (both ends set
   * FLAG_MEMBARRIER), run LATE_FENCE_MS into a sleep. The look before the sleep may have missed a publish
   * that was still in the peer's store buffer while the peer's load of our sleep flag passed it (x86-64
   * reorders a load before an earlier store): then nobody rings. Once membarrier(GLOBAL_EXPEDITED)
   * returns, every CPU running the peer has executed a full fence, so this look sees every publish the peer
   * made before it, and every later publish sees our flag and rings.
   *
   * Why late and not before the sleep: while the peer runs, the barrier interrupts its CPU and waits for it,
   * 50 µs on this project's VM (1 µs when the peer sleeps), and most sleeps end sooner, rung by the next
   * publish. A missed publish thus waits at most LATE_FENCE_MS, and it takes the two ends meeting within
   * nanoseconds (test/channel-fence.test.mjs). If the barrier fails (ENOMEM), this end clears its flag, so
   * that the peer fences its publishes again, and its waiters look again LATE_FENCE_MS later.
   */
  #fenceAndLookAgain(): void {
    this.#lateFence = undefined;
    if (this.#closed || this.#waiters.length === 0) return;
    if (native.channelMembarrier() !== 0) {
      this.#membarrier = false;
      Atomics.store(this.#i32, this.#iMyFlags, 0);
      // A publish that loaded our flag before we cleared it is visible long before then: the waiters look
      // again in a while, and from then on the peer fences its publishes.
      this.#lateFence = setTimeout(() => this.#wakeWaiters(), LATE_FENCE_MS).unref();
      return;
    }
    let bits = 0;
    for (const w of this.#waiters) bits |= w.bits;
    if (this.#ready(bits)) this.#wakeWaiters();
  }

  #wakeWaiters(): void {
    if (this.#lateFence !== undefined) {
      clearTimeout(this.#lateFence);
      this.#lateFence = undefined;
    }
    const waiters = this.#waiters;
    if (waiters.length === 0) return;
    this.#waiters = [];
    if (!this.#closed) {
      Atomics.store(this.#i32, this.#iMySleep, 0);
      if (this.#armed) native.channelEndDisarm(this.#held.end);
    }
    this.#armed = false;
    for (const w of waiters) w.resolve();
  }

  #onEvent(event: number): void {
    // A report about a wait this end already ended (native/channel.c): the thread is armed for the wait
    // that replaced it, and clearing #armed now would leave it armed with nobody to disarm it.
    if (this.#closed || event === EVENT_BELL_SUPERSEDED) return;
    if (event === EVENT_PEER_EXIT) {
      this.#peerDead = true;
      this.#peerClosed = true;
    } else if (event === EVENT_BELL) {
      this.#armed = false; // the thread disarms itself when it reports
    }
    this.#startWatching();
    this.#wakeWaiters();
  }

  /** Watches the peer's process once its pid is known (end A learns it when end B claims). */
  #startWatching(): void {
    if (this.#watching || !this.#watchPeer || this.#closed) return;
    const pid = Atomics.load(this.#i32, this.#iPeerPid);
    if (pid <= 0) return;
    this.#watching = true;
    // Same process (Worker threads): the pid outlives both ends; a Worker's end is closed by its teardown.
    if (pid === process.pid) return;
    const err = native.channelEndWatchPid(this.#held.end, pid);
    if (err === ESRCH) {
      this.#peerDead = true;
      this.#peerClosed = true;
    }
  }
}
