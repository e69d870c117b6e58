// mqtt.js over SCIF: an MqttClient whose stream builder connects with
// scif-net (mqtt.js calls it again to reconnect). It subscribes, publishes
// to itself with QoS 1, and prints what comes back.
const mqtt = require('mqtt');
const net = require('scif-net');

const port = Number(process.argv[2]);
const client = new mqtt.MqttClient(() => net.connect({ node: 1, port }), { clientId: 'host-0' });
client.on('connect', async () => {
  await client.subscribeAsync('cards/+/temperature', { qos: 1 });
  await client.publishAsync('cards/mic0/temperature', '47.5', { qos: 1 });
});
client.on('message', (topic, payload) => {
  console.log(`${topic} -> ${payload}`);
  client.end();
});
client.on('error', (err) => {
  console.error(err);
  process.exit(1);
});
