// TLS over SCIF with node:tls, node:https and undici: a certificate made with
// the openssl CLI for this file, tls.connect({ socket }) over a scif-net
// socket against a tls.Server fed scif-net connections, HTTPS from node 1 to
// clients on node 0, and TLS failures that surface as errors, not hangs.
require('./fixtures/fabric');
const crypto = require('node:crypto');
const https = require('node:https');
const tls = require('node:tls');
const t = require('tap');
const undici = require('undici');
const net = require('..');
const scifHttp = require('scif-net/http');
const { makeCert } = require('./fixtures/cert');
const { startRole } = require('./fixtures/interop-peer');

const MiB = 1024 * 1024;
const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const { once } = require('./helpers');
// What a client that does not trust the self-signed certificate reports.
const UNTRUSTED = /^(DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN)$/;

const cert = makeCert(t);

/**
 * A tls.Server on a scif-net Server (with `options`) on this node; `feed`
 * hands it the SCIF connections. Each secure connection is echoed back after
 * a greeting, and announced on `secured`.
 */
async function tlsOverScif(t, options, feed) {
  const secured = [];
  const waiting = [];
  const tlsServer = tls.createServer({ key: cert.key, cert: cert.cert }, (s) => {
    secured.push(s);
    waiting.shift()?.(s);
    s.on('error', () => {});
    s.write('hello from the server\n');
    s.pipe(s);
  });
  const scif = net.createServer(options);
  const carriers = [];
  scif.on('connection', (s) => carriers.push(s));
  feed(tlsServer, scif);
  await new Promise((resolve, reject) => scif.once('error', reject).listen(0, resolve));
  t.teardown(() => {
    for (const s of [...carriers, ...secured]) s.destroy();
    return new Promise((r) => scif.close(r));
  });
  return {
    tlsServer,
    carriers,
    port: scif.address().port,
    /** The server's side of the next secure connection. */
    nextSecure: () => new Promise((resolve) => waiting.push(resolve)),
  };
}

/** Reads from `stream` until `pred(text so far)`, as text, and pauses it again. */
function readUntil(stream, pred) {
  return new Promise((resolve) => {
    const parts = [];
    const onData = (d) => {
      parts.push(d);
      const got = Buffer.concat(parts).toString();
      if (pred(got)) {
        stream.off('data', onData);
        stream.pause();
        resolve(got);
      }
    };
    stream.on('data', onData);
    stream.resume();
  });
}

/** Hashes `total` bytes (or until 'end') from `stream`. */
function hashBytes(stream, total) {
  return new Promise((resolve, reject) => {
    const hash = crypto.createHash('sha256');
    let bytes = 0;
    const done = () => resolve({ bytes, sha256: hash.digest('hex') });
    stream.on('data', (d) => {
      bytes += d.length;
      hash.update(d);
      if (total !== undefined && bytes >= total) done();
    });
    if (total === undefined) stream.once('end', done);
    stream.once('error', reject);
    stream.resume();
  });
}

async function writeRandom(stream, total) {
  const hash = crypto.createHash('sha256');
  let left = total;
  while (left > 0) {
    const chunk = crypto.randomBytes(Math.min(left, 1 + crypto.randomInt(256 * 1024)));
    hash.update(chunk);
    left -= chunk.length;
    if (!stream.write(chunk)) await once(stream, 'drain');
  }
  return hash.digest('hex');
}

