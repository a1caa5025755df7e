/*
 * Copyright (C) ngx_mcig_module authors
 *
 * Ordering of the requests waiting for room in a saturated pool (flow
 * control): bands by priority, the higher band always first; inside a
 * band, one request per tenant (fairness id) in turn, and each tenant's
 * requests in arrival order; bounded in total and per band; each entry
 * expires at its deadline.
 *
 * Pure C, no nginx headers, no allocation: entries are the caller's
 * structs (one is embedded in each waiting request) linked in place, as
 * ngx_queue_t is.  Per worker, so it holds pointers; what other workers
 * must see is the small mcig_queue_counts_t, kept in shared memory.
 *
 *   push        O(1) (tenant lookup in a hash table; deadline order is
 *               kept by inserting from the newest end, O(1) when every
 *               entry has the same TTL)
 *   pop, peek   O(bands)
 *   remove      O(1)
 *   expire      O(1) per expired entry
 */

#ifndef MCIG_QUEUE_H
#define MCIG_QUEUE_H

#include <stddef.h>
#include <stdint.h>


#define MCIG_QUEUE_BANDS_MAX     16       /* distinct priorities waiting */
#define MCIG_QUEUE_BUCKETS       256      /* of the tenant hash table */


typedef struct mcig_queue_link_s  mcig_queue_link_t;

struct mcig_queue_link_s {
    mcig_queue_link_t  *prev;
    mcig_queue_link_t  *next;
};


typedef struct mcig_queue_entry_s  mcig_queue_entry_t;

/*
 * Embedded in the caller's request; its fields are the queue's.  The
 * first entry of a tenant in a band (its leader) stands for the tenant:
 * it is in the band's round-robin ring and in the tenant hash table, and
 * the tenant's later entries hang on its flow ring.
 */
struct mcig_queue_entry_s {
    mcig_queue_link_t    flow;        /* the tenant's entries, FIFO */
    mcig_queue_link_t    ring;        /* leaders: the band's tenants */
    mcig_queue_link_t    age;         /* every entry, by deadline */
    mcig_queue_entry_t  *hnext;       /* leaders: hash chain */
    mcig_queue_entry_t **hprev;
    uint64_t             tenant;
    uint64_t             deadline;    /* ms, the caller's clock */
    int32_t              priority;
    uint16_t             band;        /* slot in mcig_queue_t.band[] */
    uint8_t              leader;
    uint8_t              queued;
};


typedef struct {
    mcig_queue_link_t    ring;        /* leaders, next one first */
    int32_t              priority;
    uint32_t             depth;       /* entries; 0 = slot free */
} mcig_queue_band_t;


typedef struct {
    uint32_t             depth;
    uint32_t             max_depth;       /* 0: unbounded */
    uint32_t             max_band_depth;  /* 0: unbounded */
    uint32_t             nbands;
    uint8_t              order[MCIG_QUEUE_BANDS_MAX];  /* by priority, desc */
    mcig_queue_band_t    band[MCIG_QUEUE_BANDS_MAX];
    mcig_queue_link_t    age;             /* oldest deadline first */
    mcig_queue_entry_t  *bucket[MCIG_QUEUE_BUCKETS];
} mcig_queue_t;


typedef enum {
    MCIG_QUEUE_OK = 0,
    MCIG_QUEUE_FULL,              /* total depth reached */
    MCIG_QUEUE_BAND_FULL,         /* the band's depth reached */
    MCIG_QUEUE_NO_BAND            /* MCIG_QUEUE_BANDS_MAX priorities wait */
} mcig_queue_rc_e;


/* the queue must not move once initialised (its lists point into it) */
void mcig_queue_init(mcig_queue_t *q, uint32_t max_depth,
    uint32_t max_band_depth);

/* a fairness id ("x-gateway-inference-fairness-id") as a tenant */
uint64_t mcig_queue_tenant(const void *id, size_t len);

/* e waits until now_ms + ttl_ms at most (the sum saturates) */
mcig_queue_rc_e mcig_queue_push(mcig_queue_t *q, mcig_queue_entry_t *e,
    int32_t priority, uint64_t tenant, uint64_t now_ms, uint64_t ttl_ms);

/* the entry to admit next, taken out (pop) or left (peek); NULL if none */
mcig_queue_entry_t *mcig_queue_pop(mcig_queue_t *q);
mcig_queue_entry_t *mcig_queue_peek(const mcig_queue_t *q);

/* takes an entry out wherever it is (its client went away); idempotent */
void mcig_queue_remove(mcig_queue_t *q, mcig_queue_entry_t *e);

/* the next entry whose deadline is at or before now_ms, taken out */
mcig_queue_entry_t *mcig_queue_expire(mcig_queue_t *q, uint64_t now_ms);

/* the earliest deadline, UINT64_MAX if empty: when to look again */
uint64_t mcig_queue_next_deadline(const mcig_queue_t *q);

/* waiting entries with this priority */
uint32_t mcig_queue_band_depth(const mcig_queue_t *q, int32_t priority);

static inline uint32_t
mcig_queue_depth(const mcig_queue_t *q)
{
    return q->depth;
}

static inline int
mcig_queue_queued(const mcig_queue_entry_t *e)
{
    return e->queued;
}


/*
 * Waiting requests per priority band, for strict priority across workers:
 * plain integers in shared memory, updated by the caller under its lock.
 * (Keeping one per worker slot lets the counts of a worker that died be
 * dropped, as in-flight counts are.)  "admitting" is 1 while a request
 * that left the worker's queue does not hold its member yet: counted
 * neither as waiting nor in flight, it still takes the room it was let
 * go for.
 */
typedef struct {
    uint32_t    nbands;
    uint32_t    admitting;
    struct {
        int32_t     priority;
        uint32_t    waiting;
    }           band[MCIG_QUEUE_BANDS_MAX];
} mcig_queue_counts_t;


void mcig_queue_counts_init(mcig_queue_counts_t *c);

/* adds delta (+1 queued, -1 left) to a band: 0, or -1 if no band is free */
int mcig_queue_counts_add(mcig_queue_counts_t *c, int32_t priority,
    int32_t delta);

/* some request of a higher priority than this one waits */
int mcig_queue_higher_waiting(const mcig_queue_counts_t *c, int32_t priority);


#endif /* MCIG_QUEUE_H */
