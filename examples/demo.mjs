// npm run demo, part 1: create a memfd, fill it, seal it, and watch the kernel enforce the seals.
import { spawnSync } from 'node:child_process';
import { MemFile, Seal, capabilities } from '../dist/index.js';

const caps = capabilities();
console.log(`memfd demo on Linux ${caps.kernel} (noexec seal: ${caps.noexecSeal}, future-write seal: ${caps.futureWriteSeal})\n`);

const file = MemFile.create('demo-frame');
console.log(`created ${file.path} -> ${file.name}, seals: ${file.getSeals()}`);

const text = Buffer.from('The quick brown fox jumps over the lazy dog.\n'.repeat(1000));
file.writeSync(text, 0);
console.log(`wrote ${file.size} bytes`);

file.seal();
console.log(`sealed: ${file.getSeals()}`);

for (const [what, attempt] of [
  ['overwrite byte 0', () => file.writeSync('X', 0)],
  ['shrink to 0', () => file.truncate(0)],
  ['grow by 1 MiB', () => file.truncate(file.size + (1 << 20))],
  ['add another seal', () => file.addSeals(Seal.FutureWrite)],
]) {
  try {
    attempt();
    console.log(`  ${what}: allowed (unexpected!)`);
    process.exitCode = 1;
  } catch (e) {
    console.log(`  ${what}: refused by the kernel: ${e.message}`);
  }
}

// A child process gets the fd in its stdio array and cannot change the bytes either.
const child = spawnSync(process.execPath, ['--input-type=module', '-e', `
  import { MemFile } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};
  const f = MemFile.fromFd(3, { requireSeals: ['write', 'shrink'] });
  let refused = '';
  try { f.writeSync('evil', 0); } catch (e) { refused = e.code; }
  console.log('child: adopted ' + f.name + ' (' + f.size + ' bytes, seals ' + f.getSeals() + '), write -> ' + refused);
`], { stdio: ['ignore', 'inherit', 'inherit', file.fd] });
if (child.status !== 0) process.exitCode = 1;

const back = file.readAllSync();
console.log(`content unchanged: ${back.equals(text)}`);
file.close();
