// scif-net with node:net's ESM shape: a default export and every named one.
import { createRequire } from 'node:module';

const net = createRequire(import.meta.url)('../..');
export default net;
export const {
  BlockList, Server, Socket, SocketAddress, Stream, _setSimultaneousAccepts, connect, createConnection, createServer,
  getDefaultAutoSelectFamily, getDefaultAutoSelectFamilyAttemptTimeout, isIP, isIPv4, isIPv6,
  setDefaultAutoSelectFamily, setDefaultAutoSelectFamilyAttemptTimeout,
} = net;
