/*
 * Unit tests of the least-loaded pick and the saturation test.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "mcig_pick.h"
#include "mcig_json.h"


typedef struct {
    uint32_t  in_flight;
    uint32_t  capacity;
} member_t;


static int
pick(const member_t *m, int n, mcig_rng_t *rng, int *saturated)
{
    mcig_pick_t  p;
    int          i;

    mcig_pick_start(&p, rng);

    for (i = 0; i < n; i++) {
        mcig_pick_offer(&p, i, m[i].in_flight, m[i].capacity);
    }

    if (saturated) {
        *saturated = mcig_pick_saturated(&p);
    }

    return p.best;
}


static void
test_lowest_ratio_wins(void **state)
{
    mcig_rng_t  rng;
    member_t    m[] = { { 5, 10 }, { 3, 10 }, { 4, 10 } };
    member_t    w[] = { { 5, 10 }, { 8, 20 } };   /* 0.5 vs 0.4 */
    int         sat;

    (void) state;
    mcig_rng_seed(&rng, 1);

    assert_int_equal(pick(m, 3, &rng, &sat), 1);
    assert_false(sat);
    assert_int_equal(pick(w, 2, &rng, NULL), 1);
}


static void
test_ties_are_broken_at_random(void **state)
{
    mcig_rng_t  rng;
    member_t    m[] = { { 2, 10 }, { 1, 10 }, { 1, 10 }, { 1, 10 } };
    int         count[4] = { 0, 0, 0, 0 };
    int         i;

    (void) state;
    mcig_rng_seed(&rng, 42);

    for (i = 0; i < 30000; i++) {
        count[pick(m, 4, &rng, NULL)]++;
    }

    assert_int_equal(count[0], 0);

    /* each of the three tied members gets a third, within 5 % */
    for (i = 1; i < 4; i++) {
        assert_in_range(count[i], 9500, 10500);
    }
}


static void
test_saturation(void **state)
{
    mcig_rng_t  rng;
    member_t    full[] = { { 10, 10 }, { 12, 10 } };
    member_t    room[] = { { 10, 10 }, { 9, 10 } };
    int         sat;

    (void) state;
    mcig_rng_seed(&rng, 7);

    /* saturated pools still name the least loaded member */
    assert_int_equal(pick(full, 2, &rng, &sat), 0);
    assert_true(sat);

    assert_int_equal(pick(room, 2, &rng, &sat), 1);
    assert_false(sat);

    /* nothing offered: no pick, and "saturated" is not claimed */
    assert_int_equal(pick(NULL, 0, &rng, &sat), -1);
    assert_false(sat);
}


static void
test_zero_capacity_counts_as_one(void **state)
{
    mcig_rng_t  rng;
    member_t    m[] = { { 0, 0 }, { 1, 0 } };
    int         sat;

    (void) state;
    mcig_rng_seed(&rng, 3);

    assert_int_equal(pick(m, 2, &rng, &sat), 0);
    assert_false(sat);
}


static void
test_rng_never_sticks_at_zero(void **state)
{
    mcig_rng_t  rng;

    (void) state;

    mcig_rng_seed(&rng, 0);
    assert_true(mcig_rng_next(&rng) != 0);
    assert_true(mcig_rng_next(&rng) != mcig_rng_next(&rng));
}


static void
test_error_json(void **state)
{
    char         buf[256];
    const char  *msg = "pool \"a\"\n\x01\xff";
    size_t       n;

    (void) state;

    n = mcig_error_json(buf, msg, strlen(msg), "invalid_request_error",
                        "model_missing");
    buf[n] = '\0';

    assert_int_equal(n, mcig_error_json_len(msg, strlen(msg),
                                            "invalid_request_error",
                                            "model_missing"));
    assert_string_equal(buf,
        "{\"error\":{\"message\":\"pool \\\"a\\\"\\u000a\\u0001\\u00ff\","
        "\"type\":\"invalid_request_error\",\"param\":null,"
        "\"code\":\"model_missing\"}}\n");
}


static void
test_metrics_load(void **state)
{
    (void) state;

    /* no requests sent since the scrape: the scraped usage */
    assert_int_equal(mcig_metrics_load_ppm(400000, 4, 0, 0, 0, 256), 400000);

    /* each waiting or dispatched request weighs as one running request */
    assert_int_equal(mcig_metrics_load_ppm(400000, 4, 0, 2, 0, 256), 600000);
    assert_int_equal(mcig_metrics_load_ppm(400000, 4, 2, 0, 0, 256), 600000);
    assert_int_equal(mcig_metrics_load_ppm(400000, 4, 1, 1, 0, 256), 600000);

    /* a full cache with a queue: past the cache's size */
    assert_int_equal(mcig_metrics_load_ppm(1000000, 10, 5, 0, 0, 256), 1500000);
    assert_true(mcig_metrics_load_ppm(1000000, 10, 6, 0, 0, 256)
                > mcig_metrics_load_ppm(1000000, 10, 5, 0, 0, 256));

    /* waiting without running: 1/capacity of the cache each */
    assert_int_equal(mcig_metrics_load_ppm(0, 0, 3, 1, 0, 100), 40000);

    /* an idle server: 1/capacity of the cache per request */
    assert_int_equal(mcig_metrics_load_ppm(0, 0, 0, 4, 0, 100), 40000);

    /* a burst lifts the emptiest member above a busier one */
    assert_true(mcig_metrics_load_ppm(100000, 1, 0, 5, 0, 256)
                > mcig_metrics_load_ppm(300000, 3, 0, 0, 0, 256));

    /* requests ended since the scrape free their share, down to 0 */
    assert_int_equal(mcig_metrics_load_ppm(800000, 4, 0, 1, 2, 256), 600000);
    assert_int_equal(mcig_metrics_load_ppm(800000, 4, 2, 0, 2, 256), 800000);
    assert_int_equal(mcig_metrics_load_ppm(800000, 4, 0, 0, 9, 256), 0);
    assert_int_equal(mcig_metrics_load_ppm(0, 0, 0, 0, 0xffffffffU, 256), 0);

    /* no overflow */
    assert_int_equal(mcig_metrics_load_ppm(1000000, 1, 0, 0xffffffffU, 0, 1),
                     0xffffffffU);
    assert_int_equal(mcig_metrics_load_ppm(1000000, 1, 0xffffffffU,
                                           0xffffffffU, 0, 1),
                     0xffffffffU);
}


