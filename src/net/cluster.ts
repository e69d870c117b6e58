// node:cluster over SCIF: workers listening on one SCIF port share it, as
// they share a TCP port. The design follows node:cluster's shared handles
// (lib/internal/cluster: a worker's listen() asks the primary, which opens
// the listener once per address and hands it to every worker that asks)
// with SCIF's own objects, so that it also holds on Intel MPSS's libscif:
//
//   worker                                   primary
//   listen(port) over SCIF
//     fdReceiver(): a Unix datagram socket
//     -- queryServer {node, port, index,  -->  the key's listener, opened,
//        backlog, replyTo}                      bound and listened once
//                                               (openListener; it never
//                                               accepts), its descriptor
//                                      <--     sent to replyTo (sendFd),
//     receiveFd(): the same endpoint            then {port} (or an errno)
//     SocketHandle.adoptListener(): accepts on it;
//     the server's handle, 'listening'
//   close()                          -- close -->  the listener is closed
//                                               when no worker holds it
//
// Every worker then accepts on the same listening endpoint (scif_accept
// from several processes; each connection goes to one of them), as workers
// do on a shared TCP handle (SCHED_NONE): there is no round robin, since a
// connected SCIF endpoint could not be handed on (handoff.ts).
//
// What this needs underneath: a backend that accepts on a listener's
// descriptor received from another process. MPSS does (the endpoint is an
// open file of the SCIF device); the virtual fabric must adopt such a
// descriptor (README, "Cluster"). Whether the backend can is asked of it
// once (binding.sharesListeners()); where it cannot, workers listen as
// separate processes do, the first one getting the port and the others
// EADDRINUSE, which then says why.
//
// The primary side is set up when scif-net loads in a process that may fork
// workers: cluster.fork() is wrapped to tell each worker (an environment
// variable naming the primary) and to hear its questions. Messages are
// node:cluster's own internal messages (cmd 'NODE_CLUSTER', with acts of
// our own that node:cluster ignores), which never reach the program's own
// 'message' listeners; a worker's listen() costs the messages a TCP one does.
import type { Cluster, Worker } from 'node:cluster';
import os from 'node:os';
import { binding } from '../binding';
import { selfNode } from './address';

const CMD = 'NODE_CLUSTER';
/** Set in each worker's environment by a primary that answers: its pid. */
export const PRIMARY_ENV = 'SCIF_NET_CLUSTER_PRIMARY';
const MARK = Symbol.for('scif-net.cluster');
const { EADDRNOTAVAIL, ENXIO, EPIPE } = os.constants.errno;

interface Query {
  cmd: typeof CMD;
  act: 'scifQueryServer';
  seq: number;
  node: number;
  port: number;
  index: number;
  backlog: number;
  replyTo: string;
}

interface Reply {
  cmd: typeof CMD;
  act: 'scifReply';
  seq: number;
  key?: string;
  port?: number;
  errno?: number;
  unsupported?: boolean;
}

interface Release {
  cmd: typeof CMD;
  act: 'close';
  key: string;
}

type Message = Query | Reply | Release;

// node:cluster, loaded when first needed (it is cheap once node:child_process is in).
const nodeCluster = (): Cluster => require('node:cluster') as Cluster;

const ignore = (): void => {};

// A release is node:cluster's own 'close' (its primary finds no handle of its
// own under our key and does nothing), as a worker's server sends it.
const ACTS = new Set(['scifQueryServer', 'scifReply', 'close']);
const isOurs = (msg: unknown): msg is Message =>
  msg !== null && typeof msg === 'object' && (msg as Message).cmd === CMD && ACTS.has((msg as Message).act);

/** Whether the backend can accept on a listener another process opened (asked once). */
export function sharesListeners(): boolean {
  return binding.sharesListeners() === true;
}

// ---- the primary ----

interface Shared {
  epd: number;
  port: number;
  holders: Set<number>;
}

const shared = new Map<string, Shared>();

function release(key: string, worker: number): void {
  const entry = shared.get(key);
  if (!entry || !entry.holders.delete(worker) || entry.holders.size > 0) return;
  shared.delete(key);
  binding.closeEndpoint(entry.epd);
}

function answer(worker: Worker, query: Query): void {
  // A worker gone meanwhile: its exit releases what it held; nothing to tell.
  const reply = (fields: Partial<Reply>) => worker.process.send({ cmd: CMD, act: 'scifReply', seq: query.seq, ...fields }, ignore);
  if (!sharesListeners()) return void reply({ unsupported: true });
  let self: number;
  try {
    self = selfNode();
  } catch (err) {
    return void reply({ errno: (err as { errno?: number }).errno ?? -ENXIO });
  }
  // A listener is made on its process's own node: the primary's and the worker's must agree.
  if (query.node !== self) return void reply({ errno: -EADDRNOTAVAIL });
  // As node:cluster keys port 0: the n-th listen(0) of each worker shares one port.
  const key = query.port === 0 ? `${query.node}:0:${query.index}` : `${query.node}:${query.port}`;
  let entry = shared.get(key);
  // Its fabric directory was removed: its workers heard 'error', and one
  // listening again gets a listener in the directory made anew.
  if (entry && binding.listenerGone(entry.epd)) {
    shared.delete(key);
    binding.closeEndpoint(entry.epd);
    entry = undefined;
  }
  if (!entry) {
    const opened = binding.openListener(query.port, query.backlog);
    if (typeof opened === 'number') return void reply({ errno: opened });
    entry = { epd: opened.epd, port: opened.port, holders: new Set() };
    shared.set(key, entry);
  }
  const status = binding.sendFd(query.replyTo, entry.epd);
  if (status < 0) {
    if (entry.holders.size === 0) {
      shared.delete(key);
      binding.closeEndpoint(entry.epd);
    }
    return void reply({ errno: status });
  }
  entry.holders.add(worker.id);
  reply({ key, port: entry.port });
}

