// WebSocket over SCIF with the ws package: a WebSocketServer on node:http's
// 'upgrade' served over SCIF on node 1 (fixtures/interop-roles.js 'ws'), ws
// clients on node 0 connecting to ws://mic0:PORT/ through scif-net/http's
// Agent or a scif-net createConnection: text and binary messages, ping/pong,
// closes with code and reason seen on both sides, and a terminated client.
require('./fixtures/fabric');
const crypto = require('node:crypto');
const t = require('tap');
const WebSocket = require('ws');
const net = require('..');
const scifHttp = require('scif-net/http');
const { startRole } = require('./fixtures/interop-peer');

const MiB = 1024 * 1024;
const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const { onceArgs: once } = require('./helpers');

let ids = 0;

t.test('ws over SCIF against a WebSocketServer on node 1', async (t) => {
  const peer = startRole(t, 1, 'ws');
  const { port } = await peer.next();
  const url = `ws://mic0:${port}/echo`;
  const report = (id, event) => peer.until((m) => m.id === id && m.event === event);

  // Ways for a ws client to reach the server over SCIF.
  const clients = {
    "scif-net/http's Agent": (headers) => new WebSocket(url, { agent: new scifHttp.Agent(), headers }),
    'createConnection: scif-net connect': (headers) => new WebSocket(url, {
      createConnection: (opts) => net.connect({ host: opts.host, port: Number(opts.port) }),
      headers,
    }),
  };
  /** A client, open, and the server's report of its connection. */
  async function open(t, how = "scif-net/http's Agent", options = {}) {
    const id = String(++ids);
    const ws = clients[how]({ 'x-test-id': id });
    t.teardown(() => ws.terminate());
    const errors = [];
    ws.on('error', (err) => errors.push(err));
    const closed = once(ws, 'close');
    await Promise.race([once(ws, 'open'), closed.then(() => { throw errors[0] ?? new Error('closed before open'); })]);
    const connection = await report(id, 'connection');
    return { id, ws, closed, errors, connection, ...options };
  }

  for (const how of Object.keys(clients)) {
    t.test(`text and binary messages, through ${how}`, { timeout: 10000 }, async (t) => {
      const { id, ws, closed, connection, errors } = await open(t, how);
      t.match(connection, { url: '/echo', remoteAddress: 'scif:0', remoteFamily: 'SCIF' }, 'the server sees a SCIF peer');
      t.equal(ws._socket.remoteFamily, 'SCIF', 'the client rides a scif-net socket');
      t.type(ws._socket, net.Socket);

      const texts = ['hello', 'ünïcödé ✓ 🚀', 'x'.repeat(70000)];
      for (const text of texts) {
        ws.send(text);
        const [data, isBinary] = await once(ws, 'message');
        t.equal(isBinary, false, 'text comes back as text');
        t.equal(data.toString(), text, `text of ${text.length} chars echoed`);
      }

      const blob = crypto.randomBytes(4 * MiB);
      const started = process.hrtime.bigint();
      ws.send(blob);
      const [back, isBinary] = await once(ws, 'message');
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      t.equal(isBinary, true);
      t.equal(back.length, blob.length, `4 MiB came back (${ms.toFixed(0)} ms round trip)`);
      t.equal(sha256(back), sha256(blob), 'intact');
      t.match(await report(id, 'binary'), { bytes: blob.length, sha256: sha256(blob) }, 'and the server got it intact');

      ws.close(1000, 'done');
      const [code, reason] = await closed;
      t.equal(code, 1000);
      t.equal(reason.toString(), 'done');
      t.match(await report(id, 'close'), { code: 1000, reason: 'done' });
      t.same(errors, []);
    });
  }

  t.test('ping and pong both ways', { timeout: 10000 }, async (t) => {
    const { id, ws } = await open(t);
    ws.ping('from-client');
    const [pong] = await once(ws, 'pong');
    t.equal(pong.toString(), 'from-client', 'the server answered our ping with its payload');
    t.match(await report(id, 'ping'), { payload: 'from-client' });

    const pinged = once(ws, 'ping');
    ws.send('ping-me');
    const [ping] = await pinged;
    t.equal(ping.toString(), 'from-server', 'the server pinged us');
    t.match(await report(id, 'pong'), { payload: 'from-server' }, 'and got our automatic pong');
    ws.close();
    await report(id, 'close');
  });

  t.test('the client closes with a code and reason', { timeout: 10000 }, async (t) => {
    const { id, ws, closed, errors } = await open(t);
    ws.close(4000, 'client says bye');
    t.equal(ws.readyState, WebSocket.CLOSING);
    const [code, reason] = await closed;
    t.equal(code, 4000, 'the client sees its own code echoed');
    t.equal(reason.toString(), 'client says bye');
    t.match(await report(id, 'close'), { code: 4000, reason: 'client says bye' }, 'the server saw code and reason');
    t.equal(ws.readyState, WebSocket.CLOSED);
    t.same(errors, []);
  });

  t.test('the server closes with a code and reason', { timeout: 10000 }, async (t) => {
    const { id, ws, closed, errors } = await open(t);
    const socket = ws._socket;
    ws.send('close-me');
    const [code, reason] = await closed;
    t.equal(code, 4001, 'the client sees the server\'s code');
    t.equal(reason.toString(), 'server says bye');
    t.match(await report(id, 'close'), { code: 4001, reason: 'server says bye' });
    t.ok(socket.destroyed, 'the SCIF socket is closed');
    t.same(errors, []);
  });

  t.test('the server terminates a client: close 1006, no hang', { timeout: 10000 }, async (t) => {
    const { id, ws, closed, errors } = await open(t);
    const socket = ws._socket;
    const socketClosed = once(socket, 'close');
    ws.send('terminate-me');
    const [code, reason] = await closed;
    t.equal(code, 1006, 'abnormal closure');
    t.equal(reason.toString(), '');
    t.match(await report(id, 'terminated'), { event: 'terminated' });
    t.match(await report(id, 'close'), { code: 1006 }, 'the server side closed abnormally too');
    await socketClosed;
    t.ok(socket.destroyed);
    t.same(errors, [], 'ws reports no error for a terminated connection');
  });

  t.test('the client terminates: the server sees 1006', { timeout: 10000 }, async (t) => {
    const { id, ws, closed } = await open(t);
    ws.send('still here?');
    await once(ws, 'message');
    ws.terminate();
    t.equal((await closed)[0], 1006);
    t.match(await report(id, 'close'), { code: 1006, reason: '' }, 'the server saw the connection drop');
  });

  t.test('an upgrade the server refuses is an error, not a hang', { timeout: 10000 }, async (t) => {
    const ws = new WebSocket(`ws://mic0:${port}/nowhere`, { agent: new scifHttp.Agent() });
    const closed = once(ws, 'close');
    const [err] = await once(ws, 'error');
    t.match(err.message, /Unexpected server response: 404/);
    const [code] = await closed;
    t.equal(code, 1006);
  });

  t.test('many clients at once', { timeout: 10000 }, async (t) => {
    const all = await Promise.all(Array.from({ length: 20 }, () => open(t)));
    const replies = await Promise.all(all.map(async ({ ws }, i) => {
      ws.send(`client ${i}`);
      const [data] = await once(ws, 'message');
      return data.toString();
    }));
    t.same(replies, all.map((_, i) => `client ${i}`));
    for (const { ws } of all) ws.close(1000);
    for (const { id, closed } of all) {
      t.equal((await closed)[0], 1000);
      await report(id, 'close');
    }
  });
});
