/**
 * A FIFO of pending promises (callers of `receive()`, `accept()`...) that an event source settles in
 * order, each one cancellable with an AbortSignal. Internal to the library.
 * @module
 */

/** The error of an aborted operation, as Node's own APIs build it. */
export function abortError(signal: AbortSignal): Error {
  const e = new Error('The operation was aborted', { cause: signal.reason });
  e.name = 'AbortError';
  (e as NodeJS.ErrnoException).code = 'ABORT_ERR';
  return e;
}

interface Waiter<T, D> {
  resolve(value: T): void;
  reject(error: unknown): void;
  data: D;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/**
 * Waiters for values of type `T`, each with data `D` the source needs to serve it (a receive's fd
 * budget). An aborted waiter leaves the queue at once, so the source never serves it.
 */
export class WaiterQueue<T, D = undefined> {
  #list: Waiter<T, D>[] = [];
  readonly #afterAbort: () => void;

  /** `afterAbort` runs once an aborted waiter has left: the source may stop watching for events. */
  constructor(afterAbort: () => void = () => {}) {
    this.#afterAbort = afterAbort;
  }

  get length(): number {
    return this.#list.length;
  }

  /** The data of the waiter served next. */
  peek(): D | undefined {
    return this.#list[0]?.data;
  }

  /** Queues a waiter; the promise settles when the source serves it, or rejects with AbortError on abort. */
  wait(data: D, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T, D> = { resolve, reject, data };
      if (signal) {
        waiter.signal = signal;
        waiter.onAbort = () => {
          const i = this.#list.indexOf(waiter);
          if (i < 0) return;
          this.#list.splice(i, 1);
          reject(abortError(signal));
          this.#afterAbort();
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#list.push(waiter);
    });
  }

  /** Resolves the oldest waiter; false when none waits. */
  resolveNext(value: T): boolean {
    const w = this.#take();
    w?.resolve(value);
    return w !== undefined;
  }

  /** Rejects the oldest waiter; false when none waits. */
  rejectNext(error: unknown): boolean {
    const w = this.#take();
    w?.reject(error);
    return w !== undefined;
  }

  resolveAll(value: T): void {
    for (let w = this.#take(); w; w = this.#take()) w.resolve(value);
  }

  rejectAll(error: unknown): void {
    for (let w = this.#take(); w; w = this.#take()) w.reject(error);
  }

  #take(): Waiter<T, D> | undefined {
    const w = this.#list.shift();
    if (w?.onAbort) w.signal!.removeEventListener('abort', w.onAbort);
    return w;
  }
}
