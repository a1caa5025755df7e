/*
 * Copyright (C) ngx_mcig_module authors
 *
 * libFuzzer target of the region choice and drain (mcig_region).
 *
 * Input: a header, then steps of 6 bytes.
 *
 *     byte 0        regions n, 0..40 (the choice ignores regions past 32)
 *     byte 1, 2     drain_pct, restore_pct, 0..119 each
 *     byte 3, 4     restore_ms / 16, little endian
 *     byte 5..12    rng seed
 *
 *     step          region, healthy, total, clock step (signed, x 1 s,
 *                   or a jump when -128), utilization (2 bytes)
 *
 * Each step updates one region's health at the new time, sets its
 * utilization, and chooses.  The drain state is checked against a model
 * of the documented rules, and the choice against the rules of
 * mcig_region.h.
 *
 *     util/fuzz.sh region
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcig_region.h"


#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_region: %s:%d: check failed: %s\n",       \
                    __FILE__, __LINE__, #cond);                             \
            abort();                                                        \
        }                                                                   \
    } while (0)


#define REGIONS  40
#define HEADER   13
#define STEP     6

#define eligible(r)  (!(r)->drained && (r)->healthy > 0)


/* the drain rules of mcig_region.h, written from the comment */
typedef struct {
    int         drained;
    int         above;          /* every update at or over restore_pct */
    uint64_t    since;          /* since this time */
} model_t;


static void
model_update(model_t *m, uint32_t healthy, uint32_t total, uint64_t now,
    const mcig_region_params_t *params)
{
    uint64_t  pct;

    if (total == 0) {
        m->above = 0;           /* says nothing, the clock starts again */
        return;
    }

    pct = (uint64_t) healthy * 100;

    if (pct < (uint64_t) params->drain_pct * total) {
        m->drained = 1;
    }

    if (pct < (uint64_t) params->restore_pct * total) {
        m->above = 0;
        return;
    }

    if (!m->above) {
        m->above = 1;
        m->since = now;
    }

    if (m->drained && pct >= (uint64_t) params->drain_pct * total
        && now >= m->since && now - m->since >= params->restore_ms)
    {
        m->drained = 0;
    }
}


static uint32_t
util_ppm(const uint8_t *b)
{
    uint32_t  v = (uint32_t) b[0] | (uint32_t) b[1] << 8;

    /* mostly around the target, some at the very top */
    if (v >= 0xff00) {
        return 0xffffffffU - (v & 0xff);
    }

    return v * 40;              /* 0 .. 2.6 x target */
}


