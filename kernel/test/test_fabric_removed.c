/*
 * The fabric directory removed under running processes (rm -rf): listeners
 * hear of it - their descriptors hang up, scif_accept says ENODEV, a thread
 * asleep in it wakes - connections made before go on (data both ways, and
 * an RMA channel made afterwards), connects say why they fail, and the next
 * endpoint makes the directory anew, where a fresh process reaches it.
 *
 * Processes: this one (node 0); "old" (node 1), connected before the
 * removal, echoing; "new" (node 2), started after it, connecting to the
 * listener made anew.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include "check.h"

#define PORT 5000	/* the listener, before and after */
#define OTHER 5001	/* a listener with a thread asleep in scif_accept */
#define NOBODY 5002	/* where nobody listens */
#define WORD 4

/* Node 1: connected before the removal. Echoes WORD bytes on 'e'; on 'r'
 * registers a page of pattern bytes, which this side (the peer) reads by
 * RMA - the channel made after the removal, through the old inboxes; on
 * 'q' leaves. */
static int role_old(const char *arg)
{
	size_t pg = page_size();
	unsigned char *page = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int epd = connect_to(0, PORT);
	char cmd, word[WORD];

	(void)arg;
	CHECK(page != MAP_FAILED);
	report_ready(1);
	for (;;) {
		CHECK(scif_recv(epd, &cmd, 1, SCIF_RECV_BLOCK) == 1);
		if (cmd == 'e') {
			CHECK(scif_recv(epd, word, WORD, SCIF_RECV_BLOCK) == WORD);
			CHECK(scif_send(epd, word, WORD, SCIF_SEND_BLOCK) == WORD);
		} else if (cmd == 'r') {
			for (size_t i = 0; i < pg; i++)
				page[i] = pattern_byte(i);
			CHECK(scif_register(epd, page, pg, 0, SCIF_PROT_READ | SCIF_PROT_WRITE,
					    SCIF_MAP_FIXED) == 0);
			CHECK(scif_send(epd, "R", 1, SCIF_SEND_BLOCK) == 1);
		} else {
			break;
		}
	}
	CHECK(scif_close(epd) == 0);
	return 0;
}

/* Node 2: a process started after the removal reaches the listener made
 * anew, and exchanges a word with it. */
static int role_new(const char *arg)
{
	int epd = connect_to(0, PORT);
	char word[WORD];

	(void)arg;
	CHECK(scif_send(epd, "new!", WORD, SCIF_SEND_BLOCK) == WORD);
	CHECK(scif_recv(epd, word, WORD, SCIF_RECV_BLOCK) == WORD && memcmp(word, "NEW!", WORD) == 0);
	CHECK(scif_close(epd) == 0);
	return 0;
}

static void remove_dir(const char *dir)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK(system(cmd) == 0);
}

static void echo_word(int epd, const char *word)
{
	char back[WORD];

	CHECK(scif_send(epd, "e", 1, SCIF_SEND_BLOCK) == 1);
	CHECK(scif_send(epd, (void *)word, WORD, SCIF_SEND_BLOCK) == WORD);
	CHECK(scif_recv(epd, back, WORD, SCIF_RECV_BLOCK) == WORD && memcmp(back, word, WORD) == 0);
}

/* The old connection's RMA channel, made now by the peer: its ends come to
 * the inbox this process opened in the lost fabric. */
static void rma_after(int epd)
{
	size_t pg = page_size();
	unsigned char *buf = malloc(pg);
	char ack;

	CHECK(buf != NULL);
	CHECK(scif_send(epd, "r", 1, SCIF_SEND_BLOCK) == 1);
	CHECK(scif_recv(epd, &ack, 1, SCIF_RECV_BLOCK) == 1 && ack == 'R');
	CHECK(scif_vreadfrom(epd, buf, pg, 0, SCIF_RMA_SYNC) == 0);
	for (size_t i = 0; i < pg; i++)
		CHECK(buf[i] == pattern_byte(i));
	free(buf);
}

