/*
 * dma.c - the DMA engine (dma.h): a queue and the thread that runs it.
 */
#include "dma.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "thread.h"

static pthread_mutex_t dma_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t dma_work = PTHREAD_COND_INITIALIZER;
static struct dma_job *head, **tail = &head;	/* guarded by dma_lock */
static bool running;
static long delay_us;		/* SCIF_NET_DMA_DELAY_US, read when the engine starts */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void *dma_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct dma_job *job;

		pthread_mutex_lock(&dma_lock);
		while (!head)
			pthread_cond_wait(&dma_work, &dma_lock);
		job = head;
		head = job->next;
		if (!head)
			tail = &head;
		pthread_mutex_unlock(&dma_lock);
		if (delay_us > 0) {
			struct timespec t = { delay_us / 1000000, delay_us % 1000000 * 1000 };

			while (nanosleep(&t, &t) < 0 && errno == EINTR)
				;
		}
		job->run(job);
	}
	return NULL;
}

/* A fork copies no thread: the child has no engine, and the jobs it sees
 * queued are its parent's. */
static void dma_prepare(void)
{
	pthread_mutex_lock(&dma_lock);
}

static void dma_parent(void)
{
	pthread_mutex_unlock(&dma_lock);
}

static void dma_child(void)
{
	head = NULL;
	tail = &head;
	running = false;
	pthread_mutex_unlock(&dma_lock);
}

static void dma_atfork(void)
{
	pthread_atfork(dma_prepare, dma_parent, dma_child);
}

static long env_delay(void)
{
	const char *s = getenv("SCIF_NET_DMA_DELAY_US");
	char *end;
	long v;

	if (!s || !*s)
		return 0;
	v = strtol(s, &end, 10);
	return *end || v < 0 ? 0 : v;
}

int dma_queue(struct dma_job *job)
{
	int err = 0;

	pthread_once(&atfork_once, dma_atfork);
	pthread_mutex_lock(&dma_lock);
	if (!running) {
		delay_us = env_delay();
		err = thread_start(dma_main, NULL, "scif-dma");
		running = err == 0;
	}
	if (!err) {
		job->next = NULL;
		*tail = job;
		tail = &job->next;
		pthread_cond_signal(&dma_work);
	}
	pthread_mutex_unlock(&dma_lock);
	return err ? -ENOMEM : 0;
}
