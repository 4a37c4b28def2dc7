/**
 * Cross-process wait/notify on 32-bit words of a {@link Mapping}, over the `futex(2)` syscall.
 *
 * `Atomics.wait`/`Atomics.notify` cannot do this: V8 implements them inside one process, so a notify
 * from another process never wakes anyone. These functions use the kernel's shared futexes (no
 * `FUTEX_PRIVATE_FLAG`), keyed by the file and offset, so every process that maps the same memfd meets
 * on the same word. Typical use: `Atomics.store` a new value, then {@link futexWake}; waiters call
 * {@link futexWait} (or {@link futexWaitAsync}) with the value they last saw, in a loop that re-checks
 * the value, because futex wakeups may be spurious.
 * @module
 */
import { binding, type NativeMapping } from './binding.js';
import { FUTEX_RESULT } from './constants.js';
import { invalidArgType, invalidArgValue, outOfRange, stateError } from './errors.js';
import { mappingOfBuffer, type Mapping } from './mapping.js';

/** What a futex wait ended with, as `Atomics.wait` names it. */
export type FutexWaitResult = 'ok' | 'not-equal' | 'timed-out';

function mappingFor(view: unknown, index: unknown): { record: NativeMapping; mapping: Mapping } {
  if (!(view instanceof Int32Array)) throw invalidArgType('view', 'an instance of Int32Array', view);
  const state = mappingOfBuffer(view.buffer);
  if (!state) {
    if (view.buffer.byteLength === 0 && view.length === 0) {
      throw stateError('ERR_MEMFD_UNMAPPED', 'The view is empty: its Mapping was unmapped (or it views no memory)');
    }
    throw invalidArgValue('view', view,
      "must be an Int32Array over a Mapping's buffer (futexes across processes need memory mapped from a MemFile)");
  }
  if (typeof index !== 'number') throw invalidArgType('index', 'of type number', index);
  if (!Number.isInteger(index) || index < 0 || index >= view.length) {
    throw outOfRange('index', `an integer >= 0 and < ${view.length}`, index);
  }
  return state;
}

function toExpected(value: unknown): number {
  if (typeof value !== 'number') throw invalidArgType('expected', 'of type number', value);
  if (!Number.isInteger(value) || value < -(2 ** 31) || value > 2 ** 32 - 1) {
    throw outOfRange('expected', 'a 32-bit integer (signed or unsigned)', value);
  }
  return value | 0;
}

/** Milliseconds, or -1 for "no timeout". */
function toTimeout(value: unknown): number {
  if (value === undefined || value === Infinity) return -1;
  if (typeof value !== 'number') throw invalidArgType('timeoutMs', 'of type number', value);
  if (Number.isNaN(value) || value < 0) throw outOfRange('timeoutMs', '>= 0 (or Infinity)', value);
  return value;
}

/**
 * Blocks this thread while `view[index] === expected`, until another thread or process calls
 * {@link futexWake} on the same word, or `timeoutMs` passes (default: no timeout).
 *
 * Returns `'not-equal'` at once when the value differs, `'ok'` when woken (possibly spuriously:
 * re-check the value), `'timed-out'` otherwise. The view must be an Int32Array over a
 * {@link Mapping}'s buffer; cross-process waits need the same memfd mapped in every process.
 *
 * It blocks the event loop like `Atomics.wait`. The kernel wait runs in slices of at most 100 ms (the
 * deadline stays absolute), so `Worker.terminate()` and `process.exit()` end a Worker blocked here within
 * about 100 ms; the call then throws `ERR_MEMFD_TERMINATING` instead of returning, while V8 stops the
 * thread. A wake that falls between two slices is reported as `'ok'` (the value changed while waiting).
 */
export function futexWait(view: Int32Array, index: number, expected: number, timeoutMs?: number): FutexWaitResult {
  const { record } = mappingFor(view, index);
  const result = binding.futexWait(record, view, index, toExpected(expected), toTimeout(timeoutMs));
  // undefined: the wait ended because this thread is being terminated (Worker.terminate(), process exit).
  // Throw, so that nothing after the call runs as if woken before V8 stops this thread.
  if (result === undefined) {
    throw stateError('ERR_MEMFD_TERMINATING', 'futexWait was interrupted: this thread is being terminated');
  }
  return result;
}

/**
 * Wakes up to `count` waiters (default: all) on `view[index]`, in this and every other process that
 * maps the same file. Returns how many were woken. Change the value (e.g. `Atomics.store`) first, or a
 * waiter that is about to wait will not notice.
 */
export function futexWake(view: Int32Array, index: number, count: number = Infinity): number {
  const { record } = mappingFor(view, index);
  let n: number;
  if (count === Infinity) n = 0x7fffffff;
  else if (typeof count !== 'number') throw invalidArgType('count', 'of type number', count);
  else if (!Number.isInteger(count) || count < 0) throw outOfRange('count', 'an integer >= 0 (or Infinity)', count);
  else n = Math.min(count, 0x7fffffff);
  return binding.futexWake(record, view, index, n);
}

/**
 * Like {@link futexWait}, without blocking: the wait runs on a dedicated native thread (never on the
 * libuv thread pool, which a long wait would starve) and the promise settles on the event loop.
 *
 * Limits: one thread (256 KiB of stack) per pending wait, so keep thousands of concurrent waits out of
 * it; a pending wait keeps the event loop alive, like a timer. If the Mapping is unmapped meanwhile, the
 * wait is cancelled and the promise rejects with `ERR_MEMFD_UNMAPPED`; when a Worker ends or the process
 * exits, pending waits are cancelled and their threads joined. Cancelling wakes the word once, which
 * other waiters on it see as a spurious wakeup. Invalid arguments throw synchronously, as with
 * `Atomics.waitAsync`.
 */
export function futexWaitAsync(view: Int32Array, index: number, expected: number, timeoutMs?: number):
    Promise<FutexWaitResult> {
  const { record, mapping } = mappingFor(view, index);
  const promise = binding.futexWaitAsync(record, view, index, toExpected(expected), toTimeout(timeoutMs));
  // The closure keeps the Mapping (and so its buffer) reachable while the wait is pending: otherwise a
  // caller that dropped every reference would see the wait cancelled by the garbage collector.
  return promise.then((result) => {
    if (result === FUTEX_RESULT.UNMAPPED) {
      throw stateError('ERR_MEMFD_UNMAPPED',
        `The Mapping (${mapping.length} bytes at offset ${mapping.offset}) was unmapped while futexWaitAsync was waiting`);
    }
    return result;
  });
}
