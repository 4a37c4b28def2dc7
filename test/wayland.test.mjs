// Weston as a real Wayland peer: examples/wayland.ts draws a frame into a memfd-backed wl_shm pool and shows
// it in an xdg toplevel; this test starts a headless weston of its own, runs the example, then takes a
// screenshot through weston's screenshooter protocol (enabled by --debug) into a memfd of its own and
// compares the pixels weston shows with the pattern the example drew.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemFile, Seal, UnixSocket } from '../dist/index.js';
import { startSplitter } from './stream-splitter.mjs';
import { stopGroup } from './server-process.mjs';

const example = fileURLToPath(new URL('../dist-examples/wayland.js', import.meta.url));
const WIDTH = 320, HEIGHT = 240;
const hasWeston = spawnSync('weston', ['--version'], { stdio: 'ignore' }).status === 0;
const skip = hasWeston ? false : 'weston is not installed (Debian package "weston"; .ci/run installs it)';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let runtimeDir, socketPath, weston, westonLog = '';

async function connectable(path) {
  try {
    (await UnixSocket.connect(path, { type: 'stream', timeout: 100 })).close();
    return true;
  } catch {
    return false;
  }
}

before(async () => {
  if (skip) return;
  // weston insists on an XDG_RUNTIME_DIR that is ours and mode 0700.
  runtimeDir = mkdtempSync(join(tmpdir(), 'memfd-wayland-'));
  chmodSync(runtimeDir, 0o700);
  // No animations: the screenshot must show the frame itself, not a fade-in of it. An empty input-method
  // path stops weston from starting weston-keyboard, which a headless run never uses.
  const config = join(runtimeDir, 'weston.ini');
  writeFileSync(config, '[shell]\nstartup-animation=none\nanimation=none\nclose-animation=none\nfocus-animation=none\n' +
    '[input-method]\npath=\n');
  socketPath = join(runtimeDir, 'wayland-memfd');
  // Its own process group, so that the shell helper client weston launches goes down with it.
  weston = spawn('weston', ['--backend=headless-backend.so', '--use-pixman', '--socket=wayland-memfd', '--debug',
    `--config=${config}`, `--width=${WIDTH}`, `--height=${HEIGHT}`, '--idle-time=0'], {
    env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir, WAYLAND_DISPLAY: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  weston.stdout.on('data', (d) => { westonLog += d; });
  weston.stderr.on('data', (d) => { westonLog += d; });
  for (let i = 0; i < 400 && weston.exitCode === null && !(await connectable(socketPath)); i++) await sleep(50);
});

after(async () => {
  // weston-desktop-shell, which weston launches, is in weston's group: nothing of it may outlive the test.
  const survivors = await stopGroup(weston);
  if (runtimeDir) rmSync(runtimeDir, { recursive: true, force: true });
  assert.deepEqual(survivors, [], `processes of weston's group outlived it`);
});

/** Lines of weston's /proc/PID/maps that map a memfd named `name`. */
function westonMaps(name) {
  return readFileSync(`/proc/${weston.pid}/maps`, 'utf8').split('\n').filter((l) => l.includes(`/memfd:${name} `));
}

/** Starts the example with --hold; resolves with its report once the frame was presented. */
function startExample(args, display = 'wayland-memfd') {
  const child = spawn(process.execPath, [example, ...args], {
    env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir, WAYLAND_DISPLAY: display },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '', stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, stdout, stderr })));
  const report = new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      const line = stdout.split('\n')[0];
      if (stdout.includes('\n')) resolve(JSON.parse(line));
    });
    exited.then((r) => reject(new Error(`the example exited (${r.code ?? r.signal}) before showing a frame: ${r.stderr}`)));
  });
  return { child, report, exited };
}

/** Takes a screenshot of the output with weston_screenshooter into a memfd; returns its bytes (B G R X). */
async function screenshot() {
  const { WaylandConnection, interfaces } = await import(example);
  interfaces.wl_output = [['geometry', 'iiiiissi'], ['mode', 'uiii'], ['done', ''], ['scale', 'i']];
  interfaces.weston_screenshooter = [['done', '']];
  const connection = await WaylandConnection.connect(socketPath);
  const file = MemFile.create('screenshot');
  try {
    const { registry, globals } = await connection.globals();
    assert.ok(globals.has('weston_screenshooter'), 'weston offers no weston_screenshooter: was it started with --debug?');
    const output = await connection.bind(registry, globals.get('wl_output'), 2);
    let mode;
    output.on('mode', (flags, width, height) => { if (flags & 1) mode = { width, height }; }); // 1: current mode
    const shm = await connection.bind(registry, globals.get('wl_shm'), 1);
    const shooter = await connection.bind(registry, globals.get('weston_screenshooter'), 1);
    await connection.roundtrip();
    assert.deepEqual(mode, { width: WIDTH, height: HEIGHT });
    const stride = mode.width * 4, size = stride * mode.height;
    file.truncate(size);
    file.addSeals(Seal.Shrink | Seal.Grow);
    const pool = connection.newObject('wl_shm_pool', 1);
    await shm.request(0, 'nhi', pool, file, size);
    const buffer = connection.newObject('wl_buffer', 1);
    await pool.request(0, 'niiiiu', buffer, 0, mode.width, mode.height, stride, 1);
    const shot = connection.waitFor(shooter, 'done');
    await shooter.request(0, 'oo', output, buffer);
    await shot;
    const mapping = file.map({ writable: false });
    const pixels = Buffer.from(mapping.bytes);
    mapping.unmap();
    return { pixels, stride };
  } finally {
    file.close();
    connection.close();
  }
}

