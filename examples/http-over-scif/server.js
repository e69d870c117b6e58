// A plain node:http server, served over SCIF: run it on a card node.
//   SCIF_NET_NODE=1 node examples/http-over-scif/server.js [port]
const http = require('node:http');
const scifHttp = require('scif-net/http');

const port = Number(process.argv[2] ?? 8080);

const server = http.createServer((req, res) => {
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

const scif = scifHttp.listen(server, port, () => {
  const { address, port: bound } = scif.address();
  console.log(`[server] node:http listening on ${address}:${bound}`);
  if (process.send) process.send({ listening: bound });
});

process.on('SIGTERM', () => scifHttp.closeServer(server, scif, () => process.exit(0)));
