/*
 * maps.h - this process's mappings, as /proc/self/maps tells them: what
 * registration needs to know about the pages it moves (are they there, with
 * what protection, private or shared, and shared with which file).
 */
#ifndef SCIF_NET_MAPS_H
#define SCIF_NET_MAPS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct vma {
	uintptr_t start, end;
	int prot;		/* PROT_READ | PROT_WRITE | PROT_EXEC */
	bool shared;
	uint64_t offset;	/* of start in the mapped file, in bytes */
	dev_t dev;
	ino_t ino;
};

/*
 * The mappings overlapping [start, end), clipped to it, in address order:
 * 0 with *out (to be freed) and *n, or -errno. Holes are simply absent.
 */
int maps_read(uintptr_t start, uintptr_t end, struct vma **out, size_t *n);

#endif
