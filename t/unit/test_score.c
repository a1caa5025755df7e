/*
 * Unit tests of endpoint scoring: each scorer, the weights, random ties,
 * the load guard and the fallback of stale metrics.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mcig_pick.h"
#include "mcig_score.h"


#define ONE  MCIG_SCORE_ONE


static const mcig_score_weights_t  defaults = MCIG_SCORE_WEIGHTS_DEFAULT;


/* an idle member with fresh metrics */
static mcig_score_cand_t
cand(void)
{
    mcig_score_cand_t  c;

    memset(&c, 0, sizeof(c));
    c.capacity = 100;
    c.fresh = 1;

    return c;
}


static int
pick(const mcig_score_weights_t *w, const mcig_score_cand_t *c, size_t n,
    uint32_t total)
{
    mcig_rng_t  rng;

    mcig_rng_seed(&rng, 42);
    return mcig_score_pick(w, c, n, total, &rng, NULL, NULL);
}


static void
test_scorers(void **state)
{
    (void) state;

    assert_int_equal(mcig_score_kv(0), ONE);
    assert_int_equal(mcig_score_kv(300000), 700000);
    assert_int_equal(mcig_score_kv(ONE), 0);
    assert_int_equal(mcig_score_kv(ONE + 5), 0);

    /* (maxQ - q) / (maxQ - minQ), 1 when all are equal */
    assert_int_equal(mcig_score_queue(3, 3, 3), ONE);
    assert_int_equal(mcig_score_queue(0, 0, 10), ONE);
    assert_int_equal(mcig_score_queue(10, 0, 10), 0);
    assert_int_equal(mcig_score_queue(4, 2, 6), 500000);
    assert_int_equal(mcig_score_queue(5, 0, 20), 750000);

    assert_int_equal(mcig_score_prefix(0, 0), 0);
    assert_int_equal(mcig_score_prefix(0, 10), 0);
    assert_int_equal(mcig_score_prefix(5, 10), 500000);
    assert_int_equal(mcig_score_prefix(256, 256), ONE);
    assert_int_equal(mcig_score_prefix(300, 256), ONE);

    assert_int_equal(mcig_score_lora(MCIG_LORA_RUNNING), ONE);
    assert_int_equal(mcig_score_lora(MCIG_LORA_SLOT_FREE), 800000);
    assert_int_equal(mcig_score_lora(MCIG_LORA_WAITING), 600000);
    assert_int_equal(mcig_score_lora(MCIG_LORA_NONE), 0);

    assert_int_equal(mcig_score_in_flight(0, 100), ONE);
    assert_int_equal(mcig_score_in_flight(25, 100), 750000);
    assert_int_equal(mcig_score_in_flight(100, 100), 0);
    assert_int_equal(mcig_score_in_flight(150, 100), 0);
    assert_int_equal(mcig_score_in_flight(0, 0), ONE);
    assert_int_equal(mcig_score_in_flight(1, 0), 0);
}


static void
test_lora_state(void **state)
{
    (void) state;

    /* running wins over everything */
    assert_int_equal(mcig_lora_state(1, 1, 4, 4, 4), MCIG_LORA_RUNNING);
    /* a free slot comes before waiting, as in the EPP */
    assert_int_equal(mcig_lora_state(0, 1, 1, 1, 4), MCIG_LORA_SLOT_FREE);
    assert_int_equal(mcig_lora_state(0, 0, 3, 0, 4), MCIG_LORA_SLOT_FREE);
    assert_int_equal(mcig_lora_state(0, 1, 3, 1, 4), MCIG_LORA_WAITING);
    assert_int_equal(mcig_lora_state(0, 0, 3, 1, 4), MCIG_LORA_NONE);
    assert_int_equal(mcig_lora_state(0, 0, 0, 0, 0), MCIG_LORA_NONE);
}


static void
test_each_weight_alone(void **state)
{
    mcig_score_cand_t     c[4];
    mcig_score_weights_t  w;
    int                   i;

    (void) state;

    for (i = 0; i < 4; i++) {
        c[i] = cand();
    }

    c[0].kv_ppm = 900000;  c[0].waiting = 0;  c[0].prefix_blocks = 2;
    c[1].kv_ppm = 100000;  c[1].waiting = 9;  c[1].prefix_blocks = 0;
    c[2].kv_ppm = 500000;  c[2].waiting = 4;  c[2].prefix_blocks = 10;
    c[3].kv_ppm = 600000;  c[3].waiting = 7;  c[3].prefix_blocks = 1;
    c[0].lora = MCIG_LORA_WAITING;
    c[1].lora = MCIG_LORA_NONE;
    c[2].lora = MCIG_LORA_SLOT_FREE;
    c[3].lora = MCIG_LORA_RUNNING;
    c[0].in_flight = 50;
    c[1].in_flight = 10;
    c[2].in_flight = 80;
    c[3].in_flight = 5;

    memset(&w, 0, sizeof(w));
    w.kv = 1;
    assert_int_equal(pick(&w, c, 4, 10), 1);

    memset(&w, 0, sizeof(w));
    w.queue = 1;
    assert_int_equal(pick(&w, c, 4, 10), 0);

    memset(&w, 0, sizeof(w));
    w.prefix = 1;
    assert_int_equal(pick(&w, c, 4, 10), 2);

    memset(&w, 0, sizeof(w));
    w.lora = 1;
    assert_int_equal(pick(&w, c, 4, 10), 3);

    memset(&w, 0, sizeof(w));
    w.in_flight = 1;
    assert_int_equal(pick(&w, c, 4, 10), 3);
}


