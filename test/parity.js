// Parity with node:net, checked rather than assumed: every scenario runs
// once over node:net (TCP loopback) and once over scif-net, and the sockets
// and servers involved must show the same sequence of events and errors.
require('./fixtures/fabric');
const tcpNet = require('node:net');
const t = require('tap');
const scifNet = require('..');

const transports = {
  tcp: { net: tcpNet, listen: (s, cb) => s.listen(0, '127.0.0.1', cb), connect: (port, opts = {}) => tcpNet.connect({ port, host: '127.0.0.1', ...opts }) },
  scif: { net: scifNet, listen: (s, cb) => s.listen(0, cb), connect: (port, opts = {}) => scifNet.connect({ port, ...opts }) },
};

const SOCKET_EVENTS = ['connect', 'ready', 'data', 'end', 'finish', 'timeout', 'error', 'close', 'drain'];
const SERVER_EVENTS = ['listening', 'connection', 'error', 'close', 'drop'];

function describe(name, args) {
  if (name === 'error') return `error:${args[0].code}:${args[0].syscall ?? ''}`;
  if (name === 'close' && args.length) return `close:${args[0]}`;
  return name;
}

/** Logs an emitter's events; runs of 'data' count as one. */
function record(emitter, names, log = []) {
  for (const name of names) {
    emitter.on(name, (...args) => {
      const entry = describe(name, args);
      if (entry === 'data' && log[log.length - 1] === 'data') return;
      log.push(entry);
    });
  }
  return log;
}

const { once } = require('./helpers');

/** A listening server whose accepted sockets are recorded; resolves with handles for the scenario. */
async function setup(tr, serverOptions = {}, onConnection = () => {}) {
  const server = tr.net.createServer(serverOptions);
  const logs = { server: record(server, SERVER_EVENTS), accepted: [] };
  const accepted = [];
  const closed = [];
  server.on('connection', (s) => {
    logs.accepted.push(record(s, SOCKET_EVENTS));
    accepted.push(s);
    closed.push(once(s, 'close'));
    onConnection(s);
  });
  await new Promise((r) => tr.listen(server, r));
  const port = server.address().port;
  // Closes the server once every accepted socket has closed: which of two
  // sockets in one process closes first is timing, not behaviour. Nor is
  // whether the server's 'connection' comes before the client has connected
  // and gone (over SCIF the accept may finish on the threadpool, after the
  // client heard of it): a connection the client made is waited for.
  const allClosed = () => Promise.all(closed);
  const finish = async (connections = 1) => {
    while (accepted.length < connections) await once(server, 'connection');
    await allClosed();
    await new Promise((r) => server.close(r));
  };
  return { server, port, logs, accepted, finish, allClosed };
}

