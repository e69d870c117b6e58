// Redirection for unmodified programs, loaded before them:
//
//   SCIF_NET_MAP=127.0.0.1:8080=scif:1:8080 node --require scif-net/register app.js
//   SCIF_NET_MAP=127.0.0.1:8080=scif:1:8080 node --import scif-net/register app.mjs
//
// Listens and connects to the places SCIF_NET_MAP (and SCIF_NET_MAP_FILE)
// name go over SCIF; everything else stays TCP (net/map.ts, net/redirect.ts).
// A bad map stops the program here, before it runs, naming the bad entry.
import './net';  // what loading scif-net sets up: IPC sends of SCIF handles fail clearly; cluster workers share SCIF ports
import { loadMap } from './net/map';
import { installRedirect } from './net/redirect';

export const map = loadMap();
if (map.size > 0) installRedirect(map);
