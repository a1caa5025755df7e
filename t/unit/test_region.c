/*
 * Unit tests of the region choice: spillover, failover and drain.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "mcig_region.h"


#define DRAWS  100000


static const mcig_region_params_t  defaults = MCIG_REGION_PARAMS_DEFAULT;


/* draws DRAWS choices, counts them per region and checks the kinds */
static void
draw(const mcig_region_load_t *r, int n, uint64_t seed, int *count)
{
    mcig_rng_t          rng;
    mcig_region_kind_e  kind;
    int                 i, c;

    mcig_rng_seed(&rng, seed);
    memset(count, 0, n * sizeof(int));

    for (i = 0; i < DRAWS; i++) {
        c = mcig_region_choose(r, n, &rng, &kind);
        assert_in_range(c, 0, n - 1);
        count[c]++;

        if (!r[0].drained && r[0].healthy > 0) {
            assert_int_equal(kind, c == 0 ? MCIG_REGION_LOCAL
                                          : MCIG_REGION_SPILLOVER);
        } else {
            assert_int_equal(kind, MCIG_REGION_FAILOVER);
        }
    }
}


static int
choose(const mcig_region_load_t *r, int n, mcig_region_kind_e *kind)
{
    mcig_rng_t  rng;

    mcig_rng_seed(&rng, 5);

    return mcig_region_choose(r, n, &rng, kind);
}


static void
test_local_under_target(void **state)
{
    mcig_region_load_t  r[] = { { 4, 999999, 0, 0, 0 }, { 4, 0, 0, 0, 0 },
                                { 4, 0, 0, 0, 0 } };
    int                 count[3];

    (void) state;

    draw(r, 3, 1, count);
    assert_int_equal(count[0], DRAWS);
}


static void
test_spill_fractions(void **state)
{
    mcig_region_load_t  r[] = { { 4, 1100000, 0, 0, 0 }, { 4, 500000, 0, 0, 0 } };
    int                 count[2];

    (void) state;

    /* 1.1x: 0.1 / 1.1 = 9.09 % spills, within 1.5 points */
    draw(r, 2, 11, count);
    assert_in_range(count[1], DRAWS * 759 / 10000, DRAWS * 1059 / 10000);

    /* 2x: half spills */
    r[0].util_ppm = 2000000;
    draw(r, 2, 12, count);
    assert_in_range(count[1], DRAWS * 485 / 1000, DRAWS * 515 / 1000);

    /* exactly at target: nothing to shed */
    r[0].util_ppm = 1000000;
    draw(r, 2, 13, count);
    assert_int_equal(count[0], DRAWS);
}


static void
test_cascade_past_over_target(void **state)
{
    mcig_region_load_t  r[] = { { 4, 2000000, 0, 0, 0 }, { 4, 1500000, 0, 0, 0 },
                                { 4, 1200000, 0, 0, 0 }, { 4, 300000, 0, 0, 0 },
                                { 4, 0, 0, 0, 0 } };
    int                 count[5];

    (void) state;

    /* spilled traffic passes over 1 and 2 and stops at the first room */
    draw(r, 5, 21, count);
    assert_int_equal(count[1], 0);
    assert_int_equal(count[2], 0);
    assert_int_equal(count[4], 0);
    assert_in_range(count[3], DRAWS * 485 / 1000, DRAWS * 515 / 1000);
}


static void
test_all_over_target(void **state)
{
    mcig_region_load_t  r[] = { { 4, 1500000, 0, 0, 0 }, { 4, 1300000, 0, 0, 0 },
                                { 4, 1200000, 0, 0, 0 } };
    mcig_region_kind_e  kind;

    (void) state;

    /* the least utilized */
    assert_int_equal(choose(r, 3, &kind), 2);
    assert_int_equal(kind, MCIG_REGION_SPILLOVER);

    /* ties: the earlier */
    r[1].util_ppm = 1200000;
    assert_int_equal(choose(r, 3, &kind), 1);

    /* local, when every other region is worse */
    r[0].util_ppm = 1100000;
    assert_int_equal(choose(r, 3, &kind), 0);
    assert_int_equal(kind, MCIG_REGION_LOCAL);

    r[0].util_ppm = 1200000;
    assert_int_equal(choose(r, 3, &kind), 0);
    assert_int_equal(kind, MCIG_REGION_LOCAL);
}


