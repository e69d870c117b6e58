// scif-net: `import net from 'scif-net'` in place of 'node:net'.
import * as net from './net';

export * from './net';
export { getNodeIds, fabricPath, setNodeOnline } from './fabric';
export type { NodeIds } from './fabric';
export default net;
