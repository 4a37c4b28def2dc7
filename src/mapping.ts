/**
 * Memory mappings of MemFiles (issue 3 builds this module).
 * @module
 */
import type { MemFile } from './memfile.js';
import { stateError } from './errors.js';

export interface MapOptions {
  offset?: number | bigint;
  length?: number | bigint;
  writable?: boolean;
  private?: boolean;
  populate?: boolean;
}

export class Mapping {}

export function mapFile(_file: MemFile, _options?: MapOptions): Mapping {
  throw stateError('ERR_MEMFD_UNAVAILABLE', 'mapping is not built yet');
}

export function createSecretFile(_size: number | bigint): MemFile {
  throw stateError('ERR_MEMFD_UNAVAILABLE', 'memfd_secret is not built yet');
}
