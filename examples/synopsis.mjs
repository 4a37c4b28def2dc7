// examples/synopsis.mjs
import { spawn } from 'node:child_process';
import { MemFile } from 'memfd';

// A file in RAM with no path. Sealing is allowed, close-on-exec and no-exec are on by default.
const file = MemFile.create('frame');
file.writeSync(Buffer.from('pixels...'), 0);

// Freeze it: no process can write, shrink or grow it any more, and no seal can be removed.
file.seal();
console.log(String(file.getSeals()));          // 'seal|shrink|grow|write|exec'

try {
  file.writeSync('x', 0);
} catch (e) {
  console.log(e.code, e.syscall, e.message);   // EPERM pwrite 'EPERM: operation not permitted, pwrite (...)'
}

// Give it to a child process: it arrives as fd 3, and the child checks the seals before trusting it.
// (cwd: the child resolves 'memfd' from this script's directory, as this script does.)
const child = spawn(process.execPath, ['--input-type=module', '-e', `
  import { MemFile } from 'memfd';
  const f = MemFile.fromFd(3, { requireSeals: ['write', 'shrink'] });
  console.log('child sees', f.readAllSync().toString());
`], { cwd: import.meta.dirname, stdio: ['inherit', 'inherit', 'inherit', file.fd] });
child.on('exit', (code) => {
  file.close();
  process.exitCode = code ?? 1; // a child that failed fails this script too
});