t.test('tls.connect({ socket }) over SCIF against a tls.Server fed scif-net sockets', async (t) => {
  const variants = {
    // node:net's way: a plain server, every connection handed to the tls.Server.
    "tlsServer.emit('connection', socket), the 16 MiB echoed before the client ends": {
      options: {},
      feed: (tlsServer, scif) => scif.on('connection', (s) => tlsServer.emit('connection', s)),
      halfClose: false,
    },
    "scif-net/http's attach() on an allowHalfOpen server, the client ends first": {
      options: { allowHalfOpen: true },
      feed: (tlsServer, scif) => scifHttp.attach(tlsServer, scif),
      halfClose: true,
    },
  };
  for (const [name, { options, feed, halfClose }] of Object.entries(variants)) {
    t.test(name, { timeout: 15000 }, async (t) => {
      const { port, carriers, nextSecure } = await tlsOverScif(t, options, feed);
      const serverSecure = nextSecure();
      const raw = net.connect({ node: 0, port });
      const secure = tls.connect({ socket: raw, ca: cert.ca, servername: 'mic0' });
      t.teardown(() => secure.destroy());
      const rawClosed = once(raw, 'close');
      await once(secure, 'secureConnect');
      t.equal(secure.authorized, true, 'the certificate verified against the CA');
      t.equal(secure.authorizationError, null);
      t.equal(secure.getPeerCertificate().subject.CN, 'mic0');
      t.match(secure.getPeerCertificate().subjectaltname, /DNS:mic0/);
      t.equal(raw.remoteFamily, 'SCIF', 'TLS rides a scif-net socket');
      t.equal(carriers.length, 1, 'the server accepted one SCIF connection');
      t.type(carriers[0], net.Socket);

      const server = await serverSecure;
      t.equal(server.servername, 'mic0', 'the server got the SNI name');
      t.match(server.getProtocol(), /^TLSv1\.[23]$/);
      // Without this nothing the server writes is ever sent.
      if (!t.equal(server.connecting, false, 'the server\'s TLS socket is established, not \'connecting\'')) return;

      // Both ways: the server's greeting, then our words echoed back.
      t.equal(await readUntil(secure, (s) => s.endsWith('\n')), 'hello from the server\n');
      secure.write('ping over TLS over SCIF');
      t.equal(await readUntil(secure, (s) => s.length >= 23), 'ping over TLS over SCIF');

      // 16 MiB through the echo and back.
      const started = process.hrtime.bigint();
      const back = hashBytes(secure, halfClose ? undefined : 16 * MiB);
      const sent = await writeRandom(secure, 16 * MiB);
      if (halfClose) secure.end();
      const got = await back;
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      t.equal(got.bytes, 16 * MiB, `16 MiB came back through TLS (${ms.toFixed(0)} ms round trip)`);
      t.equal(got.sha256, sent, 'intact and in order');
      t.ok(raw.bytesWritten > 16 * MiB, 'the SCIF socket carried the ciphertext');
      if (!halfClose) secure.end();
      t.equal(await rawClosed, false, 'the SCIF socket closed cleanly under TLS');
      if (!carriers[0].closed) await once(carriers[0], 'close');
      t.pass('and so did the server\'s');
    });
  }

  t.test('TLS started on a scif-net socket that is already connected', { timeout: 15000 }, async (t) => {
    const { port, nextSecure } = await tlsOverScif(t, { allowHalfOpen: true }, scifHttp.attach);
    const serverSecure = nextSecure();
    const raw = net.connect({ node: 0, port });
    await once(raw, 'connect');
    const secure = tls.connect({ socket: raw, ca: cert.ca, servername: 'mic0' });
    t.teardown(() => secure.destroy());
    // Without this the handshake never starts.
    if (!t.equal(secure.connecting, false, 'a TLS socket over a connected socket is not \'connecting\'')) return;
    await once(secure, 'secureConnect');
    t.equal(secure.authorized, true);
    const server = await serverSecure;
    if (!t.equal(server.connecting, false, 'the server\'s TLS socket is established, not \'connecting\'')) return;
    t.equal(await readUntil(secure, (s) => s.endsWith('\n')), 'hello from the server\n');
    secure.end('bye');
    t.equal(await readUntil(secure, (s) => s.length >= 3), 'bye');
    secure.resume();
    await once(secure, 'close');
  });
});

