// scif-net: the command line (bin/scif-net.js). Each command has --help;
// usage errors exit 2, failures 1, both with one line on stderr (and a line
// saying what to do, when the cause is a known one: hints.ts).
import { parseArgs } from 'node:util';
import { bridge } from './bridge';
import { cat } from './cat';
import { exec } from './exec';
import { cflags, fabric, nodes } from './info';
import { ports } from './ports';
import { report } from './report';
import { EXIT_FAILURE, EXIT_USAGE, UsageError } from './usage';

const HELP: Record<string, string> = {
  '': `Usage: scif-net COMMAND [OPTIONS]

Commands:
  nodes [--json]                 this node, the online nodes, the backend and why
  ports [-a] [--json]            the fabric's listeners (-a: connections too), like ss -l
  stat [--json]                  every listener and connection with its traffic, like ss -a
  cat scif:N:P | cat -l PORT     netcat over SCIF (stdin to the peer, the peer to stdout)
  bridge LISTEN TARGET           relay tcp:HOST:PORT, unix:PATH, scif:N:P both ways
  fabric [status|create|node N up|down]   the fabric directory; card resets for drills
  exec --map MAP -- CMD...       run an unmodified program with scif-net/register
  cflags [--libs] [--pc]         compiler flags for C programs using libscif

Global options (before or after the command):
  --node N                       act as node N (SCIF_NET_NODE)
  -h, --help                     help; \`scif-net COMMAND --help\` for a command's

The fabric comes from SCIF_NET_FABRIC, SCIF_NET_NODE, SCIF_NET_NODES (README: The fabric).
Exit status: 0 done, 1 failed (the reason on stderr), 2 bad usage.
`,
  nodes: `Usage: scif-net nodes [--json] [--node N]

Prints this process's node, the nodes online in the fabric, the backend in use
(virtual: the user-space fabric; hw: a libscif loaded with dlopen) and why
SCIF_NET_BACKEND=auto chose it.
`,
  ports: `Usage: scif-net ports [-a] [--json]

Lists the fabric's listening ports: node, port, the process holding it (pid) and
its descriptor there. -a adds the connected ends (see also \`scif-net stat\`).
Covers every process of this user on the fabric that SCIF_NET_FABRIC names.
`,
  stat: `Usage: scif-net stat [--json]

Lists every listener and connected end on the fabric with its traffic: bytes
this end sent into its ring, bytes its peer sent, RMAs it began (a socket's
framing counts: 4 bytes a frame). "?" where the process's memory cannot be read.
`,
  cat: `Usage: scif-net cat [--node N] scif:NODE:PORT
       scif-net cat -l [--node N] PORT|PLACE

Connects (or, with -l, waits for one connection on PORT of this node) and copies
stdin to the connection and the connection to stdout. End of stdin ends our
direction only (half-close): the peer's data still comes until it ends too.
PLACE may also be tcp:HOST:PORT or unix:PATH. Exit 1 if the connection fails or is reset.
  -q, --quiet     no "listening on" line on stderr
`,
  bridge: `Usage: scif-net bridge [--node N] [-q] LISTEN TARGET

Accepts connections on LISTEN and connects each one to TARGET, copying both ways
(many connections at once, half-close and resets passed through), as
socat's LISTEN,fork does. Places:
  tcp:HOST:PORT, tcp:PORT (listen on all addresses)   TCP
  unix:PATH                                           a Unix socket
  scif:NODE:PORT, scif:PORT (listen on this node)     SCIF
Examples:
  scif-net bridge tcp:127.0.0.1:8080 scif:1:8080   # curl localhost:8080 reaches node 1's server
  scif-net bridge --node 1 scif:5432 tcp:db:5432   # SCIF clients reach a TCP service
Prints "listening on ..." on stderr once ready (-q: not). Stops on SIGINT/SIGTERM.
`,
  fabric: `Usage: scif-net fabric [status|create] [--json]
       scif-net fabric node N up|down

status (the default) prints the fabric directory, its node count and the nodes
online; create makes the fabric if it does not exist (SCIF_NET_NODES nodes).
node N down resets card N as a card reset would: every connection with an end
on it is reset (ECONNRESET), connects to it fail with ENODEV until node N up.
`,
  exec: `Usage: scif-net exec [--node N] --map HOST:PORT=scif:NODE[:PORT] [--map ...] [--map-file FILE] -- CMD [ARGS...]

Runs CMD (a Node.js program, or a shell that runs one) with scif-net/register
preloaded through NODE_OPTIONS, so the listens and connects the map names go
over SCIF with no change to the program (README: Unmodified programs).
Exit status: CMD's.
`,
  cflags: `Usage: scif-net cflags [--libs] [--pc]

Prints the compiler flags for a C program written against MPSS's libscif to
build on the virtual fabric: -I for scif.h; --libs adds -L, the run path and
-lscif; --pc prints the directory of scif-net.pc instead (for PKG_CONFIG_PATH).
  cc prog.c $(npx scif-net cflags --libs)
`,
};

