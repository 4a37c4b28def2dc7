/**
 * Loads the native addon and describes its functions. Internal: users never see the binding.
 * @module
 */
import { systemErrorFromNative } from './errors.js';
import { loadAddon } from './loader.js';
import { warningFromNative } from './warnings.js';

/**
 * An owned fd (native/handle.c): a MemFile's is a negative number naming a slot and its generation (stale
 * once closed); the library's internal copies are type-tagged externals.
 */
export type NativeHandle = (number | object) & { readonly __brand: 'memfd.NativeHandle' };
/** A mapping record behind a type-tagged external (native/mapping.c). */
export type NativeMapping = { readonly __brand: 'memfd.NativeMapping' };
/** A Unix socket behind a type-tagged external (native/socket.c). */
export type NativeSocket = { readonly __brand: 'memfd.NativeSocket' };
/** One end of a Channel: waiter thread, peer pidfd (native/channel.c). */
export type NativeChannelEnd = { readonly __brand: 'memfd.NativeChannelEnd' };
/** The received fds of one receive batch behind one type-tagged external (native/handle.c, fd_batch). */
export type NativeBatch = { readonly __brand: 'memfd.NativeBatch' };

type Bytes = ArrayBufferView | ArrayBuffer | SharedArrayBuffer;

/** What socketRecvBatch returns: null (EAGAIN), 0 (end of stream), or the messages of one batch: one Buffer
 * they were all received into, their layout (meta: [count, then per message offset, length, RECV_* flags,
 * fds that arrived, fds delivered; then every delivered fd number]) and the record owning the delivered fds. */
export type NativeBatchReceived = null | 0 | [data: Buffer, meta: Int32Array, batch: NativeBatch | null];

