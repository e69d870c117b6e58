// A JSON-lines RPC service, written against node:net's API, serving over SCIF.
//   SCIF_NET_NODE=1 node examples/rpc/server.js [port]
// The only scif-net-specific line is the require: the same code serves TCP
// when given a TCP address, e.g. listen(port, '127.0.0.1').
const net = require('scif-net');
const readline = require('node:readline');

const methods = {
  add: (a, b) => a + b,
  upper: (s) => String(s).toUpperCase(),
  whoami: () => ({ node: Number(process.env.SCIF_NET_NODE ?? 0), pid: process.pid }),
  sum: (list) => list.reduce((x, y) => x + y, 0),
};

const server = net.createServer((socket) => {
  const lines = readline.createInterface({ input: socket });
  lines.on('line', (line) => {
    let reply;
    try {
      const { id, method, params = [] } = JSON.parse(line);
      if (!Object.hasOwn(methods, method)) throw new Error(`no method ${method}`);
      reply = { id, result: methods[method](...params) };
    } catch (err) {
      reply = { error: err.message };
    }
    socket.write(`${JSON.stringify(reply)}\n`);
  });
  socket.on('error', () => {});
});

server.listen(Number(process.argv[2] ?? 7000), () => {
  console.log(`[rpc server] listening on ${server.address().address}:${server.address().port}`);
  if (process.send) process.send({ port: server.address().port });
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
