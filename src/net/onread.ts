// The `onread` connect option: incoming bytes go into the caller's own buffer
// and to a callback instead of 'data' events, as node:net does it.
import { Duplex } from 'node:stream';

export interface OnReadOption {
  buffer: Uint8Array | (() => Uint8Array);
  callback: (bytesWritten: number, buffer: Uint8Array) => boolean | void;
}

export class OnRead {
  private pending: Buffer | null = null;

  private constructor(private readonly option: OnReadOption) {}

  /** node:net ignores an onread that is not { buffer, callback }; so do we. */
  static from(option: unknown): OnRead | null {
    if (option === null || typeof option !== 'object') return null;
    const o = option as OnReadOption;
    if (!(o.buffer instanceof Uint8Array || typeof o.buffer === 'function') || typeof o.callback !== 'function') return null;
    return new OnRead(o);
  }

  hasPending(): boolean {
    return this.pending !== null;
  }

  /**
   * Hands bytes to the callback, as many buffer-fuls as it takes; the callback
   * returning false pauses the socket, and what it did not get waits for
   * resume(). Returns whether reading should go on.
   */
  deliver(socket: Duplex, chunk: Buffer | null): boolean {
    let data = this.pending && chunk ? Buffer.concat([this.pending, chunk]) : this.pending ?? chunk;
    this.pending = null;
    while (data && data.length > 0) {
      const target = typeof this.option.buffer === 'function' ? this.option.buffer() : this.option.buffer;
      const n = Math.min(target.byteLength, data.length);
      if (n === 0) break;
      data.copy(target, 0, 0, n);
      data = data.subarray(n);
      if (this.option.callback.call(socket, n, target) === false) {
        if (data.length > 0) this.pending = data;
        Duplex.prototype.pause.call(socket);
        return false;
      }
    }
    return true;
  }
}
