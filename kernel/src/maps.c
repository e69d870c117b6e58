/*
 * maps.c - reading /proc/self/maps.
 *
 * The file is read whole before it is parsed: the kernel builds it a page at
 * a time, and mappings changing between two reads would otherwise show up as
 * half a line.
 */
#include "maps.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static int slurp(char **out, size_t *len)
{
	size_t cap = 64 * 1024, n = 0;
	char *buf = malloc(cap + 1), *grown;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC), err = 0;

	if (fd < 0 || !buf) {
		err = fd < 0 ? -errno : -ENOMEM;
		goto fail;
	}
	for (;;) {
		ssize_t got;

		if (n == cap) {
			grown = realloc(buf, 2 * cap + 1);
			if (!grown) {
				err = -ENOMEM;
				goto fail;
			}
			buf = grown;
			cap *= 2;
		}
		got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			err = -errno;
			goto fail;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return err;
}

/* One line: "start-end perms offset major:minor inode [path]". */
static bool parse_line(const char *line, struct vma *v)
{
	unsigned long long start, end, off, ino;
	unsigned maj, min;
	char perms[5];

	if (sscanf(line, "%llx-%llx %4s %llx %x:%x %llu", &start, &end, perms, &off,
		   &maj, &min, &ino) != 7 || strlen(perms) != 4)
		return false;
	v->start = (uintptr_t)start;
	v->end = (uintptr_t)end;
	v->prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
		  (perms[2] == 'x' ? PROT_EXEC : 0);
	v->shared = perms[3] == 's';
	v->offset = off;
	v->dev = makedev(maj, min);
	v->ino = (ino_t)ino;
	return true;
}

int maps_read(uintptr_t start, uintptr_t end, struct vma **out, size_t *n)
{
	struct vma *list = NULL, *grown;
	size_t count = 0, cap = 0, len = 0;
	char *buf = NULL, *line;
	int err = slurp(&buf, &len);

	if (err)
		return err;
	for (line = buf; line < buf + len; ) {
		char *nl = strchr(line, '\n');
		struct vma v;

		if (nl)
			*nl = '\0';
		if (parse_line(line, &v) && v.end > start && v.start < end) {
			if (v.start < start) {
				v.offset += start - v.start;
				v.start = start;
			}
			if (v.end > end)
				v.end = end;
			if (count == cap) {
				cap = cap ? 2 * cap : 8;
				grown = realloc(list, cap * sizeof(*list));
				if (!grown) {
					free(list);
					free(buf);
					return -ENOMEM;
				}
				list = grown;
			}
			list[count++] = v;
		}
		if (!nl)
			break;
		line = nl + 1;
	}
	free(buf);
	*out = list;
	*n = count;
	return 0;
}
