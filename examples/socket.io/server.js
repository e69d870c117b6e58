// socket.io over SCIF: its Server attaches to scif-net/http's HTTP server.
//   SCIF_NET_NODE=1 node examples/socket.io/server.js
const { Server } = require('socket.io');
const { createServer } = require('scif-net/http');

const httpServer = createServer();
const io = new Server(httpServer);
io.on('connection', (socket) => {
  socket.emit('welcome', { transport: socket.conn.transport.name, peer: socket.conn.remoteAddress });
  socket.on('add', (a, b, reply) => reply(a + b));
  socket.conn.on('upgrade', (transport) => socket.emit('upgraded', transport.name));
});

httpServer.listen(Number(process.argv[2] ?? 3002), () => {
  console.log(`[socket.io] listening on ${httpServer.address().address}:${httpServer.address().port}`);
  process.send?.({ port: httpServer.address().port });
});
process.on('SIGTERM', () => io.close(() => process.exit(0)));
