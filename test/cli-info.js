// scif-net nodes / ports / stat / fabric / cflags and the command line's
// conventions (help, usage errors, exit codes, errors that say what to do),
// run as child processes.
const { dir } = require('./fixtures/fabric');
const t = require('tap');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('..');
const { startPeer } = require('./fixtures/peer');
const { execFile } = require('node:child_process');
const { BIN, run, userEnv } = require('./fixtures/cli');
const { once } = require('./helpers');

t.test('nodes: this node, the online nodes, the backend and why', async (t) => {
  const json = await run(['nodes', '--json', '--node', '2']);
  t.equal(json.code, 0, json.stderr);
  const info = JSON.parse(json.stdout);
  // The backend this suite runs on (the fabric, or MPSS's API alone through dlopen).
  const used = net.backend();
  t.same(info, {
    self: 2,
    nodes: [0, 1, 2, 3],
    backend: { name: used.name, library: used.library ?? '', note: info.backend.note },
    fabric: used.name === 'virtual' ? dir : null,  // MPSS's libscif has no fabric directory to tell
  });
  if (used.name === 'virtual') t.match(info.backend.note, /virtual/);
  const text = await run(['nodes'], { env: { SCIF_NET_NODE: '1' } });
  t.equal(text.code, 0);
  t.match(text.stdout, used.name === 'virtual'
    ? /^this node: 1\nonline: +0 1 2 3\nbackend: +virtual\nwhy: +.+\nfabric: +.+\n$/
    : new RegExp(`^this node: 1\nonline: +0 1 2 3\nbackend: +${used.name} \\(${used.library}\\)\n`));
});

t.test('fabric: status, and a card reset for a drill', async (t) => {
  const status = await run(['fabric', 'status', '--json']);
  t.equal(status.code, 0, status.stderr);
  t.same(JSON.parse(status.stdout), { path: dir, nodes: 4, online: [0, 1, 2, 3], self: 0 });
  const peer = startPeer(t, 1, 'echo', { port: 4100 });
  await peer.next();
  const sock = net.connect('scif:1:4100');
  await once(sock, 'connect');
  const reset = once(sock, 'error');
  const down = await run(['fabric', 'node', '1', 'down']);
  t.equal(down.code, 0, down.stderr);
  const err = await reset;
  t.equal(err.code, 'ECONNRESET', 'the reset reaches a connection with an end on node 1');
  t.same(net.getNodeIds().nodes, [0, 2, 3]);
  const refused = await run(['cat', 'scif:1:4100']);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /ENODEV/);
  t.match(refused.stderr, /fix: .*scif-net fabric node N up/, 'the error says how to bring it back');
  const up = await run(['fabric', 'node', '1', 'up']);
  t.equal(up.code, 0, up.stderr);
  t.same(net.getNodeIds().nodes, [0, 1, 2, 3]);
  t.match((await run(['fabric'])).stdout, /^fabric: +.+\nnodes: +4 .*\nonline: +0 1 2 3\n$/);
  const bad = await run(['fabric', 'node', '9', 'down']);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /ENODEV/);
});

t.test('fabric create makes a fabric of SCIF_NET_NODES nodes', async (t) => {
  const fresh = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'scif-net-cli-')), 'fabric');
  t.teardown(() => fs.rmSync(path.dirname(fresh), { recursive: true, force: true }));
  const made = await run(['fabric', 'create', '--json'], { env: { SCIF_NET_FABRIC: fresh, SCIF_NET_NODES: '6' } });
  t.equal(made.code, 0, made.stderr);
  t.same(JSON.parse(made.stdout), { path: fresh, nodes: 6, online: [0, 1, 2, 3, 4, 5], self: 0 });
  t.equal(fs.statSync(fresh).mode & 0o777, 0o700);
});

