// fastify on node 1, undici on node 0: node examples/fastify/run.js
require('../lib/pair').runPair(__dirname);
