// A real pipe fd for tests: a FIFO made by mkfifo(1) and opened read-write (Linux allows that on FIFOs).
import { openSync, rmdirSync, unlinkSync, mkdtempSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export function pipeFds() {
  const path = join(mkdtempSync(join(tmpdir(), 'memfd-fifo-')), 'fifo');
  const r = spawnSync('mkfifo', [path]);
  if (r.status !== 0) throw new Error(`mkfifo failed: ${r.stderr}`);
  const a = openSync(path, 'r+');
  const b = openSync(path, 'r+');
  unlinkSync(path);
  rmdirSync(dirname(path));
  return [a, b];
}
