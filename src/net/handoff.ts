// Handing a SCIF connection or listener to another process over Node's IPC
// (child.send('socket', socket), worker.send(...), process.send(...)).
//
// Node's IPC carries TCP and pipe handles. Given a net.Socket without one, as
// a scif-net socket in SCIF mode is, it used to send the message alone and
// drop the socket without a word; given a server listening over SCIF it
// failed with a bare `write EINVAL`. On Intel's MPSS a connected SCIF endpoint
// is one descriptor and could travel with SCM_RIGHTS; in the virtual fabric a
// connection's rings are mappings of its process, which a receiving process
// could not reach (see README, "Handing connections to other processes").
// So the send fails at once, as Node fails for a handle type it cannot send,
// saying why and what to do instead.
//
// The `send` functions Node gives each IPC channel (process.send in a child,
// child.send on every ChildProcess spawned with one) are wrapped to check the
// handle first; anything that is not SCIF's goes to Node's own send unchanged.
// Installed when scif-net loads, once per process.
import { ChildProcess } from 'node:child_process';
import { coded } from '../errors';

/** Whether a handle is a socket or server of scif-net's in SCIF mode (each copy of scif-net brings one). */
export type ScifHandleTest = (handle: unknown) => 'socket' | 'server' | null;

interface Registry {
  tests: Set<ScifHandleTest>;
}

type Send = (this: unknown, message: unknown, handle?: unknown, ...rest: unknown[]) => boolean;

const REGISTRY = Symbol.for('scif-net.ipc-send');
const WRAPPED = Symbol.for('scif-net.ipc-send.wrapped');

export function ERR_INVALID_HANDLE_TYPE_SCIF(kind: 'socket' | 'server'): Error {
  const what = kind === 'socket'
    ? 'A scif-net socket connected over SCIF cannot be sent to another process: its connection is a SCIF ' +
      "endpoint, and Node's IPC carries TCP and pipe handles only. Keep the connection in this process and " +
      'pass its data on, or let the other process connect itself'
    : 'A scif-net server listening over SCIF cannot be sent to another process: its listener is a SCIF ' +
      "endpoint, and Node's IPC carries TCP and pipe handles only. Let the other process listen itself " +
      '(node:cluster workers listening on one SCIF port share it where the SCIF backend can: scif-net README, "Cluster")';
  return coded(TypeError, 'ERR_INVALID_HANDLE_TYPE', `This handle type cannot be sent. ${what}.`);
}

function wrap(registry: Registry, target: Record<string | symbol, unknown>): void {
  const send = target.send as Send | undefined;
  if (typeof send !== 'function' || (send as unknown as Record<symbol, unknown>)[WRAPPED]) return;
  const guarded = function (this: unknown, message: unknown, handle?: unknown, ...rest: unknown[]) {
    if (handle !== null && typeof handle === 'object') {
      for (const test of registry.tests) {
        const kind = test(handle);
        if (kind) throw ERR_INVALID_HANDLE_TYPE_SCIF(kind);
      }
    }
    return send.call(this, message, handle, ...rest);
  };
  Object.defineProperty(guarded, WRAPPED, { value: true });
  Object.defineProperty(guarded, 'name', { value: 'send' });
  target.send = guarded;
}

function install(): Registry {
  const registry: Registry = { tests: new Set() };
  const proto = ChildProcess.prototype as unknown as Record<string | symbol, unknown>;
  Object.defineProperty(proto, REGISTRY, { value: registry });
  // This process's own channel, when it has one.
  wrap(registry, process as unknown as Record<string, unknown>);
  // Each child's, made when spawn() sets up its IPC channel.
  const spawn = proto.spawn as (this: ChildProcess, ...args: unknown[]) => unknown;
  proto.spawn = function (this: ChildProcess, ...args: unknown[]) {
    const result = spawn.apply(this, args);
    wrap(registry, this as unknown as Record<string, unknown>);
    return result;
  };
  return registry;
}

/** Guards this process's IPC sends against SCIF handles that `test` recognises; once per process. */
export function installSendGuard(test: ScifHandleTest): void {
  const existing = (ChildProcess.prototype as unknown as Record<symbol, Registry | undefined>)[REGISTRY];
  (existing ?? install()).tests.add(test);
}