function help(command: string): number {
  process.stdout.write(HELP[command] ?? HELP['']);
  return 0;
}

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
  node: { type: 'string' },
  all: { type: 'boolean', short: 'a' },
  listen: { type: 'boolean', short: 'l' },
  quiet: { type: 'boolean', short: 'q' },
  map: { type: 'string', multiple: true },
  'map-file': { type: 'string' },
  libs: { type: 'boolean' },
  pc: { type: 'boolean' },
} as const;

type Values = ReturnType<typeof parse>['values'];

function parse(argv: string[]) {
  return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
}

// Which options each command takes (help and node: all of them).
const ACCEPTS: Record<string, (keyof Values)[]> = {
  nodes: ['json'],
  ports: ['json', 'all'],
  stat: ['json'],
  cat: ['listen', 'quiet'],
  bridge: ['quiet'],
  fabric: ['json'],
  exec: ['map', 'map-file'],
  cflags: ['libs', 'pc'],
};

function arity(command: string, args: string[], min: number, max: number): void {
  if (args.length < min || args.length > max)
    throw new UsageError(`${command}: expected ${min === max ? min : `${min} to ${max}`} argument${max === 1 ? '' : 's'}, got ${args.length}`);
}

async function run(argv: string[]): Promise<number> {
  // exec's program keeps its own options: split at the first "--".
  const dashes = argv.indexOf('--');
  const ours = dashes < 0 ? argv : argv.slice(0, dashes);
  const program = dashes < 0 ? [] : argv.slice(dashes + 1);
  let parsed;
  try {
    parsed = parse(ours);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const [command = '', ...args] = positionals;
  if (values.help || command === 'help') return help(command === 'help' ? (args[0] ?? '') : command);
  if (!command) {
    process.stderr.write(HELP['']);
    return EXIT_USAGE;
  }
  if (!(command in ACCEPTS)) throw new UsageError(`unknown command "${command}"`);
  for (const key of Object.keys(values) as (keyof Values)[])
    if (key !== 'node' && key !== 'help' && !ACCEPTS[command].includes(key))
      throw new UsageError(`${command} does not take --${key}`);
  if (dashes >= 0 && command !== 'exec') throw new UsageError(`${command} takes no "--"`);
  if (values.node !== undefined) {
    if (!/^\d+$/.test(values.node)) throw new UsageError(`--node ${values.node}: a node is a number (0 is the host)`);
    // Read by the fabric when it is first opened, which is after this.
    process.env.SCIF_NET_NODE = values.node;
  }
  const json = Boolean(values.json);
  switch (command) {
    case 'nodes':
      arity(command, args, 0, 0);
      return nodes(json);
    case 'ports':
      arity(command, args, 0, 0);
      return ports(json, Boolean(values.all), false);
    case 'stat':
      arity(command, args, 0, 0);
      return ports(json, true, true);
    case 'cat':
      arity(command, args, 1, 1);
      return cat(args[0], { listen: Boolean(values.listen), quiet: Boolean(values.quiet) });
    case 'bridge':
      arity(command, args, 2, 2);
      return bridge(args[0], args[1], { quiet: Boolean(values.quiet) });
    case 'fabric':
      return fabric(args, json);
    case 'exec':
      if (args.length) throw new UsageError(`exec: put the program after "--" (scif-net exec --map MAP -- ${args.join(' ')})`);
      return exec(program, { maps: values.map ?? [], mapFile: values['map-file'] });
    case 'cflags':
      arity(command, args, 0, 0);
      return cflags(Boolean(values.libs), Boolean(values.pc));
  }
  return EXIT_USAGE;
}

/** Runs the command line; resolves with the exit status. */
export async function main(argv: string[]): Promise<number> {
  const command = argv.find((a) => !a.startsWith('-')) ?? '';
  try {
    return await run(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`scif-net: ${err.message}\nTry 'scif-net ${command in HELP && command ? `${command} ` : ''}--help'.\n`);
      return EXIT_USAGE;
    }
    report(command in HELP ? command : '', err);
    return EXIT_FAILURE;
  }
}
