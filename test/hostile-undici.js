// undici through scif-net's connector against a listener that never accepts
// (its process busy or stopped): the connect ends with undici's
// UND_ERR_CONNECT_TIMEOUT, as over TCP, and aborts end it at once - never a
// request that hangs for ever.
require('./fixtures/fabric');
const t = require('tap');
const undici = require('undici');
const scif = require('scif-net/scif');
const net = require('..');
const { createConnector, createDispatcher } = require('scif-net/http');

// A SCIF listener nobody accepts on: callers wait for an answer that never comes.
function wedged(t) {
  const l = scif.listen(0);
  t.teardown(() => l.close());
  return l.localPort;
}

t.test('a dispatcher honours connectTimeout: UND_ERR_CONNECT_TIMEOUT', async (t) => {
  const port = wedged(t);
  const dispatcher = createDispatcher({ connectTimeout: 200 });
  t.teardown(() => dispatcher.destroy());
  const err = await undici.request(`http://localhost:${port}/`, { dispatcher }).then(() => null, (e) => e);
  t.match(err, { code: 'UND_ERR_CONNECT_TIMEOUT' });
  t.ok(err instanceof undici.errors.ConnectTimeoutError, 'undici\'s own error class');
  t.match(err.message, new RegExp(`localhost:${port}.*200ms`));
});

t.test('the connector alone: its timeout, then the socket is gone', async (t) => {
  const port = wedged(t);
  const connector = createConnector({}, { timeout: 100 });
  const [err, socket] = await new Promise((resolve) => connector({ protocol: 'http:', hostname: 'localhost', port: String(port) },
    (e, s) => resolve([e, s])));
  t.equal(socket, null);
  t.match(err, { code: 'UND_ERR_CONNECT_TIMEOUT' });
  // The listener is still there, and a real server on the fabric is reached
  // through the same connector as before.
  const server = net.createServer((s) => s.end('ok'));
  await new Promise((r) => server.listen(0, r));
  const [err2, s2] = await new Promise((resolve) => connector({ protocol: 'http:', hostname: 'localhost', port: String(server.address().port) },
    (e, s) => resolve([e, s])));
  t.equal(err2, null);
  const chunks = [];
  for await (const c of s2) chunks.push(c);
  t.equal(Buffer.concat(chunks).toString(), 'ok');
  await new Promise((r) => server.close(r));
});

t.test('a request aborted while it connects rejects once the connect gives up', async (t) => {
  // undici holds a request's abort until its connect ends (over TCP too),
  // and then reports the connect's error: the connect timeout bounds it.
  const port = wedged(t);
  const dispatcher = createDispatcher({ connectTimeout: 200 });
  t.teardown(() => dispatcher.destroy());
  const ac = new AbortController();
  const pending = undici.request(`http://localhost:${port}/`, { dispatcher, signal: ac.signal }).then(() => null, (e) => e);
  setImmediate(() => ac.abort());
  const err = await pending;
  t.ok(err && (err.name === 'AbortError' || err.code === 'UND_ERR_CONNECT_TIMEOUT'), `${err && err.code}`);
});

t.test('destroy() ends a connect that has no timeout', async (t) => {
  const port = wedged(t);
  const dispatcher = createDispatcher({ connectTimeout: 0 });
  const pending = undici.request(`http://localhost:${port}/`, { dispatcher }).then(() => null, (e) => e);
  setImmediate(() => dispatcher.destroy());
  t.match(await pending, { code: 'UND_ERR_DESTROYED' });
});

t.test("the connector's signal aborts connects under way and refuses new ones", async (t) => {
  const port = wedged(t);
  const ac = new AbortController();
  const connector = createConnector({}, { timeout: 0, signal: ac.signal });
  const first = new Promise((resolve) => connector({ protocol: 'http:', hostname: 'localhost', port: String(port) }, (e) => resolve(e)));
  setImmediate(() => ac.abort(new Error('shutting down')));
  t.match(await first, { message: 'shutting down' });
  const second = await new Promise((resolve) => connector({ protocol: 'http:', hostname: 'localhost', port: String(port) }, (e) => resolve(e)));
  t.match(second, { message: 'shutting down' });
});

t.test('many connects under way on one signal: no listener warning, one abort ends them all', async (t) => {
  const port = wedged(t);
  const warnings = [];
  const onWarning = (w) => warnings.push(w);
  process.on('warning', onWarning);
  t.teardown(() => process.off('warning', onWarning));
  const ac = new AbortController();
  const connector = createConnector({}, { timeout: 0, signal: ac.signal });
  const all = Array.from({ length: 12 }, () => new Promise((resolve) =>
    connector({ protocol: 'http:', hostname: 'localhost', port: String(port) }, (e, s) => resolve([e, s]))));
  setImmediate(() => ac.abort(new Error('shutting down')));
  for (const [err, socket] of await Promise.all(all)) {
    t.equal(socket, null);
    t.match(err, { message: 'shutting down' });
  }
  // Warnings are emitted on the next tick.
  await new Promise((r) => setImmediate(r));
  t.same(warnings.map((w) => w.name), []);
});

t.test('bad timeouts and signals are argument errors', async (t) => {
  for (const timeout of [-1, NaN, Infinity, '10', {}]) {
    t.throws(() => createConnector({}, { timeout }), { code: 'ERR_INVALID_ARG_VALUE' }, String(timeout));
  }
  t.throws(() => createConnector({}, { signal: {} }), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => createConnector({}, null), { code: 'ERR_INVALID_ARG_TYPE' });
});
