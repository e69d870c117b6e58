// An MQTT broker over SCIF: aedes's connection handler on a scif-net server.
//   SCIF_NET_NODE=1 node examples/mqtt/server.js
const { Aedes } = require('aedes');
const net = require('scif-net');

(async () => {
  const aedes = await Aedes.createBroker();
  aedes.on('client', (client) => console.log(`[mqtt broker] client ${client.id} from ${client.conn.remoteAddress}`));
  const server = net.createServer(aedes.handle);
  server.listen(Number(process.argv[2] ?? 1883), () => {
    console.log(`[mqtt broker] listening on ${server.address().address}:${server.address().port}`);
    process.send?.({ port: server.address().port });
  });
  process.on('SIGTERM', () => server.close(() => aedes.close(() => process.exit(0))));
})();
