// scif-net/scif: SCIF itself for programs that want more than sockets -
// endpoints speaking raw libscif (no framing: their peers may be plain SCIF
// programs in C), registered windows, RMA, remote mappings and fences.
//
// Nothing here blocks the event loop: connect/accept/send/recv wait on the
// endpoint's descriptor with libuv, and RMA, fences, unregister and close run
// on the libuv threadpool, holding the memory they use until they are done.
import os from 'node:os';
import { binding, type Memory, type NativeScifEndpoint, type PendingInfo } from './binding';
import {
  ERR_INVALID_ARG_TYPE,
  ERR_INVALID_ARG_VALUE,
  ERR_OUT_OF_RANGE,
  errnoException,
  exceptionWithHostPort,
  type SystemError,
} from './errors';

export { getNodeIds } from './fabric';
export type { NodeIds } from './fabric';
export type { SystemError } from './errors';

const native = binding.ScifEndpoint;
const C = native.constants;

// ---- constants (MPSS libscif's values) ----

/** The size of a page: windows are made of whole pages. */
export const pageSize: number = native.pageSize;
export const PROT_READ: number = C.PROT_READ;
export const PROT_WRITE: number = C.PROT_WRITE;
export const MAP_FIXED: number = C.MAP_FIXED;
export const RMA_USECPU: number = C.RMA_USECPU;
export const RMA_USECACHE: number = C.RMA_USECACHE;
export const RMA_SYNC: number = C.RMA_SYNC;
export const RMA_ORDERED: number = C.RMA_ORDERED;
export const FENCE_INIT_SELF: number = C.FENCE_INIT_SELF;
export const FENCE_INIT_PEER: number = C.FENCE_INIT_PEER;
export const SIGNAL_LOCAL: number = C.SIGNAL_LOCAL;
export const SIGNAL_REMOTE: number = C.SIGNAL_REMOTE;
export const constants = Object.freeze({
  PROT_READ, PROT_WRITE, MAP_FIXED, RMA_USECPU, RMA_USECACHE, RMA_SYNC, RMA_ORDERED,
  FENCE_INIT_SELF, FENCE_INIT_PEER, SIGNAL_LOCAL, SIGNAL_REMOTE,
});

// ---- arguments ----

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const MAX_LENGTH: number = require('node:buffer').constants.MAX_LENGTH;

function validateInteger(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw ERR_INVALID_ARG_TYPE(name, 'of type number', value);
  if (!Number.isInteger(value)) throw ERR_OUT_OF_RANGE(name, 'an integer', value);
  if (value < min || value > max) throw ERR_OUT_OF_RANGE(name, `>= ${min} && <= ${max}`, value);
  return value;
}

/** An offset in a registered address space (off_t): a safe integer or a bigint. */
function toOffset(value: unknown, name: string): bigint {
  if (typeof value === 'bigint') {
    if (value < INT64_MIN || value > INT64_MAX) throw ERR_OUT_OF_RANGE(name, `>= ${INT64_MIN}n && <= ${INT64_MAX}n`, value);
    return value;
  }
  if (typeof value !== 'number') throw ERR_INVALID_ARG_TYPE(name, 'of type number or bigint', value);
  if (!Number.isSafeInteger(value)) throw ERR_OUT_OF_RANGE(name, 'a safe integer (or a bigint)', value);
  return BigInt(value);
}

function toU64(value: unknown, name: string): bigint {
  if (typeof value === 'bigint') {
    if (value < 0n || value > UINT64_MAX) throw ERR_OUT_OF_RANGE(name, `>= 0n && <= ${UINT64_MAX}n`, value);
    return value;
  }
  if (typeof value !== 'number') throw ERR_INVALID_ARG_TYPE(name, 'of type number or bigint', value);
  if (!Number.isSafeInteger(value) || value < 0) throw ERR_OUT_OF_RANGE(name, 'a safe integer >= 0 (or a bigint)', value);
  return BigInt(value);
}

function toLength(value: unknown, name: string, max = Number.MAX_SAFE_INTEGER): number {
  return validateInteger(value, name, 0, max);
}

