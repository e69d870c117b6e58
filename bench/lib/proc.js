'use strict';
// Child processes driven over the IPC channel: the orchestrator starts a peer,
// waits for its 'ready' message, then calls commands on it and gets results
// back. A peer exits when told to, or when the orchestrator goes away.
const { fork } = require('node:child_process');

class Peer {
  constructor(child, label) {
    this.child = child;
    this.label = label;
    this.nextId = 1;
    this.calls = new Map();
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.on('message', (m) => this.onMessage(m));
    this.exited.then(({ code, signal }) => {
      for (const { reject, timer } of this.calls.values()) {
        clearTimeout(timer);
        reject(new Error(`${label} exited (code ${code}, signal ${signal})`));
      }
      this.calls.clear();
    });
  }

  /** Starts `script` with args; resolves the Peer once it said it is ready (its info in .info). */
  static start(script, args, { env = {}, label = args.join(' '), execArgv = [], timeoutMs = 30000 } = {}) {
    const child = fork(script, args, {
      env: { ...process.env, ...env },
      execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    const peer = new Peer(child, label);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${label} did not start within ${timeoutMs} ms`));
      }, timeoutMs);
      peer.onReady = (info) => {
        clearTimeout(timer);
        peer.info = info;
        resolve(peer);
      };
      peer.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`${label} exited before it was ready (code ${code}, signal ${signal})`));
      });
    });
  }

  onMessage(m) {
    if (m && m.type === 'ready') {
      if (this.onReady) this.onReady(m.info);
      this.onReady = null;
      return;
    }
    const call = m && this.calls.get(m.id);
    if (!call) return;
    this.calls.delete(m.id);
    clearTimeout(call.timer);
    if (m.ok) call.resolve(m.result);
    else call.reject(Object.assign(new Error(`${this.label}: ${m.error}`), { remote: true }));
  }

  /** Runs a command in the peer; rejects after timeoutMs. */
  call(cmd, args = {}, timeoutMs = 60000) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.calls.delete(id);
        reject(new Error(`${this.label}: ${cmd} took more than ${timeoutMs} ms`));
      }, timeoutMs);
      this.calls.set(id, { resolve, reject, timer });
      this.child.send({ id, cmd, args });
    });
  }

  /** Asks the peer to exit; kills it if it has not within a few seconds. */
  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (this.child.connected) this.child.send({ id: 0, cmd: 'exit', args: {} });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Child side: answers the orchestrator's commands with `handlers`, after saying it is ready. */
function serve(handlers, info) {
  process.on('message', async (m) => {
    if (m.cmd === 'exit') {
      process.exit(0);
    }
    try {
      const fn = handlers[m.cmd];
      if (!fn) throw new Error(`unknown command ${m.cmd}`);
      const result = await fn(m.args || {});
      process.send({ id: m.id, ok: true, result });
    } catch (err) {
      process.send({ id: m.id, ok: false, error: err && err.stack ? err.stack : String(err) });
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'ready', info });
}

module.exports = { Peer, serve };