const scenarios = {
  async 'echo, then the client ends'(tr) {
    const { server, port, logs, finish } = await setup(tr, {}, (s) => s.pipe(s));
    const c = tr.connect(port);
    const client = record(c, SOCKET_EVENTS);
    c.on('connect', () => c.write('ping'));
    c.once('data', () => c.end());
    await once(c, 'close');
    await finish();
    return { client, accepted: logs.accepted, server: logs.server };
  },

  async 'the server ends first, without allowHalfOpen'(tr) {
    const { server, port, logs, finish } = await setup(tr, {}, (s) => s.end('bye'));
    const c = tr.connect(port);
    const client = record(c, SOCKET_EVENTS);
    c.resume();
    await once(c, 'close');
    await finish();
    return { client, accepted: logs.accepted, server: logs.server };
  },

  async 'half-open both ways'(tr) {
    const { server, port, logs, finish } = await setup(tr, { allowHalfOpen: true }, (s) => {
      s.resume();
      s.on('end', () => s.end('answer'));
    });
    const c = tr.connect(port, { allowHalfOpen: true });
    const client = record(c, SOCKET_EVENTS);
    const states = [c.readyState];
    c.on('connect', () => {
      states.push(c.readyState);
      c.end('question');
      states.push(c.readyState);
    });
    c.on('end', () => states.push(c.readyState));
    c.resume();
    await once(c, 'close');
    states.push(c.readyState);
    await finish();
    return { client, accepted: logs.accepted, server: logs.server, states, bytes: [c.bytesRead, c.bytesWritten] };
  },

  async 'the client destroys a quiet connection'(tr) {
    const { server, port, logs, accepted, finish } = await setup(tr, {}, (s) => s.resume());
    const c = tr.connect(port);
    const client = record(c, SOCKET_EVENTS);
    await once(c, 'connect');
    while (accepted.length === 0) await once(server, 'connection');
    c.destroy();
    await once(accepted[0], 'close');
    await finish();
    return { client, accepted: logs.accepted, server: logs.server };
  },

  async 'resetAndDestroy'(tr) {
    const { server, port, logs, accepted, finish } = await setup(tr, {}, (s) => s.resume());
    const c = tr.connect(port);
    const client = record(c, SOCKET_EVENTS);
    await once(c, 'connect');
    while (accepted.length === 0) await once(server, 'connection');
    c.resetAndDestroy();
    await once(accepted[0], 'close');
    await finish();
    return { client, accepted: logs.accepted, server: logs.server };
  },

  async 'destroying with unread data resets the peer'(tr) {
    const { server, port, logs, accepted, finish } = await setup(tr, { pauseOnConnect: true });
    const c = tr.connect(port);
    const client = record(c, SOCKET_EVENTS);
    c.resume();
    await once(c, 'connect');
    // Less than SCIF's 4 KiB queue holds: a write completes once its bytes are
    // in the queue (nothing acknowledged is lost if the writer dies), so a
    // larger one waits for the paused reader where TCP's buffers take it.
    await new Promise((r) => c.write(Buffer.alloc(3000, 1), r));
    while (accepted.length === 0) await once(server, 'connection');
    accepted[0].destroy();
    await once(c, 'close');
    await finish();
    return { client, accepted: logs.accepted, server: logs.server };
  },

  async 'nobody listening'(tr) {
    const { server, port } = await setup(tr);
    await new Promise((r) => server.close(r));
    const c = tr.connect(port);
    const client = record(c, SOCKET_EVENTS);
    const states = [c.readyState, c.pending, c.connecting];
    const err = await once(c, 'error');
    await once(c, 'close');
    return { client, states, err: [err.code, err.errno, err.syscall, err.port === port, typeof err.address] };
  },

  async 'write after end'(tr) {
    const { server, port, logs, finish } = await setup(tr, {}, (s) => s.resume());
    const c = tr.connect(port);
    const client = record(c, SOCKET_EVENTS);
    await once(c, 'connect');
    c.end('done');
    const err = await new Promise((resolve) => c.write('more', resolve));
    await once(c, 'close');
    await finish();
    return { client, accepted: logs.accepted, server: logs.server, err: err.code };
  },

  async 'an idle timeout'(tr) {
    const { server, port, logs, finish } = await setup(tr, {}, (s) => s.resume());
    const c = tr.connect(port);
    const client = record(c, SOCKET_EVENTS);
    c.setTimeout(20);
    await once(c, 'timeout');
    const alive = !c.destroyed;
    c.destroy();
    await once(c, 'close');
    await finish();
    return { client, accepted: logs.accepted, server: logs.server, alive, timeout: c.timeout };
  },

  async 'destroy with an error'(tr) {
    const { server, port, logs, finish } = await setup(tr, {}, (s) => s.resume());
    const c = tr.connect(port);
    const client = record(c, SOCKET_EVENTS);
    await once(c, 'connect');
    const boom = Object.assign(new Error('boom'), { code: 'EBOOM' });
    c.destroy(boom);
    await once(c, 'close');
    await finish();
    return { client, accepted: logs.accepted, server: logs.server };
  },

  async 'server.close waits for its last connection'(tr) {
    const { server, port, logs, accepted, allClosed } = await setup(tr, {}, (s) => s.resume());
    const order = [];
    const c = tr.connect(port);
    c.resume();
    await once(c, 'connect');
    while (accepted.length === 0) await once(server, 'connection');
    server.close(() => order.push('close callback'));
    order.push(`listening=${server.listening}`);
    server.getConnections((err, n) => order.push(`connections=${n}`));
    await new Promise((r) => setImmediate(r));
    order.push('ending the client');
    c.end();
    await once(server, 'close');
    await new Promise((r) => setImmediate(r));
    const notRunning = await new Promise((r) => server.close(r));
    await allClosed();
    return { accepted: logs.accepted, server: logs.server, order, notRunning: notRunning.code };
  },

  async 'a port in use'(tr) {
    const { server, port } = await setup(tr);
    const other = tr.net.createServer();
    const log = record(other, SERVER_EVENTS);
    other.listen(port, tr === transports.tcp ? '127.0.0.1' : undefined);
    const err = await once(other, 'error');
    await new Promise((r) => server.close(r));
    return { log, err: [err.code, err.errno, err.syscall, err.port === port], listening: other.listening };
  },

  async 'maxConnections drops the next one'(tr) {
    const { server, port, logs, finish } = await setup(tr, {}, (s) => s.resume());
    server.maxConnections = 1;
    const first = tr.connect(port);
    await once(server, 'connection');
    const dropped = once(server, 'drop');
    const second = tr.connect(port);
    const secondLog = record(second, SOCKET_EVENTS);
    second.resume();
    const info = await dropped;
    await once(second, 'close');
    first.destroy();
    await finish();
    return { server: logs.server, second: secondLog, drop: Object.keys(info).sort() };
  },

  async 'writes before the connection is up'(tr) {
    let got = '';
    const { server, port, finish } = await setup(tr, {}, (s) => s.setEncoding('utf8').on('data', (d) => (got += d)));
    const c = tr.connect(port);
    const client = record(c, SOCKET_EVENTS);
    const before = [c.write('early '), c.pending];
    c.end('and late', () => client.push('end callback'));
    await once(c, 'close');
    await finish();
    return { client, got, before, written: c.bytesWritten };
  },

  async 'pause and resume'(tr) {
    const { server, port, finish } = await setup(tr, {}, (s) => s.end(Buffer.alloc(100000, 1)));
    const c = tr.connect(port);
    const client = record(c, SOCKET_EVENTS);
    c.pause();
    await once(c, 'connect');
    // Paused, the socket still reads into its buffer, up to its high water mark.
    while (c.readableLength === 0) await new Promise((r) => setImmediate(r));
    const pausedRead = c.bytesRead > 0 && c.readableLength > 0;
    let got = 0;
    c.on('data', (d) => (got += d.length));
    c.resume();
    await once(c, 'close');
    await finish();
    return { client, got, pausedRead };
  },
};

