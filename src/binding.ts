/**
 * Loads the native addon and describes its functions. Internal: users never see the binding.
 * @module
 */
import { systemErrorFromNative } from './errors.js';
import { loadAddon } from './loader.js';

/** An owned fd behind a type-tagged external (native/handle.c). */
export type NativeHandle = { readonly __brand: 'memfd.NativeHandle' };
/** A mapping record behind a type-tagged external (native/mapping.c). */
export type NativeMapping = { readonly __brand: 'memfd.NativeMapping' };
/** A Unix socket behind a type-tagged external (native/socket.c). */
export type NativeSocket = { readonly __brand: 'memfd.NativeSocket' };

type Bytes = ArrayBufferView | ArrayBuffer | SharedArrayBuffer;

export interface Binding {
  setErrorFactory(factory: (errno: number, syscall: string) => Error): void;
  // handle.c
  handleFd(h: NativeHandle): number;
  handleClose(h: NativeHandle): boolean;
  handleAdopt(fd: number): NativeHandle;
  closeFd(fd: number): void;
  /** native/socket.c: the handle gives up its fd without closing it (the caller owns it then). */
  handleDetach(h: NativeHandle): number;
  // memfd.c
  memfdCreate(name: string, flags: number): NativeHandle;
  memfdSecret(flags: number): NativeHandle;
  getSeals(h: NativeHandle): number;
  /** Only with the fd of a MemFile checked open in the same synchronous call (see native/memfd.c). */
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
  setCloexec(h: NativeHandle, on: boolean): void;
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
  /** undefined when the thread is being terminated. */
  futexWait(m: NativeMapping, view: Int32Array, index: number, expected: number, timeoutMs: number):
    'ok' | 'not-equal' | 'timed-out' | undefined;
  futexWake(m: NativeMapping, view: Int32Array, index: number, count: number): number;
  futexWaitAsync(m: NativeMapping, view: Int32Array, index: number, expected: number, timeoutMs: number):
    Promise<'ok' | 'not-equal' | 'timed-out' | 'unmapped'>;
  // mapping.c, futex.c, socket.c add their functions here.
  [name: string]: unknown;
}

export const binding = loadAddon() as Binding;
binding.setErrorFactory(systemErrorFromNative);
