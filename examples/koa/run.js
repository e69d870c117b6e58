// koa on node 1, node:http on node 0: node examples/koa/run.js
require('../lib/pair').runPair(__dirname);
