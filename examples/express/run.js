// express on node 1, undici on node 0: node examples/express/run.js
require('../lib/pair').runPair(__dirname);
