// The redirection map (src/net/map.ts): its entries and how connects and
// listens are looked up in it.
const t = require('tap');
const { parseMap, RedirectMap, loadMap } = require('../dist/net/map');

const map = (text) => new RedirectMap(parseMap(text, 'SCIF_NET_MAP'));
const where = (m) => m && { node: m.node, port: m.port, entry: m.entry.text };

t.test('entries: host and port to a node and port, or to a node keeping the port', async (t) => {
  const entries = parseMap('127.0.0.1:8080=scif:1:80, [::1]:9000=scif://2:9001\n db.example:*=scif:3 *:7000=scif:0', 'SCIF_NET_MAP');
  t.same(entries.map(({ host, port, node, scifPort }) => ({ host, port, node, scifPort })), [
    { host: 'localhost', port: 8080, node: 1, scifPort: 80 },
    { host: 'localhost', port: 9000, node: 2, scifPort: 9001 },
    { host: 'db.example', port: '*', node: 3, scifPort: null },
    { host: '*', port: 7000, node: 0, scifPort: null },
  ]);
  t.same(parseMap(' ,, \n', 'SCIF_NET_MAP'), [], 'empty');
});

t.test('connect: the loopback names are one host; the most specific entry wins', async (t) => {
  const m = map('localhost:8080=scif:1:8080,localhost:*=scif:2,*:8080=scif:3:1,*:*=scif:4,Db.Example:5432=scif:1');
  for (const host of ['localhost', '127.0.0.1', '::1', '[::1]', '0.0.0.0', 'LOCALHOST']) {
    t.same(where(m.connect(host, 8080)), { node: 1, port: 8080, entry: 'localhost:8080=scif:1:8080' }, host);
  }
  t.same(where(m.connect('127.0.0.1', 9090)), { node: 2, port: 9090, entry: 'localhost:*=scif:2' }, 'host, any port');
  t.same(where(m.connect('10.0.0.7', 8080)), { node: 3, port: 1, entry: '*:8080=scif:3:1' }, 'any host, the port');
  t.same(where(m.connect('10.0.0.7', 22)), { node: 4, port: 22, entry: '*:*=scif:4' }, 'any host, any port');
  t.same(where(m.connect('db.example', 5432)), { node: 1, port: 5432, entry: 'Db.Example:5432=scif:1' }, 'names compare without case');
  t.equal(map('localhost:80=scif:1').connect('10.0.0.7', 80), null, 'unmapped');
  t.equal(map('10.0.0.7:80=scif:1').connect('10.0.0.7', 81), null, 'another port');
});

t.test("listen: a wildcard listen takes the port's entry, one on this node first", async (t) => {
  const m = map('10.0.0.1:8080=scif:2:8080,127.0.0.1:8080=scif:1:8080,localhost:*=scif:1');
  for (const host of [undefined, null, '', '0.0.0.0', '::', '[::]']) {
    t.same(where(m.listen(host, 8080, 1)), { node: 1, port: 8080, entry: '127.0.0.1:8080=scif:1:8080' }, `${host} on node 1`);
  }
  t.same(where(m.listen(undefined, 8080, 2)), { node: 2, port: 8080, entry: '10.0.0.1:8080=scif:2:8080' }, 'on node 2');
  t.same(where(m.listen(undefined, 8080, 3)).node, 2, 'on another node: the first entry (listen then says it is not here)');
  t.same(where(m.listen('127.0.0.1', 3000, 1)), { node: 1, port: 3000, entry: 'localhost:*=scif:1' }, 'a specific host');
  t.equal(m.listen('10.0.0.1', 3000, 1), null, 'a host the map has no entry for at that port');
});

t.test('loadMap: a file and the variable together; one place twice is an error', async (t) => {
  const fs = require('node:fs');
  const os = require('node:os');
  const path = require('node:path');
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'scif-net-map-')), 'map');
  t.teardown(() => fs.rmSync(path.dirname(file), { recursive: true, force: true }));
  fs.writeFileSync(file, 'localhost:1=scif:1 # one\nlocalhost:2=scif:2\n');
  const m = loadMap({ SCIF_NET_MAP_FILE: file, SCIF_NET_MAP: 'localhost:3=scif:3' });
  t.same(m.entries.map((e) => [e.text, e.source]), [
    ['localhost:1=scif:1', `SCIF_NET_MAP_FILE ${file}:1`],
    ['localhost:2=scif:2', `SCIF_NET_MAP_FILE ${file}:2`],
    ['localhost:3=scif:3', 'SCIF_NET_MAP'],
  ]);
  t.throws(() => loadMap({ SCIF_NET_MAP_FILE: file, SCIF_NET_MAP: '127.0.0.1:2=scif:0' }), {
    code: 'ERR_INVALID_ARG_VALUE',
    message: `SCIF_NET_MAP: bad entry '127.0.0.1:2=scif:0': 'localhost:2' is mapped already, by 'localhost:2=scif:2' (SCIF_NET_MAP_FILE ${file}:2)`,
  });
  t.throws(() => loadMap({ SCIF_NET_MAP_FILE: path.join(path.dirname(file), 'none') }), { code: 'ENOENT', message: /SCIF_NET_MAP_FILE: cannot read/ });
  t.equal(loadMap({}).size, 0, 'no map');
});

t.test('bad entries', async (t) => {
  const bad = {
    'x=scif:1': "'x' has no port",
    ':80=scif:1': "':80' has no host",
    'h:0=scif:1': "'0' is not a port",
    'h:80': "it needs exactly one '='",
    'h:80=scif:1=x': "it needs exactly one '='",
    'h:80=scif:64': "'scif:64' is not a SCIF place",
    'h:80=scif:1:0': "'scif:1:0' names port 0",
    'h:*=scif:1:80': "a '*' port keeps its number",
    'fe80::1:80=scif:1': 'write an IPv6 address in brackets',
  };
  for (const [text, why] of Object.entries(bad)) {
    t.throws(() => parseMap(text, 'SCIF_NET_MAP'), { code: 'ERR_INVALID_ARG_VALUE', entry: text, message: new RegExp(`^SCIF_NET_MAP: bad entry '${text.replace(/[*]/g, '\\*')}': .*${why.replace(/[*()[\]]/g, '\\$&')}`) }, text);
  }
});
