/**
 * Argument validation shared by every module: thrown before any syscall, with Node's error codes.
 * Internal to the library (not exported from the package entry point).
 * @module
 */
import { invalidArgType, outOfRange } from './errors.js';

/** Positions and sizes are 64-bit in the kernel; JS numbers are exact up to 2^53 - 1, which is 8 PiB. */
export const MAX_SIZE = Number.MAX_SAFE_INTEGER;

/** A non-negative integer (number or bigint) up to 2^53 - 1, as a number. */
export function toSize(value: unknown, name: string): number {
  if (typeof value === 'bigint') {
    if (value < 0n || value > BigInt(MAX_SIZE)) throw outOfRange(name, `>= 0 and <= ${MAX_SIZE}`, value);
    return Number(value);
  }
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number or bigint', value);
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value);
  if (value < 0 || value > MAX_SIZE) throw outOfRange(name, `>= 0 and <= ${MAX_SIZE}`, value);
  return value;
}

/** A file position: undefined/null/-1 mean "the current file position" (Node's convention), encoded as -1. */
export function toPosition(value: unknown, name = 'position'): number {
  if (value === undefined || value === null || value === -1 || value === -1n) return -1;
  return toSize(value, name);
}

export function toInt(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!Number.isInteger(value) || value < min || value > max) throw outOfRange(name, `an integer >= ${min} and <= ${max}`, value);
  return value;
}

export function toFd(value: unknown, name = 'fd'): number {
  return toInt(value, name, 0, 0x7fffffff);
}

export function toBool(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalidArgType(name, 'of type boolean', value);
  return value;
}

export function toOptions<T extends object>(value: unknown, name = 'options'): Partial<T> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw invalidArgType(name, 'of type object', value);
  return value as Partial<T>;
}

export type BinaryLike = string | ArrayBufferView | ArrayBuffer | SharedArrayBuffer;

/** Returns bytes a syscall can read; strings are UTF-8 encoded. */
export function toBytes(value: unknown, name: string): ArrayBufferView | ArrayBuffer | SharedArrayBuffer {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return value;
  // Node-API (version 8) has no accessor for a bare SharedArrayBuffer, but a view over one is fine.
  if (typeof SharedArrayBuffer !== 'undefined' && value instanceof SharedArrayBuffer) return new Uint8Array(value);
  throw invalidArgType(name, 'of type string or an instance of Buffer, TypedArray, DataView or ArrayBuffer', value);
}

/** Writable bytes only: strings make no sense as a read target. */
export function toWritableBytes(value: unknown, name: string): ArrayBufferView | ArrayBuffer | SharedArrayBuffer {
  if (typeof value === 'string' || !(ArrayBuffer.isView(value) || value instanceof ArrayBuffer ||
      (typeof SharedArrayBuffer !== 'undefined' && value instanceof SharedArrayBuffer))) {
    throw invalidArgType(name, 'an instance of Buffer, TypedArray, DataView or ArrayBuffer', value);
  }
  return toBytes(value, name);
}
