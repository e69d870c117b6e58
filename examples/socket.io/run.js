// socket.io on node 1, socket.io-client on node 0: node examples/socket.io/run.js
require('../lib/pair').runPair(__dirname);
