// Addresses under TLS, HTTPS and http2 over SCIF: both ends of each
// connection report remoteAddress/remotePort/remoteFamily and the local ones
// as plain scif-net sockets do ('scif:N', the SCIF port, 'SCIF'), where
// node:tls and http2 wrap the socket (a TLSSocket, or the JS stream wrapper
// http2 puts around a socket without a native handle). The servers run on
// node 1; this process is node 0.
require('./fixtures/fabric');
const http2 = require('node:http2');
const https = require('node:https');
const tls = require('node:tls');
const t = require('tap');
const net = require('..');
const scifHttp = require('../dist/http');
const { makeCert } = require('./fixtures/cert');
const { startPeer } = require('./fixtures/peer');

const ROLES = require.resolve('./fixtures/address-roles');
const cert = makeCert(t);

async function server(t, role) {
  const peer = startPeer(t, 1, role, { keyFile: cert.keyFile, certFile: cert.certFile }, { roles: ROLES });
  const { port } = await peer.until((m) => m.ready);
  return port;
}

const text = (stream) => new Promise((resolve, reject) => {
  let body = '';
  stream.setEncoding('utf8');
  stream.on('data', (d) => { body += d; });
  stream.on('end', () => resolve(body));
  stream.on('error', reject);
});

/** What the client's end says, against the server on node 1 at `port` whose end said `theirs`. */
function checkEnds(t, ours, theirs, port, localPort) {
  t.same({ address: ours.remoteAddress, port: ours.remotePort, family: ours.remoteFamily },
    { address: 'scif:1', port, family: 'SCIF' }, 'the client sees the server: node 1, its port');
  t.same({ address: ours.localAddress, port: ours.localPort }, { address: 'scif:0', port: localPort },
    "the client's own end: node 0, the SCIF socket's port");
  t.same({ address: theirs.remoteAddress, port: theirs.remotePort, family: theirs.remoteFamily },
    { address: 'scif:0', port: localPort, family: 'SCIF' }, 'the server sees the client: node 0, its port');
  t.same({ address: theirs.localAddress, port: theirs.localPort }, { address: 'scif:1', port },
    "the server's own end: node 1, the port it listens on");
}

t.test('tls.connect({ socket }) against a tls.Server fed scif-net connections', async (t) => {
  const port = await server(t, 'tls');
  const raw = net.connect({ node: 1, port });
  const secure = tls.connect({ socket: raw, ca: cert.ca, servername: 'mic0' });
  t.equal(secure.remoteAddress, undefined, 'nothing to say before the connection is made');
  await new Promise((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
  const ours = { remoteAddress: secure.remoteAddress, remotePort: secure.remotePort, remoteFamily: secure.remoteFamily,
    localAddress: secure.localAddress, localPort: secure.localPort };
  t.same(secure.address(), { address: 'scif:0', family: 'SCIF', port: raw.localPort }, 'address() as the raw socket');
  const theirs = JSON.parse(await text(secure));
  t.ok(theirs.encrypted, "the server's end is the TLS socket");
  checkEnds(t, ours, theirs, port, raw.localPort);
});

t.test('HTTPS: node:https on node 1, an https request through scif-net/http HttpsAgent', async (t) => {
  const port = await server(t, 'https');
  const agent = new scifHttp.HttpsAgent({ ca: cert.ca });
  t.teardown(() => agent.destroy());
  // What the socket says while the response is open (it closes after, as a TCP one would).
  let ours;
  const res = await new Promise((resolve, reject) => {
    https.get({ host: 'mic0', port, path: '/', agent }, (r) => {
      const s = r.socket;
      ours = { encrypted: s.encrypted, remoteAddress: s.remoteAddress, remotePort: s.remotePort, remoteFamily: s.remoteFamily,
        localAddress: s.localAddress, localPort: s.localPort };
      resolve(r);
    }).on('error', reject);
  });
  const theirs = JSON.parse(await text(res));
  t.ok(ours.encrypted && theirs.encrypted, 'TLS on both ends');
  t.ok(ours.localPort > 0, 'the client knows its port');
  checkEnds(t, ours, theirs, port, ours.localPort);
});

t.test('http2 without TLS (h2c)', async (t) => {
  const port = await server(t, 'h2c');
  const session = http2.connect(`http://mic0:${port}`, { createConnection: () => net.connect({ host: 'mic0', port }) });
  t.teardown(() => session.close());
  const theirs = JSON.parse(await text(session.request({ ':path': '/' })));
  checkEnds(t, session.socket, theirs, port, session.socket.localPort);
  checkEnds(t, session.socket, theirs.session, port, session.socket.localPort);
  t.ok(session.socket.localPort > 0, 'the client knows its port');
});

t.test('http2 over TLS (h2)', async (t) => {
  const port = await server(t, 'h2');
  let raw;
  const session = http2.connect(`https://mic0:${port}`, {
    createConnection: () => {
      raw = net.connect({ host: 'mic0', port });
      return tls.connect({ socket: raw, ca: cert.ca, servername: 'mic0', ALPNProtocols: ['h2'] });
    },
  });
  t.teardown(() => session.close());
  const theirs = JSON.parse(await text(session.request({ ':path': '/' })));
  t.equal(session.alpnProtocol, 'h2');
  t.ok(theirs.encrypted && theirs.session.encrypted, "the server's end is TLS");
  checkEnds(t, session.socket, theirs, port, raw.localPort);
  checkEnds(t, session.socket, theirs.session, port, raw.localPort);
});

t.test('sockets on no SCIF socket keep node:net and node:tls behaviour', async (t) => {
  // TLS over TCP loopback in the same process, after the wrappers were installed.
  const server = tls.createServer({ key: cert.key, cert: cert.cert }, (s) => s.end(JSON.stringify({
    remoteAddress: s.remoteAddress, remoteFamily: s.remoteFamily, localPort: s.localPort,
  })));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const client = tls.connect({ host: '127.0.0.1', port: server.address().port, ca: cert.ca, servername: 'localhost' });
  const theirs = JSON.parse(await text(client));
  t.equal(theirs.remoteAddress, '127.0.0.1');
  t.equal(theirs.remoteFamily, 'IPv4');
  t.equal(theirs.localPort, server.address().port);
  t.equal(client.remoteAddress, '127.0.0.1');
  t.equal(client.remotePort, server.address().port);
  t.equal(client.remoteFamily, 'IPv4');
});

t.test('importing scif-net changes nothing in node:tls or node:net; the first SCIF socket wraps once', async (t) => {
  const { spawnSync } = require('node:child_process');
  const script = `
    const net = require('node:net'), tls = require('node:tls');
    const original = () => [tls.TLSSocket.prototype._init, net.Socket.prototype._getpeername, net.Socket.prototype._getsockname];
    const before = original();
    const scif = require(${JSON.stringify(require.resolve('..'))});
    const same = (a, b) => a.map((f, i) => f === b[i]);
    const afterImport = same(original(), before);
    const tcp = net.connect(9, '127.0.0.1').on('error', () => {});
    const afterTcp = same(original(), before);
    const first = scif.connect({ node: 0, port: 9 }).on('error', () => {});
    const wrapped = original();
    scif.connect({ node: 0, port: 9 }).on('error', () => {});
    console.log(JSON.stringify({ afterImport, afterTcp, afterScif: same(wrapped, before), again: same(original(), wrapped) }));
    tcp.destroy(); first.destroy();
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 });
  t.equal(r.status, 0, r.stderr);
  t.same(JSON.parse(r.stdout), {
    afterImport: [true, true, true],
    afterTcp: [true, true, true],
    afterScif: [false, false, false],
    again: [true, true, true],
  });
});
