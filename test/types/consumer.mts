// The same from an ES module under nodenext and bundler: the default export
// and the named ones.
import net, { connect, Socket } from 'scif-net';
import { createServer } from 'scif-net/http';
import * as scif from 'scif-net/scif';
import 'scif-net/register';

const sock: Socket = connect('scif:1:2000');
const server = net.createServer((s) => s.pipe(s));
const http = createServer();
const page: number = scif.pageSize;
// @ts-expect-error isSCIF says a boolean
const scifNumber: number = net.isSCIF('scif:1');
void scifNumber;
void [sock, server, http, page];
