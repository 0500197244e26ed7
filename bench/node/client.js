'use strict';
// bench/node/client.js: the Node.js peer. The `ws` package, one WebSocket per feed, heartbeats
// from setInterval: every interval a PING frame (ws.ping) or the text "ping" (ws.send); answers
// are counted on 'pong' / 'message'. The first beat comes at a random point of the first
// interval, like wsbeat's. All connections are opened at once, as a user's loop would.
//
// usage: node client.js -n N [--type ping|text] [--interval-ms 1000] [--ca FILE] URL...
// Runs until SIGTERM/SIGINT; prints counts to stderr at exit.
const fs = require('fs');
const WebSocket = require('ws');

const args = process.argv.slice(2);
let n = 0, type = 'ping', intervalMs = 1000, ca = null;
const urls = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '-n') n = parseInt(args[++i], 10);
  else if (a === '--type') type = args[++i];
  else if (a === '--interval-ms') intervalMs = parseInt(args[++i], 10);
  else if (a === '--ca') ca = fs.readFileSync(args[++i]);
  else urls.push(a);
}
if (!n || !urls.length) {
  console.error('usage: node client.js -n N [--type ping|text] [--interval-ms MS] [--ca FILE] URL...');
  process.exit(64);
}

let opened = 0, failed = 0, sent = 0, answered = 0;
const payload = Buffer.from('wsbeat00');

for (let i = 0; i < n; i++) {
  const ws = new WebSocket(urls[i % urls.length], ca ? { ca } : {});
  let timer = null;
  ws.on('open', () => {
    opened++;
    const beat = () => {
      if (type === 'ping') ws.ping(payload); else ws.send('ping');
      sent++;
    };
    timer = setTimeout(() => { beat(); timer = setInterval(beat, intervalMs); },
                       Math.random() * intervalMs);
  });
  ws.on('pong', () => { answered++; });
  ws.on('message', () => { answered++; });
  ws.on('error', (e) => { failed++; console.error('node client: ' + e.message); });
  ws.on('close', () => { clearTimeout(timer); clearInterval(timer); });
}

const done = () => {
  console.error(`node client: n=${n} opened=${opened} failed=${failed} sent=${sent} answered=${answered}`);
  process.exit(0);
};
process.on('SIGTERM', done);
process.on('SIGINT', done);
