// Clients on the host (node 0) calling the server on card 0 (node 1), through
// undici and through node:http, with http://mic0:PORT/ URLs.
//   node examples/http-over-scif/client.js [port]
const http = require('node:http');
const { request, fetch } = require('undici');
const { Agent, createDispatcher } = require('scif-net/http');

const port = Number(process.argv[2] ?? 8080);
const base = `http://mic0:${port}`;

function nodeHttpGet(url, agent) {
  return new Promise((resolve, reject) => {
    http.get(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(body) }));
    }).on('error', reject);
  });
}

async function main() {
  const dispatcher = createDispatcher();

  const get = await request(`${base}/hello`, { dispatcher });
  console.log('[undici]    GET /hello ->', get.statusCode, await get.body.json());

  const post = await request(`${base}/upload`, { method: 'POST', body: Buffer.alloc(1 << 20, 1), dispatcher });
  console.log('[undici]    POST /upload (1 MiB) ->', post.statusCode, await post.body.json());

  const res = await fetch(`${base}/fetched`, { dispatcher });
  console.log('[undici]    fetch /fetched ->', res.status, await res.json());

  const agent = new Agent({ keepAlive: true });
  const viaHttp = await nodeHttpGet(`${base}/from-node-http`, agent);
  console.log('[node:http] GET /from-node-http ->', viaHttp.status, viaHttp.body);

  agent.destroy();
  await dispatcher.close();
}

main().catch((err) => {
  console.error('[client] failed:', err);
  process.exitCode = 1;
});
