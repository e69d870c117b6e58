// Sockets and servers share their hidden classes (V8's maps), however they
// are made: with new, without it, by connect(), by a subclass. A socket with
// a map of its own costs a chain of maps (kilobytes) per connection; node:net's
// do not.
require('./fixtures/fabric');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const t = require('tap');

const root = path.join(__dirname, '..');

t.test('sockets and servers made any way share their hidden class', async (t) => {
  const script = `
    const net = require(${JSON.stringify(root)});
    const same = (a, b) => %HaveSameMap(a, b);
    class Mine extends net.Socket {}
    const out = {
      newSockets: same(new net.Socket(), new net.Socket()),
      calledSockets: same(net.Socket(), net.Socket()),
      subclass: same(new Mine(), new Mine()),
      servers: same(new net.Server(), net.Server()),
      instance: net.Socket() instanceof net.Socket && new Mine() instanceof net.Socket,
    };
    const server = net.createServer().listen(0, () => {
      const a = net.connect(server.address().port, () => {
        const b = net.connect(server.address().port, () => {
          out.connected = same(a, b);
          console.log(JSON.stringify(out));
          a.destroy(); b.destroy(); server.close();
        });
      });
    });`;
  const r = spawnSync(process.execPath, ['--allow-natives-syntax', '-e', script], { encoding: 'utf8', timeout: 30000 });
  t.equal(r.status, 0, r.stderr);
  t.same(JSON.parse(r.stdout), { newSockets: true, calledSockets: true, subclass: true, servers: true, instance: true, connected: true });
});