static void
test_default_weights(void **state)
{
    mcig_score_cand_t    c[3];
    mcig_score_result_t  res;
    mcig_rng_t           rng;

    (void) state;

    c[0] = cand();
    c[1] = cand();
    c[2] = cand();

    /*
     * A full prefix match (3) outweighs a somewhat busier member: c[0]
     * holds the prefix with 40% KV and 2 waiting, c[1] is idle, c[2] is
     * the busiest.  Scores: c[0] 2*0.6 + 2*0.6 + 3 = 5.4, c[1] 2 + 2 = 4.
     */
    c[0].kv_ppm = 400000;  c[0].waiting = 2;  c[0].prefix_blocks = 20;
    c[1].kv_ppm = 0;       c[1].waiting = 0;
    c[2].kv_ppm = 700000;  c[2].waiting = 5;

    mcig_rng_seed(&rng, 1);
    assert_int_equal(mcig_score_pick(&defaults, c, 3, 20, &rng, NULL, &res), 0);
    assert_int_equal(res.best, 0);
    assert_int_equal(res.ties, 1);
    assert_int_equal(res.scored, 3);
    assert_int_equal(res.all_full, 0);
    assert_true(res.score == 2ULL * 600000 + 2ULL * 600000 + 3ULL * ONE);

    /* a short match does not: 3 * 0.25 < the load difference */
    c[0].prefix_blocks = 5;
    assert_int_equal(pick(&defaults, c, 3, 20), 1);

    /* no prefix information at all: load decides */
    assert_int_equal(pick(&defaults, c, 3, 0), 1);

    /* weights past the maximum are clamped, not overflowed */
    {
        mcig_score_weights_t  w = { UINT32_MAX, UINT32_MAX, UINT32_MAX,
                                    UINT32_MAX, UINT32_MAX };

        assert_int_equal(pick(&w, c, 3, 20), 1);
    }
}


static void
test_ties_are_random(void **state)
{
    int                  i, counts[4];
    mcig_rng_t           rng;
    mcig_score_cand_t    c[4];
    mcig_score_result_t  res;

    (void) state;

    for (i = 0; i < 4; i++) {
        c[i] = cand();
        c[i].kv_ppm = 200000;
        c[i].waiting = 3;
        c[i].prefix_blocks = 4;
    }

    /* one worse candidate takes no part in the tie */
    c[3].kv_ppm = 300000;

    memset(counts, 0, sizeof(counts));
    mcig_rng_seed(&rng, 9);

    for (i = 0; i < 30000; i++) {
        counts[mcig_score_pick(&defaults, c, 4, 8, &rng, NULL, &res)]++;
        assert_int_equal(res.ties, 3);
    }

    for (i = 0; i < 3; i++) {
        assert_true(counts[i] > 9000 && counts[i] < 11000);
    }

    assert_int_equal(counts[3], 0);

    /* collected for the caller, in order, the worse one left out */
    c[1].kv_ppm = 300000;
    c[3].kv_ppm = 200000;
    memset(counts, -1, sizeof(counts));

    assert_int_equal(mcig_score_pick(&defaults, c, 4, 8, NULL, counts, &res),
                     0);
    assert_int_equal(res.ties, 3);
    assert_int_equal(counts[0], 0);
    assert_int_equal(counts[1], 2);
    assert_int_equal(counts[2], 3);

    /* n == 0 */
    assert_int_equal(mcig_score_pick(&defaults, c, 0, 8, &rng, NULL, &res), -1);
    assert_int_equal(res.best, -1);
    assert_int_equal(res.scored, 0);
    assert_int_equal(res.all_full, 0);
}


