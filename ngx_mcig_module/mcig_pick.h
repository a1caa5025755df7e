/*
 * Copyright (C) ngx_mcig_module authors
 *
 * Choice of a pool member by load: the member with the lowest
 * in-flight / capacity ratio wins, ties are broken at random.  Pure C: the
 * caller walks its members and offers the available ones one by one, so no
 * array has to be built per request.
 */

#ifndef MCIG_PICK_H
#define MCIG_PICK_H

#include <stdint.h>


typedef struct {
    uint64_t    state;
} mcig_rng_t;


typedef struct {
    mcig_rng_t *rng;
    int         best;             /* index of the pick, -1 if none offered */
    uint32_t    best_in_flight;
    uint32_t    best_capacity;
    uint32_t    ties;             /* members as loaded as the best so far */
    uint32_t    offered;
    uint32_t    with_room;        /* members below their capacity */
} mcig_pick_t;


void mcig_rng_seed(mcig_rng_t *rng, uint64_t seed);
uint64_t mcig_rng_next(mcig_rng_t *rng);

void mcig_pick_start(mcig_pick_t *p, mcig_rng_t *rng);

/* capacity 0 is treated as 1: a member always has room for one request */
void mcig_pick_offer(mcig_pick_t *p, int index, uint32_t in_flight,
    uint32_t capacity);

/* every offered member is at or over its capacity */
int mcig_pick_saturated(const mcig_pick_t *p);

/*
 * A member's load from its scraped KV-cache usage, in parts per million
 * of its cache: the cache its running requests hold, plus a running
 * request's share (usage / running) for each request that will need cache
 * soon: those waiting on the server and those this gateway sent since the
 * scrape; less a share for each request of the member that ended since
 * the scrape, whose cache is free again (not below 0).  Without a running
 * request the share is 1/capacity of the cache.  Counting what waits lets
 * the load pass the cache's size, so that a member, or a region, whose
 * queue grows keeps looking busier than one that is merely full; counting
 * what was sent keeps a burst from herding onto the member that looked
 * emptiest; counting what ended shows room as soon as it is made, not at
 * the next scrape.
 */
uint32_t mcig_metrics_load_ppm(uint32_t kv_ppm, uint32_t running,
    uint32_t waiting, uint32_t dispatched, uint32_t ended, uint32_t capacity);

/*
 * A member's queue now, as far as the gateway knows: the requests its last
 * scrape saw waiting, plus those sent to it since, less those of it that
 * ended since (each end lets one waiting request start; not below 0).
 * The scraped count alone stays the same between scrapes, so that a queue
 * scorer sends every request of the interval to the member that had the
 * shortest queue at the scrape; once every cache is full that is the only
 * term that differs, and the fleet's load swings from member to member.
 */
uint32_t mcig_metrics_waiting_now(uint32_t waiting, uint32_t dispatched,
    uint32_t ended);


#endif /* MCIG_PICK_H */
