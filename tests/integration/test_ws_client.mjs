// SPDX-License-Identifier: MIT
// wsd against the Node.js `ws` client (pinned in package.json): echo of every size class, text
// and binary, fragmented sends, ping/pong, close codes, permessage-deflate offers, shutdown.
// Run: WSD_BIN=build/wsd node --test --test-reporter=tap tests/integration/test_ws_client.mjs
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import WebSocket from 'ws';

const here = path.dirname(fileURLToPath(import.meta.url));
const WSD_BIN = path.resolve(process.env.WSD_BIN || path.join(here, '..', '..', 'build', 'wsd'));
const SLOW = Number(process.env.WSD_TEST_SLOW || 1);
const T = (ms) => ms * SLOW;

// ---- helpers

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${T(ms)} ms waiting for ${what}`)), T(ms));
    }),
  ]).finally(() => clearTimeout(timer));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(pred, ms, what) {
  const deadline = Date.now() + T(ms);
  for (;;) {
    const v = pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${T(ms)} ms waiting for ${what}`);
    await sleep(20);
  }
}

function procStatus(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const get = (k) => (s.match(new RegExp(`^${k}:\\s*(.*)$`, 'm')) || [])[1];
    return { name: get('Name'), state: (get('State') || '?')[0], ppid: Number(get('PPid')) };
  } catch {
    return null;
  }
}

function markedPids(marker) {
  const needle = `WSD_TEST_INSTANCE=${marker}`;
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/environ`, 'latin1').split('\0').includes(needle)) out.push(Number(d));
    } catch { /* gone, or a kernel thread */ }
  }
  return out;
}

const instances = [];

class Wsd {
  constructor(env = {}) {
    this.env = env;
    this.marker = randomUUID();
    this.stderr = '';
  }

  async start() {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WSD_')));
    this.tmp = mkdtempSync(path.join(tmpdir(), 'wsdtest-'));
    Object.assign(env, { WSD_LISTEN: '127.0.0.1:0', WSD_CONTROL_SOCKET: path.join(this.tmp, 'ctl.sock') },
      this.env, { WSD_TEST_INSTANCE: this.marker });
    this.proc = spawn(WSD_BIN, [], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    instances.push(this);
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (d) => { this.stderr += d; });
    this.pid = this.proc.pid;
    const m = await waitUntil(() => {
      if (this.proc.exitCode !== null) throw new Error(`wsd exited (${this.proc.exitCode}) before listening:\n${this.stderr}`);
      return this.stderr.match(/listening on ws:\/\/127\.0\.0\.1:(\d+)\//);
    }, 5000, 'the listening line');
    this.port = Number(m[1]);
    await this.waitWorkers(Number(this.env.WSD_POOL_MIN ?? 4));
    this.fdBaseline = this.fdCount();
    return this;
  }

  url(p = '/') { return `ws://127.0.0.1:${this.port}${p}`; }

  children() {
    const out = [];
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      const st = procStatus(d);
      if (st && st.ppid === this.pid) out.push({ pid: Number(d), ...st });
    }
    return out;
  }

  workers() { return this.children().filter((c) => c.name === 'wsd-worker' && c.state !== 'Z'); }

  zombies() { return this.children().filter((c) => c.state === 'Z'); }

  fdCount() {
    try { return readdirSync(`/proc/${this.pid}/fd`).length; } catch { return null; }
  }

  workerOf(localPort) {
    const re = new RegExp(`: open conn=\\S+ pid=(\\d+) peer=127\\.0\\.0\\.1:${localPort} `);
    return waitUntil(() => { const m = this.stderr.match(re); return m && Number(m[1]); }, 5000,
      `the open line of the client on port ${localPort}`);
  }

  async waitWorkers(n) {
    await waitUntil(() => this.workers().length === n && this.children().some((c) => c.name === 'wsd-acceptor'),
      5000, `${n} idle workers and an acceptor (children: ${JSON.stringify(this.children())})`);
  }

  async checkClean() {
    await waitUntil(() => this.zombies().length === 0, 3000, 'no zombie children');
    await this.waitWorkers(Number(this.env.WSD_POOL_MIN ?? 4));
    await waitUntil(() => this.fdCount() === this.fdBaseline, 5000,
      `wsd's fd count back to ${this.fdBaseline} (now ${this.fdCount()})`);
  }

  async stop(signal = 'SIGTERM') {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    const r = await withTimeout(this.exited, 10000, `wsd to exit after ${signal}`);
    assert.deepEqual(r, { code: 0, signal: null }, `wsd exit after ${signal}:\n${this.stderr}`);
    await waitUntil(() => markedPids(this.marker).length === 0, 3000,
      `no process of this wsd left (${markedPids(this.marker)})`);
    for (const pat of ['ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:']) {
      assert.ok(!this.stderr.includes(pat), `sanitizer report in wsd's log:\n${this.stderr}`);
    }
    rmSync(this.tmp, { recursive: true, force: true });
  }

  kill() {
    for (const pid of [this.pid, ...markedPids(this.marker)]) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }
}