static void
test_load_guard(void **state)
{
    int                  i;
    mcig_rng_t           rng;
    mcig_score_cand_t    c[3];
    mcig_score_result_t  res;

    (void) state;

    c[0] = cand();
    c[1] = cand();
    c[2] = cand();

    /* c[0] has the whole prefix and the adapter, but no room */
    c[0].prefix_blocks = 50;
    c[0].lora = MCIG_LORA_RUNNING;
    c[0].full = 1;
    c[1].kv_ppm = 790000;
    c[1].waiting = 5;
    c[2].kv_ppm = 700000;
    c[2].waiting = 5;

    mcig_rng_seed(&rng, 5);

    for (i = 0; i < 100; i++) {
        assert_int_equal(mcig_score_pick(&defaults, c, 3, 50, &rng, NULL,
                                         &res), 2);
        assert_int_equal(res.scored, 2);
        assert_int_equal(res.all_full, 0);
    }

    /* the full member's queue does not stretch the others' range */
    c[0].waiting = 1000;
    assert_int_equal(mcig_score_pick(&defaults, c, 3, 50, &rng, NULL, &res), 2);
    assert_true(res.score == 2ULL * 300000 + 2ULL * ONE);

    /* all full: affinity decides among them */
    c[1].full = 1;
    c[2].full = 1;
    c[0].waiting = 5;
    assert_int_equal(mcig_score_pick(&defaults, c, 3, 50, &rng, NULL, &res), 0);
    assert_int_equal(res.scored, 3);
    assert_int_equal(res.all_full, 1);
}


static void
test_stale_metrics(void **state)
{
    mcig_score_cand_t     c[3];
    mcig_score_weights_t  w;
    mcig_score_result_t   res;
    mcig_rng_t            rng;

    (void) state;

    mcig_rng_seed(&rng, 3);

    c[0] = cand();
    c[1] = cand();
    c[2] = cand();

    /* c[2] is stale: its KV and queue figures are not looked at */
    c[0].kv_ppm = 500000;  c[0].waiting = 10;
    c[1].kv_ppm = 600000;  c[1].waiting = 20;
    c[2].kv_ppm = 0;       c[2].waiting = 0;
    c[2].fresh = 0;
    c[2].in_flight = 75;

    /* its in-flight ratio stands in: 0.25 for both */
    memset(&w, 0, sizeof(w));
    w.kv = 1;
    assert_int_equal(mcig_score_pick(&w, c, 3, 0, &rng, NULL, &res), 0);
    assert_true(res.score == 500000);
    c[2].in_flight = 25;
    assert_int_equal(mcig_score_pick(&w, c, 3, 0, &rng, NULL, &res), 2);
    assert_true(res.score == 750000);

    /* the queue range is of the fresh ones: 10 -> 1, 20 -> 0 */
    memset(&w, 0, sizeof(w));
    w.queue = 1;
    c[2].in_flight = 60;
    assert_int_equal(mcig_score_pick(&w, c, 3, 0, &rng, NULL, &res), 0);
    assert_true(res.score == ONE);

    /* all stale: in-flight counts decide, capacity-relative */
    c[0].fresh = 0;
    c[1].fresh = 0;
    c[0].in_flight = 50;   c[0].capacity = 100;
    c[1].in_flight = 50;   c[1].capacity = 200;
    c[2].in_flight = 10;   c[2].capacity = 10;
    assert_int_equal(mcig_score_pick(&defaults, c, 3, 0, &rng, NULL, &res), 1);
}


static void
test_lora_lists(void **state)
{
    uint64_t     h[4];
    const char  *list = " food-review-1 ,sql lora,, b ";

    (void) state;

    assert_int_equal(mcig_lora_list_hashes(list, strlen(list), h, 4), 3);
    assert_true(h[0] == mcig_lora_hash("food-review-1", 13));
    assert_true(h[1] == mcig_lora_hash("sql lora", 8));
    assert_true(h[2] == mcig_lora_hash("b", 1));
    assert_true(mcig_lora_listed(h, 3, mcig_lora_hash("sql lora", 8)));
    assert_false(mcig_lora_listed(h, 3, mcig_lora_hash("sql", 3)));

    /* at most max, and nothing from an empty list */
    assert_int_equal(mcig_lora_list_hashes(list, strlen(list), h, 2), 2);
    assert_int_equal(mcig_lora_list_hashes("", 0, h, 4), 0);
    assert_int_equal(mcig_lora_list_hashes(" , ,", 4, h, 4), 0);
    assert_true(mcig_lora_hash("", 0) != 0);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scorers),
        cmocka_unit_test(test_lora_state),
        cmocka_unit_test(test_each_weight_alone),
        cmocka_unit_test(test_default_weights),
        cmocka_unit_test(test_ties_are_random),
        cmocka_unit_test(test_load_guard),
        cmocka_unit_test(test_stale_metrics),
        cmocka_unit_test(test_lora_lists),
    };

    return cmocka_run_group_tests_name("score", tests, NULL, NULL);
}