static void
check_choice(const mcig_region_load_t *r, int n, mcig_rng_t *rng)
{
    int                 i, m, chosen, home, room, least, alt, some_full,
                        some_room, keeps_all;
    uint64_t            before;
    mcig_region_kind_e  kind;

    m = (n < MCIG_REGIONS_MAX) ? n : MCIG_REGIONS_MAX;

    for (home = 0; home < m && !eligible(&r[home]); home++) {
        /* void */
    }

    room = m;
    least = home;
    keeps_all = (home == m || r[home].keep_ppm == 0
                 || r[home].keep_ppm >= MCIG_REGION_TARGET_PPM);

    for (i = home + 1; i < m; i++) {
        if (!eligible(&r[i])) {
            continue;
        }

        if (r[i].util_ppm < MCIG_REGION_TARGET_PPM) {
            room = i;
            break;
        }

        if (r[i].util_ppm < r[least].util_ppm) {
            least = i;
        }
    }

    before = rng->state;
    kind = (mcig_region_kind_e) 99;
    chosen = mcig_region_choose(r, n, rng, &kind);

    CHECK(chosen >= -1 && chosen < m);

    /* NULL kind is allowed, and must choose alike given the same draw */
    if (chosen >= 0) {
        mcig_rng_t  copy = { before };

        CHECK(mcig_region_choose(r, n, &copy, NULL) == chosen);
        CHECK(copy.state == rng->state);
    }

    if (home == m) {
        CHECK(chosen == -1);
        CHECK(kind == MCIG_REGION_NONE);
        CHECK(rng->state == before);
        return;
    }

    CHECK(chosen >= 0);
    CHECK(!r[chosen].drained);
    CHECK(r[chosen].healthy > 0);

    /* the regions with room, by the same rules */
    some_full = 0;
    some_room = 0;
    alt = -1;

    for (i = home; i < m; i++) {
        if (!eligible(&r[i])) {
            continue;
        }

        if (r[i].full) {
            some_full = 1;
            continue;
        }

        some_room = 1;

        if (alt >= 0 && r[alt].util_ppm < MCIG_REGION_TARGET_PPM) {
            continue;
        }

        if (alt < 0 || r[i].util_ppm < MCIG_REGION_TARGET_PPM
            || r[i].util_ppm < r[alt].util_ppm)
        {
            alt = i;
        }
    }

    if (home > 0) {
        CHECK(kind == MCIG_REGION_FAILOVER);

    } else if (chosen == 0) {
        CHECK(kind == MCIG_REGION_LOCAL);

    } else {
        CHECK(kind == MCIG_REGION_SPILLOVER);
    }

    if (some_room) {
        CHECK(!r[chosen].full);
    }

    if (some_full && some_room) {
        /* what the rules chose if it has room, else the rules' pick of
         * the regions with room */
        if (chosen != alt) {
            CHECK(chosen == home
                  || ((r[home].util_ppm >= MCIG_REGION_TARGET_PPM
                       || !keeps_all)
                      && (chosen == room || chosen == least)));
        }

        if (r[home].util_ppm < MCIG_REGION_TARGET_PPM && !r[home].full
            && keeps_all)
        {
            CHECK(chosen == home);
        }

        return;
    }

    if (r[home].util_ppm < MCIG_REGION_TARGET_PPM) {
        if (keeps_all || room == m) {
            /* home keeps it all, or has nowhere under target to spill to */
            CHECK(chosen == home);
            CHECK(rng->state == before);

        } else {
            /* home keeps its share: home or the first region under target */
            CHECK(chosen == home || chosen == room);
            CHECK(rng->state != before);
        }

        return;
    }

    if (room < m) {
        /* home or the first later region under target, by a draw */
        CHECK(chosen == home || chosen == room);
        CHECK(rng->state != before);
        return;
    }

    /* nobody under target: the least utilized, the earliest on ties */
    CHECK(chosen == least);
    CHECK(rng->state == before);

    for (i = home; i < m; i++) {
        if (eligible(&r[i])) {
            CHECK(r[i].util_ppm >= r[chosen].util_ppm);
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                   n, i, drained, was;
    size_t                off;
    int64_t               step;
    uint64_t              now, seed;
    uint32_t              healthy, total;
    model_t               model[REGIONS];
    mcig_rng_t            rng;
    mcig_region_load_t   *load;
    mcig_region_state_t   st[REGIONS];
    mcig_region_params_t  params;

    if (size < HEADER) {
        return 0;
    }

    n = data[0] % (REGIONS + 1);
    params.drain_pct = data[1] % 120;
    params.restore_pct = data[2] % 120;
    params.restore_ms = ((uint64_t) data[3] | (uint64_t) data[4] << 8) * 16;

    memcpy(&seed, data + 5, sizeof(seed));
    mcig_rng_seed(&rng, seed);
    CHECK(rng.state != 0);

    /* exactly n regions, so that ASan catches a read past them */
    load = malloc(sizeof(mcig_region_load_t) * (n ? n : 1));
    CHECK(load != NULL);

    memset(st, 0, sizeof(st));
    memset(model, 0, sizeof(model));

    for (i = 0; i < n; i++) {
        load[i].healthy = 1;
        load[i].util_ppm = 0;
        load[i].drained = 0;
        load[i].full = 0;
        load[i].keep_ppm = 0;
    }

    now = 1000000;

    /* the first choice: every region healthy and idle */
    check_choice(load, n, &rng);

    for (off = HEADER; off + STEP <= size; off += STEP) {
        const uint8_t  *b = data + off;

        if (n == 0) {
            check_choice(load, n, &rng);
            continue;
        }

        i = b[0] % n;
        total = b[2] % 40;
        healthy = total ? b[1] % (total + 1) : b[1] % 4;

        step = (int8_t) b[3];

        if (step == -128) {
            now += params.restore_ms;       /* just long enough */

        } else {
            now += (uint64_t) (step * 1000);  /* may go back: wraps */
        }

        was = st[i].drained;
        drained = mcig_region_update(&st[i], healthy, total, now, &params);
        model_update(&model[i], healthy, total, now, &params);

        CHECK(drained == st[i].drained);
        CHECK(drained == model[i].drained);

        if (total == 0) {
            CHECK(drained == was);
        }

        if (total && (uint64_t) healthy * 100
                     < (uint64_t) params.drain_pct * total)
        {
            CHECK(drained);
        }

        if (was && !drained) {
            CHECK(total > 0);
            CHECK((uint64_t) healthy * 100
                  >= (uint64_t) params.restore_pct * total);
            CHECK((uint64_t) healthy * 100
                  >= (uint64_t) params.drain_pct * total);
        }

        load[i].healthy = healthy;
        load[i].drained = (uint32_t) drained;
        load[i].util_ppm = util_ppm(b + 4);
        load[i].full = (b[0] >> 7) & 1;
        load[i].keep_ppm = (b[3] & 1) ? (uint32_t) b[5] * 4000 : 0;

        check_choice(load, n, &rng);
    }

    /* the learnt share stays within 1/1000 and all, and moves the right
     * way: down over target, up under it */
    if (size >= HEADER + 6) {
        uint32_t  keep, next, util;

        keep = (uint32_t) data[HEADER] << 16 | (uint32_t) data[HEADER + 1] << 8
               | data[HEADER + 2];
        util = util_ppm(data + HEADER + 3);
        next = mcig_region_next_keep(keep, util);

        CHECK(next >= MCIG_REGION_TARGET_PPM / 1000
              && next <= MCIG_REGION_TARGET_PPM);

        if (keep == 0 || keep > MCIG_REGION_TARGET_PPM) {
            keep = MCIG_REGION_TARGET_PPM;
        }

        if (keep < MCIG_REGION_TARGET_PPM / 1000) {
            keep = MCIG_REGION_TARGET_PPM / 1000;
        }

        if (util > MCIG_REGION_TARGET_PPM + 2 * 1000) {
            CHECK(next <= keep);
        }

        if (util < MCIG_REGION_TARGET_PPM) {
            CHECK(next >= keep || next == MCIG_REGION_TARGET_PPM);
        }
    }

    free(load);

    return 0;
}
