// Behaviours Node's own net tests (npm run test:node-net) found differing
// from node:net, each checked here against node:net itself where it can be.
require('./fixtures/fabric');
const tcpNet = require('node:net');
const t = require('tap');
const net = require('..');

const { once } = require('./helpers');

t.test('Socket, Server and Stream may be called without new, as node:net\'s may', async (t) => {
  const socket = net.Socket();
  t.ok(socket instanceof net.Socket);
  t.ok(socket instanceof tcpNet.Socket, 'still a node:net Socket');
  t.equal(socket.constructor, net.Socket);
  t.ok(net.Stream({ highWaterMark: 0 }) instanceof net.Socket);
  t.equal(net.Stream, net.Socket);
  t.equal(net.Socket.length, tcpNet.Socket.length);

  const server = net.Server(() => {});
  t.ok(server instanceof net.Server);
  t.ok(server instanceof tcpNet.Server);
  t.equal(server.listenerCount('connection'), 1, 'the listener argument is kept');
  await new Promise((r) => server.listen(0, r));
  t.equal(server.address().family, 'SCIF', 'and it listens over SCIF');
  const client = net.Socket().connect(server.address().port);
  await once(client, 'connect');
  client.destroy();
  await new Promise((r) => server.close(r));
});

t.test('user subclasses of Socket and Server still work', async (t) => {
  class MySocket extends net.Socket {
    hello() {
      return 'hello';
    }
  }
  class MyServer extends net.Server {}
  const server = new MyServer((s) => s.end('bye'));
  t.ok(server instanceof MyServer && server instanceof net.Server && server instanceof tcpNet.Server);
  await new Promise((r) => server.listen(0, r));
  const s = new MySocket();
  t.ok(s instanceof MySocket && s instanceof net.Socket && s instanceof tcpNet.Socket);
  t.equal(s.constructor, MySocket);
  t.equal(s.hello(), 'hello');
  s.connect(server.address().port);
  s.setEncoding('utf8');
  let got = '';
  s.on('data', (d) => (got += d));
  await once(s, 'close');
  t.equal(got, 'bye');
  t.equal(s.remoteFamily, 'SCIF');
  t.throws(() => MySocket(), TypeError, 'a user\'s own class keeps its own rules');
  await new Promise((r) => server.close(r));
});

t.test('net._setSimultaneousAccepts is there, deprecated, as in node:net', async (t) => {
  t.equal(net._setSimultaneousAccepts, tcpNet._setSimultaneousAccepts);
});

/** What listen(...args) throws, as { code, name, message }, or null. */
function listenThrows(mod, ...args) {
  const server = mod.createServer();
  try {
    server.listen(...args);
  } catch (err) {
    return { code: err.code, name: err.name, message: err.message };
  }
  server.close();
  return null;
}

t.test('listen() rejects bad options with node:net\'s errors', async (t) => {
  const cases = [
    [{ port: false }], [{ port: true }], [{}], [{ host: 'localhost' }], [{ host: { port: 3000 } }],
    [{ exclusive: true }], [{ fd: -1 }], [{ path: -1 }], [true], [false],
    [{ port: 0, signal: 'INVALID_SIGNAL' }], [{ port: 0, signal: null }], [{ port: -1, signal: {} }],
    [-1], [65536], [1.5], [{ port: -1, path: '/some/path' }], [{ port: 'x' }],
  ];
  for (const args of cases) {
    const ours = listenThrows(net, ...args);
    const theirs = listenThrows(tcpNet, ...args);
    t.ok(theirs, `node:net throws for ${JSON.stringify(args)}`);
    t.same(ours, theirs, `listen(${JSON.stringify(args)})`);
  }
});

t.test('listen() takes what node:net takes for any free port, over SCIF', async (t) => {
  const forms = [[], [null], [undefined], [{ port: undefined }], [{ port: null }], ['0'], [{ port: '0', backlog: 'x' }]];
  for (const args of forms) {
    const server = net.createServer();
    await new Promise((r) => server.listen(...args, r));
    t.equal(server.address().family, 'SCIF', `listen(${args.map((a) => JSON.stringify(a)).join(', ')})`);
    t.equal(server._connectionKey, 'F:scif:0:0', 'node:net\'s connection key, as its tests derive it');
    await new Promise((r) => server.close(r));
  }
});

t.test('listen() with an AbortSignal closes the server on abort', async (t) => {
  const ac = new AbortController();
  const server = net.createServer();
  await new Promise((r) => server.listen({ port: 0, signal: ac.signal }, r));
  ac.abort();
  await once(server, 'close');
  const early = net.createServer();
  early.listen({ port: 0, signal: AbortSignal.abort() });
  await once(early, 'close');
  t.equal(early.listening, false);
});

t.test('bytesWritten counts what was written before the connection was up', async (t) => {
  let got = '';
  const server = net.createServer((s) => s.setEncoding('utf8').on('data', (d) => (got += d)));
  await new Promise((r) => server.listen(0, r));
  const s = net.Stream({ highWaterMark: 0 });
  s.connect(server.address().port);
  const a = "L'État, c'est ";
  const firstWritten = new Promise((resolve) => s.write(a, resolve));
  t.ok(s.connecting);
  t.equal(s.bytesWritten, Buffer.byteLength(a), 'the first write, waiting for the connection');
  s.write(Buffer.from('moi'));
  t.equal(s.bytesWritten, Buffer.byteLength(a) + 3, 'and the one queued behind it');
  await firstWritten;
  t.equal(s.bytesWritten, Buffer.byteLength(a) + 3, 'not counted twice once written');
  s.end();
  await once(s, 'close');
  t.equal(s.bytesWritten, Buffer.byteLength(a) + 3);
  t.equal(got, "L'État, c'est moi");

  const never = net.connect(server.address().port);
  never.write('xyz', () => {});
  t.equal(never.bytesWritten, 3);
  never.destroy();
  await once(never, 'close');
  await new Promise((r) => server.close(r));
});