// A bounded connect; resolves with the open WebSocket and a message queue.
function connect(w, p = '/', opts = {}) {
  const ws = new WebSocket(w.url(p), { perMessageDeflate: false, maxPayload: 0, handshakeTimeout: T(5000), ...opts });
  const queue = [];
  const waiters = [];
  // ws.extensions names the extensions in use; the answer itself is in the 101's headers
  ws.once('upgrade', (res) => { ws.extensionHeader = res.headers['sec-websocket-extensions'] ?? ''; });
  ws.on('message', (data, isBinary) => {
    const m = { data, isBinary };
    if (waiters.length) waiters.shift()(m); else queue.push(m);
  });
  ws.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.next = (ms = 10000) => withTimeout(new Promise((resolve) => {
    if (queue.length) resolve(queue.shift()); else waiters.push(resolve);
  }), ms, 'a message');
  return withTimeout(new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  }), 5000, `connecting to ${w.url(p)}`);
}

function textOf(n) {
  const unit = 'aé€😀'; // 1 + 2 + 3 + 4 bytes
  let s = unit.repeat(Math.floor(n / 10));
  s += 'a'.repeat(n - Buffer.byteLength(s));
  assert.equal(Buffer.byteLength(s), n);
  return s;
}

let shared;
async function srv() {
  if (!shared) shared = await new Wsd().start();
  return shared;
}

after(() => { for (const w of instances) w.kill(); });

// ---- cases

const SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20];

for (const kind of ['text', 'binary']) {
  for (const n of SIZES) {
    test(`ws: ${kind} message of ${n} bytes echoed whole, same type`, { timeout: T(20000) }, async () => {
      const w = await srv();
      const ws = await connect(w, `/${kind}/${n}`);
      const msg = kind === 'text' ? textOf(n) : randomBytes(n);
      ws.send(msg, { binary: kind === 'binary' });
      const got = await ws.next();
      assert.equal(got.isBinary, kind === 'binary', 'message type');
      assert.equal(got.data.length, Buffer.byteLength(msg), 'length');
      assert.ok(Buffer.compare(got.data, Buffer.from(msg)) === 0, 'content');
      ws.close(1000);
      assert.equal((await withTimeout(ws.closed, 5000, 'close')).code, 1000);
    });
  }
}

test('ws: a message sent as 3 fragments (fin: false) is echoed as one message', { timeout: T(20000) }, async () => {
  const w = await srv();
  const ws = await connect(w, '/frag');
  ws.send('frag', { fin: false });
  ws.send('men', { fin: false });
  ws.send('ted ✓', { fin: true });
  const got = await ws.next();
  assert.equal(got.isBinary, false);
  assert.equal(got.data.toString(), 'fragmented ✓');
  ws.send(Buffer.alloc(70000, 1), { binary: true, fin: false });
  ws.send(Buffer.alloc(10, 2), { binary: true, fin: true });
  const got2 = await ws.next();
  assert.equal(got2.isBinary, true);
  assert.equal(got2.data.length, 70010);
  ws.close();
  await withTimeout(ws.closed, 5000, 'close');
});

test('ws: ping payloads come back in pongs', { timeout: T(20000) }, async () => {
  const w = await srv();
  const ws = await connect(w, '/ping');
  for (const payload of [Buffer.alloc(0), Buffer.from('x'), randomBytes(125)]) {
    const pong = withTimeout(new Promise((r) => ws.once('pong', r)), 5000, 'a pong');
    ws.ping(payload);
    assert.ok(Buffer.compare(await pong, payload) === 0, 'pong payload');
  }
  ws.close();
  await withTimeout(ws.closed, 5000, 'close');
});

for (const code of [1000, 3000, 4999]) {
  test(`ws: client close ${code} is answered with close ${code}`, { timeout: T(20000) }, async () => {
    const w = await srv();
    const ws = await connect(w, `/close/${code}`);
    ws.close(code, 'bye');
    const c = await withTimeout(ws.closed, 5000, 'the close');
    assert.equal(c.code, code);
  });
}

test('ws: 50 messages in flight echoed in order', { timeout: T(20000) }, async () => {
  const w = await srv();
  const ws = await connect(w, '/order');
  const msgs = Array.from({ length: 50 }, (_, i) => (i % 2 ? `m${i}`.repeat(i * 10) : randomBytes(i * 1000)));
  for (const m of msgs) ws.send(m);
  for (const [i, m] of msgs.entries()) {
    const got = await ws.next();
    assert.equal(got.isBinary, typeof m !== 'string', `message ${i} type`);
    assert.ok(Buffer.compare(got.data, Buffer.from(m)) === 0, `message ${i} content`);
  }
  ws.close();
  await withTimeout(ws.closed, 5000, 'close');
});

// Echo each message and close; the server must have answered exactly wantExtensions.
async function deflateEcho(w, p, perMessageDeflate, wantExtensions, msgs) {
  const ws = await connect(w, p, { perMessageDeflate });
  try {
    assert.equal(ws.extensionHeader, wantExtensions, 'the Sec-WebSocket-Extensions answer');
    assert.equal(ws.extensions, wantExtensions ? 'permessage-deflate' : '', 'the extensions ws runs');
  } catch (e) {
    ws.terminate();
    throw e;
  }
  for (const m of msgs) {
    ws.send(m);
    const got = await ws.next();
    assert.ok(Buffer.compare(got.data, Buffer.from(m)) === 0, `echo of ${m.length}`);
  }
  ws.close();
  await withTimeout(ws.closed, 5000, 'close');
}