function toFlags(value: unknown, name: string, def: number): number {
  if (value === undefined) return def;
  return validateInteger(value, name, INT32_MIN, INT32_MAX);
}

function toMemory(value: unknown, name: string): Memory {
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return value;
  throw ERR_INVALID_ARG_TYPE(name, 'an instance of Buffer, TypedArray, DataView or ArrayBuffer', value);
}

function byteLength(memory: Memory): number {
  return memory.byteLength;
}

function asBuffer(memory: Memory): Buffer {
  if (Buffer.isBuffer(memory)) return memory;
  if (ArrayBuffer.isView(memory)) return Buffer.from(memory.buffer, memory.byteOffset, memory.byteLength);
  return Buffer.from(memory);
}

// ---- errors ----

/** An error from a call that ran on the threadpool: only errno speaks for it
 * (the fabric's sentence for "the last failure" belongs to another thread). */
function asyncError(status: number, syscall: string): SystemError {
  const err = errnoException(status, syscall);
  err.message = `${syscall} ${err.code}`;
  return err;
}

// Runs one native call with a completion callback as a Promise. start()
// returns 0, or -errno when it failed at once (rejected all the same).
function call<T>(syscall: string, start: (done: (status: number, value?: unknown) => void) => number,
  result: (status: number, value?: unknown) => T): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const r = start((status, value) => {
      if (status < 0) reject(asyncError(status, syscall));
      else resolve(result(status, value));
    });
    if (r < 0) reject(asyncError(r, syscall));
  });
}

// ---- windows and memory ----

/** A registered window: `length` bytes of `buffer` at `offset` in its endpoint's registered address space. */
export class Window {
  /** Where the window is in the endpoint's registered address space (an off_t, hence a bigint). */
  readonly offset: bigint;
  /** Its length in bytes (whole pages). */
  readonly length: number;
  /** PROT_READ and/or PROT_WRITE: what the peer may do with it. */
  readonly prot: number;
  /** The registered memory, as a Buffer: what the peer reads and writes. */
  readonly buffer: Buffer;

  /** @internal */
  constructor(offset: bigint, length: number, prot: number, buffer: Buffer) {
    this.offset = offset;
    this.length = length;
    this.prot = prot;
    this.buffer = buffer;
  }
}

/** What register() takes besides the memory. */
export interface RegisterOptions {
  /** Where to place the window (page-aligned); implies `fixed` unless `fixed: false` says otherwise. */
  offset?: number | bigint;
  /** PROT_READ | PROT_WRITE by default. */
  prot?: number;
  /** SCIF_MAP_FIXED: exactly at `offset`, or fail (EADDRINUSE). */
  fixed?: boolean;
}

/**
 * A zero-filled Buffer of whole pages (length rounded up to the page size) at a
 * page boundary, as windows need: private memory of its own, returned to the
 * system when the Buffer is garbage collected.
 */
export function alloc(length: number): Buffer {
  validateInteger(length, 'length', 1, MAX_LENGTH - pageSize);
  const r = native.alloc(length);
  if (typeof r === 'number') throw errnoException(r, 'mmap');
  return r;
}

/**
 * Unmaps a Buffer mmap() returned. Its memory is detached first (every view of
 * it now has length 0), so JS can never reach unmapped pages; an RMA or send
 * still reading it keeps the pages until it is done. Mappings are also
 * unmapped when garbage collected.
 */
export function unmap(buffer: Buffer | Uint8Array | ArrayBuffer): void {
  const ab = ArrayBuffer.isView(buffer) ? buffer.buffer : buffer;
  if (!(ab instanceof ArrayBuffer)) throw ERR_INVALID_ARG_TYPE('buffer', 'an instance of Buffer, Uint8Array or ArrayBuffer', buffer);
  if (ArrayBuffer.isView(buffer) && (buffer.byteOffset !== 0 || buffer.byteLength !== ab.byteLength))
    throw ERR_INVALID_ARG_VALUE('buffer', buffer, 'must be a whole mapping made by mmap(), not a part of one');
  const r = native.unmap(ab);
  if (r === -os.constants.errno.EINVAL) throw ERR_INVALID_ARG_VALUE('buffer', buffer, 'is not a mapping made by mmap() (or it was unmapped already)');
  if (r < 0) throw errnoException(r, 'scif_munmap');
}

