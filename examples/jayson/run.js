// jayson on node 1, its TCP client on node 0, redirected: node examples/jayson/run.js
require('../lib/pair').runPair(__dirname, {
  clientExecArgv: ['--require', require.resolve('scif-net/register')],
  clientEnv: (port) => ({ SCIF_NET_MAP: `127.0.0.1:${port}=scif:1:${port}` }),
});