static void
test_full_region_gives_way(void **state)
{
    mcig_region_load_t  r[] = { { 4, 500000, 0, 0, 0 }, { 4, 1400000, 0, 0, 0 },
                                { 4, 1300000, 0, 0, 0 } };
    mcig_region_kind_e  kind;
    int                 count[3];

    (void) state;

    /* an average under target, yet every member full: not taken; of the
     * regions with room, none under target: the least utilized */
    r[0].full = 1;
    assert_int_equal(choose(r, 3, &kind), 2);
    assert_int_equal(kind, MCIG_REGION_SPILLOVER);

    /* the first with room under target, before a less utilized one */
    r[1].util_ppm = 900000;
    r[2].util_ppm = 100000;
    assert_int_equal(choose(r, 3, &kind), 1);

    /* the only one with room, over target or not */
    r[1].util_ppm = 1400000;
    r[2].util_ppm = 1300000;
    r[1].full = 1;
    assert_int_equal(choose(r, 3, &kind), 2);

    /* nowhere any room: the rules by utilization stand */
    r[2].full = 1;
    assert_int_equal(choose(r, 3, &kind), 0);
    assert_int_equal(kind, MCIG_REGION_LOCAL);

    /* home over target and full: no request stays there */
    r[0].util_ppm = 2000000;
    r[1].full = 0;
    r[2].full = 0;
    r[2].util_ppm = 500000;
    draw(r, 3, 7, count);
    assert_int_equal(count[0], 0);
    assert_int_equal(count[1], 0);
    assert_int_equal(count[2], DRAWS);

    /* a drained region with room is not a way out: the rules' own
     * choice, the least utilized */
    r[2].drained = 1;
    r[1].full = 1;
    assert_int_equal(choose(r, 3, &kind), 1);
}


static void
test_keep(void **state)
{
    mcig_region_load_t  r[] = { { 4, 500000, 0, 0, 500000 },
                                { 4, 100000, 0, 0, 0 } };
    int                 count[2];
    uint32_t            keep;
    int                 i;

    (void) state;

    /* the share learnt: keep / sqrt(u), from 1/1000 to all */
    assert_int_equal(mcig_region_next_keep(0, 1000000), 1000000);
    assert_int_equal(mcig_region_next_keep(500000, 4000000), 250000);
    assert_int_equal(mcig_region_next_keep(500000, 250000), 1000000);
    assert_int_equal(mcig_region_next_keep(800000, 1000000), 800000);
    assert_int_equal(mcig_region_next_keep(1000, 0xffffffffU), 1000);
    assert_int_equal(mcig_region_next_keep(700000, 0), 1000000);

    /* home at 2x keeps half at once; learning brings it towards its
     * target if load follows traffic: 2x at all -> 1x at half */
    keep = 0;

    for (i = 0; i < 30; i++) {
        keep = mcig_region_next_keep(keep,
                   (uint32_t) ((uint64_t) 2000000 * (keep ? keep : 1000000)
                               / 1000000));
    }

    assert_in_range(keep, 495000, 505000);

    /* under target, home keeps its share, the rest spills */
    draw(r, 2, 11, count);
    assert_in_range(count[0], DRAWS * 485 / 1000, DRAWS * 515 / 1000);

    /* over target: the smaller of keep and 1/u */
    r[0].util_ppm = 4000000;
    draw(r, 2, 12, count);
    assert_in_range(count[0], DRAWS * 235 / 1000, DRAWS * 265 / 1000);

    r[0].util_ppm = 1250000;
    draw(r, 2, 13, count);
    assert_in_range(count[0], DRAWS * 485 / 1000, DRAWS * 515 / 1000);

    /* nowhere under target to spill to: home, under target */
    r[0].util_ppm = 500000;
    r[1].util_ppm = 1500000;
    assert_int_equal(choose(r, 2, NULL), 0);
}


