// An aedes broker on node 1, an mqtt.js client on node 0: node examples/mqtt/run.js
require('../lib/pair').runPair(__dirname);
