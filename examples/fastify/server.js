// fastify over SCIF: its serverFactory makes the HTTP server, here scif-net/http's,
// and listen() names a SCIF place ('scif:1', or 'localhost' for this node).
//   SCIF_NET_NODE=1 node examples/fastify/server.js
const Fastify = require('fastify');
const { createServer } = require('scif-net/http');

const app = Fastify({ serverFactory: (handler) => createServer(handler) });
app.get('/sum', async (request) => ({
  sum: Number(request.query.a) + Number(request.query.b),
  peer: request.socket.remoteAddress,
}));

app.listen({ port: Number(process.argv[2] ?? 3001), host: `scif:${process.env.SCIF_NET_NODE ?? 0}` }).then(() => {
  const { address, port } = app.server.address();
  console.log(`[fastify] listening on ${address}:${port}`);
  process.send?.({ port });
});
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
