/**
 * Process warnings for mistakes the library survived: a resource left to the garbage collector, or an fd
 * number that was closed behind the library's back. They never throw: the program goes on, and the
 * warning says what to do instead (as Node does for a FileHandle closed on garbage collection).
 *
 * Each warning has `type` 'MemfdWarning' and a stable `code`; each (code, kind) is reported once per
 * thread, so a loop that repeats the mistake does not flood stderr.
 * @module
 */

/** A MemFile, Mapping, Message or socket was closed by the garbage collector. */
export const CLOSED_BY_GC = 'MEMFD_CLOSED_BY_GC';
/** A number the library handed out no longer referred to its file when the library came to close it. */
export const FD_NOT_OURS = 'MEMFD_FD_NOT_OURS';

/** A loan's or view's buffer could not be detached at its end (markAsUntransferable() made it undetachable). */
export const WINDOW_KEPT = 'MEMFD_WINDOW_KEPT';

/** Kinds as native/handle.h (fd_kind) and native/common.h (NOTICE_KIND_MAPPING) number them. */
export const ResourceKind = { File: 0, Message: 1, Socket: 2, Internal: 3, Mapping: 4, Channel: 5 } as const;
/** Notices as native/common.h (notice_what) numbers them. */
const Notice = { GcClosed: 0, NotOurs: 1 } as const;

const KIND_NAMES: Record<number, string> = {
  [ResourceKind.File]: 'MemFile',
  [ResourceKind.Message]: 'Message',
  [ResourceKind.Socket]: 'UnixSocket or UnixServer',
  [ResourceKind.Mapping]: 'Mapping',
  [ResourceKind.Channel]: 'Channel', // reported from JS only (src/channel.ts)
};

const HOW_TO_CLOSE: Record<number, string> = {
  [ResourceKind.File]: 'call file.close() (or use a `using` declaration, try/finally in JavaScript) when you are done with it',
  [ResourceKind.Message]: 'adopt each received fd (MemFile.fromFd(msg.fds[i])), close it yourself (fs.closeSync), or call msg.close()',
  [ResourceKind.Socket]: 'call close() when you are done with it',
  [ResourceKind.Mapping]: 'call mapping.unmap() when you are done with it',
  [ResourceKind.Channel]: 'call ch.close() when you are done with it, so that the peer sees the end of the stream when you mean it',
};

const reported = new Set<string>();

function emitOnce(code: string, kind: number, message: string): void {
  const key = `${code}:${kind}`;
  if (reported.has(key)) return;
  reported.add(key);
  process.emitWarning(message, { type: 'MemfdWarning', code, detail: 'memfd reports this once per kind and thread.' });
}

/** A resource of `kind` was closed by the garbage collector (fd shown when it had one, and the name of a file). */
export function warnClosedByGc(kind: number, fd: number, fileName?: string): void {
  const name = KIND_NAMES[kind];
  if (name === undefined) return;
  const what = kind === ResourceKind.Mapping ? 'unmapped' : 'closed';
  const named = fileName === undefined ? '' : ` named ${JSON.stringify(fileName)}`;
  const which = fd >= 0 ? ` (fd ${fd})` : '';
  emitOnce(CLOSED_BY_GC, kind, `A ${name}${named} was ${what} by the garbage collector${which}. That is a leak until ` +
    `the collector runs: ${HOW_TO_CLOSE[kind]}.`);
}

/** fd `fd`, handed out by a resource of `kind`, no longer referred to that resource's file at close. */
export function warnFdNotOurs(kind: number, fd: number): void {
  const name = KIND_NAMES[kind];
  if (name === undefined || kind === ResourceKind.Message) return;
  emitOnce(FD_NOT_OURS, kind, `fd ${fd} of a ${name} no longer referred to its file when the ${name} was closed ` +
    '(it was closed by other code, such as fs.closeSync, and maybe reused); memfd left that number alone. ' +
    'Close the object, not its fd; to keep the number for yourself, use releaseFd() on a MemFile.');
}

/** A Channel loan or view ended with its buffer still attached: it goes on showing the ring. */
export function warnWindowKept(): void {
  emitOnce(WINDOW_KEPT, ResourceKind.Channel, 'A Channel loan or view ended, but its ArrayBuffer could not be ' +
    'detached (markAsUntransferable() makes a buffer undetachable): it goes on showing the ring, which the ' +
    'peer reuses. Do not mark the buffers of loans and views; copy what you need to keep.');
}

/** @internal called on the event loop for notices that native code posted where JS could not run. */
export function warningFromNative(what: number, kind: number, fd: number): void {
  if (what === Notice.GcClosed) warnClosedByGc(kind, fd);
  else if (what === Notice.NotOurs) warnFdNotOurs(kind, fd);
}
