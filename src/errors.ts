/**
 * Error objects shaped like Node's own `fs` errors.
 *
 * Kernel refusals are {@link SystemError}s with `code` ('EPERM'), negative `errno`, `syscall` and a message
 * like `EPERM: operation not permitted, fcntl`; where the kernel's answer is cryptic a `hint` says what it
 * means for memfd and is appended to the message. Argument errors are TypeError/RangeError with Node's
 * `ERR_*` codes and are thrown before any syscall.
 * @module
 */
import { getSystemErrorMap } from 'node:util';

let errorMap: Map<number, [string, string]> | undefined;

function describeErrno(errno: number): [code: string, description: string] {
  errorMap ??= getSystemErrorMap();
  return errorMap.get(-Math.abs(errno)) ?? [`Unknown system error ${Math.abs(errno)}`, 'unknown error'];
}

/** A refusal from the kernel, with the shape of Node's `fs` errors. */
export class SystemError extends Error {
  /** Symbolic errno name, e.g. `'EPERM'`. */
  readonly code: string;
  /** Negative errno, as in Node (`-1` for EPERM). */
  readonly errno: number;
  /** The system call that failed, e.g. `'fcntl'`. */
  readonly syscall: string;
  /** What the error means here, when the kernel's answer alone is cryptic. */
  readonly hint?: string;

  constructor(errno: number, syscall: string, hint?: string) {
    const [code, description] = describeErrno(errno);
    super(`${code}: ${description}, ${syscall}${hint ? ` (${hint})` : ''}`);
    this.name = 'SystemError';
    this.code = code;
    this.errno = -Math.abs(errno);
    this.syscall = syscall;
    if (hint) this.hint = hint;
    Error.captureStackTrace?.(this, SystemError);
  }

  /** Same error with a hint added (the stack of the original is kept). */
  withHint(hint: string): SystemError {
    const e = new SystemError(this.errno, this.syscall, hint);
    e.stack = e.stack?.split('\n')[0] + '\n' + (this.stack?.split('\n').slice(1).join('\n') ?? '');
    return e;
  }
}

/** @internal called by the native addon with a positive errno. */
export function systemErrorFromNative(errno: number, syscall: string): Error {
  return new SystemError(errno, syscall);
}

/** True when `e` is a {@link SystemError} with the given code. */
export function isSystemError(e: unknown, code?: string): e is SystemError {
  return e instanceof SystemError && (code === undefined || e.code === code);
}

type CodedError<T extends Error> = T & { code: string };

function coded<T extends Error>(error: T, code: string, ctor: Function): CodedError<T> {
  Object.defineProperty(error, 'code', { value: code, enumerable: true, writable: true, configurable: true });
  Error.captureStackTrace?.(error, ctor);
  return error as CodedError<T>;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`;
  if (typeof value === 'object') {
    const ctor = (value as object).constructor?.name;
    return ctor ? `an instance of ${ctor}` : 'an object';
  }
  let shown = typeof value === 'bigint' ? `${value}n` : JSON.stringify(value) ?? String(value);
  if (shown.length > 28) shown = shown.slice(0, 25) + '...';
  return `type ${typeof value} (${shown})`;
}

/** `TypeError [ERR_INVALID_ARG_TYPE]: The "name" argument must be <expected>. Received <actual>` */
export function invalidArgType(name: string, expected: string, actual: unknown): CodedError<TypeError> {
  return coded(new TypeError(`The "${name}" argument must be ${expected}. Received ${describeValue(actual)}`),
    'ERR_INVALID_ARG_TYPE', invalidArgType);
}

/** `TypeError [ERR_INVALID_ARG_VALUE]` */
export function invalidArgValue(name: string, actual: unknown, reason: string): CodedError<TypeError> {
  // An object is named by its class, as ERR_INVALID_ARG_TYPE does: String() of a typed array would print its contents.
  if (actual !== null && (typeof actual === 'object' || typeof actual === 'function')) {
    return coded(new TypeError(`The argument '${name}' ${reason}. Received ${describeValue(actual)}`), 'ERR_INVALID_ARG_VALUE',
      invalidArgValue);
  }
  let shown: string;
  try { shown = typeof actual === 'string' ? JSON.stringify(actual) : String(actual); } catch { shown = typeof actual; }
  if (shown.length > 60) shown = shown.slice(0, 57) + '...';
  return coded(new TypeError(`The argument '${name}' ${reason}. Received ${shown}`), 'ERR_INVALID_ARG_VALUE', invalidArgValue);
}

/** `RangeError [ERR_OUT_OF_RANGE]` */
export function outOfRange(name: string, range: string, actual: unknown): CodedError<RangeError> {
  const shown = typeof actual === 'bigint' ? `${actual}n` : String(actual);
  return coded(new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${shown}`),
    'ERR_OUT_OF_RANGE', outOfRange);
}

/** A RangeError with a stable `code`, for sizes and ranges the message explains itself. */
export function rangeError(code: string, message: string): CodedError<RangeError> {
  return coded(new RangeError(message), code, rangeError);
}

/** An error with a stable `code`, for library states (closed, unmapped, not a memfd...). */
export function stateError(code: string, message: string): CodedError<Error> {
  return coded(new Error(message), code, stateError);
}
