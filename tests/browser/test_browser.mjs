// SPDX-License-Identifier: MIT
// End-to-end with a real browser: headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) loads a page from a local HTTP server; the page opens ws://127.0.0.1:PORT/,
// negotiates permessage-deflate (Chromium always offers it), sends text and binary messages,
// checks the echoes, closes with 4000 "bye", and reports what it saw: the test checks
// ws.extensions, the echoes, event.code and wasClean, and wsd's own log line. The same page also
// runs over wss:// against a certificate made on the spot (Chromium runs with
// --ignore-certificate-errors: the test is about wsd's TLS, not about trusting a test CA).
// Run: node --test --test-reporter=tap test_browser.mjs (WSD_BIN defaults to build/wsd).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { launchChromium, startWsd as start, stopWsd, waitForLog } from './wsd.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wsd-browser-'));
const startWsd = (name, env) => start(tmp, name, env);

// The page: everything happens in the browser; the result is left in window.result.
const PAGE = `<!doctype html><meta charset="utf-8"><title>wsd browser test</title>
<script>
function run(port, scheme) {
  return new Promise((resolve) => {
    const big = 'wsd '.repeat(5000) + '\\u00e9\\u03ba\\u{1F600}';
    const bin = new Uint8Array(10000);
    for (let i = 0; i < bin.length; i++) bin[i] = (i * 7) & 0xff;
    const sent = ['hello', big, bin, ''];
    const got = [];
    const r = { extensions: null, echoesOk: false, errors: [] };
    const ws = new WebSocket((scheme || 'ws') + '://127.0.0.1:' + port + '/browser');
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      r.extensions = ws.extensions;
      for (const m of sent) ws.send(m);
    };
    ws.onmessage = (ev) => {
      got.push(ev.data);
      if (got.length < sent.length) return;
      r.echoesOk = got.every((g, i) => {
        const s = sent[i];
        if (typeof s === 'string') return g === s;
        const a = new Uint8Array(g);
        return a.length === s.length && a.every((x, j) => x === s[j]);
      });
      ws.close(4000, 'bye');
    };
    ws.onerror = () => r.errors.push('error event');
    ws.onclose = (ev) => {
      r.code = ev.code; r.reason = ev.reason; r.wasClean = ev.wasClean; r.echoes = got.length;
      resolve(r);
    };
  });
}
</script>`;

let httpServer, httpPort, context, wsdOn, wsdOff, wsdTls;

before(async () => {
  httpServer = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  });
  await new Promise((r) => httpServer.listen(0, '127.0.0.1', r));
  httpPort = httpServer.address().port;
  wsdOn = await startWsd('wsd-deflate', {});
  wsdOff = await startWsd('wsd-nodeflate', { WSD_DEFLATE: 'off' });
  const key = path.join(tmp, 'key.pem'), cert = path.join(tmp, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore', timeout: 20000 });
  wsdTls = await startWsd('wsd-tls', { WSD_TLS_LISTEN: '127.0.0.1:0', WSD_TLS_CERT: cert, WSD_TLS_KEY: key });
  wsdTls.tlsPort = Number(fs.readFileSync(wsdTls.logPath, 'utf8').match(/listening on wss:\/\/127\.0\.0\.1:(\d+)\//)[1]);
  context = await launchChromium(tmp, ['--ignore-certificate-errors']);
});

after(async () => {
  if (context) await context.close();
  const codes = [await stopWsd(wsdOn), await stopWsd(wsdOff), await stopWsd(wsdTls)];
  await new Promise((r) => (httpServer ? httpServer.close(r) : r()));
  fs.rmSync(tmp, { recursive: true, force: true });
  assert.deepEqual(codes, [0, 0, 0], 'wsd exits 0 on SIGTERM');
});

async function runPage(port, scheme) {
  const page = await context.newPage();
  try {
    await page.goto(`http://127.0.0.1:${httpPort}/`, { timeout: 10000 });
    return await page.evaluate(([p, sch]) => run(p, sch), [port, scheme]);
  } finally {
    await page.close();
  }
}

// What every page run must show: deflate as expected, all four echoes right, no error event, a
// clean close with 4000. r.reason is the reason of wsd's answering close frame: wsd echoes the
// code only (RFC 6455 5.5.1 asks no more), so it is not checked.
function assertCleanRun(r, extensions) {
  assert.match(r.extensions, extensions);
  assert.equal(r.echoes, 4);
  assert.ok(r.echoesOk, 'every echo equals what was sent');
  assert.deepEqual(r.errors, []);
  assert.equal(r.code, 4000);
  assert.equal(r.wasClean, true);
}

test('Chromium negotiates permessage-deflate, gets its echoes, closes cleanly with 4000',
     { timeout: 30000 }, async () => {
  assertCleanRun(await runPage(wsdOn.port), /^permessage-deflate/);
  assert.ok(await waitForLog(wsdOn.logPath, /close conn=\d+ .*path=\/browser .*code=4000 by=client/),
            'wsd logged the close as code=4000 by=client');
});

test('with WSD_DEFLATE=off Chromium gets no extension and the same echoes',
     { timeout: 30000 }, async () => {
  assertCleanRun(await runPage(wsdOff.port), /^$/);
});

test('over wss:// Chromium negotiates deflate through TLS, gets its echoes, closes cleanly with 4000',
     { timeout: 30000 }, async () => {
  assertCleanRun(await runPage(wsdTls.tlsPort, 'wss'), /^permessage-deflate/);
  assert.ok(await waitForLog(wsdTls.logPath, /open conn=\d+ .*path=\/browser tls=yes/),
            'wsd logged the open as tls=yes');
});
