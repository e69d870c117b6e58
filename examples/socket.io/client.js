// socket.io-client over SCIF: both of its transports (HTTP long-polling, then
// the WebSocket upgrade) make their requests through the agent, a
// scif-net/http Agent.
const { io } = require('socket.io-client');
const { Agent } = require('scif-net/http');

const socket = io(`http://mic0:${process.argv[2]}`, { agent: new Agent() });
socket.on('welcome', (info) => console.log(`welcome: ${JSON.stringify(info)}`));
socket.on('upgraded', async (name) => {
  console.log(`upgraded to ${name}`);
  const sum = await socket.emitWithAck('add', 2, 40);
  console.log(`add(2, 40) -> ${sum}`);
  socket.close();
});
socket.on('connect_error', (err) => {
  console.error(err);
  process.exit(1);
});
