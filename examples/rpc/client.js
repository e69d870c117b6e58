// A JSON-lines RPC client over SCIF: many calls in flight on one connection.
//   node examples/rpc/client.js mic0 [port]
const net = require('scif-net');
const readline = require('node:readline');

function rpcClient(socket) {
  let next = 1;
  const waiting = new Map();
  readline.createInterface({ input: socket }).on('line', (line) => {
    const reply = JSON.parse(line);
    const call = waiting.get(reply.id);
    waiting.delete(reply.id);
    if (reply.error) call.reject(new Error(reply.error));
    else call.resolve(reply.result);
  });
  return (method, ...params) => new Promise((resolve, reject) => {
    const id = next++;
    waiting.set(id, { resolve, reject });
    socket.write(`${JSON.stringify({ id, method, params })}\n`);
  });
}

async function main() {
  const [host = 'mic0', port = '7000'] = process.argv.slice(2);
  const socket = net.connect(Number(port), host);
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const call = rpcClient(socket);
  console.log('[rpc client] whoami ->', await call('whoami'));
  console.log('[rpc client] add(2, 40) ->', await call('add', 2, 40));
  const many = await Promise.all(Array.from({ length: 1000 }, (_, i) => call('add', i, i)));
  console.log('[rpc client] 1000 calls in flight, sum of answers ->', many.reduce((a, b) => a + b, 0));
  console.log('[rpc client] upper("scif") ->', await call('upper', 'scif'));
  socket.end();
}

main().catch((err) => {
  console.error('[rpc client] failed:', err.message);
  process.exitCode = 1;
});
