// undici@7 over SCIF: Client, Pool and Agent with scif-net's connector;
// request, stream and fetch; keep-alive, aborts, and a server that closes
// idle connections.
require('./fixtures/fabric');
const crypto = require('node:crypto');
const { Writable } = require('node:stream');
const t = require('tap');
const undici = require('undici');
const { createConnector, createDispatcher } = require('scif-net/http');
const { startPeer } = require('./fixtures/peer');

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');

t.test('undici against node:http on node 1', async (t) => {
  const peer = startPeer(t, 1, 'http');
  const { port } = await peer.next();
  const origin = `http://mic0:${port}`;

  t.test('Client: request, stream and keep-alive on one connection', async (t) => {
    const client = new undici.Client(origin, { connect: createConnector() });
    t.teardown(() => client.close());
    const connections = new Set();
    for (let i = 0; i < 3; i++) {
      const { statusCode, body } = await client.request({ path: `/c${i}`, method: 'GET' });
      t.equal(statusCode, 200);
      connections.add((await body.json()).connection);
    }
    t.equal(connections.size, 1, 'three requests, one connection');
    const chunks = [];
    await client.stream({ path: '/blob/300000', method: 'GET' }, () => new Writable({
      write(chunk, enc, cb) {
        chunks.push(chunk);
        cb();
      },
    }));
    const streamed = Buffer.concat(chunks);
    t.equal(streamed.length, 300000);
    t.ok(streamed.every((b) => b === 0x5a));
  });

  t.test('Pool: concurrent requests over several connections', async (t) => {
    const pool = new undici.Pool(origin, { connect: createConnector(), connections: 4 });
    t.teardown(() => pool.close());
    const bodies = Array.from({ length: 32 }, (_, i) => crypto.randomBytes(1000 + i * 100));
    const answers = await Promise.all(bodies.map(async (b, i) => {
      const { body } = await pool.request({ path: `/p${i}`, method: 'POST', body: b });
      return body.json();
    }));
    answers.forEach((a, i) => t.equal(a.sha256, sha256(bodies[i]), `request ${i} intact`));
    t.ok(new Set(answers.map((a) => a.connection)).size > 1, 'spread over several connections');
    t.ok(new Set(answers.map((a) => a.connection)).size <= 4, 'no more than the pool allows');
  });

  t.test('Client with pipelining keeps answers in order', async (t) => {
    const client = new undici.Client(origin, { connect: createConnector(), pipelining: 8 });
    t.teardown(() => client.close());
    const urls = await Promise.all(Array.from({ length: 16 }, async (_, i) => {
      const { body } = await client.request({ path: `/q${i}`, method: 'GET' });
      return (await body.json()).url;
    }));
    t.same(urls, Array.from({ length: 16 }, (_, i) => `/q${i}`));
  });

  t.test('Agent and fetch through createDispatcher', async (t) => {
    const dispatcher = createDispatcher();
    t.teardown(() => dispatcher.close());
    const res = await undici.fetch(`${origin}/fetch?x=1`, { dispatcher, method: 'POST', body: 'hello' });
    t.equal(res.status, 200);
    t.match(await res.json(), { method: 'POST', url: '/fetch?x=1', bytes: 5 });
    const big = await undici.fetch(`${origin}/blob/2000000`, { dispatcher });
    t.equal((await big.arrayBuffer()).byteLength, 2000000);
  });

  t.test('an aborted request gives up its connection; the next one works', async (t) => {
    const client = new undici.Client(origin, { connect: createConnector() });
    t.teardown(() => client.close());
    const ac = new AbortController();
    const pending = client.request({ path: '/slow', method: 'GET', signal: ac.signal });
    // Abort once the request is in (sooner, on a loaded machine, it may never
    // have reached the server, which then has nobody to see go).
    t.same(await peer.next(), { slowArrived: true });
    ac.abort();
    await t.rejects(pending, { name: 'AbortError' });
    t.same(await peer.next(), { slowClientGone: true }, 'the server saw the client go');
    const { statusCode, body } = await client.request({ path: '/after', method: 'GET' });
    t.equal(statusCode, 200);
    t.match(await body.json(), { url: '/after' });
  });

  t.test('the server closes an idle connection; undici reconnects quietly', async (t) => {
    const client = new undici.Client(origin, { connect: createConnector(), keepAliveTimeout: 60000 });
    t.teardown(() => client.close());
    const first = await client.request({ path: '/one', method: 'GET' });
    const firstConnection = (await first.body.json()).connection;
    const disconnected = new Promise((resolve) => client.once('disconnect', resolve));
    peer.send('closeIdle');
    t.same(await peer.next(), { closedIdle: true });
    await disconnected;
    const second = await client.request({ path: '/two', method: 'GET' });
    const secondConnection = (await second.body.json()).connection;
    t.ok(firstConnection >= 1, 'the server numbers its connections');
    t.not(secondConnection, firstConnection, 'a new connection');
  });

  t.test('a refused connection is an error, not a hang', async (t) => {
    const client = new undici.Client('http://mic2:1999', { connect: createConnector() });
    t.teardown(() => client.destroy());
    await t.rejects(client.request({ path: '/', method: 'GET' }), { code: 'ECONNREFUSED' });
  });
});