static void
test_metrics_waiting_now(void **state)
{
    (void) state;

    /* nothing sent or ended since the scrape: the scraped queue */
    assert_int_equal(mcig_metrics_waiting_now(3, 0, 0), 3);

    /* each request sent since the scrape lengthens it */
    assert_int_equal(mcig_metrics_waiting_now(3, 2, 0), 5);
    assert_int_equal(mcig_metrics_waiting_now(0, 2, 0), 2);

    /* each end lets one start, down to 0 */
    assert_int_equal(mcig_metrics_waiting_now(3, 2, 4), 1);
    assert_int_equal(mcig_metrics_waiting_now(3, 0, 9), 0);
    assert_int_equal(mcig_metrics_waiting_now(0, 0, 0xffffffffU), 0);

    /* no overflow */
    assert_int_equal(mcig_metrics_waiting_now(0xffffffffU, 0xffffffffU, 1),
                     0xffffffffU);
}


static void
test_ties_collected(void **state)
{
    mcig_pick_t  p;
    mcig_rng_t   rng;
    int          tied[4];

    (void) state;
    mcig_rng_seed(&rng, 3);

    /* a lower load resets the list; equals join it in offer order */
    mcig_pick_start(&p, &rng);
    mcig_pick_collect_ties(&p, tied, 4);
    mcig_pick_offer(&p, 0, 2, 10);
    mcig_pick_offer(&p, 1, 1, 10);
    mcig_pick_offer(&p, 2, 2, 20);      /* 0.1, as member 1 */
    mcig_pick_offer(&p, 3, 3, 10);

    assert_int_equal(p.best, 1);
    assert_int_equal(p.ntied, 2);
    assert_int_equal(tied[0], 1);
    assert_int_equal(tied[1], 2);

    /* no more than the room given */
    mcig_pick_start(&p, &rng);
    mcig_pick_collect_ties(&p, tied, 2);
    mcig_pick_offer(&p, 0, 0, 1);
    mcig_pick_offer(&p, 1, 0, 1);
    mcig_pick_offer(&p, 2, 0, 1);

    assert_int_equal(p.ntied, 2);
    assert_int_equal(p.ties, 3);
}


static void
test_swrr_as_nginx(void **state)
{
    int               i, k, count[3] = { 0, 0, 0 }, seq[7];
    intptr_t          current[3] = { 0, 0, 0 }, effective[3];
    mcig_swrr_peer_t  c[3];
    int               nginx_order[7] = { 0, 0, 1, 0, 2, 0, 0 };

    (void) state;

    /* weights 5, 1, 1: nginx's documented sequence a a b a c a a */
    for (i = 0; i < 3; i++) {
        effective[i] = (i == 0) ? 5 : 1;
        c[i].current = &current[i];
        c[i].effective = &effective[i];
        c[i].weight = effective[i];
    }

    for (k = 0; k < 7; k++) {
        seq[k] = mcig_swrr_choose(c, 3);
        assert_int_equal(seq[k], nginx_order[k]);
    }

    /* weights 3 and 1 over 200 choices: exactly 150 and 50 */
    current[0] = current[1] = 0;
    effective[0] = 3;
    effective[1] = 1;
    c[0].weight = 3;
    c[1].weight = 1;

    for (k = 0; k < 200; k++) {
        count[mcig_swrr_choose(c, 2)]++;
    }

    assert_int_equal(count[0], 150);
    assert_int_equal(count[1], 50);

    /* a lowered effective weight recovers by one a choice */
    effective[0] = 1;
    (void) mcig_swrr_choose(c, 2);
    assert_int_equal(effective[0], 2);

    assert_int_equal(mcig_swrr_choose(c, 0), -1);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lowest_ratio_wins),
        cmocka_unit_test(test_ties_are_broken_at_random),
        cmocka_unit_test(test_ties_collected),
        cmocka_unit_test(test_swrr_as_nginx),
        cmocka_unit_test(test_saturation),
        cmocka_unit_test(test_zero_capacity_counts_as_one),
        cmocka_unit_test(test_rng_never_sticks_at_zero),
        cmocka_unit_test(test_error_json),
        cmocka_unit_test(test_metrics_load),
        cmocka_unit_test(test_metrics_waiting_now),
    };

    return cmocka_run_group_tests_name("pick and errors", tests, NULL, NULL);
}
