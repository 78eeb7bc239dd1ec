// A NATS-native submit (DESIGN §5) over the raw NATS protocol, so the test needs no NATS
// client library: request on reqrun.submit.<tenant>, print "<Reqrun-Status> <body>".
// Usage: [INBOX=subject] node nats-request.js PORT USER PASSWORD SUBJECT BODY
// The reply inbox is "_INBOX_<USER>.<pid>" (k8s/nats/README.md) unless INBOX names another.
'use strict';
const net = require('net');

const [port, user, pass, subject, body] = process.argv.slice(2);
const inbox = process.env.INBOX || `_INBOX_${user}.k8s${process.pid}`;
const sock = net.connect(Number(port), '127.0.0.1');
let buf = Buffer.alloc(0);
const timer = setTimeout(() => fail('no reply within 20 s'), 20000);

function fail(msg) {
  console.error(`nats-request: ${msg}`);
  process.exit(1);
}

sock.on('error', (e) => fail(e.message));
sock.on('data', (chunk) => {
  buf = Buffer.concat([buf, chunk]);
  for (;;) {
    const eol = buf.indexOf('\r\n');
    if (eol < 0) return;
    const line = buf.subarray(0, eol).toString();
    if (line.startsWith('INFO ')) {
      const connect = {
        user,
        pass,
        verbose: false,
        pedantic: false,
        headers: true,
        no_responders: true,
        protocol: 1,
      };
      const payload = Buffer.from(body);
      sock.write(`CONNECT ${JSON.stringify(connect)}\r\nSUB ${inbox} 1\r\n`);
      sock.write(`PUB ${subject} ${inbox} ${payload.length}\r\n`);
      sock.write(Buffer.concat([payload, Buffer.from('\r\nPING\r\n')]));
    } else if (line === 'PING') {
      sock.write('PONG\r\n');
    } else if (line.startsWith('-ERR')) {
      fail(line);
    } else if (line.startsWith('HMSG ') || line.startsWith('MSG ')) {
      const f = line.split(' ');
      const total = Number(f[f.length - 1]);
      const hdrLen = line.startsWith('HMSG ') ? Number(f[f.length - 2]) : 0;
      if (buf.length < eol + 2 + total + 2) return;
      const msg = buf.subarray(eol + 2, eol + 2 + total);
      const status = /Reqrun-Status:\s*(\d+)/i.exec(msg.subarray(0, hdrLen).toString());
      console.log(`${status ? status[1] : 'none'} ${msg.subarray(hdrLen).toString()}`);
      clearTimeout(timer);
      sock.end();
      return;
    }
    buf = buf.subarray(eol + 2);
  }
});
