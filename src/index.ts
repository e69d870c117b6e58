// scif-net: `import net from 'scif-net'` in place of 'node:net'.
import * as net from './net';

export * from './net';
export { getNodeIds, fabricPath, setNodeOnline, backend, fabricNodeCount, endpoints } from './fabric';
export type { NodeIds, BackendInfo, EndpointInfo } from './fabric';
export type { ScifStats } from './binding';
export * as scif from './scif';
export default net;
