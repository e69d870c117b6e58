// An ordinary jayson TCP client of 127.0.0.1:PORT. jayson connects with
// node:net itself, so run.js redirects it: `--require scif-net/register`
// with SCIF_NET_MAP=127.0.0.1:PORT=scif:1:PORT.
const jayson = require('jayson');

const client = jayson.client.tcp({ host: '127.0.0.1', port: Number(process.argv[2]) });
client.request('add', [2, 40], (err, response) => {
  if (err) throw err;
  console.log(`add(2, 40) -> ${response.result}`);
});
