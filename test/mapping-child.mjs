// Spawns a Node child running an ES module snippet with the library imported, optionally handing it
// memfds as extra stdio fds (fd 3, 4, ...). Tests that could kill a process with a signal run it here.
import { spawn } from 'node:child_process';

const LIB = new URL('../dist/index.js', import.meta.url).href;

/**
 * @param {string} body module code; `lib` and its main exports are in scope
 * @param {{ fds?: number[], args?: string[] }} [options]
 */
export function spawnChild(body, options = {}) {
  const script = `const lib = await import(${JSON.stringify(LIB)});
const { MemFile, Seal, futexWait, futexWake, futexWaitAsync } = lib;
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
${body}`;
  const child = spawn(process.execPath, [...(options.args ?? []), '--input-type=module', '-e', script], {
    stdio: ['pipe', 'pipe', 'pipe', ...(options.fds ?? [])],
  });
  let out = '';
  let err = '';
  const pending = [];
  const settleLines = () => {
    for (let i = pending.length - 1; i >= 0; i--) {
      const m = pending[i].re.exec(out);
      if (m) {
        pending[i].resolve(m);
        pending.splice(i, 1);
      }
    }
  };
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (d) => { out += d; settleLines(); });
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      // Let the pipes drain before reporting.
      setImmediate(() => {
        for (const p of pending.splice(0)) p.reject(new Error(`child exited (${code ?? signal}) before printing ${p.re}; stdout: ${out}; stderr: ${err}`));
        resolve({ code, signal, out, err });
      });
    });
  });
  return {
    child,
    exited,
    /** Resolves with the match once stdout matches `re`. */
    waitFor(re) {
      const m = re.exec(out);
      if (m) return Promise.resolve(m);
      return new Promise((resolve, reject) => pending.push({ re, resolve, reject }));
    },
    send(text) {
      child.stdin.write(text);
    },
  };
}

export const delay = (ms) => new Promise((r) => setTimeout(r, ms));
