// A plain node:http server, served over SCIF: run it on a card node.
//   SCIF_NET_NODE=1 node examples/http-over-scif/server.js [port]
// scif-net/http's createServer is node:http's, with a listen() that speaks
// SCIF: listen(8080) is port 8080 on this process's node.
const { createServer } = require('scif-net/http');

const port = Number(process.argv[2] ?? 8080);

const server = createServer((req, res) => {
  let bytes = 0;
  req.on('data', (chunk) => (bytes += chunk.length));
  req.on('end', () => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({
      answeredBy: `node ${process.env.SCIF_NET_NODE ?? 0}, pid ${process.pid}`,
      method: req.method,
      url: req.url,
      bodyBytes: bytes,
      client: `${req.socket.remoteAddress}:${req.socket.remotePort} (${req.socket.remoteFamily})`,
    }));
  });
});

server.listen(port, () => {
  const { address, port: bound } = server.address();
  console.log(`[server] node:http listening on ${address}:${bound}`);
  if (process.send) process.send({ listening: bound });
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
