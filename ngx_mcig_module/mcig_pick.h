/*
 * Copyright (C) ngx_mcig_module authors
 *
 * Choice of a pool member by load: the member with the lowest
 * in-flight / capacity ratio wins.  Ties are broken at random, or, for a
 * caller that collects them, by smooth weighted round robin as nginx's
 * own balancer does, so that an idle pool spreads requests exactly as
 * nginx would and weights count.  Pure C: the caller walks its members and
 * offers the available ones one by one, so no array has to be built per
 * request.
 */

#ifndef MCIG_PICK_H
#define MCIG_PICK_H

#include <stddef.h>
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
    int        *tied;             /* NULL, or where the tied are listed */
    uint32_t    tied_max;
    uint32_t    ntied;            /* of them listed in tied[] */
} mcig_pick_t;


/*
 * A member in smooth weighted round robin: nginx's current_weight and
 * effective_weight of the peer, updated in place, and its weight.
 */
typedef struct {
    intptr_t   *current;
    intptr_t   *effective;
    intptr_t    weight;
} mcig_swrr_peer_t;


void mcig_rng_seed(mcig_rng_t *rng, uint64_t seed);
uint64_t mcig_rng_next(mcig_rng_t *rng);

void mcig_pick_start(mcig_pick_t *p, mcig_rng_t *rng);

/* capacity 0 is treated as 1: a member always has room for one request */
void mcig_pick_offer(mcig_pick_t *p, int index, uint32_t in_flight,
    uint32_t capacity);

/*
 * The members tied with the best are listed in tied[0..max) (in the order
 * offered) instead of drawn from at random: the caller breaks the tie,
 * with mcig_swrr_choose().  Call after mcig_pick_start().
 */
void mcig_pick_collect_ties(mcig_pick_t *p, int *tied, uint32_t max);

/*
 * nginx's smooth weighted round robin over c[0..n): each member's current
 * weight grows by its effective weight, the highest wins (the first of
 * equals) and loses the total; an effective weight below the weight
 * (lowered by failures) recovers by one a choice.  Returns the index in c,
 * -1 if n is 0.
 */
int mcig_swrr_choose(mcig_swrr_peer_t *c, size_t n);

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