// ---- endpoints ----

/** A node and a port: where an endpoint is. */
export interface PeerAddress {
  node: number;
  port: number;
}

// Makes an Endpoint for a native endpoint accept() made (module-private).
const kAdopt = Symbol('kAdopt');

/**
 * A SCIF endpoint (scif_open): a listener or one end of a connection, whose
 * bytes are SCIF's own (its peer may be any libscif program), with the
 * registered address space, RMA, remote mapping and fences of that connection.
 */
export class Endpoint {
  #native: NativeScifEndpoint;
  #peer: PeerAddress | null = null;
  #closed: Promise<void> | null = null;

  /** scif_open. */
  constructor();
  constructor(...internal: unknown[]) {
    if (internal[0] === kAdopt) {
      this.#native = internal[1] as NativeScifEndpoint;
      this.#peer = { node: this.#native.peerNode, port: this.#native.peerPort };
      return;
    }
    this.#native = new native();
    const r = this.#native.open();
    if (r < 0) throw errnoException(r, 'scif_open');
  }

  /** The local port (0 until bound or connected). */
  get localPort(): number {
    return this.#native.localPort;
  }

  /** The peer's node and port, once connected (or accepted). */
  get peer(): PeerAddress | null {
    return this.#peer && { ...this.#peer };
  }

  /** The endpoint's descriptor (scif_get_fd), or -1 once closed. */
  get fd(): number {
    return this.#native.fd;
  }

  /** What the endpoint holds at the moment. */
  get pending(): PendingInfo {
    return this.#native.pending;
  }

  /** scif_bind: port 0 picks a free one (>= 1088). Returns the port. */
  bind(port = 0): number {
    validateInteger(port, 'port', 0, 0xffff);
    const r = this.#native.bind(port);
    if (r < 0) throw errnoException(r, 'scif_bind');
    return r;
  }

  /** scif_listen: accept() takes the connections. */
  listen(backlog = 16): this {
    validateInteger(backlog, 'backlog', 0, INT32_MAX);
    const r = this.#native.listen(backlog);
    if (r < 0) throw errnoException(r, 'scif_listen');
    return this;
  }

