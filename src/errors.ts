// Errors shaped as node:net's: system errors built in one place from
// (errno, syscall, address, port), and Node's coded argument/state errors.
import util from 'node:util';
import { binding } from './binding';

export interface SystemError extends Error {
  errno: number;
  code: string;
  syscall: string;
  address?: string;
  port?: number;
}

function codeOf(status: number): string {
  try {
    return util.getSystemErrorName(status);
  } catch {
    return `Unknown system error ${status}`;
  }
}

// The fabric's own sentence, when errno alone does not say why (a fabric
// directory that cannot be used, a node that does not exist).
function detail(): string {
  const text = binding.lastError();
  return text ? ` (${text})` : '';
}

function systemError(status: number, syscall: string, message: string, address?: string, port?: number): SystemError {
  const err = new Error(`${message}${detail()}`) as SystemError;
  err.errno = status;
  err.code = codeOf(status);
  err.syscall = syscall;
  if (address !== undefined) {
    err.address = address;
    err.port = port;
  }
  return err;
}

/** `syscall CODE` — node:net's ErrnoException. */
export function errnoException(status: number, syscall: string): SystemError {
  return systemError(status, syscall, `${syscall} ${codeOf(status)}`);
}

/** `connect ECONNREFUSED scif:1:2000` — node:net's ExceptionWithHostPort. */
export function exceptionWithHostPort(status: number, syscall: string, address: string, port: number): SystemError {
  return systemError(status, syscall, `${syscall} ${codeOf(status)} ${address}:${port}`, address, port);
}

/**
 * `listen EADDRINUSE: address already in use scif:0:2000` — as node:net's
 * listen errors read; a note, when given, says more in parentheses.
 */
export function uvExceptionWithHostPort(status: number, syscall: string, address: string, port: number, note?: string): SystemError {
  const code = codeOf(status);
  const [, message] = util.getSystemErrorMap().get(status) ?? [code, 'unknown error'];
  const more = note ? ` (${note})` : '';
  return systemError(status, syscall, `${syscall} ${code}: ${message} ${address}:${port}${more}`, address, port);
}

type ErrorClass = new (message: string) => Error;

/** An error with a Node-style code, printed as Node prints its own (`TypeError [ERR_X]: ...`). */
export function coded(Base: ErrorClass, code: string, message: string): Error & { code: string } {
  const err = new Base(message) as Error & { code: string };
  err.code = code;
  // Node prints these as "TypeError [ERR_X]: message".
  Object.defineProperty(err, 'name', { value: `${Base.name} [${code}]`, configurable: true, writable: true });
  err.stack; // materialise the stack with the coded name, as Node does
  Object.defineProperty(err, 'name', { value: Base.name, configurable: true, writable: true });
  return err;
}

/** Node's determineSpecificType: how its errors show a received value. */
function specificType(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  switch (typeof value) {
    case 'bigint':
      return `type bigint (${value}n)`;
    case 'number':
      return `type number (${Object.is(value, -0) ? '-0' : String(value)})`;
    case 'boolean':
      return `type boolean (${value})`;
    case 'symbol':
      return `type symbol (${String(value)})`;
    case 'function':
      return `function ${value.name}`;
    case 'object': {
      const ctor = (value as object).constructor;
      if (ctor && 'name' in ctor) return `an instance of ${ctor.name}`;
      return util.inspect(value, { depth: -1 });
    }
    case 'string': {
      const shown = value.length > 28 ? `${value.slice(0, 25)}...` : value;
      return shown.includes("'") ? `type string (${JSON.stringify(shown)})` : `type string ('${shown}')`;
    }
    default:
      return `type ${typeof value} (${util.inspect(value, { colors: false })})`;
  }
}

function describe(value: unknown): string {
  return ` Received ${specificType(value)}`;
}

export function ERR_INVALID_ARG_TYPE(name: string, expected: string, actual: unknown) {
  const what = name.includes('.') ? 'property' : 'argument';
  return coded(TypeError, 'ERR_INVALID_ARG_TYPE', `The "${name}" ${what} must be ${expected}.${describe(actual)}`);
}

export function ERR_INVALID_ARG_VALUE(name: string, value: unknown, reason = 'is invalid') {
  const what = name.includes('.') ? 'property' : 'argument';
  return coded(TypeError, 'ERR_INVALID_ARG_VALUE', `The ${what} '${name}' ${reason}. Received ${util.inspect(value)}`);
}

export function ERR_OUT_OF_RANGE(name: string, range: string, value: unknown) {
  return coded(RangeError, 'ERR_OUT_OF_RANGE', `The value of "${name}" is out of range. It must be ${range}. Received ${util.inspect(value)}`);
}

export function ERR_SOCKET_BAD_PORT(name: string, port: unknown, allowZero = true) {
  const op = allowZero ? '>=' : '>';
  return coded(RangeError, 'ERR_SOCKET_BAD_PORT', `${name} should be ${op} 0 and < 65536. Received ${specificType(port)}.`);
}

export function ERR_MISSING_ARGS(...names: string[]) {
  return coded(TypeError, 'ERR_MISSING_ARGS', `The ${names.map((n) => `"${n}"`).join(' or ')} argument must be specified`);
}

export const ERR_SOCKET_CLOSED = () => coded(Error, 'ERR_SOCKET_CLOSED', 'Socket is closed');
export const ERR_SOCKET_CLOSED_BEFORE_CONNECTION = () =>
  coded(Error, 'ERR_SOCKET_CLOSED_BEFORE_CONNECTION', 'Socket closed before the connection was established');