static void
test_failover(void **state)
{
    mcig_region_load_t  r[] = { { 0, 0, 0, 0, 0 }, { 4, 800000, 0, 0, 0 },
                                { 4, 0, 0, 0, 0 } };
    mcig_region_kind_e  kind;
    int                 count[3];

    (void) state;

    /* no healthy member at home, however idle */
    assert_int_equal(choose(r, 3, &kind), 1);
    assert_int_equal(kind, MCIG_REGION_FAILOVER);

    /* drained, though a member is healthy */
    r[0].healthy = 4;
    r[0].drained = 1;
    assert_int_equal(choose(r, 3, &kind), 1);
    assert_int_equal(kind, MCIG_REGION_FAILOVER);

    /* the new home spills as the local region would, still a failover */
    r[1].util_ppm = 2000000;
    draw(r, 3, 31, count);
    assert_int_equal(count[0], 0);
    assert_in_range(count[2], DRAWS * 485 / 1000, DRAWS * 515 / 1000);
}


static void
test_drain(void **state)
{
    mcig_region_state_t  st;

    (void) state;
    memset(&st, 0, sizeof(st));

    /* 30 % and exactly 25 % keep the region */
    assert_false(mcig_region_update(&st, 3, 10, 0, &defaults));
    assert_false(mcig_region_update(&st, 1, 4, 1000, &defaults));

    /* 20 % drains it */
    assert_true(mcig_region_update(&st, 2, 10, 2000, &defaults));

    /* 30 % is not enough to come back, whatever the time */
    assert_true(mcig_region_update(&st, 3, 10, 100000, &defaults));
    assert_true(mcig_region_update(&st, 3, 10, 1000000, &defaults));
}


static void
test_restore_after_60s(void **state)
{
    mcig_region_state_t  st;

    (void) state;
    memset(&st, 0, sizeof(st));

    assert_true(mcig_region_update(&st, 0, 20, 0, &defaults));

    /* 35 % from 1 s on */
    assert_true(mcig_region_update(&st, 7, 20, 1000, &defaults));
    assert_true(mcig_region_update(&st, 8, 20, 30000, &defaults));
    assert_true(mcig_region_update(&st, 7, 20, 60999, &defaults));
    assert_false(mcig_region_update(&st, 7, 20, 61000, &defaults));

    /* and drained again below 25 % */
    assert_true(mcig_region_update(&st, 4, 20, 62000, &defaults));
}


static void
test_restore_clock_resets(void **state)
{
    mcig_region_state_t   st;
    mcig_region_params_t  fast = { 50, 60, 1000 };

    (void) state;
    memset(&st, 0, sizeof(st));

    assert_true(mcig_region_update(&st, 1, 10, 0, &defaults));
    assert_true(mcig_region_update(&st, 4, 10, 10000, &defaults));

    /* a dip to 30 % at 40 s: the clock starts again at 50 s */
    assert_true(mcig_region_update(&st, 3, 10, 40000, &defaults));
    assert_true(mcig_region_update(&st, 4, 10, 50000, &defaults));
    assert_true(mcig_region_update(&st, 4, 10, 70000, &defaults));
    assert_true(mcig_region_update(&st, 4, 10, 109999, &defaults));
    assert_false(mcig_region_update(&st, 4, 10, 110000, &defaults));

    /* a clock that goes back does not restore */
    memset(&st, 0, sizeof(st));
    assert_true(mcig_region_update(&st, 0, 10, 0, &defaults));
    assert_true(mcig_region_update(&st, 5, 10, 100000, &defaults));
    assert_true(mcig_region_update(&st, 5, 10, 1000, &defaults));

    /* other parameters */
    memset(&st, 0, sizeof(st));
    assert_true(mcig_region_update(&st, 4, 10, 0, &fast));
    assert_true(mcig_region_update(&st, 6, 10, 100, &fast));
    assert_false(mcig_region_update(&st, 6, 10, 1100, &fast));
}


