// A jayson JSON-RPC server over SCIF: jayson's TCP server is a net.Server,
// made to listen on a SCIF port by scif-net/http's listen(), which does that
// for any net.Server.
//   SCIF_NET_NODE=1 node examples/jayson/server.js
const jayson = require('jayson');
const { listen } = require('scif-net/http');

const server = new jayson.Server({
  add: (args, callback) => callback(null, args[0] + args[1]),
});
const tcp = server.tcp();
listen(tcp, Number(process.argv[2] ?? 5000), () => {
  console.log(`[jayson] listening on ${tcp.address().address}:${tcp.address().port}`);
  process.send?.({ port: tcp.address().port });
});
process.on('SIGTERM', () => tcp.close(() => process.exit(0)));
