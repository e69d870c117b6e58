// gRPC: the server on node 1 (connection injector), the client on node 0
// redirected to it: node examples/grpc/run.js
require('../lib/pair').runPair(__dirname, {
  clientExecArgv: ['--require', require.resolve('scif-net/register')],
  clientEnv: (port) => ({ SCIF_NET_MAP: `localhost:${port}=scif:1:${port}` }),
});