  /** scif_connect, without blocking: resolves with this endpoint once connected. */
  connect(address: PeerAddress): Promise<this> {
    if (address === null || typeof address !== 'object') throw ERR_INVALID_ARG_TYPE('address', 'of type object', address);
    const node = validateInteger(address.node, 'address.node', 0, 0xffff);
    const port = validateInteger(address.port, 'address.port', 0, 0xffff);
    return new Promise<this>((resolve, reject) => {
      const fail = (status: number) => reject(exceptionWithHostPort(status, 'scif_connect', `scif:${node}`, port));
      const r = this.#native.connect(node, port, (status) => {
        if (status < 0) return fail(status);
        this.#peer = { node, port };
        resolve(this);
      });
      if (r < 0) fail(r);
    });
  }

  /** scif_accept, without blocking: the next connection, as an Endpoint with `peer` set. */
  accept(): Promise<Endpoint> {
    return new Promise<Endpoint>((resolve, reject) => {
      const r = this.#native.accept((status, handle) => {
        if (status < 0) return reject(asyncError(status, 'scif_accept'));
        resolve(new (Endpoint as new (...a: unknown[]) => Endpoint)(kAdopt, handle));
      });
      if (r < 0) reject(asyncError(r, 'scif_accept'));
    });
  }

  /** scif_send until every byte is in: resolves with the number of bytes. Sends queue in order. */
  send(data: Memory): Promise<number> {
    const memory = toMemory(data, 'data');
    return call('scif_send', (done) => this.#native.send(memory, done), (_s, bytes) => bytes as number);
  }

  /** scif_recv of exactly `length` bytes; rejects with ECONNRESET if the peer goes first. Receives queue in order. */
  recv(length: number): Promise<Buffer> {
    toLength(length, 'length', MAX_LENGTH);
    return call('scif_recv', (done) => this.#native.recv(length, done), (_s, data) => data as Buffer);
  }

  /**
   * scif_close. Waiting connect/accept/send/recv calls reject with ECANCELED;
   * RMA and fences already running finish first. Resolves once the descriptor
   * is closed and the windows released (their memory is the caller's again).
   */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = new Promise<void>((resolve, reject) => {
        const will = this.#native.close((status) => (status < 0 ? reject(asyncError(status, 'scif_close')) : resolve()));
        if (!will) resolve();
      });
    }
    return this.#closed;
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this.#closed !== null;
  }

  /** Lets the event loop wait for this endpoint's connect/accept/send/recv (the default). */
  ref(): this {
    this.#native.ref();
    return this;
  }

  /** Lets the process exit while this endpoint waits for its peer. */
  unref(): this {
    this.#native.unref();
    return this;
  }

  /**
   * scif_register: `memory` (a Buffer, TypedArray, DataView or ArrayBuffer at
   * a page boundary, of whole pages: alloc() makes such Buffers) becomes a
   * window the peer can reach, once the promise resolves (SCIF pins the pages
   * and tells the peer: that runs on the threadpool). The window holds the
   * memory until unregister() or close().
   */
  register(memory: Memory, options: RegisterOptions = {}): Promise<Window> {
    const mem = toMemory(memory, 'memory');
    if (options === null || typeof options !== 'object') throw ERR_INVALID_ARG_TYPE('options', 'of type object', options);
    const length = byteLength(mem);
    if (length > 0 && !native.isPageAligned(mem))
      throw ERR_INVALID_ARG_VALUE('memory', mem, `must start at a page boundary and be whole pages of ${pageSize} bytes (scif.alloc() makes such Buffers)`);
    const offset = options.offset === undefined ? 0n : toOffset(options.offset, 'options.offset');
    const prot = toFlags(options.prot, 'options.prot', PROT_READ | PROT_WRITE);
    const fixed = options.fixed ?? options.offset !== undefined;
    if (typeof fixed !== 'boolean') throw ERR_INVALID_ARG_TYPE('options.fixed', 'of type boolean', fixed);
    return call('scif_register', (done) => this.#native.register(mem, offset, prot, fixed ? MAP_FIXED : 0, done),
      (_s, off) => new Window(off as bigint, length, prot, asBuffer(mem)));
  }

  /** scif_unregister of a window (or of every window inside `{ offset, length }`). */
  unregister(window: Window | { offset: number | bigint; length: number }): Promise<void> {
    if (window === null || typeof window !== 'object') throw ERR_INVALID_ARG_TYPE('window', 'an instance of Window', window);
    const offset = toOffset(window.offset, 'window.offset');
    const length = toLength(window.length, 'window.length');
    return call('scif_unregister', (done) => this.#native.unregister(offset, length, done), () => undefined);
  }

  /** scif_readfrom: `length` bytes from the peer's window at `remoteOffset` into ours at `localOffset`. */
  readFrom(localOffset: number | bigint, length: number, remoteOffset: number | bigint, flags?: number): Promise<void> {
    const loff = toOffset(localOffset, 'localOffset');
    const len = toLength(length, 'length');
    const roff = toOffset(remoteOffset, 'remoteOffset');
    const f = toFlags(flags, 'flags', 0);
    return call('scif_readfrom', (done) => this.#native.readFrom(loff, len, roff, f, done), () => undefined);
  }

  /** scif_writeto: `length` bytes from our window at `localOffset` into the peer's at `remoteOffset`. */
  writeTo(localOffset: number | bigint, length: number, remoteOffset: number | bigint, flags?: number): Promise<void> {
    const loff = toOffset(localOffset, 'localOffset');
    const len = toLength(length, 'length');
    const roff = toOffset(remoteOffset, 'remoteOffset');
    const f = toFlags(flags, 'flags', 0);
    return call('scif_writeto', (done) => this.#native.writeTo(loff, len, roff, f, done), () => undefined);
  }

  /** scif_vreadfrom: fills `buffer` (any memory) from the peer's window at `remoteOffset`; resolves with it. */
  vreadFrom<T extends Memory>(buffer: T, remoteOffset: number | bigint, flags?: number): Promise<T> {
    const mem = toMemory(buffer, 'buffer');
    const roff = toOffset(remoteOffset, 'remoteOffset');
    const f = toFlags(flags, 'flags', 0);
    return call('scif_vreadfrom', (done) => this.#native.vreadFrom(mem, roff, f, done), () => buffer);
  }

  /** scif_vwriteto: `buffer` (any memory) into the peer's window at `remoteOffset`. */
  vwriteTo(buffer: Memory, remoteOffset: number | bigint, flags?: number): Promise<void> {
    const mem = toMemory(buffer, 'buffer');
    const roff = toOffset(remoteOffset, 'remoteOffset');
    const f = toFlags(flags, 'flags', 0);
    return call('scif_vwriteto', (done) => this.#native.vwriteTo(mem, roff, f, done), () => undefined);
  }

  /**
   * scif_mmap: the peer's window pages at `remoteOffset`, mapped here, as a
   * Buffer - the very pages the peer's memory is, so stores on either side
   * are seen by the other. Unmapped when garbage collected, or by unmap().
   * The mapping outlives close() and the peer.
   */
  mmap(remoteOffset: number | bigint, length: number, prot?: number): Buffer {
    const roff = toOffset(remoteOffset, 'remoteOffset');
    const len = toLength(length, 'length', MAX_LENGTH);
    const p = toFlags(prot, 'prot', PROT_READ | PROT_WRITE);
    const r = this.#native.mmap(roff, len, p);
    if (typeof r === 'number') throw errnoException(r, 'scif_mmap');
    return Buffer.from(r);
  }

  /** unmap(buffer), for symmetry with mmap(). */
  unmap(buffer: Buffer | Uint8Array | ArrayBuffer): void {
    unmap(buffer);
  }

  /** scif_fence_mark: marks the RMAs begun so far by us (FENCE_INIT_SELF) or by the peer (FENCE_INIT_PEER). */
  fenceMark(flags: number = FENCE_INIT_SELF): Promise<number> {
    const f = toFlags(flags, 'flags', FENCE_INIT_SELF);
    return call('scif_fence_mark', (done) => this.#native.fenceMark(f, done), (_s, mark) => mark as number);
  }

  /** scif_fence_wait: resolves once every RMA the mark covers has completed. */
  fenceWait(mark: number): Promise<void> {
    const m = validateInteger(mark, 'mark', INT32_MIN, INT32_MAX);
    return call('scif_fence_wait', (done) => this.#native.fenceWait(m, done), () => undefined);
  }

  /**
   * scif_fence_signal: once the RMAs marked by `flags` (FENCE_INIT_SELF or
   * FENCE_INIT_PEER) have completed, stores `localValue` (8 bytes) at
   * `localOffset` in our window (SIGNAL_LOCAL) and/or `remoteValue` at
   * `remoteOffset` in the peer's (SIGNAL_REMOTE).
   */
  fenceSignal(localOffset: number | bigint, localValue: number | bigint, remoteOffset: number | bigint,
    remoteValue: number | bigint, flags: number): Promise<void> {
    const loff = toOffset(localOffset, 'localOffset');
    const lval = toU64(localValue, 'localValue');
    const roff = toOffset(remoteOffset, 'remoteOffset');
    const rval = toU64(remoteValue, 'remoteValue');
    const f = validateInteger(flags, 'flags', INT32_MIN, INT32_MAX);
    return call('scif_fence_signal', (done) => this.#native.fenceSignal(loff, lval, roff, rval, f, done), () => undefined);
  }
}

/** A listening endpoint on `port` (0: any) of this node. */
export function listen(port = 0, backlog = 16): Endpoint {
  const ep = new Endpoint();
  try {
    ep.bind(port);
    ep.listen(backlog);
  } catch (err) {
    void ep.close();
    throw err;
  }
  return ep;
}

/** A new endpoint connected to `address`. */
export function connect(address: PeerAddress): Promise<Endpoint> {
  const ep = new Endpoint();
  let connecting: Promise<Endpoint>;
  try {
    connecting = ep.connect(address);
  } catch (err) {
    void ep.close();
    throw err;
  }
  return connecting.catch(async (err) => {
    await ep.close();
    throw err;
  });
}
