// exec --map MAP -- node app.js: runs an unmodified program with
// scif-net/register preloaded (NODE_OPTIONS, so its node children inherit it
// too) and the map in SCIF_NET_MAP / SCIF_NET_MAP_FILE. The program's exit
// status is ours; a signal that killed it kills us the same way.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { UsageError } from './usage';

export interface ExecOptions {
  maps: string[];
  mapFile?: string;
}

export function exec(command: string[], options: ExecOptions): Promise<number> {
  if (command.length === 0) throw new UsageError('exec: no program given (scif-net exec --map MAP -- node app.js)');
  if (options.maps.length === 0 && !options.mapFile) throw new UsageError('exec: give --map HOST:PORT=scif:NODE:PORT (or --map-file FILE)');
  const register = path.join(__dirname, '..', 'register.js');
  const env = { ...process.env };
  // JSON-quoted so that a path with spaces survives NODE_OPTIONS's parsing.
  env.NODE_OPTIONS = [env.NODE_OPTIONS, `--require ${JSON.stringify(register)}`].filter(Boolean).join(' ');
  if (options.maps.length) env.SCIF_NET_MAP = [env.SCIF_NET_MAP, ...options.maps].filter(Boolean).join(',');
  if (options.mapFile) env.SCIF_NET_MAP_FILE = path.resolve(options.mapFile);
  return new Promise((resolve, reject) => {
    const child = spawn(command[0], command.slice(1), { stdio: 'inherit', env });
    // The child hears the terminal's signals itself; ours must not kill us first.
    const pass = (sig: NodeJS.Signals) => child.kill(sig);
    process.on('SIGINT', pass).on('SIGTERM', pass).on('SIGHUP', pass);
    child.once('error', (err) =>
      reject(Object.assign(new Error(`cannot run ${command[0]}: ${err.message}`), { code: (err as NodeJS.ErrnoException).code })),
    );
    child.once('exit', (code, signal) => {
      process.off('SIGINT', pass).off('SIGTERM', pass).off('SIGHUP', pass);
      if (signal) {
        // Die of the same signal, whoever else listens for it (a preloaded
        // tool's handler would turn it into an exit status).
        process.removeAllListeners(signal);
        process.kill(process.pid, signal);
        return;
      }
      resolve(code ?? 1);
    });
  });
}
