// What to do about the errors people meet first. Each hint names the cause in
// words and the fix; the README's troubleshooting section lists the same.

interface Failure {
  code?: string;
  syscall?: string;
  message?: string;
  port?: number;
  address?: string;
}

/** The fix for a known failure, or undefined. */
export function hintFor(err: Failure): string | undefined {
  const message = err.message ?? '';
  if (/must be owned by uid|is a symbolic link or not a directory/.test(message))
    return 'the fabric directory belongs to another user or is open to others: set SCIF_NET_FABRIC to a directory of your own (it is made with mode 0700), or chmod 700 it if it is yours';
  if (/cannot (create|open) fabric directory/.test(message))
    return 'the fabric directory cannot be made there: create its parent directory, or set SCIF_NET_FABRIC to a writable place (e.g. SCIF_NET_FABRIC=/tmp/scif-net-$(id -u))';
  if (/SCIF_NET_(NODE|NODES|RING)=/.test(message))
    return 'fix the variable named above, or unset it to use the default';
  if (/nodes (is not a fabric node table|was written by an incompatible fabric version)/.test(message))
    return 'the fabric directory holds another program\'s or another version\'s files: point SCIF_NET_FABRIC at a new directory (or remove this one once no process uses it)';
  if (err.code === 'ENODEV')
    return `the node is off line or does not exist in this fabric: \`scif-net nodes\` lists the online ones; \`scif-net fabric node N up\` brings one back after a drill`;
  if ((err.code === 'EACCES' || err.code === 'EPERM') && typeof err.port === 'number' && err.port > 0 && err.port < 1024)
    return 'SCIF ports below 1024 need root (CAP_SYS_ADMIN), as on MPSS: use a port of 1024 or more, or run as root';
  if (err.code === 'ENXIO' && /libscif|backend/i.test(message))
    return "SCIF_NET_BACKEND=hw needs Intel MPSS's libscif (libscif.so.0) and its device (/dev/mic/scif or /dev/scif): install MPSS, point SCIF_NET_LIBSCIF at the library, or use SCIF_NET_BACKEND=virtual (or auto)";
  if (err.code === 'ECONNREFUSED' && err.address?.startsWith('scif:'))
    return `nothing listens on ${err.address}:${err.port}: \`scif-net ports\` lists the fabric's listeners`;
  if (err.code === 'EADDRINUSE' && err.address?.startsWith('scif:'))
    return '`scif-net ports` shows which process holds the port';
  if (err.code === 'ENOSYS' && err.syscall?.startsWith('scif_net_'))
    return "this is the virtual fabric's own call, which Intel MPSS's libscif lacks: on hardware use MPSS's tools (micctrl, micinfo); on the fabric, unset SCIF_NET_BACKEND or set SCIF_NET_FABRIC";
  return undefined;
}
