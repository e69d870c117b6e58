// node:http over SCIF, server on node 1 and clients on node 0: keep-alive,
// pipelining, chunked bodies both ways, and 100 MiB each way with checksums.
require('./fixtures/fabric');
const crypto = require('node:crypto');
const http = require('node:http');
const t = require('tap');
const net = require('..');
const { Agent } = require('scif-net/http');
const { startPeer } = require('./fixtures/peer');

const MiB = 1024 * 1024;

function request(url, options, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, options, (res) => {
      const hash = crypto.createHash('sha256');
      const parts = [];
      let bytes = 0;
      res.on('data', (d) => {
        bytes += d.length;
        hash.update(d);
        if (bytes <= MiB) parts.push(d);
      });
      res.on('end', () => resolve({
        res, bytes, sha256: hash.digest('hex'), socket: req.socket,
        text: bytes <= MiB ? Buffer.concat(parts).toString() : null,
      }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (typeof body === 'function') body(req);
    else req.end(body);
  });
}

t.test('node:http against node:http on node 1', async (t) => {
  const peer = startPeer(t, 1, 'http');
  const { port } = await peer.next();
  const base = `http://mic0:${port}`;

  t.test('keep-alive reuses one connection for sequential requests', async (t) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    t.teardown(() => agent.destroy());
    const seen = new Set();
    const sockets = new Set();
    for (let i = 0; i < 5; i++) {
      const r = await request(`${base}/k${i}`, { agent });
      seen.add(JSON.parse(r.text).connection);
      sockets.add(r.socket);
    }
    t.equal(seen.size, 1, 'the server saw one connection');
    t.equal(sockets.size, 1, 'the client used one socket');
  });

  t.test('pipelined requests on one connection are answered in order', async (t) => {
    const sock = net.connect(port, 'mic0');
    const reqs = ['/p1', '/p2', '/p3'].map((p) => `GET ${p} HTTP/1.1\r\nHost: mic0\r\n\r\n`).join('');
    sock.write(reqs);
    let text = '';
    sock.setEncoding('utf8');
    await new Promise((resolve) => sock.on('data', (d) => {
      text += d;
      if ((text.match(/HTTP\/1\.1 200/g) || []).length === 3 && text.includes('"/p3"')) resolve();
    }));
    sock.destroy();
    const order = [...text.matchAll(/"url":"(\/p\d)"/g)].map((m) => m[1]);
    t.same(order, ['/p1', '/p2', '/p3']);
  });

  t.test('chunked bodies both ways', async (t) => {
    const agent = new Agent();
    t.teardown(() => agent.destroy());
    const r = await request(`${base}/chunked`, { agent, method: 'POST' }, (req) => {
      req.write('a'.repeat(1000));
      setImmediate(() => {
        req.write('b'.repeat(2000));
        req.end('c');
      });
    });
    t.equal(r.res.headers['transfer-encoding'], 'chunked', 'the response was chunked');
    t.equal(r.text, 'first,second,third:3001', 'and arrived whole');
    const echo = await request(`${base}/echo`, { agent, method: 'POST' }, (req) => {
      req.write('x'.repeat(500));
      req.end('y'.repeat(700));
    });
    t.match(JSON.parse(echo.text), { bytes: 1200, transferEncoding: 'chunked' });
  });

  t.test('100 MiB upload with checksums on both ends', async (t) => {
    const agent = new Agent();
    t.teardown(() => agent.destroy());
    const hash = crypto.createHash('sha256');
    const total = 100 * MiB;
    const r = await request(`${base}/upload`, { agent, method: 'POST', headers: { 'content-length': total } }, (req) => {
      let sent = 0;
      const block = crypto.randomBytes(MiB);
      const pump = () => {
        while (sent < total) {
          const chunk = Buffer.from(block);
          chunk.writeUInt32LE(sent, 0);
          hash.update(chunk);
          sent += chunk.length;
          if (!req.write(chunk)) return req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    t.match(JSON.parse(r.text), { bytes: total, sha256: hash.digest('hex') });
  });

  t.test('100 MiB download with a checksum trailer', async (t) => {
    const agent = new Agent();
    t.teardown(() => agent.destroy());
    const r = await request(`${base}/download?bytes=${100 * MiB}`, { agent });
    t.equal(r.bytes, 100 * MiB);
    t.equal(r.sha256, r.res.trailers['x-sha256'], 'what arrived is what was sent');
  });
});
