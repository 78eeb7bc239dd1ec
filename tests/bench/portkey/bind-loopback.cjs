// Preload for the Portkey gateway (node --require): its start-server.js calls
// serve({fetch, port}) with no hostname, so Node would listen on every interface and
// the gateway has no option to change that. This makes every net/http server of the
// process listen on 127.0.0.1 only; run.sh then checks with `ss` that it did.
'use strict';
const net = require('net');

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const a0 = args[0];
  if (typeof a0 === 'number' || (typeof a0 === 'string' && /^\d+$/.test(a0))) {
    // listen(port[, host][, backlog][, cb])
    if (args.length === 1 || args[1] === undefined || args[1] === null || typeof args[1] === 'string') {
      args[1] = '127.0.0.1';
    } else {
      args.splice(1, 0, '127.0.0.1');
    }
  } else if (a0 !== null && typeof a0 === 'object' && a0.path === undefined && a0.fd === undefined &&
             a0._handle === undefined && a0.handle === undefined) {
    // listen({port, host, ...}[, cb])
    args[0] = Object.assign({}, a0, { host: '127.0.0.1' });
  }
  return listen.apply(this, args);
};
