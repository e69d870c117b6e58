/*
 * dma.h - the process's DMA engine: RMAs are asynchronous, as the driver's
 * DMA is. scif_readfrom and its kin check their arguments, number the RMA,
 * queue it here and return; one thread of the fabric's copies them later, in
 * the order they were queued (so in order per endpoint), and completes each
 * into the numbering fences wait on (track.h). A program that forgets its
 * fence races, as it would on a card.
 *
 * SCIF_NET_DMA_DELAY_US (microseconds, default 0) makes the engine wait that
 * long before each copy: a test can then see what a missing fence leaves
 * undone, deterministically.
 */
#ifndef SCIF_NET_DMA_H
#define SCIF_NET_DMA_H

struct dma_job {
	struct dma_job *next;
	void (*run)(struct dma_job *job);	/* copies, completes, frees the job */
};

/* Queues job, starting the engine on first use: 0, or -ENOMEM (no thread). */
int dma_queue(struct dma_job *job);

#endif
