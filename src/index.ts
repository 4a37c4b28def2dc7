/**
 * memfd: Linux anonymous memory files for Node.js.
 *
 * - {@link MemFile}: `memfd_create(2)` files with seals, positional I/O and streams.
 * - {@link Seal} / {@link Seals}: the kernel's seal bits and an immutable set of them.
 * - {@link capabilities}: what the running kernel supports.
 * - {@link Mapping}: a MemFile mapped into memory (`MemFile.map()`), and {@link futexWait} /
 *   {@link futexWake} / {@link futexWaitAsync} for cross-process wait/notify on it.
 * - {@link UnixSocket} / {@link UnixServer}: fd passing (`SCM_RIGHTS`).
 * - {@link SnapshotServer} / {@link SnapshotClient}: publish immutable versions of data to many processes.
 * - {@link Channel}: messages between processes or Workers over shared-memory rings (docs/channel.md).
 * @module
 */
export { MemFile, MemFileStats } from './memfile.js';
export type {
  CreateOptions, FromFdOptions, FromOptions, IoOptions, MemFileOrigin, ReadStreamOptions, WriteStreamOptions,
  AllocateOptions,
} from './memfile.js';
export { Seal, Seals, FROZEN } from './seals.js';
export type { SealName, SealsLike } from './seals.js';
export { capabilities, hugePagePools, HUGE_PAGE_SIZES } from './capabilities.js';
export type { Capabilities, HugePagePool, HugePageSize } from './capabilities.js';
export { SystemError, isSystemError } from './errors.js';
export type { BinaryLike } from './validate.js';
export { UnixSocket, UnixServer, Message, MAX_FDS_PER_MESSAGE } from './socket.js';
export type {
  SocketType, SocketOptions, ConnectOptions, FromFdSocketOptions, ReceiveOptions, ListenOptions, PeerCredentials,
  FdLike, SendData,
} from './socket.js';
export { Mapping } from './mapping.js';
export type { MapOptions, MapAdvice, MapRange, SyncOptions } from './mapping.js';
export { futexWait, futexWake, futexWaitAsync } from './futex.js';
export type { FutexWaitResult } from './futex.js';
export { SnapshotServer, SnapshotClient, Snapshot, SNAPSHOT_PROTOCOL, MAX_SNAPSHOT_META_BYTES } from './snapshot.js';
export type {
  SnapshotServerOptions, PublishOptions, SnapshotData, SnapshotClientInfo, SnapshotClientOptions,
} from './snapshot.js';
export { Channel, ChannelBatch, ChannelLoan, ChannelView } from './channel.js';
export type { ChannelOptions, ChannelFromFdOptions, ChannelData } from './channel.js';