/** Every function of the native addon, grouped by the file that implements it. */
export interface Binding {
  // addon.c
  setErrorFactory(factory: (errno: number, syscall: string) => Error): void;
  // notice.c
  setNoticeHandler(handler: (what: number, kind: number, fd: number) => void): void;
  // handle.c
  /** The number users see: a duplicate made on first use (closing it by hand cannot hurt the handle). */
  handleFd(h: NativeHandle): number;
  /** The private fd the handle works on; only for synchronous fast paths, never shown to users. */
  handleOwnFd(h: NativeHandle): number;
  /** -1 already closed; -2 closed; n >= 0 closed, but the shown number n was no longer ours (left alone). */
  handleClose(h: NativeHandle): number;
  handleAdopt(fd: number): NativeHandle;
  /** The handle gives up ownership without closing; the caller owns the returned number. */
  handleDetach(h: NativeHandle): number;
  handlePin(h: NativeHandle): void;
  /**
   * The MemFile owning a number handle was collected: close what it still owns (no-op when stale). Returns
   * the number its MEMFD_CLOSED_BY_GC notice names (the handed-out fd if any), or -1 when nothing was open.
   */
  handleRelease(h: NativeHandle): number;
  handleUnpin(h: NativeHandle): void;
  dupFd(fd: number): NativeHandle;
  fdOwned(fd: number): boolean;
  /** Forgets fd `index` of a batch and returns it (the caller owns it), or -1 when already taken/adopted/closed. */
  batchTake(b: NativeBatch, index: number): number;
  /** Closes the untouched fds index..index+count of a batch (after the identity check). */
  batchClose(b: NativeBatch, index: number, count: number): void;
  /** The fds index..index+count are handed to JS: record their identity (fstat) before anyone can close them. */
  batchExpose(b: NativeBatch, index: number, count: number): void;
  /** RLIMIT_NOFILE: [soft, hard], Infinity when unlimited. */
  fdLimit(): [soft: number, hard: number];
  // memfd.c
  memfdCreate(name: string, flags: number): NativeHandle;
  memfdSecret(flags: number): NativeHandle;
  getSeals(h: NativeHandle): number;
  /** Only with the private fd of a MemFile checked open in the same synchronous call (see native/memfd.c). */
  getSealsFd(fd: number): number;
  addSeals(h: NativeHandle, seals: number): void;
  truncate(h: NativeHandle, size: number): void;
  allocate(h: NativeHandle, offset: number, length: number, mode: number): void;
  size(h: NativeHandle): number;
  fstat(h: NativeHandle, out: Float64Array): void;
  fchmod(h: NativeHandle, mode: number): void;
  identify(fd: number): [magic: number, link: string | null, seals: number, mode: number, accessMode: number];
  reopen(h: NativeHandle, flags: number): NativeHandle;
  dup(h: NativeHandle, cloexec: boolean): NativeHandle;
  fdFlags(fd: number): [fdFlags: number, statusFlags: number];
  pageSize(): number;
  // io.c
  writeSync(h: NativeHandle, data: Bytes, offset: number, length: number, position: number): number;
  readSync(h: NativeHandle, data: Bytes, offset: number, length: number, position: number): number;
  writeAsync(h: NativeHandle, data: Bytes, offset: number, length: number, position: number): Promise<number>;
  readAsync(h: NativeHandle, length: number, position: number): Promise<Buffer>;
  // mapping.c
  mmap(h: NativeHandle, offset: number, length: number, granule: number, options: number): [NativeMapping, ArrayBuffer];
  unmap(m: NativeMapping): 0 | 1 | 2;
  msync(m: NativeMapping, flags: number, offset: number, length: number): void;
  madvise(m: NativeMapping, advice: number, offset: number, length: number): void;
  mlock(m: NativeMapping, lock: boolean, offset: number, length: number): void;
  mappingInfo(m: NativeMapping): [mapped: boolean, address: number, mappedBytes: number];
  /** Placeholders of unmapped ranges still held by the process-wide quarantine (diagnostics, tests). */
  mappingQuarantine(): [entries: number, bytes: number];
  // futex.c
  /** The no-op JS function a synchronous futexWait calls between slices to notice Worker termination. */
  setFutexPoll(poll: () => void): void;
  /** undefined when the thread is being terminated. */
  futexWait(m: NativeMapping, view: Int32Array, index: number, expected: number, timeoutMs: number):
    'ok' | 'not-equal' | 'timed-out' | undefined;
  futexWake(m: NativeMapping, view: Int32Array, index: number, count: number): number;
  futexWaitAsync(m: NativeMapping, view: Int32Array, index: number, expected: number, timeoutMs: number):
    Promise<'ok' | 'not-equal' | 'timed-out' | 'unmapped'>;
  // socket.c
  /** fn is called with `this` = the target object attached to the socket whose fd became ready. */
  socketSetDispatcher(fn: (this: object, events: number) => void): void;
  socketPair(type: number): [NativeSocket, NativeSocket];
  socketConnect(type: number, address: Buffer): [NativeSocket, boolean];
  socketError(s: NativeSocket): number;
  socketListen(type: number, address: Buffer, backlog: number): NativeSocket;
  socketAccept(s: NativeSocket): NativeSocket | null;
  socketInspect(fd: number): [type: number, listening: boolean];
  socketAdopt(fd: number, type: number): NativeSocket;
  socketAttach(s: NativeSocket, target: object): void;
  socketPoll(s: NativeSocket, events: number): void;
  socketClose(s: NativeSocket): boolean;
  /** The number users see: a duplicate of the polled fd made on first use (or the adopted fd). */
  socketFd(s: NativeSocket): number;
  socketShutdown(s: NativeSocket, how: number): void;
  socketPeerCred(s: NativeSocket): [pid: number, uid: number, gid: number];
  socketSetBufferSize(s: NativeSocket, which: number, bytes: number): number;
  socketSend(s: NativeSocket, data: ArrayBufferView | ArrayBuffer, offset: number, length: number,
    fds: ReadonlyArray<number | NativeHandle> | null): number;
  /**
   * Sends staged messages count..: meta holds [offset, length, first handle, fd count] per message, the
   * handles are pinned MemFile handles. Returns k >= 0 messages accepted from `first` (their handles are
   * unpinned; a cut stream message has its meta advanced and its fds unpinned), -1 for EAGAIN on the first
   * (nothing sent); throws the first one's errno.
   */
  socketSendBatch(s: NativeSocket, bytes: Uint8Array, meta: Int32Array, handles: readonly NativeHandle[] | null,
    first: number, count: number): number;
  // pidfd.c: another process's fd, read through a pidfd_getfd copy that is closed before the call returns.
  /**
   * Seals (or -errno when F_GET_SEALS refuses, e.g. EINVAL for secretmem), fstat fields and fstatfs magic
   * (or -errno) of fd `fd` of process `pid`. Throws the errno of pidfd_open/pidfd_getfd (ESRCH, EPERM, EBADF,
   * ENOSYS before Linux 5.6).
   */
  peerFdInfo(pid: number, fd: number): [sealsOrNegErrno: number, dev: number, ino: number, mode: number,
    size: number, blocks: number, uid: number, gid: number, magicOrNegErrno: number];
  // channel.c (src/channel.ts): the waiter thread on this end's bell word, the peer's pidfd, zero-copy windows.
  /** Offsets are byte offsets of 32-bit words in the header page; the fd is a MemFile's, checked open. */
  channelEndOpen(fd: number, bellOffset: number, peerBellOffset: number, closedOffset: number,
    onEvent: (event: number) => void): NativeChannelEnd;
  /** onEvent(1) once the bell word differs from `expected`; keeps the loop alive until then. */
  channelEndArm(end: NativeChannelEnd, expected: number): void;
  channelEndDisarm(end: NativeChannelEnd): void;
  /** Adds one to the peer's bell word and FUTEX_WAKEs it. */
  channelEndRing(end: NativeChannelEnd): void;
  /** 0 when watching (onEvent(2) at the peer's exit), else the errno of pidfd_open. */
  channelEndWatchPid(end: NativeChannelEnd, pid: number): number;
  /** Marks this end closed in shared memory, rings the peer, stops the thread and the handles. Idempotent. */
  channelEndClose(end: NativeChannelEnd): void;
  /** An external ArrayBuffer over `length` (> 0) bytes of the mapping at `offset`. */
  channelWindow(m: NativeMapping, offset: number, length: number): ArrayBuffer;
  channelDetach(buffer: ArrayBuffer): void;
  /** sched_yield(2), for spinning waits. */
  channelYield(): void;
  /** membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED), once per process: 0 or -errno. */
  channelMembarrierRegister(): number;
  /** membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED): 0 or -errno. */
  channelMembarrier(): number;
  socketRecvBatch(s: NativeSocket, maxFds: number, maxMessages: number): NativeBatchReceived;
}

// A copy with fast properties: the addon's exports object (75 functions defined one by one) is in V8's
// dictionary mode, so every `binding.fn` load on a hot path was a hash lookup. No function uses `this`.
export const binding: Binding = { ...(loadAddon() as Binding) };
binding.setErrorFactory(systemErrorFromNative);
binding.setNoticeHandler(warningFromNative);
binding.setFutexPoll(function memfdFutexWaitPoll() {});
