// A grpc-js server over SCIF: a scif-net server accepts the connections and
// hands each to the gRPC server through its connection injector
// (grpc-js >= 1.12), so no TCP port is opened at all.
//   SCIF_NET_NODE=1 node examples/grpc/server.js
const grpc = require('@grpc/grpc-js');
const net = require('scif-net');
const { service } = require('./greeter');

const server = new grpc.Server();
server.addService(service, {
  sayHello(call, callback) {
    callback(null, { message: `Hello, ${call.request.name}`, peer: call.getPeer() });
  },
});
const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
const scif = net.createServer((socket) => injector.injectConnection(socket));
scif.listen(Number(process.argv[2] ?? 50051), () => {
  console.log(`[grpc server] listening on ${scif.address().address}:${scif.address().port}`);
  process.send?.({ port: scif.address().port });
});
process.on('SIGTERM', () => {
  scif.close();
  injector.destroy();
  server.forceShutdown();
  process.exit(0);
});
