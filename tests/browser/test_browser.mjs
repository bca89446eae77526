// SPDX-License-Identifier: MIT
// End-to-end with a real browser: headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) loads a page from a local HTTP server; the page opens ws://127.0.0.1:PORT/,
// negotiates permessage-deflate (Chromium always offers it), sends text and binary messages,
// checks the echoes, closes with 4000 "bye", and reports what it saw: the test checks
// ws.extensions, the echoes, event.code and wasClean, and wsd's own log line.
// Run: node --test --test-reporter=tap test_browser.mjs (WSD_BIN defaults to build/wsd).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
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
function run(port) {
  return new Promise((resolve) => {
    const big = 'wsd '.repeat(5000) + '\\u00e9\\u03ba\\u{1F600}';
    const bin = new Uint8Array(10000);
    for (let i = 0; i < bin.length; i++) bin[i] = (i * 7) & 0xff;
    const sent = ['hello', big, bin, ''];
    const got = [];
    const r = { extensions: null, echoesOk: false, errors: [] };
    const ws = new WebSocket('ws://127.0.0.1:' + port + '/browser');
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

let httpServer, httpPort, context, wsdOn, wsdOff;

before(async () => {
  httpServer = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  });
  await new Promise((r) => httpServer.listen(0, '127.0.0.1', r));
  httpPort = httpServer.address().port;
  wsdOn = await startWsd('wsd-deflate', {});
  wsdOff = await startWsd('wsd-nodeflate', { WSD_DEFLATE: 'off' });
  context = await launchChromium(tmp);
});

after(async () => {
  if (context) await context.close();
  const codes = [await stopWsd(wsdOn), await stopWsd(wsdOff)];
  await new Promise((r) => (httpServer ? httpServer.close(r) : r()));
  fs.rmSync(tmp, { recursive: true, force: true });
  assert.deepEqual(codes, [0, 0], 'wsd exits 0 on SIGTERM');
});

async function runPage(port) {
  const page = await context.newPage();
  try {
    await page.goto(`http://127.0.0.1:${httpPort}/`, { timeout: 10000 });
    return await page.evaluate((p) => run(p), port);
  } finally {
    await page.close();
  }
}

test('Chromium negotiates permessage-deflate, gets its echoes, closes cleanly with 4000',
     { timeout: 30000 }, async () => {
  const r = await runPage(wsdOn.port);
  assert.match(r.extensions, /^permessage-deflate/);
  assert.equal(r.echoes, 4);
  assert.ok(r.echoesOk, 'every echo equals what was sent');
  assert.deepEqual(r.errors, []);
  assert.equal(r.code, 4000);
  // r.reason is the reason of wsd's answering close frame: wsd echoes the code only (RFC 6455
  // 5.5.1 asks no more), so it is not checked here.
  assert.equal(r.wasClean, true);
  assert.ok(await waitForLog(wsdOn.logPath, /close conn=\d+ .*path=\/browser .*code=4000 by=client/),
            'wsd logged the close as code=4000 by=client');
});

test('with WSD_DEFLATE=off Chromium gets no extension and the same echoes',
     { timeout: 30000 }, async () => {
  const r = await runPage(wsdOff.port);
  assert.equal(r.extensions, '');
  assert.equal(r.echoes, 4);
  assert.ok(r.echoesOk);
  assert.equal(r.code, 4000);
  assert.equal(r.wasClean, true);
});