/**
 * A client whose connect an AbortSignal aborts (`abort(socket, controller)`
 * does it), then a probe connection: the server's log shows whether the
 * aborted connection ever reached it (it would be accepted before the probe).
 */
async function abortedConnect(tr, abort) {
  const { server, port, logs, accepted, finish } = await setup(tr, {}, (s) => s.resume());
  const ac = new AbortController();
  const c = tr.connect(port, { signal: ac.signal });
  const client = record(c, SOCKET_EVENTS);
  abort(c, ac);
  const err = await once(c, 'error');
  await once(c, 'close');
  const probe = tr.connect(port);
  probe.end('probe');
  await once(probe, 'close');
  while (accepted.length === 0 || accepted[accepted.length - 1].readableEnded === false) {
    await once(accepted[accepted.length - 1] ?? server, accepted.length ? 'end' : 'connection');
  }
  await finish();
  return { client, accepted: logs.accepted, server: logs.server, err: [err.name, err.code, err.cause?.name] };
}

/**
 * Both ends of one connection in one log, from the moment both are connected
 * (a client's 'connect' comes a loop turn after the server's 'connection' over
 * SCIF, where a connect completes once the listener has accepted it). Code
 * that awaits one end's events and then the other's relies on this order.
 */
async function bothEnds(tr, act, { serverOptions = {}, clientOptions = {} } = {}) {
  const server = tr.net.createServer(serverOptions);
  await new Promise((r) => tr.listen(server, r));
  const accepted = once(server, 'connection');
  const c = tr.connect(server.address().port, clientOptions);
  await once(c, 'connect');
  const s = await accepted;
  const log = [];
  for (const [who, socket] of [['client', c], ['server', s]]) {
    for (const name of SOCKET_EVENTS) {
      socket.on(name, (...args) => {
        const entry = `${who}:${describe(name, args)}`;
        if (entry !== log[log.length - 1] || name !== 'data') log.push(entry);
      });
    }
    socket.resume();
  }
  const closed = Promise.all([once(c, 'close'), once(s, 'close')]);
  act(c, s);
  await closed;
  await new Promise((r) => server.close(r));
  return log;
}