t.test('ports and stat list listeners and connections, with pids and traffic', async (t) => {
  const peer = startPeer(t, 1, 'echo', { port: 4200 });
  await peer.next();
  const sock = net.connect('scif:1:4200');
  await once(sock, 'connect');
  // Below what makes a connection ask for an RMA window (a 64 KiB write, or
  // 256 KiB by messages): bytes moved by RMA do not pass through the rings.
  const payload = Buffer.alloc(60000, 7);
  let echoed = 0;
  sock.on('data', (d) => (echoed += d.length));
  sock.write(payload);
  while (echoed < payload.length) await once(sock, 'data');

  const ports = await run(['ports', '--json']);
  t.equal(ports.code, 0, ports.stderr);
  const listeners = JSON.parse(ports.stdout);
  t.same(listeners.map((e) => [e.state, e.node, e.port, e.pid]), [['listening', 1, 4200, peer.child.pid]]);

  const stat = await run(['stat', '--json']);
  t.equal(stat.code, 0, stat.stderr);
  const ends = JSON.parse(stat.stdout);
  const mine = ends.find((e) => e.state === 'connected' && e.pid === process.pid);
  const theirs = ends.find((e) => e.state === 'accepted' && e.pid === peer.child.pid);
  t.ok(mine && theirs, 'both ends of the connection are listed');
  t.same(mine.peer, { node: 1, port: 4200 });
  t.same(theirs.peer, { node: 0, port: sock.localPort });
  t.equal(mine.node, 0);
  t.equal(mine.port, sock.localPort);
  t.equal(mine.connection, theirs.connection, 'the two ends name one connection');
  t.ok(mine.connection.length > 0);
  t.ok(mine.bytesSent >= payload.length, `sent ${mine.bytesSent} >= ${payload.length} (framing included)`);
  t.ok(mine.bytesSent < payload.length + 4096, 'and no more than the frames add');
  t.equal(mine.bytesReceived, theirs.bytesSent, 'what one end sent is what the other received');
  t.equal(theirs.bytesReceived, mine.bytesSent);
  t.equal(mine.rmas, 0);

  const table = await run(['stat']);
  t.match(table.stdout, /^STATE +LOCAL +PEER +PID +FD +SENT +RECEIVED +RMAS\n/);
  t.match(table.stdout, new RegExp(`LISTENING +scif:1:4200 +\\* +${peer.child.pid} `));
  t.match(table.stdout, new RegExp(`CONNECTED +scif:0:${sock.localPort} +scif:1:4200 +${process.pid} +\\d+ +${mine.bytesSent} `));
  const all = await run(['ports', '-a']);
  t.match(all.stdout, /ACCEPTED +scif:1:4200 +scif:0:/);

  sock.end();
  await once(sock, 'close');
  peer.send('close');
  await peer.next();
  const after = JSON.parse((await run(['stat', '--json'])).stdout);
  t.same(after.filter((e) => e.port === 4200 || e.peer?.port === 4200), [], 'nothing left once closed');
});

t.test('stat counts the RMAs each end began', async (t) => {
  const { scif } = net;
  const listener = scif.listen(4260);
  const accepting = listener.accept();
  const ep = await scif.connect({ node: 0, port: 4260 });
  const conn = await accepting;
  const win = await conn.register(scif.alloc(scif.pageSize));
  await ep.vwriteTo(Buffer.from('one'), win.offset);
  await ep.vwriteTo(Buffer.from('two'), win.offset + 8n);
  await ep.vreadFrom(Buffer.alloc(3), win.offset);
  const ends = JSON.parse((await run(['stat', '--json'])).stdout);
  const writer = ends.find((e) => e.state === 'connected' && e.port === ep.localPort);
  const owner = ends.find((e) => e.state === 'accepted' && e.peer.port === ep.localPort);
  t.equal(writer.rmas, 3, 'two writes and a read');
  t.equal(owner.rmas, 0, 'the window\'s owner began none');
  t.equal(writer.bytesSent, 0, 'RMA moves no bytes through the rings');
  await conn.close();
  await ep.close();
  await listener.close();
});

t.test('ports on MPSS\'s libscif alone: through the fabric, or a clear refusal on hardware', async (t) => {
  const strict = path.join(__dirname, '..', 'kernel', 'out', 'strict', 'libscif.so.0');
  const hw = { SCIF_NET_BACKEND: 'hw', SCIF_NET_LIBSCIF: strict };
  const peer = startPeer(t, 2, 'echo', { port: 4250 });
  await peer.next();
  // A fabric named by SCIF_NET_FABRIC is listed by the fabric linked into the addon.
  const listed = await run(['ports', '--json'], { env: hw });
  t.equal(listed.code, 0, listed.stderr);
  t.same(JSON.parse(listed.stdout).map((e) => [e.node, e.port, e.pid]), [[2, 4250, peer.child.pid]]);
  // Without one, as on hardware, there is nothing to list: say so, and what to use.
  const refused = await run(['ports'], { env: { ...hw, SCIF_NET_FABRIC: undefined } });
  t.equal(refused.code, 1);
  t.match(refused.stderr, /scif_net_census ENOSYS/);
  t.match(refused.stderr, /fix: this is the virtual fabric's own call, which Intel MPSS's libscif lacks/);
});

t.test('cflags: where a C build finds scif.h and libscif', async (t) => {
  const kernel = path.join(__dirname, '..', 'kernel');
  const flags = await run(['cflags']);
  t.equal(flags.code, 0, flags.stderr);
  t.equal(flags.stdout, `-I${path.join(kernel, 'include')}\n`);
  const libs = await run(['cflags', '--libs']);
  const out = path.join(kernel, 'out');
  t.equal(libs.stdout, `-I${path.join(kernel, 'include')} -L${out} -Wl,-rpath,${out} -lscif -pthread\n`);
  const pc = await run(['cflags', '--pc']);
  t.equal(pc.stdout, `${out}\n`);
  t.match(fs.readFileSync(path.join(out, 'scif-net.pc'), 'utf8'), /^Libs: -L\$\{libdir\} .*-lscif$/m);
});

