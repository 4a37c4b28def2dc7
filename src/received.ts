/**
 * Who owns an fd that arrived over a socket.
 *
 * Every received fd is owned by the {@link Message} it arrived in (a native handle closes it when the
 * message is closed or garbage-collected). Adopting the number elsewhere (`MemFile.fromFd(msg.fds[0])`,
 * `UnixSocket.fromFd(...)`) must move that ownership, or the message would later close an fd that now
 * belongs to someone else (or, worse, a reused number). This registry maps a received fd number to the
 * message that owns it, so that adopters can claim the message's handle instead of creating a second owner.
 * Internal to the library (not exported from the package entry point).
 * @module
 */
import type { NativeHandle } from './binding.js';

/** Something that owns received fds (a Message). */
export interface ReceivedFdOwner {
  /** Gives up ownership of `fd` and returns its handle, or undefined if it no longer owns it. */
  releaseHandle(fd: number): NativeHandle | undefined;
}

// Weak: the registry must not keep a dropped message (and so its fds) alive. A number maps to at most one
// live owner, because the kernel never hands out a number that is still open.
// No FinalizationRegistry cleans up after messages that were garbage-collected without close(): their entry
// is a dead WeakRef (deref() gives undefined, which every lookup treats as "not received"), and it is
// replaced when the kernel hands the number out again, so the map never holds more entries than fd numbers
// in use at some point. Registering every received fd with a FinalizationRegistry cost ~10% of the fd
// passing rate (bench/run.mjs, case 4).
const owners = new Map<number, WeakRef<ReceivedFdOwner>>();

/** @internal */
export function registerReceivedFd(fd: number, owner: ReceivedFdOwner): void {
  owners.set(fd, new WeakRef(owner));
}

/** @internal the owner released or closed `fd` itself. */
export function forgetReceivedFd(fd: number, owner: ReceivedFdOwner): void {
  if (owners.get(fd)?.deref() === owner) owners.delete(fd);
}

/**
 * @internal If `fd` is a received fd still owned by a message, detach it from the message and return the
 * handle that owns it (the caller becomes the owner). Otherwise undefined.
 */
export function claimReceivedFd(fd: number): NativeHandle | undefined {
  const owner = owners.get(fd)?.deref();
  owners.delete(fd);
  return owner?.releaseHandle(fd);
}

/** @internal The handle that owns received `fd`, without taking it (the message keeps it). */
export function peekReceivedHandle(fd: number): NativeHandle | undefined {
  const owner = owners.get(fd)?.deref() as (ReceivedFdOwner & { peekHandle?(fd: number): NativeHandle | undefined }) | undefined;
  return owner?.peekHandle?.(fd);
}
