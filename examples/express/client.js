// Calls the express app on card mic0 (node 1) with undici over SCIF, until
// the rate limit (3 a minute, per SCIF node) answers 429.
const undici = require('undici');
const { createDispatcher } = require('scif-net/http');

async function main() {
  const dispatcher = createDispatcher();
  const port = process.argv[2];
  for (let i = 1; i <= 4; i++) {
    const res = await undici.request(`http://mic0:${port}/hello/world`, { dispatcher });
    const body = await res.body.text();
    console.log(`request ${i}: ${res.statusCode} ${body}`);
  }
  await dispatcher.close();
}

main();
