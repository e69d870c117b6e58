// What node:cluster support is built on (native/cluster.cc): descriptors
// passed between processes over abstract Unix datagram sockets, taken only
// from the process expected; listening endpoints opened for other processes;
// and SocketHandle.adoptListener, which accepts on a listening endpoint's descriptor and
// hands each connection to a server as a listening SocketHandle does.
require('./fixtures/fabric');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { once } = require('node:events');
const t = require('tap');
const net = require('..');
const { binding } = require('../dist/binding');
const { startPeer } = require('./fixtures/peer');

const ROLES = require.resolve('./fixtures/fd-roles');
const EAGAIN = -os.constants.errno.EAGAIN;
const EPERM = -os.constants.errno.EPERM;
const EBADF = -os.constants.errno.EBADF;

function tempFile(t, text) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scif-net-fd-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'data');
  fs.writeFileSync(file, text);
  return file;
}

t.test('a descriptor sent to another process is the same open file there', async (t) => {
  const file = tempFile(t, '0123456789abcdef');
  const peer = startPeer(t, 0, 'receive', {}, { roles: ROLES });
  const { name } = await peer.next();
  t.match(name, /^[0-9a-f]{5}$/, "an abstract name the kernel chose");
  const fd = fs.openSync(file, 'r');
  t.teardown(() => fs.closeSync(fd));
  const buf = Buffer.alloc(5);
  fs.readSync(fd, buf, 0, 5, null);
  t.equal(buf.toString(), '01234', 'this process read the first 5 bytes');
  t.equal(binding.sendFd(name, fd), 0, 'sent');
  peer.send('take');
  const got = await peer.next();
  t.equal(got.read, '56789', 'the child reads on from the same offset: the same open file, not a copy');
  t.equal(got.again, EAGAIN, 'one descriptor was sent, one taken: nothing more waits');
  fs.readSync(fd, buf, 0, 5, null);
  t.equal(buf.toString(), 'abcde', "and the child's read moved this process's offset");
});

t.test('a descriptor from another process than the one expected is refused and closed', async (t) => {
  const file = tempFile(t, 'x');
  const receiver = binding.fdReceiver();
  t.teardown(() => binding.closeFd(receiver.fd));
  t.equal(binding.receiveFd(receiver.fd, process.pid), EAGAIN, 'nothing yet');
  const peer = startPeer(t, 0, 'send', { name: receiver.name, file }, { roles: ROLES });
  t.same(await peer.next(), { sent: 0 });
  const before = fs.readdirSync('/proc/self/fd').length;
  t.equal(binding.receiveFd(receiver.fd, process.pid), EPERM, 'not from this process: refused');
  t.equal(fs.readdirSync('/proc/self/fd').length, before, 'and the descriptor that came was closed');
  const fd = fs.openSync(file, 'r');
  t.equal(binding.sendFd(receiver.name, fd), 0);
  fs.closeSync(fd);
  const mine = binding.receiveFd(receiver.fd, process.pid);
  t.ok(mine >= 0, 'from the expected process: taken');
  t.equal(fs.readFileSync(mine, 'utf8'), 'x');
  binding.closeFd(mine);
  t.equal(binding.sendFd('no-such-receiver-here', fd) < 0, true, 'nobody there: an errno');
});

t.test('adoptListener accepts on a listening endpoint it did not open and feeds a server', async (t) => {
  const opened = binding.openListener(0, 16);
  t.type(opened, 'object', 'a listening endpoint, opened for others');
  t.ok(opened.port >= 1024, `on a free port (${opened.port})`);
  const server = net.createServer();  // not listening itself: the listener feeds it
  const listener = new binding.SocketHandle();
  t.equal(listener.adoptListener(opened.epd, opened.port), 0, 'adopted');
  t.equal(listener.localPort, opened.port);
  listener.setOwner(server);
  server.on('connection', (s) => s.pipe(s));
  const answers = await Promise.all([1, 2, 3].map(async (i) => {
    const c = net.connect({ node: 0, port: opened.port });
    await once(c, 'connect');
    c.end(`hello ${i}`);
    let text = '';
    c.on('data', (d) => { text += d; });
    await once(c, 'end');
    return text;
  }));
  t.same(answers, ['hello 1', 'hello 2', 'hello 3'], 'three connections accepted and served');
  listener.close();
  t.equal(listener.fd, -1, 'closed');
  const refused = net.connect({ node: 0, port: opened.port });
  const [err] = await once(refused, 'error');
  t.equal(err.code, 'ECONNREFUSED', 'the last holder closed it: nobody listens');
});

t.test('adopting what the backend does not know as an endpoint: EBADF', async (t) => {
  const file = tempFile(t, '');
  const fd = fs.openSync(file, 'r');
  t.teardown(() => fs.closeSync(fd));
  t.equal(new binding.SocketHandle().adoptListener(fd, 1), EBADF);
  t.type(binding.sharesListeners(), 'boolean', 'the backend says whether listeners can be shared between processes');
});