const closes = (log) => log.filter((entry) => entry.includes(':close'));

// Each end's own events in order, and which end closed first. How the events
// of two sockets in one process interleave beyond that follows the loop's
// phases (which descriptor epoll reports first, which callback libuv feeds
// to which phase), not what either socket did; this scenario's differs.
const byEnd = (log) => ({
  client: log.filter((e) => e.startsWith('client:')),
  server: log.filter((e) => e.startsWith('server:')),
  closes: closes(log),
});


Object.assign(scenarios, {
  'both ends: the client ends first'(tr) {
    return bothEnds(tr, (c) => c.end());
  },

  async 'both ends: the server ends first'(tr) {
    return bothEnds(tr, (c, s) => s.end('bye'));
  },

  async 'both ends: the client ends, the server echoes'(tr) {
    return byEnd(await bothEnds(tr, (c, s) => {
      s.pipe(s);
      c.end('ping');
    }));
  },

  'both ends: half-open, the server answers the client\'s end'(tr) {
    return bothEnds(tr, (c, s) => {
      s.on('end', () => s.end('answer'));
      c.end('question');
    }, { serverOptions: { allowHalfOpen: true }, clientOptions: { allowHalfOpen: true } });
  },

  async 'which end closes first: the server ends first'(tr) {
    return closes(await scenarios['both ends: the server ends first'](tr));
  },

  async 'which end closes first: the client ends, the server echoes'(tr) {
    return (await scenarios['both ends: the client ends, the server echoes'](tr)).closes;
  },

  'both ends: the client destroys'(tr) {
    return bothEnds(tr, (c) => c.destroy());
  },

  'both ends: the server destroys'(tr) {
    return bothEnds(tr, (c, s) => s.destroy());
  },

  'both ends: the client resets'(tr) {
    return bothEnds(tr, (c, s) => {
      s.on('error', () => {});
      c.resetAndDestroy();
    });
  },

  'a connect aborted at once'(tr) {
    return abortedConnect(tr, (c, ac) => ac.abort());
  },

  'a connect aborted on the next tick, while under way'(tr) {
    return abortedConnect(tr, (c, ac) => process.nextTick(() => ac.abort()));
  },

  'a connect aborted once connected'(tr) {
    return abortedConnect(tr, (c, ac) => c.once('connect', () => ac.abort()));
  },
});


for (const [name, run] of Object.entries(scenarios)) {
  t.test(name, async (t) => {
    const tcp = await run(transports.tcp);
    const scif = await run(transports.scif);
    t.same(scif, tcp, 'scif-net shows what node:net shows');
  });
}
