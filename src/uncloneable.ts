/**
 * Makes `postMessage(obj)` throw instead of delivering an empty object: the library's objects hold
 * native state (fds, mappings, poll handles) that a structured clone cannot carry, and a silent `{}` on
 * the other side is worse than an error. Internal to the library.
 * @module
 */
import * as workerThreads from 'node:worker_threads';

// Node >= 22.10 (and 23.0): postMessage then throws a DataCloneError. Older Node has no way to refuse.
const markAsUncloneable = (workerThreads as { markAsUncloneable?: (value: object) => void }).markAsUncloneable;

/** True where {@link markUncloneable} has an effect (the docs and tests need to know). */
export const canMarkUncloneable = typeof markAsUncloneable === 'function';

/** Posting `obj` to a Worker or MessagePort throws DataCloneError, where this Node supports it. */
export function markUncloneable(obj: object): void {
  markAsUncloneable?.(obj);
}