// ws offers "permessage-deflate; client_max_window_bits": wsd leaves the client's window as it
// is, so the answer has no parameters.
test('ws with its default permessage-deflate offer: negotiated, echo works', { timeout: T(20000) }, async () => {
  await deflateEcho(await srv(), '/deflate', true, 'permessage-deflate',
    ['compress me '.repeat(5000), randomBytes(5000), textOf(1 << 20), Buffer.alloc(1 << 20), randomBytes(1 << 20)]);
});

test('ws without compression: nothing offered, nothing answered, echo works', { timeout: T(20000) }, async () => {
  await deflateEcho(await srv(), '/plain', false, '', ['compress me '.repeat(5000), randomBytes(5000)]);
});

test('ws offering every permessage-deflate parameter: each answered, promises kept', { timeout: T(20000) }, async () => {
  // ws inflates with a 1 KiB window, fresh per message: the same text three times would break
  // it if the server looked further back or into the previous message.
  const opts = { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 12, threshold: 0 };
  await deflateEcho(await srv(), '/params', opts,
    'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10',
    [textOf(50000), textOf(50000), textOf(50000)]);
});

test('ws: SIGTERM to the worker -> close 1001', { timeout: T(20000) }, async () => {
  const w = await srv();
  const ws = await connect(w, '/term');
  ws.send('x');
  await ws.next();
  const pid = await w.workerOf(ws._socket.localPort);
  process.kill(pid, 'SIGTERM');
  assert.equal((await withTimeout(ws.closed, 5000, 'the close')).code, 1001);
});

test('ws: SIGKILL to the worker ends its connection (1006) within 2 s; another keeps echoing', { timeout: T(20000) }, async () => {
  const w = await srv();
  const victim = await connect(w, '/victim');
  const other = await connect(w, '/other');
  const pid = await w.workerOf(victim._socket.localPort);
  process.kill(pid, 'SIGKILL');
  assert.equal((await withTimeout(victim.closed, 2000, 'the victim to close')).code, 1006);
  other.send('alive');
  assert.equal((await other.next()).data.toString(), 'alive');
  other.close();
  await withTimeout(other.closed, 5000, 'close');
});

test('shared server: no zombie, pool back to WSD_POOL_MIN, fd count as at start, SIGTERM exit 0', { timeout: T(30000) }, async () => {
  const w = await srv();
  await w.checkClean();
  await w.stop();
  shared = undefined;
});

test('SIGTERM to wsd with 3 open ws clients: each gets 1001, exit 0, nothing left', { timeout: T(30000) }, async () => {
  const w = await new Wsd({ WSD_POOL_MIN: '2' }).start();
  try {
    const conns = await Promise.all([0, 1, 2].map((i) => connect(w, `/s${i}`)));
    for (const ws of conns) {
      ws.send('x');
      await ws.next();
    }
    w.proc.kill('SIGTERM');
    for (const ws of conns) assert.equal((await withTimeout(ws.closed, 8000, 'the close')).code, 1001);
    await w.stop();
  } catch (e) {
    w.kill();
    throw e;
  }
});

// A self-signed certificate made now with the openssl CLI (no key is committed); ws trusts it
// through `ca`, so the chain and the name 127.0.0.1 are really verified.
function makeCert(dir) {
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore', timeout: 20000 });
  return { key, cert };
}

test('ws over wss:// (verified certificate): echo up to 1 MiB with and without deflate, close 4000', { timeout: T(30000) }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'wsd-tls-'));
  const { key, cert } = makeCert(dir);
  const w = await new Wsd({ WSD_POOL_MIN: '2', WSD_TLS_LISTEN: '127.0.0.1:0', WSD_TLS_CERT: cert, WSD_TLS_KEY: key }).start();
  try {
    const m = w.stderr.match(/listening on wss:\/\/127\.0\.0\.1:(\d+)\//);
    assert.ok(m, `no wss:// listening line:\n${w.stderr}`);
    const tlsUrl = { url: (p) => `wss://127.0.0.1:${m[1]}${p}` };
    for (const deflate of [false, true]) {
      const ws = await connect(tlsUrl, `/tls/${deflate}`, { ca: readFileSync(cert), perMessageDeflate: deflate });
      if (deflate) assert.match(ws.extensions, /^permessage-deflate/, 'deflate over TLS');
      for (const msg of [textOf(0), textOf(126), randomBytes(65536), randomBytes(1 << 20)]) {
        ws.send(msg);
        const got = await ws.next();
        assert.ok(Buffer.compare(got.data, Buffer.from(msg)) === 0, `echo of ${msg.length} over TLS`);
      }
      ws.close(4000);
      assert.equal((await withTimeout(ws.closed, 5000, 'close')).code, 4000);
    }
    await w.checkClean();
    await w.stop();
  } catch (e) {
    w.kill();
    throw e;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
