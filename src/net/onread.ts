// The `onread` connect option: incoming bytes go into the caller's own buffer
// and to a callback instead of 'data' events, as node:net does it: a buffer
// factory is asked for the first buffer when the socket gets its endpoint
// (connect, or accept) and for the next one after each callback; the
// callback returning false, or pausing the socket, stops reading until
// resume() (or read()).
import { isUint8Array } from 'node:util/types';

export interface OnReadOption {
  buffer: Uint8Array | (() => Uint8Array);
  callback: (bytesWritten: number, buffer: Uint8Array) => boolean | void;
}

export class OnRead {
  private pending: Buffer | null = null;
  private target: Uint8Array | null;
  /** Whether the socket wants bytes now (node:net's handle.reading). */
  reading = false;
  /** The peer's end came while bytes still waited for the callback, or reading was stopped. */
  endWaiting = false;
  /** The end has been handed on (push(null)): nothing more to read. */
  ended = false;
  /** A hand-over of waiting bytes is due (setImmediate). */
  flushing = false;

  private constructor(private readonly option: OnReadOption) {
    this.target = typeof option.buffer === 'function' ? option.buffer() : option.buffer;
  }

  /** node:net ignores an onread that is not { buffer, callback }; so do we. */
  static from(option: unknown): OnRead | null {
    if (option === null || typeof option !== 'object') return null;
    const o = option as OnReadOption;
    if (!(isUint8Array(o.buffer) || typeof o.buffer === 'function') || typeof o.callback !== 'function') return null;
    return new OnRead(o);
  }

  hasPending(): boolean {
    return this.pending !== null;
  }

  /**
   * Hands bytes to the callback, a buffer-ful at a time, for as long as the
   * socket keeps reading; what it did not get waits for the next start.
   * Returns whether reading should go on.
   */
  deliver(socket: object, chunk: Buffer | null): boolean {
    let data = this.pending && chunk ? Buffer.concat([this.pending, chunk]) : this.pending ?? chunk;
    this.pending = null;
    while (data && data.length > 0 && this.reading) {
      const target = this.target;
      if (!isUint8Array(target) || target.byteLength === 0) break;
      const n = Math.min(target.byteLength, data.length);
      target.set(data.subarray(0, n));
      data = data.subarray(n);
      if (this.option.callback.call(socket, n, target) === false) this.reading = false;
      if (typeof this.option.buffer === 'function') {
        const next = this.option.buffer();
        if (isUint8Array(next)) this.target = next;
      }
    }
    if (data && data.length > 0) this.pending = data;
    return this.reading;
  }
}
