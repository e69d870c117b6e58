// express over SCIF: the app is plain express; scif-net/http's createServer
// is node:http's server, listening on a SCIF port of this node.
//   SCIF_NET_NODE=1 node examples/express/server.js
//
// Peers are SCIF nodes: req.socket.remoteAddress (and express's req.ip) read
// 'scif:0'. Middleware that validates IP addresses needs telling: with its
// default key, express-rate-limit logs ERR_ERL_INVALID_IP_ADDRESS for
// 'scif:0' (and still limits by it). This key function limits each SCIF node
// as one client and keeps the default, IPv6-aware key for TCP peers.
const express = require('express');
const { rateLimit, ipKeyGenerator } = require('express-rate-limit');
const net = require('scif-net');
const { createServer } = require('scif-net/http');

const app = express();
app.use(rateLimit({
  windowMs: 60_000,
  limit: 3,
  keyGenerator: (req) => (net.isSCIF(req.ip) ? req.ip : ipKeyGenerator(req.ip)),
}));
app.get('/hello/:name', (req, res) => res.json({ hello: req.params.name, from: req.ip }));

const server = createServer(app).listen(Number(process.argv[2] ?? 8080), () => {
  console.log(`[express] listening on ${server.address().address}:${server.address().port}`);
  process.send?.({ port: server.address().port });
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
