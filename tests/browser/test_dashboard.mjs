// SPDX-License-Identifier: MIT
// The live dashboard end to end, in headless Chromium (playwright-core, Debian's chromium): a
// test client (a WebSocket in another Chromium page) connects to wsd; the dashboard page served
// on WSD_METRICS_LISTEN shows its connection; with the admin token typed in, Kill delivers the
// chosen close code and reason to the client; without the token, or when wsd has none, the kill
// is refused and the client's connection goes on echoing.
// Run: node --test --test-reporter=tap test_dashboard.mjs (WSD_BIN defaults to build/wsd).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launchChromium, startWsd, stopWsd, waitForLog } from './wsd.mjs';

const TOKEN = 'dashboard-test-token-' + process.pid;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wsd-dashboard-'));
let context, admin, readonly;

before(async () => {
  admin = await startWsd(tmp, 'wsd-admin', { WSD_METRICS_LISTEN: '127.0.0.1:0',
                                             WSD_ADMIN_TOKEN: TOKEN });
  readonly = await startWsd(tmp, 'wsd-readonly', { WSD_METRICS_LISTEN: '127.0.0.1:0' });
  context = await launchChromium(tmp);
});

after(async () => {
  if (context) await context.close();
  const codes = [await stopWsd(admin), await stopWsd(readonly)];
  fs.rmSync(tmp, { recursive: true, force: true });
  assert.deepEqual(codes, [0, 0], 'wsd exits 0 on SIGTERM');
});

// A client in its own page: resolves once open; the page keeps window.closeInfo for later.
async function openClient(port, wsPath) {
  const page = await context.newPage();
  await page.evaluate(([p, wp]) => new Promise((resolve, reject) => {
    const ws = new WebSocket('ws://127.0.0.1:' + p + wp);
    window.ws = ws;
    window.closeInfo = null;
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error('websocket error'));
    ws.onclose = (ev) => { window.closeInfo = { code: ev.code, reason: ev.reason, wasClean: ev.wasClean }; };
  }), [port, wsPath]);
  return page;
}

// The client still echoes: its connection was not ended.
function echoes(client) {
  return client.evaluate(() => new Promise((resolve) => {
    window.ws.onmessage = (ev) => resolve(ev.data === 'still here');
    window.ws.send('still here');
    setTimeout(() => resolve(false), 3000);
  }));
}

async function openDashboard(w) {
  const page = await context.newPage();
  await page.goto(`http://127.0.0.1:${w.metricsPort}/`, { timeout: 10000 });
  return page;
}

function row(dash, wsPath) {
  return dash.locator('#conns tr', { has: dash.locator('td.path', { hasText: wsPath }) });
}

test('the dashboard lists a client\'s connection and Kill with the token closes it with the chosen code and reason',
     { timeout: 30000 }, async () => {
  const client = await openClient(admin.port, '/from-the-test');
  const dash = await openDashboard(admin);
  try {
    await dash.locator('#mode', { hasText: 'admin' }).waitFor({ timeout: 5000 });
    const r = row(dash, '/from-the-test');
    await r.waitFor({ timeout: 5000 });
    assert.match(await r.locator('td.peer').textContent(), /^127\.0\.0\.1:\d+$/);
    assert.equal(await r.locator('td.state').textContent(), 'open');
    assert.match(await r.locator('td.id').textContent(), /^\d+$/);
    // the sparkline has drawn at least one point
    assert.notEqual(await dash.locator('#sparkline').getAttribute('points'), '');

    await dash.fill('#token', TOKEN);
    await r.locator('input.code').fill('4321');
    await r.locator('input.reason').fill('bye from the dashboard');
    await r.locator('button.kill').click();
    await dash.locator('#message', { hasText: '200' }).waitFor({ timeout: 5000 });
    await client.waitForFunction(() => window.closeInfo !== null, null, { timeout: 5000 });
    const closed = await client.evaluate(() => window.closeInfo);
    assert.deepEqual(closed, { code: 4321, reason: 'bye from the dashboard', wasClean: true });
    assert.ok(await waitForLog(admin.logPath, /terminated conn=\d+ .*cause=operator code=4321/),
              'wsd logged the termination');
    await r.waitFor({ state: 'detached', timeout: 5000 });
  } finally {
    await dash.close();
    await client.close();
  }
});

test('without the token, or with a wrong one, Kill is refused (401) and the connection goes on',
     { timeout: 30000 }, async () => {
  const client = await openClient(admin.port, '/no-token');
  const dash = await openDashboard(admin);
  try {
    const r = row(dash, '/no-token');
    await r.waitFor({ timeout: 5000 });
    await r.locator('input.code').fill('4000');
    await r.locator('button.kill').click();
    await dash.locator('#message', { hasText: '401' }).waitFor({ timeout: 5000 });
    await dash.fill('#token', TOKEN + 'x');
    await dash.evaluate(() => { document.getElementById('message').textContent = ''; });
    await r.locator('button.kill').click();
    await dash.locator('#message', { hasText: '401' }).waitFor({ timeout: 5000 });
    assert.equal(await client.evaluate(() => window.closeInfo), null);
    assert.ok(await echoes(client), 'the client still gets its echo');
  } finally {
    await dash.close();
    await client.close();
  }
});

test('a wsd without WSD_ADMIN_TOKEN serves a read-only page and refuses kills (403)',
     { timeout: 30000 }, async () => {
  const client = await openClient(readonly.port, '/read-only');
  const dash = await openDashboard(readonly);
  try {
    await dash.locator('#mode', { hasText: 'read-only' }).waitFor({ timeout: 5000 });
    const r = row(dash, '/read-only');
    await r.waitFor({ timeout: 5000 });
    assert.equal(await r.locator('button.kill').isDisabled(), true);
    const id = await r.locator('td.id').textContent();
    // what the button would send, sent anyway from the page
    const status = await dash.evaluate(async ([cid, tok]) => (await fetch('/api/kill', {
      method: 'POST', headers: { Authorization: 'Bearer ' + tok },
      body: new URLSearchParams({ id: cid, code: '4000' }) })).status, [id, TOKEN]);
    assert.equal(status, 403);
    assert.ok(await echoes(client), 'the client still gets its echo');
  } finally {
    await dash.close();
    await client.close();
  }
});