static void
test_no_members(void **state)
{
    mcig_region_state_t  st;
    mcig_region_load_t   r[] = { { 0, 0, 0, 0, 0 }, { 3, 500000, 0, 0, 0 } };
    mcig_region_kind_e   kind;

    (void) state;
    memset(&st, 0, sizeof(st));

    /* no evidence either way: the state is kept */
    assert_false(mcig_region_update(&st, 0, 0, 0, &defaults));
    assert_true(mcig_region_update(&st, 0, 10, 1000, &defaults));
    assert_true(mcig_region_update(&st, 5, 10, 2000, &defaults));

    /* ... but the restore clock stops */
    assert_true(mcig_region_update(&st, 0, 0, 30000, &defaults));
    assert_true(mcig_region_update(&st, 5, 10, 62000, &defaults));
    assert_true(mcig_region_update(&st, 5, 10, 121999, &defaults));
    assert_false(mcig_region_update(&st, 5, 10, 122000, &defaults));

    /* never chosen, drained or not */
    r[0].drained = mcig_region_update(&st, 0, 0, 123000, &defaults);
    assert_false(r[0].drained);
    assert_int_equal(choose(r, 2, &kind), 1);
    assert_int_equal(kind, MCIG_REGION_FAILOVER);
}


static void
test_one_region(void **state)
{
    mcig_region_load_t  r[] = { { 2, 500000, 0, 0, 0 } };
    mcig_region_kind_e  kind;

    (void) state;

    assert_int_equal(choose(r, 1, &kind), 0);
    assert_int_equal(kind, MCIG_REGION_LOCAL);

    /* over target, with nowhere to go */
    r[0].util_ppm = 5000000;
    assert_int_equal(choose(r, 1, &kind), 0);
    assert_int_equal(kind, MCIG_REGION_LOCAL);

    r[0].drained = 1;
    assert_int_equal(choose(r, 1, &kind), -1);
    assert_int_equal(kind, MCIG_REGION_NONE);
}


static void
test_none_eligible(void **state)
{
    mcig_region_load_t  r[MCIG_REGIONS_MAX + 1];
    mcig_region_kind_e  kind;

    (void) state;
    memset(r, 0, sizeof(r));

    r[1].healthy = 3;
    r[1].drained = 1;
    r[2].util_ppm = 100000;

    assert_int_equal(choose(r, 3, &kind), -1);
    assert_int_equal(kind, MCIG_REGION_NONE);

    assert_int_equal(choose(r, 0, NULL), -1);
    assert_int_equal(choose(NULL, 0, &kind), -1);

    /* regions beyond the maximum are not looked at */
    r[MCIG_REGIONS_MAX].healthy = 1;
    assert_int_equal(choose(r, MCIG_REGIONS_MAX + 1, &kind), -1);

    r[MCIG_REGIONS_MAX - 1].healthy = 1;
    assert_int_equal(choose(r, MCIG_REGIONS_MAX + 1, &kind),
                     MCIG_REGIONS_MAX - 1);
    assert_int_equal(kind, MCIG_REGION_FAILOVER);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_under_target),
        cmocka_unit_test(test_spill_fractions),
        cmocka_unit_test(test_cascade_past_over_target),
        cmocka_unit_test(test_all_over_target),
        cmocka_unit_test(test_full_region_gives_way),
        cmocka_unit_test(test_keep),
        cmocka_unit_test(test_failover),
        cmocka_unit_test(test_drain),
        cmocka_unit_test(test_restore_after_60s),
        cmocka_unit_test(test_restore_clock_resets),
        cmocka_unit_test(test_no_members),
        cmocka_unit_test(test_one_region),
        cmocka_unit_test(test_none_eligible),
    };

    return cmocka_run_group_tests_name("region choice", tests, NULL, NULL);
}
