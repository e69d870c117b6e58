// ports: the fabric's listeners (and with -a, its connections too), stat:
// every end with its traffic; both like `ss`, both from scif_net_census().
import { scifNet } from './streams';
import type { EndpointInfo } from '../index';

function num(n: number): string {
  return n < 0 ? '?' : String(n);
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd()).join('\n') + '\n';
}

function sorted(list: EndpointInfo[]): EndpointInfo[] {
  const order = { listening: 0, connected: 1, accepted: 2 };
  return list.sort((a, b) => a.node - b.node || a.port - b.port || order[a.state] - order[b.state] || a.pid - b.pid);
}

/** `ports`: listeners only unless all; `stat`: everything, with traffic. */
export function ports(json: boolean, all: boolean, traffic: boolean): number {
  const list = sorted(scifNet().endpoints()).filter((e) => all || e.state === 'listening');
  if (json) {
    process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
    return 0;
  }
  const head = ['STATE', 'LOCAL', 'PEER', 'PID', 'FD'];
  if (traffic) head.push('SENT', 'RECEIVED', 'RMAS');
  const rows = [head];
  for (const e of list) {
    const row = [e.state.toUpperCase(), `scif:${e.node}:${e.port}`, e.peer ? `scif:${e.peer.node}:${e.peer.port}` : '*', e.pid ? String(e.pid) : '?', e.fd >= 0 ? String(e.fd) : '?'];
    if (traffic) row.push(num(e.bytesSent), num(e.bytesReceived), num(e.rmas));
    rows.push(row);
  }
  process.stdout.write(table(rows));
  return 0;
}
