// The native addon (native/addon.cc), and every contract it offers: the one
// place that loads it and says what its objects look like.
import path from 'node:path';

/**
 * The SCIF endpoint under a net.Socket or net.Server (native/socket_handle.h).
 * Verbs return 0 or a negative errno; results come back through the hooks,
 * called with the handle's owner as `this`.
 */
export interface NativeSocketHandle {
  /** Who hears the hooks, until close(). */
  setOwner(owner: object): void;
  open(): number;
  bind(port: number): number;
  listen(backlog: number): number;
  connect(node: number, port: number): number;
  /**
   * Accepts on a listening endpoint another process opened (a cluster
   * primary): 0, or -errno (EBADF: the backend does not know the descriptor
   * as an endpoint). close() lets go of this process's hold only.
   */
  adoptListener(epd: number, port: number): number;
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
  /** How the connection's bytes moved (native/rma_lane.h). */
  scifStats(): ScifStats;
}

/**
 * How a socket's bytes moved, in bytes: large writes by RMA into the peer's
 * receive window, the rest by messages on the endpoint's queue.
 */
export interface ScifStats {
  sent: { rma: number; messages: number };
  received: { rma: number; messages: number };
  /** Receive windows this end registered (0 or 1: one per connection, made on the peer's first large write). */
  windows: number;
  /** Times this end's writes went back to messages because the peer could not register a window. */
  fallbacks: number;
}

/** The functions SocketHandles call on their owners; linked once per environment. */
export interface SocketHooks<Owner> {
  /**
   * A listener accepted `handle` (its peer: handle.peerNode, handle.peerPort), or failed to;
   * `gone`: for good (it listens no more: its fabric directory was removed), and it is no longer watched.
   */
  onconnection(this: Owner, status: number, handle?: NativeSocketHandle, gone?: boolean): void;
  onconnect(this: Owner, status: number): void;
  /** nread > 0: bytes at buffer[offset..]; UV_EOF: the peer ended; else -errno. */
  onread(this: Owner, nread: number, buffer?: Buffer, offset?: number): void;
  onwrite(this: Owner, status: number): void;
  onshutdown(this: Owner, status: number): void;
}

export interface NativeSocketHandleClass {
  new (): NativeSocketHandle;
  linkHooks<Owner>(hooks: Partial<SocketHooks<Owner>>): number;
}

/** A completion: 0 (or a value) or a negative errno. */
export type Done = (status: number) => void;
/** Memory a SCIF call may read or write. */
export type Memory = ArrayBufferView | ArrayBuffer;

/** What a raw endpoint holds at the moment (for tests and leak hunting). */
export interface PendingInfo {
  connect: number;
  accepts: number;
  recvs: number;
  sends: number;
  /** Calls running (or queued) on the threadpool. */
  inflight: number;
  sleepers: number;
  /** Windows registered and not unregistered. */
  windows: number;
  /** Whether the descriptor is watched by the event loop. */
  watching: boolean;
  /** Live mappings made by mmap() in this process, all endpoints together. */
  mappings: number;
}

/** A raw SCIF endpoint (native/scif_endpoint.h): callbacks are (status, value). */
export interface NativeScifEndpoint {
  open(): number;
  bind(port: number): number;
  listen(backlog: number): number;
  connect(node: number, port: number, cb: Done): number;
  /** The accepted endpoint's peer: its peerNode, peerPort. */
  accept(cb: (status: number, endpoint?: NativeScifEndpoint) => void): number;
  send(data: Memory, cb: (status: number, bytes?: number) => void): number;
  recv(length: number, cb: (status: number, data?: Buffer) => void): number;
  close(cb: Done): boolean;
  ref(): void;
  unref(): void;
  register(memory: Memory, offset: bigint, prot: number, mapFlags: number, cb: (status: number, offset?: bigint) => void): number;
  unregister(offset: bigint, length: number, cb: Done): number;
  readFrom(localOffset: bigint, length: number, remoteOffset: bigint, flags: number, cb: Done): number;
  writeTo(localOffset: bigint, length: number, remoteOffset: bigint, flags: number, cb: Done): number;
  vreadFrom(memory: Memory, remoteOffset: bigint, flags: number, cb: Done): number;
  vwriteTo(memory: Memory, remoteOffset: bigint, flags: number, cb: Done): number;
  mmap(remoteOffset: bigint, length: number, prot: number): ArrayBuffer | number;
  fenceMark(flags: number, cb: (status: number, mark?: number) => void): number;
  fenceWait(mark: number, cb: Done): number;
  fenceSignal(localOffset: bigint, localValue: bigint, remoteOffset: bigint, remoteValue: bigint, flags: number, cb: Done): number;
  readonly localPort: number;
  readonly peerNode: number;
  readonly peerPort: number;
  readonly fd: number;
  readonly pending: PendingInfo;
}

export interface NativeScifClass {
  new (): NativeScifEndpoint;
  alloc(length: number): Buffer | number;
  unmap(mapping: ArrayBuffer): number;
  isPageAligned(memory: Memory): boolean;
  readonly pageSize: number;
  readonly constants: Readonly<Record<string, number>>;
}

/** One end on the fabric, as `scif-net ports` lists it (scif_net_census). */
export interface EndpointInfo {
  /** 'listening'; 'connected' (the end that connected) or 'accepted'. */
  state: 'listening' | 'connected' | 'accepted';
  /** The process holding it (0: not found) and its descriptor there. */
  pid: number;
  fd: number;
  node: number;
  port: number;
  /** The other end; null for a listener. */
  peer: { node: number; port: number } | null;
  /** The connection's number in the fabric ('' when unknown): both ends say the same. */
  connection: string;
  /** Bytes this end put into its ring and its peer into the other (a socket's framing included), RMAs it began; -1 when unknown. */
  bytesSent: number;
  bytesReceived: number;
  rmas: number;
}

export interface Binding {
  SocketHandle: NativeSocketHandleClass;
  ScifEndpoint: NativeScifClass;
  nodeIds(): { self: number; nodes: number[] } | number;
  selfNode(): number;
  fabricPath(): string | number;
  setNodeOnline(node: number, online: boolean): number;
  /** How many nodes the fabric has, online or not (or -errno). */
  nodeCount(): number;
  /** The fabric's listeners and connections, every process's (or -errno). */
  census(): EndpointInfo[] | number;
  lastError(): string;
  backend(): { name: string; library: string; note: string } | string;
  UV_EOF: number;
  // node:cluster support (native/cluster.cc).
  /** A Unix datagram socket that takes descriptors, bound to an abstract name: { fd, name } or -errno. */
  fdReceiver(): { fd: number; name: string } | number;
  /** Sends a duplicate of fd to the receiver called name: 0 or -errno. */
  sendFd(name: string, fd: number): number;
  /** The descriptor waiting at a receiver, sent by process fromPid: the fd, or -errno (EAGAIN: none; EPERM: another sender). */
  receiveFd(receiverFd: number, fromPid: number): number;
  closeFd(fd: number): number;
  /** A listening endpoint for other processes to accept on: { epd, port } or -errno. */
  openListener(port: number, backlog: number): { epd: number; port: number } | number;
  closeEndpoint(epd: number): number;
  /** Whether a listener can accept nothing more (its fabric directory was removed). */
  listenerGone(epd: number): boolean;
  /** Whether the backend accepts on a listener's descriptor held by another process (or -errno). */
  sharesListeners(): boolean | number;
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
