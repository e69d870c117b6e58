// koa over SCIF: app.callback() is a node:http request handler, served by
// scif-net/http's createServer on a SCIF port of this node.
//   SCIF_NET_NODE=1 node examples/koa/server.js
const Koa = require('koa');
const { createServer } = require('scif-net/http');

const app = new Koa();
app.use(async (ctx) => {
  ctx.body = { path: ctx.path, peer: ctx.req.socket.remoteAddress, family: ctx.req.socket.remoteFamily };
});

const server = createServer(app.callback()).listen(Number(process.argv[2] ?? 3000), () => {
  console.log(`[koa] listening on ${server.address().address}:${server.address().port}`);
  process.send?.({ port: server.address().port });
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
