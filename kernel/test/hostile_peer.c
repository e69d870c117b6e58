/*
 * hostile_peer - the hostile peer of hostile.h as a program, for scif-net's
 * own tests (test/hostile-peer.js): it meets Node sockets and scif endpoints
 * as a caller or an acceptor, does one case to them, and reports on stdout.
 *
 *   hostile_peer client <node> <port> <case>   connect, act
 *   hostile_peer server <case>                 listen (prints "port N"), accept, act
 *   hostile_peer unsealed                      listen (prints "port N"), answer a
 *                                              caller with an unsealed ring
 *
 * Once connected it prints "connected" and waits for a line on stdin (the
 * victim holds the connection: a Node server has had its 'connection'). It
 * prints "acted" once the victim may go on (before acting, for racing
 * cases), then waits for the victim's reset (echoing what comes, for cases
 * whose meet is "echo"): exit 0 once it saw ECONNRESET (or EPROTO, when
 * echoing), 3 if it saw anything else; cases that exit do so right after
 * acting. `hostile_peer cases` lists the cases and how the victim meets
 * each: send, recv, rma or echo.
 */
#include "hostile.h"

static void acted(void)
{
	printf("acted\n");
	fflush(stdout);
}

/* The victim says when it is ready (it has the connection in hand): a line. */
static void go(void)
{
	char line[16];

	printf("connected\n");
	fflush(stdout);
	CHECK(fgets(line, sizeof(line), stdin) != NULL);
}

static int listen_any(void)
{
	int epd = scif_open(), port;

	CHECK(epd >= 0);
	port = scif_bind(epd, 0);
	CHECK(port > 0);
	CHECK(scif_listen(epd, 1) == 0);
	printf("port %d\n", port);
	fflush(stdout);
	return epd;
}

int main(int argc, char **argv)
{
	const struct hostile_case *c;
	struct scif_portID peer;
	int epd;

	if (argc == 5 && strcmp(argv[1], "client") == 0) {
		c = hostile_find(argv[4]);
		CHECK(c != NULL);
		epd = connect_to((uint16_t)atoi(argv[2]), (uint16_t)atoi(argv[3]));
		return hostile_play(epd, c, go, acted) == 0 ? 0 : 3;
	}
	if (argc == 3 && strcmp(argv[1], "server") == 0) {
		int l;

		c = hostile_find(argv[2]);
		CHECK(c != NULL);
		l = listen_any();
		CHECK(scif_accept(l, &peer, &epd, SCIF_ACCEPT_SYNC) == 0);
		return hostile_play(epd, c, go, acted) == 0 ? 0 : 3;
	}
	if (argc == 2 && strcmp(argv[1], "unsealed") == 0) {
		hostile_answer(listen_any(), false, 0);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "cases") == 0) {
		for (size_t i = 0; i < HOSTILE_NCASES; i++)
			printf("%s %s\n", hostile_cases[i].name,
			       hostile_cases[i].meet == MEET_SEND ? "send" :
			       hostile_cases[i].meet == MEET_RECV ? "recv" :
			       hostile_cases[i].meet == MEET_RMA ? "rma" : "echo");
		return 0;
	}
	fprintf(stderr, "usage: hostile_peer client <node> <port> <case> | server <case> | unsealed | cases\n");
	return 2;
}
