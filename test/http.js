// HTTP over SCIF: a node:http server on node 1 answers undici and node:http
// clients on node 0, GET and POST, with keep-alive.
require('./fixtures/fabric');
const crypto = require('node:crypto');
const http = require('node:http');
const t = require('tap');
const undici = require('undici');
const scifHttp = require('scif-net/http');
const { startPeer } = require('./fixtures/peer');

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');

t.test('undici and node:http against node:http on node 1', async (t) => {
  const peer = startPeer(t, 1, 'http');
  const { port } = await peer.next();
  const base = `http://mic0:${port}`;

  t.test('undici GET and POST through createDispatcher', async (t) => {
    const dispatcher = scifHttp.createDispatcher();
    t.teardown(() => dispatcher.close());
    const get = await undici.request(`${base}/hello?x=1`, { dispatcher });
    t.equal(get.statusCode, 200);
    const body = await get.body.json();
    t.match(body, { method: 'GET', url: '/hello?x=1', bytes: 0, remoteAddress: 'scif:0', remoteFamily: 'SCIF' });

    const payload = crypto.randomBytes(3 * 1024 * 1024 + 17);
    const post = await undici.request(`${base}/upload`, { method: 'POST', body: payload, dispatcher });
    t.match(await post.body.json(), { method: 'POST', bytes: payload.length, sha256: sha256(payload) });

    const big = await undici.request(`${base}/blob/5000000`, { dispatcher });
    const buf = Buffer.from(await big.body.arrayBuffer());
    t.equal(buf.length, 5000000);
    t.ok(buf.every((b) => b === 0x5a));

    const res = await undici.fetch(`${base}/fetched`, { dispatcher });
    t.match(await res.json(), { url: '/fetched' });
  });

  t.test('undici keeps the connection alive between requests', async (t) => {
    // One connection per origin, so that reuse is the only way to serve five.
    const dispatcher = scifHttp.createDispatcher({ connections: 1 });
    t.teardown(() => dispatcher.close());
    const connections = new Set();
    for (let i = 0; i < 5; i++) {
      const r = await undici.request(`${base}/n${i}`, { dispatcher });
      connections.add((await r.body.json()).connection);
    }
    t.equal(connections.size, 1, 'all five requests came over one connection');
  });

  t.test('node:http through the scif-net Agent, keep-alive', async (t) => {
    const agent = new scifHttp.Agent({ keepAlive: true, maxSockets: 1 });
    t.teardown(() => agent.destroy());
    const ask = (path, method = 'GET', body) => new Promise((resolve, reject) => {
      const req = http.request(`${base}${path}`, { method, agent }, (res) => {
        const parts = [];
        res.on('data', (d) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(Buffer.concat(parts)), socket: req.socket }));
      });
      req.on('error', reject);
      req.end(body);
    });
    const a = await ask('/a');
    t.match(a, { status: 200, body: { method: 'GET', url: '/a' } });
    const payload = crypto.randomBytes(1024 * 1024);
    const b = await ask('/b', 'POST', payload);
    t.match(b.body, { method: 'POST', bytes: payload.length, sha256: sha256(payload) });
    t.equal(a.socket, b.socket, 'the second request reused the kept-alive socket');
    t.equal(a.socket.remoteFamily, 'SCIF');
  });
});