/* The listener answers what the driver's says of a lost node. */
static void listener_lost(int l)
{
	struct scif_pollepd pe = { .epd = l, .events = POLLIN };
	struct scif_portID peer;
	int epd;

	/* Noticed without a call of ours: asleep until it is. */
	CHECK(scif_poll(&pe, 1, -1) == 1);
	CHECK(pe.revents & POLLHUP);
	CHECK(pe.revents & POLLIN);
	CHECK_ERR(scif_accept(l, &peer, &epd, 0), ENODEV);
	CHECK(strstr(scif_net_last_error(), "was removed") != NULL);
	CHECK_ERR(scif_accept(l, &peer, &epd, SCIF_ACCEPT_SYNC), ENODEV);
	/* Level-triggered: it stays so. */
	CHECK(scif_poll(&pe, 1, 0) == 1 && (pe.revents & POLLHUP));
}

int main(int argc, char **argv)
{
	const char *dir = getenv("SCIF_NET_FABRIC");
	struct scif_portID nobody = { .node = 0, .port = NOBODY };
	struct blocked sleeper = { 0 };
	struct scif_portID peer;
	struct stat before, after;
	int ready, l, other, s, early, bound, nl, n, c;
	char word[WORD];
	pid_t old, fresh;

	if (argc > 2)
		return strcmp(argv[1], "old") == 0 ? role_old(argv[2]) :
		       strcmp(argv[1], "new") == 0 ? role_new(argv[2]) : 2;
	CHECK(dir != NULL);
	l = listen_on(PORT, 4);
	other = listen_on(OTHER, 4);
	old = spawn_role(1, "old", "-", &ready);
	CHECK(scif_accept(l, &peer, &s, SCIF_ACCEPT_SYNC) == 0 && peer.node == 1);
	CHECK(await_ready(ready) == 1);
	close(ready);
	echo_word(s, "abcd");
	early = scif_open();	/* opened before, used after */
	bound = scif_open();
	CHECK(early >= 0 && bound >= 0 && scif_bind(bound, NOBODY + 1) == NOBODY + 1);
	block_in(&sleeper, CALL_ACCEPT, other);
	CHECK(stat(dir, &before) == 0);

	remove_dir(dir);
	listener_lost(l);
	woke_failing(&sleeper, ENODEV);
	printf("# listeners: POLLIN | POLLHUP, scif_accept ENODEV, a sleeper woken\n");

	/* The connection made before goes on, both ways, RMA too. */
	echo_word(s, "efgh");
	rma_after(s);
	printf("# a connection from before still carries data and RMA\n");

	/* Endpoints opened before belong to the old directory: they say so. */
	CHECK_ERR(scif_connect(early, &nobody), ECONNREFUSED);
	CHECK(strstr(scif_net_last_error(), "was removed after this endpoint was opened") != NULL);
	CHECK_ERR(scif_listen(bound, 4), ENODEV);
	CHECK(strstr(scif_net_last_error(), "was removed") != NULL);

	/* The next endpoint makes the directory anew, ours alone. */
	nl = listen_on(PORT, 4);
	CHECK(lstat(dir, &after) == 0 && S_ISDIR(after.st_mode) && (after.st_mode & 0777) == 0700);
	CHECK(after.st_ino != before.st_ino || after.st_dev != before.st_dev);
	c = scif_open();
	CHECK(c >= 0);
	CHECK_ERR(scif_connect(c, &nobody), ECONNREFUSED);
	CHECK(strstr(scif_net_last_error(), "made anew") != NULL);
	/* Closing the old listener on the same port leaves the new one's name. */
	CHECK(scif_close(l) == 0 && scif_close(other) == 0);
	CHECK(scif_close(early) == 0 && scif_close(bound) == 0 && scif_close(c) == 0);

	fresh = spawn_role(2, "new", "-", &ready);
	CHECK(scif_accept(nl, &peer, &n, SCIF_ACCEPT_SYNC) == 0 && peer.node == 2);
	CHECK(scif_recv(n, word, WORD, SCIF_RECV_BLOCK) == WORD && memcmp(word, "new!", WORD) == 0);
	CHECK(scif_send(n, "NEW!", WORD, SCIF_SEND_BLOCK) == WORD);
	expect_exit(fresh, 0);
	close(ready);
	printf("# a fresh process reaches the listener in the directory made anew\n");

	echo_word(s, "ijkl");
	CHECK(scif_send(s, "q", 1, SCIF_SEND_BLOCK) == 1);
	expect_exit(old, 0);
	CHECK(scif_close(s) == 0 && scif_close(n) == 0 && scif_close(nl) == 0);
	return 0;
}
