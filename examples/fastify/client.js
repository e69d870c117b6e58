// undici over SCIF against the fastify app on mic0 (node 1).
const undici = require('undici');
const { createDispatcher } = require('scif-net/http');

(async () => {
  const dispatcher = createDispatcher();
  const res = await undici.request(`http://mic0:${process.argv[2]}/sum?a=2&b=40`, { dispatcher });
  console.log(`GET /sum?a=2&b=40: ${res.statusCode} ${await res.body.text()}`);
  await dispatcher.close();
})();
