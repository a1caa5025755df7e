/*
 * Copyright (C) ngx_mcig_module authors
 */

#include "mcig_region.h"


#define mcig_region_eligible(r)  (!(r)->drained && (r)->healthy > 0)
#define mcig_region_min(a, b)     ((a) < (b) ? (a) : (b))

/* a share as kept: 0 (not learnt yet) and anything past all are all */
#define mcig_region_keep(k)                                                   \
    (((k) == 0 || (k) > MCIG_REGION_TARGET_PPM) ? MCIG_REGION_TARGET_PPM : (k))


static int mcig_region_first_room(const mcig_region_load_t *r, int from,
    int n, int skip_full, int *least);


int
mcig_region_update(mcig_region_state_t *st, uint32_t healthy, uint32_t total,
    uint64_t now_ms, const mcig_region_params_t *params)
{
    uint64_t  pct;

    if (total == 0) {
        st->above = 0;
        return st->drained;
    }

    /* healthy / total compared as percents without division */
    pct = (uint64_t) healthy * 100;

    if (pct < (uint64_t) params->drain_pct * total) {
        st->drained = 1;
    }

    if (pct < (uint64_t) params->restore_pct * total) {
        st->above = 0;
        return st->drained;
    }

    if (!st->above) {
        st->above = 1;
        st->since_ms = now_ms;
    }

    /*
     * Under drain_pct the clock may still run when restore_pct is set below
     * drain_pct: the region then stays drained, which is the safe side.
     */
    if (st->drained
        && pct >= (uint64_t) params->drain_pct * total
        && now_ms >= st->since_ms
        && now_ms - st->since_ms >= params->restore_ms)
    {
        st->drained = 0;
    }

    return st->drained;
}


uint32_t
mcig_region_next_keep(uint32_t keep_ppm, uint32_t util_ppm)
{
    uint64_t  root, low, high, keep;

    keep_ppm = mcig_region_keep(keep_ppm);

    /* the integer square root of util_ppm (1000 at target), by halving */
    low = 0;
    high = 65536;

    while (low < high) {
        root = (low + high + 1) / 2;

        if (root * root <= util_ppm) {
            low = root;

        } else {
            high = root - 1;
        }
    }

    root = low;

    if (root == 0) {
        return MCIG_REGION_TARGET_PPM;
    }

    keep = (uint64_t) keep_ppm * 1000 / root;

    if (keep > MCIG_REGION_TARGET_PPM) {
        keep = MCIG_REGION_TARGET_PPM;
    }

    if (keep < MCIG_REGION_TARGET_PPM / 1000) {
        keep = MCIG_REGION_TARGET_PPM / 1000;
    }

    return (uint32_t) keep;
}


int
mcig_region_home(const mcig_region_load_t *r, int n)
{
    int  home;

    if (n > MCIG_REGIONS_MAX) {
        n = MCIG_REGIONS_MAX;
    }

    for (home = 0; home < n; home++) {
        if (mcig_region_eligible(&r[home])) {
            return home;
        }
    }

    return -1;
}


/*
 * The first eligible region from "from" on that is under target, or -1;
 * *least is the least utilized eligible one looked at (the earlier one on
 * ties), -1 if none.  skip_full: regions marked full are not looked at.
 */

static int
mcig_region_first_room(const mcig_region_load_t *r, int from, int n,
    int skip_full, int *least)
{
    int  i;

    *least = -1;

    for (i = from; i < n; i++) {
        if (!mcig_region_eligible(&r[i]) || (skip_full && r[i].full)) {
            continue;
        }

        if (r[i].util_ppm < MCIG_REGION_TARGET_PPM) {
            return i;
        }

        if (*least < 0 || r[i].util_ppm < r[*least].util_ppm) {
            *least = i;
        }
    }

    return -1;
}


int
mcig_region_choose(const mcig_region_load_t *r, int n, mcig_rng_t *rng,
    mcig_region_kind_e *kind)
{
    int       home, room, least, chosen, alt;
    uint64_t  draw, keep, stay;

    if (n > MCIG_REGIONS_MAX) {
        n = MCIG_REGIONS_MAX;
    }

    home = mcig_region_home(r, n);

    if (home < 0) {
        if (kind) {
            *kind = MCIG_REGION_NONE;
        }

        return -1;
    }

    keep = mcig_region_keep(r[home].keep_ppm);

    if (r[home].util_ppm < MCIG_REGION_TARGET_PPM
        && keep == MCIG_REGION_TARGET_PPM)
    {
        chosen = home;
        goto done;
    }

    room = mcig_region_first_room(r, home + 1, n, 0, &least);

    if (room < 0) {
        if (r[home].util_ppm < MCIG_REGION_TARGET_PPM) {
            chosen = home;

        } else {
            chosen = (least >= 0 && r[least].util_ppm < r[home].util_ppm)
                     ? least : home;
        }

        goto done;
    }

    /* stay with probability min(keep, 1/u), in 32-bit fixed point */
    stay = (keep << 32) / MCIG_REGION_TARGET_PPM;

    if (r[home].util_ppm > MCIG_REGION_TARGET_PPM) {
        stay = mcig_region_min(stay, ((uint64_t) MCIG_REGION_TARGET_PPM << 32)
                                    / r[home].util_ppm);
    }

    draw = mcig_rng_next(rng) >> 32;

    chosen = (draw < stay) ? home : room;

done:

    if (r[chosen].full) {
        /* the same rules, over the regions that have room */
        alt = mcig_region_first_room(r, home, n, 1, &least);

        if (alt < 0) {
            alt = least;
        }

        if (alt >= 0) {
            chosen = alt;
        }
    }

    if (kind) {
        if (home > 0) {
            *kind = MCIG_REGION_FAILOVER;

        } else if (chosen == 0) {
            *kind = MCIG_REGION_LOCAL;

        } else {
            *kind = MCIG_REGION_SPILLOVER;
        }
    }

    return chosen;
}
