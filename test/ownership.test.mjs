// fd ownership (issue 9): whatever a program does with the numbers the library hands out (file.fd,
// msg.fds, socket.fd, server.fd), closing them with node:fs included, the library never closes, polls,
// reads or writes a number that no longer refers to its own file. Every scenario runs in a child process:
// the failure these tests guard against is an abort inside libuv, which must fail one test, not the run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LIB, emulationSkip, run, runNode } from './helpers.mjs';

const HELPERS = new URL('./helpers.mjs', import.meta.url).href;

/** Runs `body` in a child (top-level await allowed) with the library, node:fs and helpers in scope. */
async function scenario(body, { args = ['--expose-gc'], env } = {}) {
  const source = `
    import * as fs from 'node:fs';
    import { tmpdir } from 'node:os';
    import { join } from 'node:path';
    import { MemFile, UnixSocket, UnixServer, Seal } from ${JSON.stringify(LIB)};
    import { reuseFdNumber } from ${JSON.stringify(HELPERS)};
    const warnings = [];
    process.on('warning', (w) => warnings.push({ code: w.code, type: w.name, message: w.message }));
    const fdCount = () => fs.readdirSync('/proc/self/fd').length;
    const collect = async () => { for (let i = 0; i < 6; i++) { gc(); await new Promise((r) => setTimeout(r, 5)); } };
    const identity = (fd) => { const st = fs.fstatSync(fd); return st.dev + ':' + st.ino; };
    // Warnings are emitted on the next tick: let them arrive first.
    const scratch = fs.mkdtempSync(join(tmpdir(), 'memfd-own-'));
    process.on('exit', () => fs.rmSync(scratch, { recursive: true, force: true }));
    const report = async (o) => { await new Promise((r) => setTimeout(r, 10)); console.log(JSON.stringify({ ...o, warnings })); };
    ${body}
  `;
  const r = await runNode(source, { args, ...(env ? { env: { ...process.env, ...env } } : {}) });
  assert.equal(r.signal, null, `child died with ${r.signal}\n${r.stderr}`);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

test('fs.closeSync(msg.fds[0]) then fs.openSync reusing the number: msg.close() and GC leave the new file open', async () => {
  const out = await scenario(`
    const log = join(scratch, 'log');
    const [a, b] = UnixSocket.pair();
    const results = [];
    for (const drop of ['close', 'gc']) {
      await a.send(Buffer.from('x'), [MemFile.from('payload')]);
      let msg = await b.receive();
      const n = msg.fds[0];
      fs.closeSync(n);                               // correct: msg.fds are the caller's
      const logFd = reuseFdNumber(n, () => fs.openSync(log, 'a'));
      const reused = logFd === n;
      if (drop === 'close') msg.close(); else { msg = null; await collect(); }
      fs.writeSync(logFd, drop + '\\n');            // throws EBADF if the library closed it
      results.push({ drop, reused, stillOpen: fs.fstatSync(logFd).isFile() });
      fs.closeSync(logFd);
    }
    a.close(); b.close();
    await report({ results, content: fs.readFileSync(log, 'utf8') });
  `);
  assert.deepEqual(out.results.map((r) => [r.reused, r.stillOpen]), [[true, true], [true, true]]);
  assert.equal(out.content, 'close\ngc\n');
  // Closing a received fd by hand is the contract, not a mistake: nothing to warn about.
  assert.deepEqual(out.warnings.filter((w) => w.code === 'MEMFD_FD_NOT_OURS'), []);
});

test('fs.closeSync(a.fd), the number reused by the next MemFile: a.close() leaves it, and writes land in the right files', async () => {
  const out = await scenario(`
    const a = MemFile.create('a');
    const n = a.fd;
    fs.closeSync(n);
    const b = reuseFdNumber(n, () => MemFile.create('b'));  // its private fd takes the number
    const bIno = b.stat().ino;
    const bReused = fs.fstatSync(n).ino === bIno;
    a.close();                                      // must not close b's fd
    const c = MemFile.create('c');                  // would get the number if a.close() had freed it
    b.writeSync('into b', 0);
    a.close();
    await report({ bReused, b: b.readAllSync().toString(), c: c.readAllSync().toString(), nStillB: fs.fstatSync(n).ino === bIno,
      aWorksAfterHandClose: true });
  `);
  assert.equal(out.bReused, true);
  assert.equal(out.nStillB, true);
  assert.equal(out.b, 'into b');
  assert.equal(out.c, '');
  assert.deepEqual(out.warnings.map((w) => w.code), ['MEMFD_FD_NOT_OURS']);
  assert.match(out.warnings[0].message, /fd \d+ of a MemFile no longer referred to its file/);
});

test('a MemFile whose fd was closed by hand keeps working on its own file', async () => {
  const out = await scenario(`
    const a = MemFile.create('a');
    a.writeSync('mine', 0);
    const n = a.fd;
    fs.closeSync(n);
    const other = reuseFdNumber(n, () => fs.openSync(join(scratch, 'other'), 'w+'));
    a.writeSync('MINE', 0);                          // not into 'other', which now has the number
    a.truncate(10);
    a.addSeals(Seal.Shrink);
    const seals = String(a.getSeals());
    await report({ reused: other === n, content: a.readAllSync().subarray(0, 4).toString(), size: a.size,
      otherSize: fs.fstatSync(other).size, seals });
  `);
  assert.equal(out.reused, true);
  assert.equal(out.content, 'MINE');
  assert.equal(out.size, 10);
  assert.equal(out.otherSize, 0);
  assert.match(out.seals, /shrink/);
});

test('fs.closeSync(sock.fd) and fs.closeSync(server.fd), numbers reused by MemFiles: closing the sockets leaves those files open', async () => {
  const out = await scenario(`
    const path = join(scratch, 'sock');
    const server = await UnixServer.listen(path);
    const [a, b] = UnixSocket.pair();
    const pending = b.receive();                     // the socket is being polled right now
    const files = [];
    for (const s of [a, b, server]) {
      const n = s.fd;
      fs.closeSync(n);
      const f = reuseFdNumber(n, () => MemFile.create('victim'));
      files.push({ f, n, ino: f.stat().ino });
    }
    await a.send(Buffer.from('still works'));        // the socket's own fd was never touched
    const msg = await pending;
    const client = await UnixSocket.connect(path);
    const accepted = await server.accept();
    a.close(); b.close(); server.close(); client.close(); accepted.close();
    await new Promise((r) => setTimeout(r, 20));     // socket fds close in libuv's close callback
    for (const x of files) x.f.writeSync('ok', 0);
    await report({ received: msg.data.toString(), allOpen: files.every((x) => fs.statSync(x.f.path).ino === x.ino) });
  `);
  assert.equal(out.received, 'still works');
  assert.equal(out.allOpen, true);
  assert.ok(out.warnings.some((w) => w.code === 'MEMFD_FD_NOT_OURS' && /UnixSocket or UnixServer/.test(w.message)));
});

test('a MemFile dropped after fs.closeSync(file.fd) and a reuse of the number: the GC leaves the new file open', async () => {
  const out = await scenario(`
    let file = MemFile.create('dropped');
    const n = file.fd;
    fs.closeSync(n);
    const log = reuseFdNumber(n, () => fs.openSync(join(scratch, 'log'), 'w'));
    file = null;
    await collect();
    fs.writeSync(log, 'alive');
    await report({ reused: log === n, size: fs.fstatSync(log).size });
  `);
  assert.equal(out.reused, true);
  assert.equal(out.size, 5);
  const codes = out.warnings.map((w) => w.code).sort();
  assert.deepEqual(codes, ['MEMFD_CLOSED_BY_GC', 'MEMFD_FD_NOT_OURS']);
});

test('resources closed by the garbage collector warn once per kind, with a code and what to do instead', async () => {
  const out = await scenario(`
    // Only memfds and sockets: Node itself may open an fd of its own (/dev/null) meanwhile.
    const ours = () => fs.readdirSync('/proc/self/fd').filter((n) => {
      try { const l = fs.readlinkSync('/proc/self/fd/' + n); return l.startsWith('/memfd:') || l.startsWith('socket:'); } catch { return false; }
    }).length;
    const before = ours();
    await (async () => {                              // a function scope: the module scope would keep them alive
      const [a, b] = UnixSocket.pair();
      await a.send(Buffer.from('x'), [MemFile.from('m')]);
      await b.receive();                              // a Message dropped with its fd untouched
      for (let i = 0; i < 3; i++) MemFile.create('leak' + i).fd;
      const f = MemFile.create('mapped'); f.truncate(4096); f.map(); f.close();
    })();
    await collect();
    await new Promise((r) => setTimeout(r, 50));
    await collect();
    await report({ leaked: ours() - before });
  `);
  assert.equal(out.leaked, 0);
  const gc = out.warnings.filter((w) => w.code === 'MEMFD_CLOSED_BY_GC');
  const kinds = gc.map((w) => /^A (MemFile|Message|Mapping|UnixSocket or UnixServer)( named "[^"]*")? was/.exec(w.message)?.[1]).sort();
  assert.deepEqual(kinds, ['Mapping', 'MemFile', 'Message', 'UnixSocket or UnixServer']);
  // A MemFile's warning shows the library's private fd, which the program never saw: the name says which file.
  assert.match(gc.find((w) => w.message.startsWith('A MemFile'))?.message ?? '', /^A MemFile named "(leak\d|m)" was closed/);
  for (const w of gc) {
    assert.equal(w.type, 'MemfdWarning');
    assert.match(w.message, /close\(\)|unmap\(\)|fs\.closeSync/);
  }
});

test('explicitly closed resources do not warn', async () => {
  const out = await scenario(`
    const [a, b] = UnixSocket.pair();
    const f = MemFile.from('x');
    await a.send(Buffer.from('x'), [f]);
    const msg = await b.receive();
    const g = MemFile.fromFd(msg.fds[0]);
    const m = g.map();
    m.unmap(); g.close(); f.close(); msg.close(); a.close(); b.close();
    await collect();
    await report({});
  `);
  assert.deepEqual(out.warnings, []);
});

test('10,000 messages under backpressure, received fds closed with fs.closeSync while sockets come and go: no abort, no leak', async () => {
  const out = await scenario(`
    const before = fdCount();
    const path = join(scratch, 'srv');
    const server = await UnixServer.listen(path);
    const TOTAL = 10000, CLIENTS = 4;
    let received = 0;
    const served = (async () => {
      const conns = [];
      for (let i = 0; i < CLIENTS; i++) conns.push(await server.accept());
      await Promise.all(conns.map(async (c) => {
        for await (const msg of c) {
          for (const fd of msg.fds) fs.closeSync(fd);  // the natural Node way
          received++;
          if (received % 500 === 0) {                  // churn: sockets created and closed meanwhile
            const [x, y] = UnixSocket.pair(); await x.send(Buffer.from('p')); (await y.receive()).close(); x.close(); y.close();
          }
        }
        c.close();
      }));
    })();
    const file = MemFile.from('shared payload');
    await Promise.all(Array.from({ length: CLIENTS }, async () => {
      const s = await UnixSocket.connect(path);
      const sends = [];
      for (let i = 0; i < TOTAL / CLIENTS; i++) sends.push(s.send(Buffer.from('m'), [file])); // queue: backpressure
      await Promise.all(sends);
      s.close();
    }));
    await served;
    server.close(); file.close();
    await collect();
    await new Promise((r) => setTimeout(r, 50));
    await report({ received, leaked: fdCount() - before });
  `);
  assert.equal(out.received, 10000);
  assert.equal(out.leaked, 0);
  assert.deepEqual(out.warnings, []);
});

test('ERR_MEMFD_FDS_TRUNCATED blames the receiver budget when maxFds was the cause', { skip: emulationSkip('fdBudget') }, async () => {
  const out = await scenario(`
    const [a, b] = UnixSocket.pair();
    const files = [MemFile.create('1'), MemFile.create('2'), MemFile.create('3')];
    await a.send(Buffer.from('x'), files);
    let err;
    try { await b.receive({ maxFds: 2 }); } catch (e) { err = e; }
    await report({ code: err?.code, message: err?.message });
  `);
  assert.equal(out.code, 'ERR_MEMFD_FDS_TRUNCATED');
  assert.match(out.message, /more fds than the receiver's budget \(maxFds 2\)/);
});

test('ERR_MEMFD_FDS_TRUNCATED with a full fd table names the real open-file limit', async () => {
  const source = `
    import * as fs from 'node:fs';
    import { MemFile, UnixSocket } from ${JSON.stringify(LIB)};
    const [a, b] = UnixSocket.pair();
    const files = [MemFile.create('1'), MemFile.create('2'), MemFile.create('3'), MemFile.create('4')];
    const hog = [];
    try { for (;;) hog.push(fs.openSync('/dev/null', 'r')); } catch { /* EMFILE: the table is full */ }
    for (let i = 0; i < 2; i++) fs.closeSync(hog.pop());   // room for 2 of the 4 fds
    const sent = a.send(Buffer.from('x'), files);
    let err;
    try { await b.receive(); } catch (e) { err = e; }
    for (const fd of hog) fs.closeSync(fd);
    await sent;
    console.log(JSON.stringify({ code: err?.code, message: err?.message }));
  `;
  // A small RLIMIT_NOFILE (set by the shell, as a user would) makes filling the table quick.
  const r = await run('sh', ['-c', 'ulimit -n 300 && exec "$0" --input-type=module -e "$1"', process.execPath, source],
    { cwd: new URL('..', import.meta.url).pathname });
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  assert.equal(out.code, 'ERR_MEMFD_FDS_TRUNCATED');
  assert.match(out.message, /open-file limit \(ulimit -n: 300\)/);
});

test('in a Worker, MemFile.fromFd(file.fd) is refused with the recipe that works, and the recipe works', async () => {
  const out = await scenario(`
    const { Worker } = await import('node:worker_threads');
    const file = MemFile.from('for the worker');
    const code = \`
      const { parentPort, workerData } = require('node:worker_threads');
      import(\${JSON.stringify(${JSON.stringify(LIB)})}).then(({ MemFile }) => {
        let refused;
        try { MemFile.fromFd(workerData.shown); } catch (e) { refused = { code: e.code, message: e.message }; }
        const mine = MemFile.fromFd(workerData.released);
        parentPort.postMessage({ refused, content: mine.readAllSync().toString() });
        mine.close();
      });
    \`;
    const w = new Worker(code, { eval: true, execArgv: [], workerData: { shown: file.fd, released: file.dup().releaseFd() } });
    const result = await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
    await w.terminate();
    file.close();
    await report(result);
  `);
  assert.equal(out.refused.code, 'ERR_MEMFD_FD_ALREADY_OWNED');
  assert.match(out.refused.message, /dup\(\)\.releaseFd\(\)/);
  assert.equal(out.content, 'for the worker');
});

test('two Workers adopting the same fd at once: exactly one succeeds, every time', async () => {
  const out = await scenario(`
    const { Worker } = await import('node:worker_threads');
    const code = \`
      const { parentPort } = require('node:worker_threads');
      import(\${JSON.stringify(${JSON.stringify(LIB)})}).then(({ MemFile }) => {
        let held = null;
        parentPort.on('message', ({ cmd, fd, view }) => {
          if (cmd === 'release') { if (held) held.releaseFd(); held = null; parentPort.postMessage('released'); return; }
          Atomics.wait(view, 0, 0);                  // start together
          try { held = MemFile.fromFd(fd); } catch (e) { if (e.code !== 'ERR_MEMFD_FD_ALREADY_OWNED') throw e; }
          parentPort.postMessage(held !== null);
        });
      });
    \`;
    const workers = [new Worker(code, { eval: true, execArgv: [] }), new Worker(code, { eval: true, execArgv: [] })];
    const ask = (msg) => Promise.all(workers.map((w) => { const p = new Promise((r) => w.once('message', r)); w.postMessage(msg); return p; }));
    const outcomes = [];
    for (let round = 0; round < 40; round++) {
      const file = MemFile.from('x');
      const fd = file.dup().releaseFd();
      file.close();
      const view = new Int32Array(new SharedArrayBuffer(4));
      const answers = ask({ cmd: 'adopt', fd, view });
      await new Promise((r) => setTimeout(r, 2));
      Atomics.store(view, 0, 1); Atomics.notify(view, 0);
      outcomes.push((await answers).filter(Boolean).length);
      await ask({ cmd: 'release' });
      fs.closeSync(fd);
    }
    await Promise.all(workers.map((w) => w.terminate()));
    await report({ outcomes });
  `);
  assert.deepEqual(out.outcomes, Array(40).fill(1));
});
