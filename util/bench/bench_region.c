/*
 * Cost of choosing the region and the member of one request, as the
 * balancer does it: one pass over every member (its load, the saturation
 * pick, its region's healthy count and utilization), the region choice,
 * then the member pick inside the chosen region.  Members are read through
 * volatile pointers, as the shared zone is.
 *
 *   bench_region [regions] [members_per_region] [seconds]
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcig_pick.h"
#include "mcig_region.h"


typedef struct {
    volatile unsigned long  in_flight;
    volatile unsigned long  unhealthy;
    unsigned                region;
    unsigned                capacity;
} member_t;


static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


int
main(int argc, char **argv)
{
    int                   nreg, per, n, i, r, chosen;
    double                secs, t0, t1;
    uint64_t              util[MCIG_REGIONS_MAX];
    uint32_t              total[MCIG_REGIONS_MAX], healthy[MCIG_REGIONS_MAX];
    member_t             *m;
    mcig_rng_t            rng;
    mcig_pick_t           pick;
    unsigned long         iters, picks[MCIG_REGIONS_MAX], sink;
    mcig_region_kind_e    kind;
    mcig_region_load_t    load[MCIG_REGIONS_MAX];
    mcig_region_state_t   state[MCIG_REGIONS_MAX];
    mcig_region_params_t  params = MCIG_REGION_PARAMS_DEFAULT;

    nreg = (argc > 1) ? atoi(argv[1]) : 3;
    per = (argc > 2) ? atoi(argv[2]) : 64;
    secs = (argc > 3) ? atof(argv[3]) : 2.0;
    n = nreg * per;

    m = calloc(n, sizeof(member_t));
    memset(state, 0, sizeof(state));
    memset(picks, 0, sizeof(picks));
    mcig_rng_seed(&rng, 1);

    for (i = 0; i < n; i++) {
        m[i].region = i / per;
        m[i].capacity = 256;
        /* the local region is past target: some requests spill */
        m[i].in_flight = (m[i].region == 0) ? 300 : 100 + i % 50;
    }

    iters = 0;
    sink = 0;
    t0 = now();

    do {
        memset(total, 0, sizeof(total));
        memset(healthy, 0, sizeof(healthy));
        memset(util, 0, sizeof(util));

        mcig_pick_start(&pick, &rng);

        for (i = 0; i < n; i++) {
            r = m[i].region;
            total[r]++;

            if (m[i].unhealthy) {
                continue;
            }

            mcig_pick_offer(&pick, i, (uint32_t) m[i].in_flight,
                            m[i].capacity);
            healthy[r]++;
            util[r] += (uint64_t) m[i].in_flight * 1000000 / m[i].capacity;
        }

        for (r = 0; r < nreg; r++) {
            load[r].healthy = healthy[r];
            load[r].util_ppm = healthy[r] ? util[r] / healthy[r] : 0;
            load[r].drained = mcig_region_update(&state[r], healthy[r],
                                                 total[r], iters, &params);
            load[r].full = 0;
            load[r].keep_ppm = 0;
        }

        chosen = mcig_region_choose(load, nreg, &rng, &kind);

        mcig_pick_start(&pick, &rng);

        for (i = chosen * per; i < (chosen + 1) * per; i++) {
            mcig_pick_offer(&pick, i, (uint32_t) m[i].in_flight,
                            m[i].capacity);
        }

        picks[chosen]++;
        sink += pick.best;
        iters++;

        if ((iters & 1023) == 0) {
            t1 = now();
        }

    } while ((iters & 1023) || t1 - t0 < secs);

    printf("regions=%d members=%d requests=%lu ns_per_request=%.0f "
           "local_share=%.3f (sink %lu)\n", nreg, n, iters,
           (t1 - t0) / iters * 1e9, (double) picks[0] / iters, sink);

    free(m);
    return 0;
}
