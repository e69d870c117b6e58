// A TypeScript consumer of scif-net, compiled by test/types.js under each
// usual setting (node10, nodenext, bundler; esModuleInterop off; strict).
// Compiling is the test: an unresolved subpath is an implicit any (an error
// under strict), and each @ts-expect-error fails if the type it guards is any.
import * as net from 'scif-net';
import * as nodeNet from 'node:net';
import { createServer, createDispatcher, Agent } from 'scif-net/http';
import * as scif from 'scif-net/scif';
import { map } from 'scif-net/register';

const server: nodeNet.Server = net.createServer((socket: net.Socket) => {
  const plain: nodeNet.Socket = socket;
  plain.pipe(plain);
});
server.listen(2000);
const sock: net.Socket = net.connect('scif:1:2000');
sock.end('hi');
const ids: net.NodeIds = net.getNodeIds();
const count: number = ids.nodes.length + net.fabricNodeCount();
const listeners: net.EndpointInfo[] = net.endpoints().filter((e) => e.state === 'listening');
const where: string = net.fabricPath() + net.backend().name + count + listeners.length;
// @ts-expect-error a port is a number or a string
net.connect({ node: 1, port: {} });
// @ts-expect-error setNodeOnline takes a node number
net.setNodeOnline('1', true);

const http = createServer((_req, res) => res.end(where));
http.listen(8080);
const dispatcher = createDispatcher();
const agent = new Agent({ keepAlive: true });
void dispatcher;
void agent;

async function raw(): Promise<bigint> {
  const listener = scif.listen(2001);
  const conn = await listener.accept();
  const win = await conn.register(scif.alloc(scif.pageSize));
  // @ts-expect-error offsets are bigints
  const wrong: string = win.offset;
  void wrong;
  return win.offset;
}
void raw;
const entries: number = map.size;
void entries;