t.test('HTTPS served on node 1, clients on node 0', async (t) => {
  const peer = startRole(t, 1, 'https', { keyFile: cert.keyFile, certFile: cert.certFile });
  const { port } = await peer.next();
  const base = `https://mic0:${port}`;
  // The server's TLS socket must be established, or it never answers.
  const established = async (t) => {
    const { connecting } = await peer.until((m) => m.secureConnection);
    return t.equal(connecting, false, 'the server\'s TLS socket is established, not \'connecting\'');
  };

  await t.test('node:https through HttpsAgent (keep-alive)', { timeout: 15000 }, async (t) => {
    const agent = new scifHttp.HttpsAgent({ ca: cert.ca, keepAlive: true, maxSockets: 1 });
    t.teardown(() => agent.destroy());
    const ask = (path, method = 'GET', body) => new Promise((resolve, reject) => {
      const req = https.request(`${base}${path}`, { method, agent }, (res) => {
        const parts = [];
        res.on('data', (d) => parts.push(d));
        res.on('end', () => resolve({ res, body: Buffer.concat(parts), socket: req.socket }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
    const first = ask('/hello?x=1');
    first.catch(() => {});
    if (!await established(t)) return;
    const a = await first;
    t.equal(a.res.statusCode, 200);
    t.match(JSON.parse(a.body), { method: 'GET', url: '/hello?x=1', bytes: 0, encrypted: true, servername: 'mic0' });
    t.equal(a.socket.authorized, true);
    t.equal(a.socket.getPeerCertificate().subject.CN, 'mic0');

    const payload = crypto.randomBytes(2 * MiB + 123);
    const b = await ask('/upload', 'POST', payload);
    t.match(JSON.parse(b.body), { method: 'POST', bytes: payload.length, sha256: sha256(payload) });

    const c = await ask('/blob/3000001');
    t.equal(c.body.length, 3000001);
    t.equal(sha256(c.body), c.res.headers['x-sha256'], 'the download arrived intact');
    t.equal(a.socket, b.socket, 'keep-alive reused the TLS socket');
    t.equal(b.socket, c.socket);
  });

  await t.test('undici through createDispatcher({ tlsOptions: { ca } })', { timeout: 15000 }, async (t) => {
    const dispatcher = scifHttp.createDispatcher({ tlsOptions: { ca: cert.ca }, connections: 1 });
    t.teardown(() => dispatcher.destroy());
    const first = undici.request(`${base}/hello`, { dispatcher });
    first.catch(() => {});
    if (!await established(t)) return;
    const get = await first;
    t.equal(get.statusCode, 200);
    t.match(await get.body.json(), { method: 'GET', url: '/hello', encrypted: true, servername: 'mic0', alpn: 'http/1.1' });

    const payload = crypto.randomBytes(5 * MiB + 7);
    const post = await undici.request(`${base}/upload`, { method: 'POST', body: payload, dispatcher });
    t.match(await post.body.json(), { method: 'POST', bytes: payload.length, sha256: sha256(payload) });

    const blob = await undici.request(`${base}/blob/4000003`, { dispatcher });
    const buf = Buffer.from(await blob.body.arrayBuffer());
    t.equal(buf.length, 4000003);
    t.equal(sha256(buf), blob.headers['x-sha256'], 'the download arrived intact');

    const res = await undici.fetch(`${base}/fetched`, { dispatcher });
    t.match(await res.json(), { url: '/fetched', encrypted: true });
  });

  await t.test('clients without the CA fail the handshake with an error, no hang', { timeout: 15000 }, async (t) => {
    const agent = new scifHttp.HttpsAgent();
    t.teardown(() => agent.destroy());
    const err = await new Promise((resolve, reject) => {
      const req = https.get(`${base}/`, { agent }, () => reject(new Error('got a response')));
      req.on('error', resolve);
    });
    t.match(err, { code: UNTRUSTED }, `node:https: ${err.code}`);
    t.match(await peer.until((m) => m.tlsClientError), { tlsClientError: String }, 'the server saw the handshake fail');

    const dispatcher = scifHttp.createDispatcher();
    t.teardown(() => dispatcher.destroy());
    const uerr = await undici.request(`${base}/`, { dispatcher }).then(() => null, (e) => e);
    t.match(uerr, { code: UNTRUSTED }, `undici: ${uerr?.code}`);
    t.match(await peer.until((m) => m.tlsClientError), { tlsClientError: String }, 'the server saw it fail too');
  });

  peer.send('close');
  t.match(await peer.until((m) => m.closed), { closed: true }, 'the HTTPS server closed after its last connection');
});

t.test('TLS errors over SCIF surface as errors and close the SCIF sockets', async (t) => {
  // A plain server: with allowHalfOpen a tls.Server's socket outlives a client
  // that gives up mid-handshake, over TCP as well.
  const { tlsServer, port, carriers } = await tlsOverScif(t, {}, scifHttp.attach);
  let secured = 0;
  tlsServer.on('secureConnection', () => secured++);

  const cases = {
    'no CA': { options: { servername: 'mic0' }, expected: { code: UNTRUSTED } },
    'a name the certificate does not have': {
      options: { ca: cert.ca, servername: 'mic1' },
      expected: { code: 'ERR_TLS_CERT_ALTNAME_INVALID', reason: /mic1/ },
    },
  };
  for (const [name, { options, expected }] of Object.entries(cases)) {
    t.test(name, { timeout: 10000 }, async (t) => {
      const before = carriers.length;
      const serverError = once(tlsServer, 'tlsClientError');
      const raw = net.connect({ node: 0, port });
      const secure = tls.connect({ socket: raw, ...options });
      let secureConnect = false;
      secure.on('secureConnect', () => (secureConnect = true));
      const rawClosed = once(raw, 'close');
      const [err] = await Promise.all([once(secure, 'error'), once(secure, 'close')]);
      t.match(err, expected, `${err.code}: ${err.message}`);
      t.equal(secureConnect, false, 'no secureConnect');
      await rawClosed;
      t.ok(raw.destroyed, 'the client\'s SCIF socket closed');
      const carrier = carriers[before];
      t.ok(carrier, 'the server had accepted the SCIF connection');
      if (!carrier.closed) await once(carrier, 'close');
      t.pass('the server\'s SCIF socket closed too');
      t.type(await serverError, Error, 'the server reported the failed handshake (tlsClientError)');
    });
  }
  t.test('no handshake succeeded', async (t) => {
    t.equal(secured, 0);
  });
});
