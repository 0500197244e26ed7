'use strict';
// bench/node/msgclient.js: the Node.js peer of the message path (bench/msgpath.py). The `ws`
// package, one WebSocket per feed, all opened at once; every received message becomes one JSONL
// record written through one fs.createWriteStream:
//   {"ts":<µs since the epoch>,"feed":"f00017","conn":1,"type":"text","data":"<the message>"}
// ts is taken when the message arrives (performance.timeOrigin + performance.now(), µs). The
// record is JSON.stringify'd, as a user would write it. Default `ws` options (permessage-deflate
// is offered; the load server declines it). No heartbeats.
//
// usage: node msgclient.js -n N --out FILE URL...
// Runs until SIGTERM/SIGINT, then ends the stream (everything written) and prints counts.
const fs = require('fs');
const { performance } = require('perf_hooks');
const WebSocket = require('ws');

const args = process.argv.slice(2);
let n = 0, outPath = null;
const urls = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '-n') n = parseInt(args[++i], 10);
  else if (a === '--out') outPath = args[++i];
  else urls.push(a);
}
if (!n || !urls.length || !outPath) {
  console.error('usage: node msgclient.js -n N --out FILE URL...');
  process.exit(64);
}

const out = fs.createWriteStream(outPath, { flags: 'a' });
const origin = performance.timeOrigin;
let opened = 0, failed = 0, msgs = 0;

for (let i = 0; i < n; i++) {
  const feed = 'f' + String(i).padStart(5, '0');
  const ws = new WebSocket(urls[i % urls.length]);
  ws.on('open', () => { opened++; });
  ws.on('message', (data, isBinary) => {
    const ts = Math.round((origin + performance.now()) * 1000);
    msgs++;
    out.write(JSON.stringify({ ts, feed, conn: 1, type: isBinary ? 'binary' : 'text',
                               data: isBinary ? data.toString('base64') : data.toString() }) + '\n');
  });
  ws.on('error', (e) => { failed++; console.error('node msgclient: ' + e.message); });
}

let stopping = false;
const done = () => {
  if (stopping) return;
  stopping = true;
  out.end(() => {
    console.error(`node msgclient: n=${n} opened=${opened} failed=${failed} msgs=${msgs}`);
    process.exit(0);
  });
};
process.on('SIGTERM', done);
process.on('SIGINT', done);
