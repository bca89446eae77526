// SPDX-License-Identifier: MIT
// What the browser tests share: start wsd on free ports (WSD_BIN, default build/wsd) and find
// them in its log, stop it with SIGTERM (bounded), wait for a log line, and launch Debian's
// headless Chromium (CHROMIUM, default /usr/bin/chromium) through playwright-core.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
export const wsdBin = process.env.WSD_BIN || path.join(root, 'build', 'wsd');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

// Start wsd with its log and control socket in dir; resolves to { proc, port, metricsPort,
// logPath } once it logs where it listens (metricsPort only with WSD_METRICS_LISTEN).
export function startWsd(dir, name, extraEnv = {}) {
  return new Promise((resolve, reject) => {
    const logPath = path.join(dir, name + '.log');
    const log = fs.openSync(logPath, 'w');
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WSD_')));
    const proc = spawn(wsdBin, [], {
      env: { ...env, WSD_LISTEN: '127.0.0.1:0', WSD_PING_INTERVAL_MS: '0',
             WSD_CONTROL_SOCKET: path.join(dir, name + '.sock'), ...extraEnv },
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    const wantMetrics = !!extraEnv.WSD_METRICS_LISTEN;
    const deadline = Date.now() + 10000;
    const poll = () => {
      const text = fs.readFileSync(logPath, 'utf8');
      const m = text.match(/listening on ws:\/\/127\.0\.0\.1:(\d+)\//);
      const mm = text.match(/metrics on http:\/\/127\.0\.0\.1:(\d+)\//);
      if (m && (mm || !wantMetrics))
        return resolve({ proc, port: Number(m[1]), metricsPort: mm ? Number(mm[1]) : null, logPath });
      if (proc.exitCode !== null || Date.now() > deadline) {
        proc.kill('SIGKILL');
        return reject(new Error(name + ' did not start: ' + text));
      }
      setTimeout(poll, 20);
    };
    poll();
  });
}

// SIGTERM, then SIGKILL after 10 s; resolves to the exit status.
export function stopWsd(s) {
  return new Promise((resolve) => {
    if (!s || s.proc.exitCode !== null) return resolve(s ? s.proc.exitCode : null);
    const t = setTimeout(() => s.proc.kill('SIGKILL'), 10000);
    s.proc.once('exit', (code) => { clearTimeout(t); resolve(code); });
    s.proc.kill('SIGTERM');
  });
}

// The first match of re in the log within timeoutMs, or null.
export async function waitForLog(logPath, re, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = fs.readFileSync(logPath, 'utf8').match(re);
    if (m || Date.now() > deadline) return m;
    await new Promise((r) => setTimeout(r, 20));
  }
}

// extraArgs: more Chromium switches (the wss:// test adds --ignore-certificate-errors).
export function launchChromium(dir, extraArgs = []) {
  return chromium.launchPersistentContext(path.join(dir, 'profile'), {
    executablePath: chromiumPath,
    headless: true,
    timeout: 30000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           ...extraArgs],
  });
}
