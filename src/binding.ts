// The native addon, and the shape of what it offers (native/endpoint.h).
import path from 'node:path';

export interface NativeEndpoint {
  open(): number;
  bind(port: number): number;
  listen(backlog: number): number;
  connect(node: number, port: number): number;
  readStart(): number;
  readStop(): number;
  writev(chunks: Uint8Array[]): number;
  shutdown(): number;
  /** True when `onClosed` will be called from the loop's close phase. */
  close(reset?: boolean, onClosed?: () => void): boolean;
  ref(): void;
  unref(): void;
  readonly fd: number;
  readonly localPort: number;
  readonly peerNode: number;
  readonly peerPort: number;
  readonly writeQueueSize: number;
  onconnection?: (status: number, endpoint?: NativeEndpoint, node?: number, port?: number) => void;
  onconnect?: (status: number) => void;
  onread?: (nread: number, buffer?: Buffer, offset?: number) => void;
  onwrite?: (status: number) => void;
  onshutdown?: (status: number) => void;
}

export interface Binding {
  Endpoint: new () => NativeEndpoint;
  nodeIds(): { self: number; nodes: number[] } | number;
  nodeCount(): number;
  selfNode(): number;
  fabricPath(): string | number;
  setNodeOnline(node: number, online: boolean): number;
  lastError(): string;
  backend(): { name: string; library: string; note: string } | string;
  UV_EOF: number;
}

function load(): Binding {
  const root = path.join(__dirname, '..');
  const tried: string[] = [];
  for (const kind of ['Release', 'Debug']) {
    const file = path.join(root, 'build', kind, 'scif_net.node');
    tried.push(file);
    try {
      return require(file) as Binding;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
    }
  }
  throw new Error(`scif-net: the native addon is not built (looked for ${tried.join(', ')}); run \`npm install\` or \`npx node-gyp rebuild\``);
}

export const binding: Binding = load();
