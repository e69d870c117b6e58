// nodes, fabric and cflags: what the fabric and the package are, for people
// and (--json) for scripts.
import fs from 'node:fs';
import path from 'node:path';
import { scifNet } from './streams';
import { UsageError } from './usage';

function print(json: boolean, value: unknown, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : text());
}

/** The backend, or the reason there is none (the command still reports the rest). */
function backendOrWhy(): { name: string; library: string; note: string } | { error: string } {
  try {
    return scifNet().backend();
  } catch (err) {
    return { error: (err as Error).message };
  }
}

export function nodes(json: boolean): number {
  const net = scifNet();
  const backend = backendOrWhy();
  if ('error' in backend) throw Object.assign(new Error(backend.error), { code: 'ENXIO' });
  const ids = net.getNodeIds();
  const info = { self: ids.self, nodes: ids.nodes, backend, fabric: backend.name === 'virtual' ? net.fabricPath() : null };
  print(json, info, () =>
    [
      `this node: ${ids.self}`,
      `online:    ${ids.nodes.join(' ')}`,
      `backend:   ${backend.name}${backend.library ? ` (${backend.library})` : ''}`,
      `why:       ${backend.note}`,
      ...(info.fabric ? [`fabric:    ${info.fabric}`] : []),
      '',
    ].join('\n'),
  );
  return 0;
}

export function fabric(args: string[], json: boolean): number {
  const net = scifNet();
  const [action = 'status', ...rest] = args;
  if (action === 'status' || action === 'create') {
    // Opening the fabric makes it when it does not exist yet: `create` is
    // `status` said on purpose (SCIF_NET_NODES sizes a new one).
    if (rest.length) throw new UsageError(`fabric ${action} takes no arguments`);
    const dir = net.fabricPath();
    const ids = net.getNodeIds();
    const count = countNodes();
    const info = { path: dir, nodes: count, online: ids.nodes, self: ids.self };
    print(json, info, () =>
      `fabric:  ${dir}\nnodes:   ${count} (0 is the host, 1..${count - 1} cards)\nonline:  ${ids.nodes.join(' ')}\n`,
    );
    return 0;
  }
  if (action === 'node') {
    const [n, state] = rest;
    if (n === undefined || !/^\d+$/.test(n) || (state !== 'up' && state !== 'down') || rest.length !== 2)
      throw new UsageError('usage: scif-net fabric node N up|down');
    net.setNodeOnline(Number(n), state === 'up');
    return 0;
  }
  throw new UsageError(`fabric: unknown action "${action}" (status, create, node N up|down)`);
}

/** Nodes in the table: the highest node a connect could name, plus one (off line ones included). */
function countNodes(): number {
  return scifNet().fabricNodeCount();
}

/** Where kernel/ is: in this checkout or installed package. */
function kernelDir(): string {
  return path.join(__dirname, '..', '..', 'kernel');
}

export function cflags(libs: boolean, pc: boolean): number {
  const kernel = kernelDir();
  const out = path.join(kernel, 'out');
  if (!fs.existsSync(path.join(out, 'libscif.so.0')))
    throw Object.assign(new Error(`${path.join(out, 'libscif.so.0')} is not built`), { code: 'ENOLIB' });
  if (pc) {
    process.stdout.write(`${out}\n`);
    return 0;
  }
  const words = [`-I${path.join(kernel, 'include')}`];
  if (libs) words.push(`-L${out}`, `-Wl,-rpath,${out}`, '-lscif', '-pthread');
  process.stdout.write(`${words.join(' ')}\n`);
  return 0;
}
