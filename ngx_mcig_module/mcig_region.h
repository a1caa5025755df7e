/*
 * Copyright (C) ngx_mcig_module authors
 *
 * Choice of the region a request goes to, the way Google's cross-region
 * load balancer fills regions (WATERFALL_BY_REGION), but per request.
 * Pure C: the caller keeps one mcig_region_state_t per region of a pool,
 * updates it whenever the health of the region's members is known again,
 * and per request hands the regions, in preference order, to
 * mcig_region_choose():
 *
 *     per health update:
 *         drained = mcig_region_update(&st[i], healthy, total, now_ms,
 *                                      &params);
 *     per request:
 *         r = mcig_region_choose(load, n, &rng, &kind);
 *
 * Region 0 is the gateway's own region, the others follow nearest first.
 *
 * Drain (auto-capacity).  A region with under drain_pct % of its members
 * healthy is drained: it gets no traffic.  It is restored once at least
 * restore_pct % of its members have been healthy at every update for
 * restore_ms; an update under restore_pct % starts that clock again.
 *
 * Choice.  A region is eligible when it is not drained and has a healthy
 * member.  The first eligible region is the home region; u is its
 * utilization as a multiple of its target.
 *
 *   - u < 1: home is chosen.
 *   - u >= 1, and some later eligible region is under target: the request
 *     spills with probability (u - 1) / u, and then goes to the first such
 *     region, passing over the eligible regions that are at or over target;
 *     otherwise it stays at home.  Home is thus left with 1/u of its
 *     traffic, which brings it back to its target if load follows traffic:
 *     1.1x spills 9.1 %, 2x spills 50 %.
 *   - Home's share.  1/u is measured on the traffic home already keeps, so
 *     alone it settles where home stays over target by as much as it must
 *     spill (u = 1 / (1 - spilled)): a region that should spill 60 % would
 *     run at 2.5x.  The caller may therefore learn the share home keeps,
 *     keep_ppm, with mcig_region_next_keep() once in a while: the request
 *     then stays with probability min(keep, 1/u), and under target with
 *     probability keep (spilling as above otherwise); 0 is all of it.
 *   - no eligible region is under target: the least utilized eligible
 *     region is chosen, the earlier one on ties; home included.
 *
 * Room.  Whatever the rules above chose, a region the caller marks full
 * gives way to a region with room, chosen by the same rules among those:
 * the first under target, else the least utilized.  The gateway marks
 * full the regions without a member under its target for the requests
 * that waited in its queue for room: sent to such a region they would
 * wait again on the server while another region could serve them now.
 */

#ifndef MCIG_REGION_H
#define MCIG_REGION_H

#include <stdint.h>

#include "mcig_pick.h"


#define MCIG_REGIONS_MAX             32  /* regions beyond are ignored */

#define MCIG_REGION_TARGET_PPM       1000000

#define MCIG_REGION_DRAIN_PCT        25
#define MCIG_REGION_RESTORE_PCT      35
#define MCIG_REGION_RESTORE_MS       60000

#define MCIG_REGION_PARAMS_DEFAULT                                            \
    { MCIG_REGION_DRAIN_PCT, MCIG_REGION_RESTORE_PCT, MCIG_REGION_RESTORE_MS }


typedef enum {
    MCIG_REGION_NONE = 0,       /* no eligible region: index -1 */
    MCIG_REGION_LOCAL,          /* region 0, which was eligible */
    MCIG_REGION_SPILLOVER,      /* region 0 eligible, over target: another */
    MCIG_REGION_FAILOVER        /* region 0 not eligible: another */
} mcig_region_kind_e;


/* restore_pct below drain_pct keeps a region between the two drained */
typedef struct {
    uint32_t    drain_pct;
    uint32_t    restore_pct;
    uint64_t    restore_ms;
} mcig_region_params_t;


/* kept by the caller per region, zeroed at start: not drained */
typedef struct {
    uint64_t    since_ms;         /* at or over restore_pct since, if above */
    unsigned    above:1;
    unsigned    drained:1;
} mcig_region_state_t;


/* what mcig_region_choose() reads of a region, per request */
typedef struct {
    uint32_t    healthy;          /* available members */
    uint32_t    util_ppm;         /* of its target: 1000000 is at target */
    uint32_t    drained;          /* from mcig_region_update() */
    uint32_t    full;             /* to be avoided: no member with room */
    uint32_t    keep_ppm;         /* share kept as home, 0: all */
} mcig_region_load_t;


/*
 * Updates the drain state of a region from its members' health at now_ms
 * and returns whether the region is drained.  A region without members
 * says nothing of its health: it is neither drained nor restored, and its
 * restore clock starts again.  A clock that goes back does not restore.
 */
int mcig_region_update(mcig_region_state_t *st, uint32_t healthy,
    uint32_t total, uint64_t now_ms, const mcig_region_params_t *params);

/*
 * The share home keeps, learnt from its utilization: keep / sqrt(u), from
 * 1/1000 to all (1000000).  Called at a steady pace, slower than the load
 * follows the traffic (the gateway: twice a second), it converges to the
 * share that holds home at its target.  keep 0 is all.
 */
uint32_t mcig_region_next_keep(uint32_t keep_ppm, uint32_t util_ppm);

/* the home region: the first eligible one, or -1 when none is */
int mcig_region_home(const mcig_region_load_t *r, int n);

/*
 * Returns the index of the chosen region, or -1 when none is eligible, and
 * if kind is not NULL, how it was chosen.  rng is drawn from only when a
 * later region is under target and home is at or over target or keeps
 * less than all.
 */
int mcig_region_choose(const mcig_region_load_t *r, int n, mcig_rng_t *rng,
    mcig_region_kind_e *kind);


#endif /* MCIG_REGION_H */
