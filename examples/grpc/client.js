// An ordinary grpc-js client of localhost:PORT. Run as it is, it would use
// TCP; run.js starts it with `--require scif-net/register` and
// SCIF_NET_MAP=localhost:PORT=scif:1:PORT, so it reaches the server on node 1.
const grpc = require('@grpc/grpc-js');
const { Greeter } = require('./greeter');

const client = new Greeter(`localhost:${process.argv[2]}`, grpc.credentials.createInsecure());
client.sayHello({ name: 'SCIF' }, (err, reply) => {
  if (err) throw err;
  console.log(`SayHello -> ${JSON.stringify(reply)}`);
  client.close();
});
