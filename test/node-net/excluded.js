// Node's test-net-* tests that run.js leaves out, each with its reason:
// [category, why]. Only what is out of scif-net's scope belongs here: IP
// addresses, DNS, IPv6, options only TCP has, and Node's internals (its
// --expose-internals bindings, the libuv handle under a node:net socket),
// and a SCIF server passed with child.send(), which child_process cannot
// carry (it fails clearly instead: README, "Handing connections to other
// processes"). A behaviour a Node developer would expect from a drop-in net
// is a bug to fix, not an entry here.
'use strict';

const IP = 'IP';
const DNS = 'DNS';
const IPV6 = 'IPv6';
const TCP_OPTION = 'TCP-only option';
const INTERNALS = 'Node internals';
const HANDOFF = 'a SCIF handle passed over IPC';

module.exports = {
  // IP: addresses, families and their selection.
  'test-net-autoselectfamily.js': [IP, 'autoSelectFamily (happy eyeballs) between IPv4 and IPv6 addresses of one host name'],
  'test-net-autoselectfamily-attempt-timeout-cli-option.js': [IP, 'the autoSelectFamily attempt timeout set on the command line'],
  'test-net-autoselectfamily-attempt-timeout-default-value.js': [IP, 'the autoSelectFamily attempt timeout\'s default'],
  'test-net-autoselectfamily-commandline-option.js': [IP, '--no-network-family-autoselection'],
  'test-net-autoselectfamily-default.js': [IP, 'autoSelectFamily\'s default and setDefaultAutoSelectFamily'],
  'test-net-autoselectfamily-ipv4first.js': [IP, 'autoSelectFamily with IPv4 addresses listed first'],
  'test-net-socket-connect-invalid-autoselectfamily.js': [IP, 'validation of the autoSelectFamily option, which only TCP connects look at'],
  'test-net-socket-connect-invalid-autoselectfamilyattempttimeout.js': [IP, 'validation of autoSelectFamilyAttemptTimeout, which only TCP connects look at'],
  'test-net-isip.js': [IP, 'net.isIP (node:net\'s own, re-exported unchanged)'],
  'test-net-isipv4.js': [IP, 'net.isIPv4 (node:net\'s own, re-exported unchanged)'],
  'test-net-isipv6.js': [IP, 'net.isIPv6 (node:net\'s own, re-exported unchanged)'],
  'test-net-listen-error.js': [IP, 'listening on 1.1.1.1, an IP address this machine does not have'],
  'test-net-better-error-messages-listen.js': [IP, 'the error of listening on 1.1.1.1, an IP address this machine does not have'],
  'test-net-remote-address-port.js': [IP, 'asserts that remoteAddress/remoteFamily are IPv4 or IPv6 (over SCIF they are \'scif:N\'/\'SCIF\', as the README says)'],

  // DNS: host names and the lookup option.
  'test-net-better-error-messages-port-hostname.js': [DNS, 'ENOTFOUND from a host name lookup (mocked)'],
  'test-net-connect-after-destroy.js': [DNS, 'connects to google.com'],
  'test-net-connect-immediate-finish.js': [DNS, 'a failing host name lookup (mocked)'],
  'test-net-dns-custom-lookup.js': [DNS, 'a custom lookup function'],
  'test-net-dns-error.js': [DNS, 'lookup errors of invalid host names'],
  'test-net-dns-lookup.js': [DNS, 'the \'lookup\' event'],
  'test-net-dns-lookup-skip.js': [DNS, 'no lookup for IP addresses'],
  'test-net-options-lookup.js': [DNS, 'validation of the lookup option and of the families it returns'],

  // IPv6.
  'test-net-connect-options-ipv6.js': [IPV6, 'connects over ::1'],
  'test-net-listen-ipv6only.js': [IPV6, 'the ipv6Only listen option'],

  // Options only TCP has.
  'test-net-client-bind-twice.js': [TCP_OPTION, 'localAddress/localPort (binding a client to an IP address)'],
  'test-net-localerror.js': [TCP_OPTION, 'validation of localAddress as an IP address'],
  'test-net-connect-keepalive.js': [TCP_OPTION, 'checks that keepAlive reaches setKeepAlive on the TCP handle (socket._handle)'],
  'test-net-connect-nodelay.js': [TCP_OPTION, 'checks that noDelay reaches setNoDelay on the TCP handle (socket._handle)'],
  'test-net-server-keepalive.js': [TCP_OPTION, 'checks that the server\'s keepAlive reaches the accepted TCP handle (socket._handle)'],
  'test-net-server-nodelay.js': [TCP_OPTION, 'checks that the server\'s noDelay reaches the accepted TCP handle (socket._handle)'],
  'test-net-persistent-nodelay.js': [TCP_OPTION, 'counts setNoDelay calls on TCPWrap (--expose-internals)'],

  // Node's internals.
  'test-net-connect-options-fd.js': [INTERNALS, 'Pipe handles from internalBinding (--expose-internals) opened as fds'],
  'test-net-end-close.js': [INTERNALS, 'a fake libuv handle driven through internalBinding(\'stream_wrap\') (--expose-internals)'],
  'test-net-listen-handle-in-cluster-2.js': [INTERNALS, 'a TCP handle from internalBinding(\'tcp_wrap\') (--expose-internals)'],
  'test-net-normalize-args.js': [INTERNALS, 'net._normalizeArgs and internal symbols (--expose-internals)'],
  'test-net-persistent-ref-unref.js': [INTERNALS, 'counts ref/unref calls on TCPWrap (--expose-internals)'],
  'test-net-server-listen-handle.js': [INTERNALS, 'TCP and Pipe handles from internalBinding (--expose-internals)'],
  'test-net-socket-setnodelay.js': [INTERNALS, 'a fake libuv handle passed as options.handle, to count setNoDelay calls'],
  'test-net-socket-write-after-close.js': [INTERNALS, 'closes socket._handle, the libuv handle, under the socket'],
  'test-net-perf_hooks.js': [INTERNALS, '\'net\' performance entries, which lib/net.js makes for TCP connects through internal/perf/observe, out of a library\'s reach: SCIF connects make none (README)'],

  // A SCIF server sent to a worker (workers that listen share a port: they run).
  'test-net-listen-handle-in-cluster-1.js': [HANDOFF, 'sends a listening server to a worker with child.send(msg, server): a SCIF listening endpoint is no libuv handle that child_process can pass; scif-net says so with ERR_INVALID_HANDLE_TYPE (README)'],
};