function attach(worker: Worker): void {
  worker.process.on('internalMessage', (msg: unknown) => {
    if (!isOurs(msg)) return;
    if (msg.act === 'scifQueryServer') answer(worker, msg);
    else if (msg.act === 'close') release(msg.key, worker.id);
  });
  worker.once('exit', () => {
    for (const key of [...shared.keys()]) release(key, worker.id);
  });
}

/**
 * In a process that may fork workers (not a worker itself): wraps
 * cluster.fork() so that workers know to ask, and their questions are
 * answered. Once per process; nothing else happens until a worker asks.
 */
export function installClusterPrimary(): void {
  const cluster = nodeCluster() as Cluster & { [MARK]?: true };
  if (cluster.isWorker || cluster[MARK]) return;
  Object.defineProperty(cluster, MARK, { value: true });
  const fork = cluster.fork;
  cluster.fork = function (this: unknown, env?: NodeJS.ProcessEnv) {
    const worker = fork.call(this, { ...env, [PRIMARY_ENV]: String(process.pid) });
    attach(worker);
    return worker;
  } as typeof cluster.fork;
}

// ---- a worker ----

/** Why a worker could not share a SCIF port, for its EADDRINUSE. */
export type ShareFailure = 'no-primary' | 'unsupported';

let seq = 0;
const waiting = new Map<number, (reply: Reply) => void>();
const listenIndexes = new Map<number, number>();
let hearing = false;

function hear(): void {
  if (hearing) return;
  hearing = true;
  process.on('internalMessage' as 'message', (msg: unknown) => {
    if (!isOurs(msg) || msg.act !== 'scifReply') return;
    const done = waiting.get(msg.seq);
    if (!done) return;
    waiting.delete(msg.seq);
    done(msg);
  });
}

/** Whether this process is a cluster worker whose primary shares SCIF listeners (else: why not). */
export function clusterRole(): 'worker' | 'none' | ShareFailure {
  if (!nodeCluster().isWorker || typeof process.send !== 'function') return 'none';
  return process.env[PRIMARY_ENV] === String(process.ppid) ? 'worker' : 'no-primary';
}

export interface ClusterListen {
  /** The shared listener, adopted: make it the server's handle; `release` when it closes. */
  shared(listener: SharedListenerLike, port: number, release: () => void): void;
  /** Sharing cannot be had here: listen alone, as a separate process would. */
  alone(why: ShareFailure): void;
  /** The primary (or the hand-over) failed with -errno. */
  failed(errno: number): void;
}

export interface SharedListenerLike {
  setOwner(owner: object): void;
  close(): void;
  ref(): void;
  unref(): void;
}

/** Asks the primary for the listener of (node, port) and adopts it; see ClusterListen for the outcomes. */
export function listenInCluster(node: number, port: number, backlog: number, then: ClusterListen): void {
  const receiver = binding.fdReceiver();
  if (typeof receiver === 'number') return void then.failed(receiver);
  let index = 0;
  if (port === 0) {
    index = listenIndexes.get(node) ?? 0;
    listenIndexes.set(node, index + 1);
  }
  const id = ++seq;
  hear();
  waiting.set(id, (reply) => {
    try {
      if (reply.unsupported) return void then.alone('unsupported');
      if (reply.errno !== undefined || reply.key === undefined || reply.port === undefined) {
        return void then.failed(reply.errno ?? -ENXIO);
      }
      const key = reply.key;
      const releaseKey = () => process.send?.({ cmd: CMD, act: 'close', key } satisfies Release, ignore);
      const fd = binding.receiveFd(receiver.fd, process.ppid);
      if (fd < 0) {
        releaseKey();
        return void then.failed(fd);
      }
      const listener = new binding.SocketHandle();
      const status = listener.adoptListener(fd, reply.port);
      if (status < 0) {
        binding.closeFd(fd);
        releaseKey();
        return void then.failed(status);
      }
      then.shared(listener, reply.port, releaseKey);
    } finally {
      binding.closeFd(receiver.fd);
    }
  });
  const query: Query = { cmd: CMD, act: 'scifQueryServer', seq: id, node, port, index, backlog, replyTo: receiver.name };
  process.send!(query, (err: Error | null) => {
    if (!err || !waiting.delete(id)) return;
    binding.closeFd(receiver.fd);
    then.failed(-EPIPE);  // the primary is gone
  });
}
