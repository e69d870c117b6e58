// node:http with scif-net/http's Agent: requests to mic0 go over SCIF.
const http = require('node:http');
const { Agent } = require('scif-net/http');

const agent = new Agent({ keepAlive: true });
http.get(`http://mic0:${process.argv[2]}/koa`, { agent }, (res) => {
  let body = '';
  res.on('data', (d) => { body += d; });
  res.on('end', () => {
    console.log(`GET /koa: ${res.statusCode} ${body}`);
    agent.destroy();
  });
});
