/*
 * An unmodified SCIF program on the fabric: scif_sample (compiled against
 * <scif.h> alone and linked with -lscif against out/libscif.so, soname
 * libscif.so.0) runs as a server on node 1 and a client on node 0, and
 * both must exit 0. The program must have loaded libscif.so.0 from the
 * fabric's build, not linked the fabric in.
 */
#include <libgen.h>

#include "check.h"

#define PORT "4100"

static char sample[4096];

static pid_t run(const char *node, char *const argv[], int *out)
{
	int p[2] = { -1, -1 };
	pid_t pid;

	CHECK(!out || pipe(p) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
			_exit(126);
		if (out) {
			close(p[0]);
			if (dup2(p[1], STDOUT_FILENO) < 0)
				_exit(126);
			close(p[1]);
		}
		setenv("SCIF_NET_NODE", node, 1);
		execv(sample, argv);
		_exit(127);
	}
	if (out) {
		close(p[1]);
		*out = p[0];
	}
	return pid;
}

/* libscif.so.0, mapped in process pid, from the directory of the sample. */
static bool uses_our_libscif(pid_t pid)
{
	char path[64], line[4096], dir[4096], want[4200];
	bool found = false;
	FILE *f;

	snprintf(dir, sizeof(dir), "%s", sample);
	snprintf(want, sizeof(want), "%s/libscif.so.0", dirname(dir));
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, want))
			found = true;
	fclose(f);
	return found;
}

int main(void)
{
	char line[64] = { 0 };
	char *server_argv[] = { "scif_sample", "server", PORT, NULL };
	char *client_argv[] = { "scif_sample", "client", "1", PORT, NULL };
	ssize_t len;
	pid_t server, client;
	int out;

	len = readlink("/proc/self/exe", sample, sizeof(sample) - 1);
	CHECK(len > 0 && (size_t)len < sizeof(sample) - 16);
	sample[len] = '\0';
	snprintf(strrchr(sample, '/') + 1, sizeof(sample) - (size_t)(strrchr(sample, '/') + 1 - sample),
		 "scif_sample");
	server = run("1", server_argv, &out);
	CHECK(read(out, line, sizeof(line) - 1) > 0 && strncmp(line, "listening", 9) == 0);
	CHECK(uses_our_libscif(server));
	client = run("0", client_argv, NULL);
	expect_exit(client, 0);
	expect_exit(server, 0);
	CHECK(close(out) == 0);
	return 0;
}