test('weston shows the frame drawn into a memfd wl_shm pool (screenshot pixels match the pattern)', { skip, timeout: 60_000 }, async () => {
  assert.ok(existsSync(example), 'dist-examples/wayland.js is missing: run `npm run build`');
  assert.ok(await connectable(socketPath), `weston did not come up within 20 s:\n${westonLog}`);
  const { patternPixel } = await import(example);
  const { child, report, exited } = startExample(['--fullscreen', '--hold', '--title', 'memfd test']);
  try {
    const shown = await report;
    assert.equal(shown.shown, true);
    assert.deepEqual([shown.width, shown.height], [WIDTH, HEIGHT], 'fullscreen: the compositor sized the window to the output');
    assert.ok(shown.frameTime > 0, 'the frame callback carries weston\'s presentation time');
    const seals = shown.seals.split('|');
    assert.ok(seals.includes('shrink') && seals.includes('grow'), shown.seals);
    assert.ok(!seals.includes('write'), 'a write-sealed pool cannot be mapped by the compositor');

    // The compositor maps the client's memfd shared and writable: this is why the pool must not be write-sealed.
    const maps = westonMaps('wayland-shm');
    assert.ok(maps.length >= 1, 'weston does not map the example\'s memfd');
    assert.match(maps[0], /^\S+ rw-s /);

    const { pixels, stride } = await screenshot();
    const points = [[0, 0], [WIDTH - 1, 0], [0, HEIGHT - 1], [WIDTH - 1, HEIGHT - 1], [WIDTH >> 1, HEIGHT >> 1],
      [17, 203], [250, 31], [111, 111]];
    for (const [x, y] of points) {
      const at = y * stride + x * 4;
      const seen = { r: pixels[at + 2], g: pixels[at + 1], b: pixels[at] };
      assert.deepEqual(seen, patternPixel(x, y, WIDTH, HEIGHT), `pixel (${x}, ${y})`);
    }
    // Not one pixel off anywhere: the whole output is the example's frame.
    let mismatches = 0;
    for (let y = 0; y < HEIGHT; y++) {
      for (let x = 0; x < WIDTH; x++) {
        const want = patternPixel(x, y, WIDTH, HEIGHT), at = y * stride + x * 4;
        if (pixels[at + 2] !== want.r || pixels[at + 1] !== want.g || pixels[at] !== want.b) mismatches++;
      }
    }
    assert.equal(mismatches, 0);
  } finally {
    child.stdin.end();
  }
  const result = await exited;
  assert.equal(result.code, 0, result.stderr);
});

test('a write-sealed memfd (MemFile.from) is refused by the compositor: wl_shm invalid_fd', { skip, timeout: 30_000 }, async () => {
  assert.ok(await connectable(socketPath), `weston is not running:\n${westonLog}`);
  const { WaylandConnection, WaylandProtocolError } = await import(example);
  const connection = await WaylandConnection.connect(socketPath);
  const file = MemFile.from(Buffer.alloc(64 * 64 * 4, 0xff), { name: 'write-sealed' });
  try {
    const { registry, globals } = await connection.globals();
    const shm = await connection.bind(registry, globals.get('wl_shm'), 1);
    const pool = connection.newObject('wl_shm_pool', 1);
    await shm.request(0, 'nhi', pool, file, file.size);
    await assert.rejects(connection.roundtrip(), (e) => {
      assert.ok(e instanceof WaylandProtocolError, String(e));
      assert.equal(e.interfaceName, 'wl_shm');
      assert.equal(e.codeName, 'invalid_fd');
      return true;
    });
  } finally {
    file.close();
    connection.close();
  }
});

test('events that arrive in pieces of 1 to 64 bytes are reassembled (weston through a splitting relay)', { skip, timeout: 60_000 }, async () => {
  assert.ok(await connectable(socketPath), `weston is not running:\n${westonLog}`);
  const splitter = await startSplitter(join(runtimeDir, 'wayland-split'), socketPath);
  try {
    const { report, child, exited } = startExample(['--fullscreen'], 'wayland-split');
    child.stdin.end();
    const shown = await report;
    assert.deepEqual([shown.shown, shown.width, shown.height], [true, WIDTH, HEIGHT]);
    const result = await exited;
    assert.equal(result.code, 0, result.stderr);
    assert.ok(splitter.stats.pieces > 50, `only ${splitter.stats.pieces} pieces: the relay did not split`);
  } finally {
    splitter.close();
  }
});

test('weston survives both clients and holds no memfd of theirs afterwards', { skip, timeout: 30_000 }, async () => {
  assert.ok(await connectable(socketPath), `weston died:\n${westonLog}`);
  for (let i = 0; i < 50 && westonMaps('wayland-shm').length + westonMaps('screenshot').length > 0; i++) await sleep(50);
  assert.deepEqual([...westonMaps('wayland-shm'), ...westonMaps('screenshot')], []);
});
