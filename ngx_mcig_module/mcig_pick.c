/*
 * Copyright (C) ngx_mcig_module authors
 */

#include "mcig_pick.h"


void
mcig_rng_seed(mcig_rng_t *rng, uint64_t seed)
{
    /* xorshift must not start from zero */
    rng->state = seed ? seed : 0x9e3779b97f4a7c15ULL;
}


uint64_t
mcig_rng_next(mcig_rng_t *rng)
{
    uint64_t  x = rng->state;

    /* xorshift64*: fast, and good enough to break ties fairly */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng->state = x;

    return x * 0x2545f4914f6cdd1dULL;
}


void
mcig_pick_start(mcig_pick_t *p, mcig_rng_t *rng)
{
    p->rng = rng;
    p->best = -1;
    p->best_in_flight = 0;
    p->best_capacity = 1;
    p->ties = 0;
    p->offered = 0;
    p->with_room = 0;
    p->tied = NULL;
    p->tied_max = 0;
    p->ntied = 0;
}


void
mcig_pick_collect_ties(mcig_pick_t *p, int *tied, uint32_t max)
{
    p->tied = tied;
    p->tied_max = max;
    p->ntied = 0;
}


void
mcig_pick_offer(mcig_pick_t *p, int index, uint32_t in_flight,
    uint32_t capacity)
{
    uint64_t  mine, best;

    if (capacity == 0) {
        capacity = 1;
    }

    p->offered++;

    if (in_flight < capacity) {
        p->with_room++;
    }

    if (p->best < 0) {
        goto take;
    }

    /* in_flight / capacity compared without division */
    mine = (uint64_t) in_flight * p->best_capacity;
    best = (uint64_t) p->best_in_flight * capacity;

    if (mine < best) {
        goto take;
    }

    if (mine == best) {
        p->ties++;

        if (p->tied) {
            if (p->ntied < p->tied_max) {
                p->tied[p->ntied++] = index;
            }

            return;
        }

        /* reservoir sampling: each of k tied members wins with 1/k */
        if (mcig_rng_next(p->rng) % p->ties == 0) {
            p->best = index;
            p->best_in_flight = in_flight;
            p->best_capacity = capacity;
        }
    }

    return;

take:

    p->best = index;
    p->best_in_flight = in_flight;
    p->best_capacity = capacity;
    p->ties = 1;

    if (p->tied && p->tied_max) {
        p->tied[0] = index;
        p->ntied = 1;
    }
}


int
mcig_swrr_choose(mcig_swrr_peer_t *c, size_t n)
{
    int       best;
    size_t    i;
    intptr_t  total;

    best = -1;
    total = 0;

    for (i = 0; i < n; i++) {
        *c[i].current += *c[i].effective;
        total += *c[i].effective;

        if (*c[i].effective < c[i].weight) {
            (*c[i].effective)++;
        }

        if (best < 0 || *c[i].current > *c[best].current) {
            best = (int) i;
        }
    }

    if (best >= 0) {
        *c[best].current -= total;
    }

    return best;
}


int
mcig_pick_saturated(const mcig_pick_t *p)
{
    return p->offered > 0 && p->with_room == 0;
}


uint32_t
mcig_metrics_load_ppm(uint32_t kv_ppm, uint32_t running, uint32_t waiting,
    uint32_t dispatched, uint32_t ended, uint32_t capacity)
{
    uint64_t  share, load, more, less;

    if (running && kv_ppm) {
        share = kv_ppm / running;

    } else {
        share = 1000000 / (capacity ? capacity : 1);
    }

    more = (uint64_t) waiting + dispatched;

    /* the load saturates long before the product could overflow */
    if (share && more > 0xffffffffULL / share * 2) {
        return 0xffffffffU;
    }

    load = kv_ppm + share * more;
    less = share * ended;

    load = (load > less) ? load - less : 0;

    return (load > 0xffffffffULL) ? 0xffffffffU : (uint32_t) load;
}


uint32_t
mcig_metrics_waiting_now(uint32_t waiting, uint32_t dispatched,
    uint32_t ended)
{
    uint64_t  more;

    more = (uint64_t) waiting + dispatched;

    if (more <= ended) {
        return 0;
    }

    more -= ended;

    return (more > 0xffffffffULL) ? 0xffffffffU : (uint32_t) more;
}