const transports = {
  tcp: { net: tcpNet, listen: (s, cb) => s.listen(0, '127.0.0.1', cb), host: '127.0.0.1' },
  scif: { net, listen: (s, cb) => s.listen(0, cb), host: undefined },
};

/** Connects with an onread option to a server that sends `message` and ends; the log of what the socket saw. */
async function onreadLog(tr, message, makeOnread) {
  const server = tr.net.createServer((s) => s.end(message));
  await new Promise((r) => tr.listen(server, r));
  const log = [];
  const sock = tr.net.connect({ port: server.address().port, host: tr.host, onread: makeOnread(log) });
  sock.on('data', () => log.push('data'));
  await once(sock, 'end');
  log.push('end');
  await once(sock, 'close');
  await new Promise((r) => server.close(r));
  return log;
}

t.test('onread: the callback sees each chunk as node:net delivers it', async (t) => {
  const message = Buffer.from('hello world');
  const scenarios = {
    'a static buffer': (log) => {
      const buffer = Buffer.alloc(8);
      return { buffer, callback: (n, buf) => log.push(`${n}:${buf === buffer}:${buf.subarray(0, n)}`) };
    },
    'a buffer factory, asked once more than there are chunks': (log) => {
      const pool = [Buffer.alloc(2), Buffer.alloc(2), Buffer.alloc(2)];
      let i = -1;
      return {
        buffer: () => {
          log.push('buffer()');
          i = (i + 1) % pool.length;
          return pool[i];
        },
        callback: (n, buf) => log.push(`${n}:${buf === pool[i]}:${buf.subarray(0, n)}`),
      };
    },
    'pause() in the callback: nothing more until resume()': (log) => ({
      buffer: Buffer.alloc(4),
      callback(n, buf) {
        log.push(`${n}:${buf.subarray(0, n)}`);
        this.pause();
        setTimeout(() => {
          log.push(`resume, paused=${this.isPaused()}`);
          this.resume();
        }, 20);
      },
    }),
    'returning false: nothing more until resume(), and not paused': (log) => ({
      buffer: new Uint8Array(4),
      callback(n, buf) {
        log.push(`${n}:${Buffer.from(buf.subarray(0, n))}`);
        setTimeout(() => {
          log.push(`resume, paused=${this.isPaused()}`);
          this.resume();
        }, 20);
        return false;
      },
    }),
  };
  for (const [name, makeOnread] of Object.entries(scenarios)) {
    const tcp = await onreadLog(transports.tcp, message, makeOnread);
    const scif = await onreadLog(transports.scif, message, makeOnread);
    t.same(scif, tcp, name);
    t.notOk(tcp.includes('data'), 'no data events');
  }
});

t.test('a connection keeps the process alive only while it has something to do, as node:net\'s does', async (t) => {
  const { execFile } = require('node:child_process');
  const path = require('node:path');
  const fixture = path.join(__dirname, 'fixtures', 'liveness.js');
  const run = (transport, scenario) => new Promise((resolve, reject) => {
    execFile(process.execPath, [fixture, transport, scenario], (err, stdout) => (err ? reject(err) : resolve(stdout.trim())));
  });
  const expected = {
    paused: 'exit',  // connected and not reading: nothing to wait for
    reading: 'alive',
    'paused then resumed': 'alive',
    'reading, unref()': 'exit',
    'paused, unref() then ref()': 'exit',
    'accepted with pauseOnConnect': 'exit',
  };
  for (const [scenario, outcome] of Object.entries(expected)) {
    t.equal(await run('tcp', scenario), outcome, `node:net: ${scenario}`);
    t.equal(await run('scif', scenario), outcome, `scif-net: ${scenario}`);
  }
});

/** What connect(...args) throws, as { code, name, message }, or null. */
function connectThrows(mod, args) {
  try {
    const s = mod.connect(...args);
    s.on('error', () => {});
    s.destroy();
    return null;
  } catch (err) {
    return { code: err.code, name: err.name, message: err.message };
  }
}

t.test('connect() rejects bad ports with node:net\'s errors', async (t) => {
  const ports = [true, false, [], {}, null, '', ' ', '0x', '-0x1', NaN, Infinity, -1, 65536, 1.5, undefined];
  const forms = {
    '{ port }': (port) => [{ port }],
    '{ port, host: \'localhost\' }': (port) => [{ port, host: 'localhost' }],
    '(port)': (port) => [port],
    '(port, \'localhost\')': (port) => [port, 'localhost'],
  };
  for (const port of ports) {
    for (const [form, args] of Object.entries(forms)) {
      if (form.startsWith('(port') && typeof port === 'object' && port !== null) continue;  // an options object
      const theirs = connectThrows(tcpNet, args(port));
      const ours = connectThrows(net, args(port));
      t.same(ours, theirs, `connect${form.startsWith('(') ? form.replace('port', String(port)) : `(${form.replace('port', `port: ${JSON.stringify(port)}`)})`}`);
    }
  }
});
