/*
 * thread.h - starting the fabric's helper threads.
 */
#ifndef SCIF_NET_THREAD_H
#define SCIF_NET_THREAD_H

/* Starts a detached helper thread of the fabric's, which no signal of the
 * process is ever delivered to: 0 or -errno. */
int thread_start(void *(*fn)(void *), void *arg, const char *name);

#endif
