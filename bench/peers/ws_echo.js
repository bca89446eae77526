// SPDX-License-Identifier: MIT
// The npm `ws` echo server for the bench suite: every message back with its opcode, no
// permessage-deflate. usage: node ws_echo.js PORT (binds 127.0.0.1)
'use strict';
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2]);
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false,
                                  maxPayload: 64 << 20 });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
wss.on('listening', () => console.error(`ws_echo: listening on ws://127.0.0.1:${port}/`));
process.on('SIGTERM', () => process.exit(0));
