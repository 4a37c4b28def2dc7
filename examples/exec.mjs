// An in-memory executable: copy a program into a memfd created with exec: true and run it through its
// /proc/self/fd path. Nothing touches the disk. A default memfd (exec: false) refuses the same thing.
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { MemFile } from 'memfd';

const program = readFileSync('/bin/echo');

// file.path is /proc/self/fd/N. spawn() resolves it in the forked child before exec, where the fd is still
// open (close-on-exec closes it only once the new program runs), so an ELF binary runs fine from it.
const executable = MemFile.create('echo', { exec: true });
executable.writeSync(program, 0);
executable.seal(); // nobody can swap the code between our check and the exec
const ran = spawnSync(executable.path, ['hello from a program that only exists in memory'], { encoding: 'utf8' });
console.log(`exec: true  -> exit ${ran.status}: ${ran.stdout.trim()}`);

const data = MemFile.create('echo-data'); // default: MFD_NOEXEC_SEAL
data.writeSync(program, 0);
const refused = spawnSync(data.path, ['never printed']);
console.log(`exec: false -> ${refused.error?.code ?? `exit ${refused.status}`} (mode ${(data.stat().mode & 0o777).toString(8)}, seals ${data.getSeals()})`);

executable.close();
data.close();
