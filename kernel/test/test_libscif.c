/*
 * An unmodified SCIF program on the fabric: scif_sample (compiled against
 * <scif.h> alone and linked with -lscif against out/libscif.so, soname
 * libscif.so.0) runs as a server on node 1 and a client on node 0, and
 * both must exit 0. The program must have loaded libscif.so.0 from the
 * fabric's build, not linked the fabric in. The same again with the
 * MPSS-strict build (out/strict/).
 *
 * And what each library exports: MPSS 4's 22 calls (scif_get_fd a function
 * among them) under its version node SCIF_0.0; the full build adds the
 * scif_net_* extensions under SCIF_NET_1.0, the strict one nothing else.
 */
#include <dlfcn.h>
#include <libgen.h>

#include "check.h"

#define PORT "4100"

static char sample[4096];

static const char *const mpss_calls[] = {
	"scif_open", "scif_close", "scif_bind", "scif_listen", "scif_connect", "scif_accept",
	"scif_send", "scif_recv", "scif_register", "scif_unregister", "scif_mmap",
	"scif_munmap", "scif_readfrom", "scif_writeto", "scif_vreadfrom", "scif_vwriteto",
	"scif_fence_mark", "scif_fence_wait", "scif_fence_signal", "scif_get_nodeIDs",
	"scif_get_fd", "scif_poll",
};
#define N_CALLS (sizeof(mpss_calls) / sizeof(mpss_calls[0]))

static const char *const extensions[] = {
	"scif_net_fabric_path", "scif_net_self_node", "scif_net_node_count",
	"scif_net_set_node_online", "scif_net_set_stream_only", "scif_net_last_error",
	"scif_net_rx_ready", "scif_net_census",
};
#define N_EXTENSIONS (sizeof(extensions) / sizeof(extensions[0]))

/* The defined dynamic symbols of lib, as nm -D tells them: how many there
 * are, and how many of them are MPSS's calls or start with scif_net_. */
static void count_exports(const char *lib, int *total, int *mpss, int *net)
{
	char cmd[4300], line[512];
	FILE *p;

	snprintf(cmd, sizeof(cmd), "nm -D --defined-only '%s'", lib);
	p = popen(cmd, "r");
	CHECK(p != NULL);
	*total = *mpss = *net = 0;
	while (fgets(line, sizeof(line), p)) {
		char name[256], type;

		if (sscanf(line, "%*s %c %255s", &type, name) != 2 || type == 'A')
			continue;	/* the version nodes themselves */
		(*total)++;
		*strchrnul(name, '@') = '\0';
		for (size_t i = 0; i < N_CALLS; i++)
			if (strcmp(name, mpss_calls[i]) == 0)
				(*mpss)++;
		if (strncmp(name, "scif_net_", 9) == 0)
			(*net)++;
	}
	CHECK(pclose(p) == 0);
}

static void check_exports(const char *dir, bool strict)
{
	char lib[4200];
	int total, mpss, net;
	void *h;

	snprintf(lib, sizeof(lib), "%s/libscif.so.0", dir);
	h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	CHECK(h != NULL);
	for (size_t i = 0; i < N_CALLS; i++)
		CHECK(dlvsym(h, mpss_calls[i], "SCIF_0.0") != NULL);
	for (size_t i = 0; i < N_EXTENSIONS; i++)
		CHECK((dlvsym(h, extensions[i], "SCIF_NET_1.0") != NULL) == !strict &&
		      (dlsym(h, extensions[i]) != NULL) == !strict);
	/* A function, and the descriptor is the endpoint. */
	CHECK(((int (*)(int))dlvsym(h, "scif_get_fd", "SCIF_0.0"))(42) == 42);
	CHECK(dlclose(h) == 0);
	count_exports(lib, &total, &mpss, &net);
	CHECK(mpss == (int)N_CALLS);
	CHECK(net == (strict ? 0 : (int)N_EXTENSIONS));
	CHECK(total == mpss + net);
}

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

/* The sample pair, from the libscif.so.0 next to scif_sample in dir. */
static void run_sample(const char *dir)
{
	char line[64] = { 0 };
	char *server_argv[] = { "scif_sample", "server", PORT, NULL };
	char *client_argv[] = { "scif_sample", "client", "1", PORT, NULL };
	pid_t server, client;
	int out;

	snprintf(sample, sizeof(sample), "%s/scif_sample", dir);
	server = run("1", server_argv, &out);
	CHECK(read(out, line, sizeof(line) - 1) > 0 && strncmp(line, "listening", 9) == 0);
	CHECK(uses_our_libscif(server));
	client = run("0", client_argv, NULL);
	expect_exit(client, 0);
	expect_exit(server, 0);
	CHECK(close(out) == 0);
}

int main(void)
{
	char dir[4096], strict[4200];
	ssize_t len;

	len = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
	CHECK(len > 0 && (size_t)len < sizeof(dir) - 1);
	dir[len] = '\0';
	*strrchr(dir, '/') = '\0';
	snprintf(strict, sizeof(strict), "%s/strict", dir);
	check_exports(dir, false);
	check_exports(strict, true);
	run_sample(dir);
	run_sample(strict);
	return 0;
}