t.test('help, usage errors and exit codes', async (t) => {
  const top = await run(['--help']);
  t.equal(top.code, 0);
  for (const cmd of ['nodes', 'ports', 'stat', 'cat', 'bridge', 'fabric', 'exec', 'cflags']) {
    t.match(top.stdout, new RegExp(`^  ${cmd}`, 'm'));
    const h = await run([cmd, '--help']);
    t.equal(h.code, 0, `${cmd} --help`);
    t.match(h.stdout, new RegExp(`^Usage: scif-net ${cmd}`), `${cmd} --help says its usage`);
  }
  const none = await run([]);
  t.equal(none.code, 2);
  t.match(none.stderr, /^Usage: scif-net COMMAND/);
  const cases = [
    [['frobnicate'], /unknown command "frobnicate"/],
    [['nodes', '--frob'], /Unknown option '--frob'/],
    [['nodes', 'extra'], /nodes: expected 0 arguments, got 1/],
    [['ports', '--libs'], /ports does not take --libs/],
    [['cat'], /cat: expected 1 argument, got 0/],
    [['cat', 'scif:1'], /expected scif:NODE:PORT/],
    [['cat', 'scif:1:70000'], /port 70000 is out of range/],
    [['bridge', 'tcp:8080'], /bridge: expected 2 arguments/],
    [['bridge', 'tcp:8080', 'tcp:9090'], /a TCP target needs a host/],
    [['bridge', 'udp:1:2', 'scif:1:2'], /a place is tcp:HOST:PORT, unix:PATH or scif:NODE:PORT/],
    [['nodes', '--node', 'mic0'], /--node mic0: a node is a number/],
    [['fabric', 'node', '1', 'sideways'], /usage: scif-net fabric node N up\|down/],
    [['exec', '--', 'node'], /exec: give --map/],
    [['nodes', '--', 'x'], /nodes takes no "--"/],
  ];
  for (const [args, message] of cases) {
    const r = await run(args);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.match(r.stderr, message, args.join(' '));
    t.match(r.stderr, /Try 'scif-net .*--help'/);
    t.equal(r.stdout, '');
  }
});

t.test('errors name the cause and the fix', async (t) => {
  // The fabric's own errors (its directory, its node variable) are the virtual
  // fabric's, whatever backend the suite runs on (it also runs on MPSS's API).
  const fabric = { SCIF_NET_BACKEND: 'virtual' };
  // A fabric directory someone else could enter.
  const open = fs.mkdtempSync(path.join(os.tmpdir(), 'scif-net-open-'));
  t.teardown(() => fs.rmSync(open, { recursive: true, force: true }));
  fs.chmodSync(open, 0o755);
  const loose = await run(['nodes'], { env: { ...fabric, SCIF_NET_FABRIC: open } });
  t.equal(loose.code, 1);
  t.match(loose.stderr, /fabric directory \S+ is refused: .*must be owned by uid \d+ with mode 0700; it is uid \d+, mode 0755/);
  t.match(loose.stderr, /fix: .*SCIF_NET_FABRIC/);
  // A fabric directory whose parent does not exist.
  const missing = await run(['nodes'], { env: { ...fabric, SCIF_NET_FABRIC: path.join(open, 'no', 'such', 'fabric') } });
  t.equal(missing.code, 1);
  t.match(missing.stderr, /cannot create fabric directory .*No such file or directory/);
  t.match(missing.stderr, /fix: .*create its parent directory, or set SCIF_NET_FABRIC/);
  // hw asked for, and no libscif to be had.
  const hw = await run(['nodes'], { env: { SCIF_NET_BACKEND: 'hw', SCIF_NET_LIBSCIF: '/nonexistent/libscif.so.0' } });
  t.equal(hw.code, 1);
  t.match(hw.stderr, /libscif/);
  t.match(hw.stderr, /fix: .*SCIF_NET_LIBSCIF.*SCIF_NET_BACKEND=virtual/);
  // Nothing listening.
  const refused = await run(['cat', 'scif:2:4999'], { input: '' });
  t.equal(refused.code, 1);
  t.match(refused.stderr, /connect ECONNREFUSED scif:2:4999/);
  t.match(refused.stderr, /fix: nothing listens on scif:2:4999: `scif-net ports`/);
  // A node the fabric does not have.
  const nonode = await run(['cat', 'scif:9:4000'], { input: '' });
  t.equal(nonode.code, 1);
  t.match(nonode.stderr, /ENODEV/);
  // A port below 1024 without CAP_SYS_ADMIN (root gives it up through setpriv).
  const lowArgs = [process.execPath, BIN, 'cat', '-l', '80'];
  const low = await new Promise((resolve) =>
    execFile(process.getuid() === 0 ? 'setpriv' : lowArgs[0], process.getuid() === 0 ? ['--bounding-set', '-sys_admin', '--inh-caps', '-sys_admin', ...lowArgs] : lowArgs.slice(1),
      { env: userEnv() }, (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stderr })),
  );
  t.equal(low.code, 1, low.stderr);
  t.match(low.stderr, /listen EACCES: permission denied scif:0:80/);
  t.match(low.stderr, /fix: SCIF ports below 1024 need root \(CAP_SYS_ADMIN\)/);
  // A bad SCIF_NET_NODE.
  const badnode = await run(['nodes'], { env: { ...fabric, SCIF_NET_NODE: 'x' } });
  t.equal(badnode.code, 1);
  t.match(badnode.stderr, /SCIF_NET_NODE=x/);
});
