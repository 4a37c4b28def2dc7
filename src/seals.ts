/**
 * File seals: restrictions on a memfd that, once added, hold for every fd and every process, forever.
 *
 * Why seals matter: a process that receives an fd from a peer cannot trust the peer to leave the file
 * alone. Without {@link Seal.Shrink} the peer can shrink the file under your mapping and your process dies
 * of SIGBUS; without {@link Seal.Write} (or {@link Seal.FutureWrite}) it can change bytes you already
 * validated. With the right seals you can validate once and then use the memory without copying it.
 * @module
 */
import { SEAL } from './constants.js';
import { invalidArgType, invalidArgValue, outOfRange } from './errors.js';

/** Seal bits, exactly the kernel's `F_SEAL_*` values. Combine with `|`. */
export const Seal = {
  /** `F_SEAL_SEAL`: no further seals can be added. */
  Seal: SEAL.SEAL,
  /** `F_SEAL_SHRINK`: the size can never go down. Peers need this before they map the file (SIGBUS). */
  Shrink: SEAL.SHRINK,
  /** `F_SEAL_GROW`: the size can never go up (writes past the end, growing truncate/allocate fail). */
  Grow: SEAL.GROW,
  /** `F_SEAL_WRITE`: contents can never change; fails with EBUSY while writable shared mappings exist. */
  Write: SEAL.WRITE,
  /** `F_SEAL_FUTURE_WRITE` (Linux 5.1): no new writes or writable mappings, existing mappings keep writing. */
  FutureWrite: SEAL.FUTURE_WRITE,
  /** `F_SEAL_EXEC` (Linux 6.3): the mode's executable bits can never change. */
  Exec: SEAL.EXEC,
} as const;

/** One seal bit. */
export type Seal = (typeof Seal)[keyof typeof Seal];

/** Names of the seals, as accepted by {@link MemFile.addSeals} and yielded by {@link Seals}. */
export type SealName = 'seal' | 'shrink' | 'grow' | 'write' | 'future-write' | 'exec';

const NAME_TO_BIT: ReadonlyMap<string, number> = new Map<SealName, number>([
  ['seal', Seal.Seal],
  ['shrink', Seal.Shrink],
  ['grow', Seal.Grow],
  ['write', Seal.Write],
  ['future-write', Seal.FutureWrite],
  ['exec', Seal.Exec],
]);
const BIT_TO_NAME: ReadonlyMap<number, SealName> = new Map([...NAME_TO_BIT].map(([n, b]) => [b, n as SealName]));

/** Every seal bit this library knows. */
export const KNOWN_SEAL_BITS = 0x3f;

/** `Seal | Shrink | Grow | Write`: the contents and size are frozen for good. */
export const FROZEN = Seal.Seal | Seal.Shrink | Seal.Grow | Seal.Write;

/** Anything that names a set of seals: bits, a {@link Seals}, one seal name, or an iterable of names or bits. */
export type SealsLike = number | Seals | SealName | Iterable<SealName | Seal | number>;

/**
 * An immutable set of seals as the kernel reported them. Unknown bits (from a newer kernel) are kept in
 * {@link Seals.bits} and shown as `0x40`-style names rather than dropped.
 */
export class Seals implements Iterable<string> {
  /** The raw seal bits. */
  readonly bits: number;

  constructor(bits: number) {
    this.bits = bits >>> 0;
    Object.freeze(this);
  }

  /** Parses bits, names or another Seals; throws TypeError/RangeError on anything else. */
  static from(value: SealsLike, argumentName = 'seals'): Seals {
    return value instanceof Seals ? value : new Seals(sealBits(value, argumentName));
  }

  /** True when every seal in `seals` is present. */
  has(seals: SealsLike): boolean {
    const want = sealBits(seals, 'seals');
    return (this.bits & want) === want;
  }

  /** The seals of `required` that this set lacks. */
  missing(required: SealsLike): Seals {
    return new Seals(sealBits(required, 'seals') & ~this.bits);
  }

  /** Number of seals set. */
  get size(): number {
    let n = 0;
    for (let b = this.bits; b; b &= b - 1) n++;
    return n;
  }

  /** No seal at all. */
  get empty(): boolean {
    return this.bits === 0;
  }

  /** Seal names in bit order; unknown bits as `0x40`. */
  *[Symbol.iterator](): IterableIterator<string> {
    for (let bit = 1; bit !== 0 && bit <= this.bits; bit = (bit << 1) >>> 0) {
      if (this.bits & bit) yield BIT_TO_NAME.get(bit) ?? `0x${bit.toString(16)}`;
    }
  }

  /** `'seal|shrink|grow|write'`, or `'none'`. */
  toString(): string {
    return this.bits === 0 ? 'none' : [...this].join('|');
  }

  toJSON(): string[] {
    return [...this];
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Seals(${this.toString()})`;
  }
}

// One frozen Seals per combination of known bits, shared: Seals is immutable, and freezing a fresh object
// on every getSeals() cost ~40 ns (Object.freeze migrates the object to a new map), 15-20% of the call.
const SEALS_CACHE: Seals[] = [];

/**
 * The Seals for `bits`: a shared instance for combinations of known seals, a new one otherwise.
 * @internal
 */
export function sealsOf(bits: number): Seals {
  const b = bits >>> 0;
  if (b > KNOWN_SEAL_BITS) return new Seals(b);
  return SEALS_CACHE[b] ??= new Seals(b);
}

/** Turns any {@link SealsLike} into bits, validating before any syscall. */
export function sealBits(value: unknown, argumentName = 'seals'): number {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw outOfRange(argumentName, 'a non-negative 32-bit integer of Seal bits', value);
    }
    if (value & ~KNOWN_SEAL_BITS) {
      throw outOfRange(argumentName, `a combination of Seal bits (0x${KNOWN_SEAL_BITS.toString(16)})`, `0x${value.toString(16)}`);
    }
    return value;
  }
  // A Seals may carry bits this library does not know (read from a newer kernel): validate them like a number.
  if (value instanceof Seals) return sealBits(value.bits, argumentName);
  if (typeof value === 'string') {
    // A lone string is almost always a mistake for ['write']; accept it, it is unambiguous.
    return sealBits([value], argumentName);
  }
  if (value !== null && typeof value === 'object' && Symbol.iterator in value) {
    let bits = 0;
    for (const item of value as Iterable<unknown>) {
      if (typeof item === 'string') {
        const bit = NAME_TO_BIT.get(item);
        if (bit === undefined) {
          throw invalidArgValue(argumentName, item, `must contain only seal names (${[...NAME_TO_BIT.keys()].join(', ')})`);
        }
        bits |= bit;
      } else if (typeof item === 'number') {
        bits |= sealBits(item, argumentName);
      } else {
        throw invalidArgType(argumentName, 'an iterable of seal names or Seal bits', item);
      }
    }
    return bits;
  }
  throw invalidArgType(argumentName, 'a number of Seal bits, a Seals or an iterable of seal names', value);
}
