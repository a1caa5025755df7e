/*
 * Unit tests of the flow-control queue: bands, FIFO, tenant round robin,
 * bounds, expiry and removal, and the shared per-band counts.
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
#include "mcig_queue.h"


/* a waiting request as the glue would have it */
typedef struct {
    int                  id;
    mcig_queue_entry_t   q;
} req_t;


#define req_of(e)  ((req_t *) ((char *) (e) - offsetof(req_t, q)))

#define TENANT(s)  mcig_queue_tenant(s, sizeof(s) - 1)


static int
pop_id(mcig_queue_t *q)
{
    mcig_queue_entry_t  *e = mcig_queue_pop(q);

    return e ? req_of(e)->id : -1;
}


static void
push_ok(mcig_queue_t *q, req_t *r, int id, int32_t prio, uint64_t tenant)
{
    r->id = id;
    assert_int_equal(mcig_queue_push(q, &r->q, prio, tenant, 0, 60000),
                     MCIG_QUEUE_OK);
    assert_true(mcig_queue_queued(&r->q));
}


static void
test_bands_strict(void **state)
{
    req_t         r[6];
    mcig_queue_t  q;

    (void) state;

    mcig_queue_init(&q, 0, 0);
    assert_null(mcig_queue_peek(&q));
    assert_int_equal(pop_id(&q), -1);

    push_ok(&q, &r[0], 0, 0, 1);
    push_ok(&q, &r[1], 1, -5, 1);
    push_ok(&q, &r[2], 2, 10, 1);
    push_ok(&q, &r[3], 3, 0, 1);
    push_ok(&q, &r[4], 4, 1000000, 1);
    push_ok(&q, &r[5], 5, -1000000, 1);

    assert_int_equal(mcig_queue_depth(&q), 6);
    assert_int_equal(mcig_queue_band_depth(&q, 0), 2);
    assert_int_equal(mcig_queue_band_depth(&q, 7), 0);
    assert_int_equal(req_of(mcig_queue_peek(&q))->id, 4);

    assert_int_equal(pop_id(&q), 4);
    assert_int_equal(pop_id(&q), 2);
    assert_int_equal(pop_id(&q), 0);
    assert_int_equal(pop_id(&q), 3);

    /* a higher band arriving later still goes first */
    push_ok(&q, &r[0], 6, 1, 1);
    assert_int_equal(pop_id(&q), 6);
    assert_int_equal(pop_id(&q), 1);
    assert_int_equal(pop_id(&q), 5);
    assert_int_equal(pop_id(&q), -1);
    assert_int_equal(mcig_queue_depth(&q), 0);
    assert_false(mcig_queue_queued(&r[0].q));
}


static void
test_fifo_and_round_robin(void **state)
{
    int           i;
    req_t         r[10];
    uint64_t      a, b, c;
    mcig_queue_t  q;

    (void) state;

    a = TENANT("tenant-a");
    b = TENANT("tenant-b");
    c = TENANT("tenant-c");
    assert_true(a != b && b != c && a != c);
    assert_true(a == TENANT("tenant-a"));

    /* one tenant: arrival order */
    mcig_queue_init(&q, 0, 0);

    for (i = 0; i < 5; i++) {
        push_ok(&q, &r[i], i, 0, a);
    }

    for (i = 0; i < 5; i++) {
        assert_int_equal(pop_id(&q), i);
    }

    /* A1 A2 A3 B1 B2 C1: one of each in turn, each in its order */
    push_ok(&q, &r[0], 1, 0, a);
    push_ok(&q, &r[1], 2, 0, a);
    push_ok(&q, &r[2], 3, 0, a);
    push_ok(&q, &r[3], 11, 0, b);
    push_ok(&q, &r[4], 12, 0, b);
    push_ok(&q, &r[5], 21, 0, c);

    assert_int_equal(pop_id(&q), 1);
    assert_int_equal(pop_id(&q), 11);

    /* C2 arrives: C has its turn next, then A, B, C again */
    push_ok(&q, &r[6], 22, 0, c);
    assert_int_equal(pop_id(&q), 21);
    assert_int_equal(pop_id(&q), 2);
    assert_int_equal(pop_id(&q), 12);
    assert_int_equal(pop_id(&q), 22);
    assert_int_equal(pop_id(&q), 3);
    assert_int_equal(pop_id(&q), -1);

    /* the same tenant in two bands: two flows, bands first */
    push_ok(&q, &r[0], 1, 0, a);
    push_ok(&q, &r[1], 2, 5, a);
    push_ok(&q, &r[2], 3, 0, b);
    push_ok(&q, &r[3], 4, 5, b);
    assert_int_equal(pop_id(&q), 2);
    assert_int_equal(pop_id(&q), 4);
    assert_int_equal(pop_id(&q), 1);
    assert_int_equal(pop_id(&q), 3);
}


static void
test_bounds(void **state)
{
    int           i;
    req_t         r[20], extra;
    mcig_queue_t  q;

    (void) state;

    mcig_queue_init(&q, 5, 3);

    push_ok(&q, &r[0], 0, 0, 1);
    push_ok(&q, &r[1], 1, 0, 2);
    push_ok(&q, &r[2], 2, 0, 1);

    /* the band is full, another band is not */
    assert_int_equal(mcig_queue_push(&q, &extra.q, 0, 3, 0, 100),
                     MCIG_QUEUE_BAND_FULL);
    assert_false(mcig_queue_queued(&extra.q));
    push_ok(&q, &r[3], 3, 1, 1);
    push_ok(&q, &r[4], 4, 2, 1);

    /* the queue is full */
    assert_int_equal(mcig_queue_push(&q, &extra.q, 3, 1, 0, 100),
                     MCIG_QUEUE_FULL);
    assert_int_equal(mcig_queue_depth(&q), 5);

    /* room again once one leaves */
    assert_int_equal(pop_id(&q), 4);
    push_ok(&q, &extra, 9, 3, 1);
    assert_int_equal(mcig_queue_depth(&q), 5);

    /* at most MCIG_QUEUE_BANDS_MAX priorities at once */
    mcig_queue_init(&q, 0, 0);

    for (i = 0; i < MCIG_QUEUE_BANDS_MAX; i++) {
        push_ok(&q, &r[i], i, i * 3, 1);
    }

    assert_int_equal(mcig_queue_push(&q, &extra.q, 1, 1, 0, 100),
                     MCIG_QUEUE_NO_BAND);

    /* an existing priority still has room */
    push_ok(&q, &extra, 99, 3, 1);

    /* a band freed is reused */
    assert_int_equal(pop_id(&q), MCIG_QUEUE_BANDS_MAX - 1);
    push_ok(&q, &r[MCIG_QUEUE_BANDS_MAX], 100, -7, 1);

    for (i = MCIG_QUEUE_BANDS_MAX - 2; i >= 0; i--) {
        assert_int_equal(pop_id(&q), i);

        if (i == 1) {
            assert_int_equal(pop_id(&q), 99);
        }
    }

    assert_int_equal(pop_id(&q), 100);
    assert_int_equal(pop_id(&q), -1);
}


static void
test_expiry(void **state)
{
    req_t                r[5];
    mcig_queue_t         q;
    mcig_queue_entry_t  *e;

    (void) state;

    mcig_queue_init(&q, 0, 0);
    assert_true(mcig_queue_next_deadline(&q) == UINT64_MAX);
    assert_null(mcig_queue_expire(&q, UINT64_MAX));

    r[0].id = 0;
    r[1].id = 1;
    r[2].id = 2;
    r[3].id = 3;
    r[4].id = 4;
    mcig_queue_push(&q, &r[0].q, 0, 1, 1000, 500);      /* 1500 */
    mcig_queue_push(&q, &r[1].q, 9, 1, 1100, 500);      /* 1600 */
    mcig_queue_push(&q, &r[2].q, 0, 2, 1200, 100);      /* 1300 */
    mcig_queue_push(&q, &r[3].q, 0, 1, 1300, 1000);     /* 2300 */
    mcig_queue_push(&q, &r[4].q, 0, 3, 0, UINT64_MAX);  /* never */

    assert_true(mcig_queue_next_deadline(&q) == 1300);
    assert_null(mcig_queue_expire(&q, 1299));

    /* by deadline, whatever the band or the arrival */
    e = mcig_queue_expire(&q, 1600);
    assert_int_equal(req_of(e)->id, 2);
    assert_false(mcig_queue_queued(e));
    assert_int_equal(req_of(mcig_queue_expire(&q, 1600))->id, 0);
    assert_int_equal(req_of(mcig_queue_expire(&q, 1600))->id, 1);
    assert_null(mcig_queue_expire(&q, 1600));
    assert_true(mcig_queue_next_deadline(&q) == 2300);
    assert_int_equal(mcig_queue_depth(&q), 2);

    /* the expired are gone from the ordering: r[3] then r[4] */
    assert_int_equal(pop_id(&q), 3);
    assert_int_equal(pop_id(&q), 4);
    assert_true(mcig_queue_next_deadline(&q) == UINT64_MAX);
}


static void
test_remove(void **state)
{
    req_t         r[8];
    uint64_t      a, b;
    mcig_queue_t  q;

    (void) state;

    a = TENANT("a");
    b = TENANT("b");
    mcig_queue_init(&q, 0, 0);

    push_ok(&q, &r[0], 1, 0, a);
    push_ok(&q, &r[1], 2, 0, a);
    push_ok(&q, &r[2], 3, 0, a);
    push_ok(&q, &r[3], 11, 0, b);
    push_ok(&q, &r[4], 12, 0, b);
    push_ok(&q, &r[5], 50, 7, a);

    /* a follower leaves */
    mcig_queue_remove(&q, &r[1].q);
    assert_false(mcig_queue_queued(&r[1].q));
    mcig_queue_remove(&q, &r[1].q);          /* twice is harmless */
    assert_int_equal(mcig_queue_depth(&q), 5);

    /* a leader leaves: its tenant keeps its turn */
    mcig_queue_remove(&q, &r[0].q);

    /* the only entry of a band leaves: the band goes */
    mcig_queue_remove(&q, &r[5].q);
    assert_int_equal(mcig_queue_band_depth(&q, 7), 0);

    assert_int_equal(pop_id(&q), 3);
    assert_int_equal(pop_id(&q), 11);

    /* the last of a tenant leaves, another comes back */
    mcig_queue_remove(&q, &r[4].q);
    push_ok(&q, &r[6], 13, 0, b);
    push_ok(&q, &r[7], 4, 0, a);
    assert_int_equal(pop_id(&q), 13);
    assert_int_equal(pop_id(&q), 4);
    assert_int_equal(pop_id(&q), -1);
    assert_int_equal(mcig_queue_depth(&q), 0);
}


/*
 * Random operations checked against what must hold whatever the order
 * inside a band: a pop is always of the highest priority waiting, and each
 * tenant's entries in a band leave by pop in arrival order.
 */
static void
test_random_ops(void **state)
{
#define N  200
    int                  i, k, id, best;
    req_t                r[N];
    int32_t              prio[N];
    uint64_t             tenant[N], now;
    uint32_t             seq[N], last_seq[4][8], counter, depth;
    mcig_rng_t           rng;
    mcig_queue_t         q;
    mcig_queue_entry_t  *e;

    (void) state;

    mcig_queue_init(&q, 150, 60);
    mcig_rng_seed(&rng, 11);
    memset(r, 0, sizeof(r));
    memset(last_seq, 0, sizeof(last_seq));
    counter = 0;
    depth = 0;
    now = 0;

    for (k = 0; k < 20000; k++) {
        i = (int) (mcig_rng_next(&rng) % N);
        now += mcig_rng_next(&rng) % 3;

        switch (mcig_rng_next(&rng) % 5) {

        case 0:
        case 1:
            if (mcig_queue_queued(&r[i].q)) {
                break;
            }

            prio[i] = (int32_t) (mcig_rng_next(&rng) % 4) - 1;
            tenant[i] = mcig_rng_next(&rng) % 8;
            r[i].id = i;
            seq[i] = ++counter;

            if (mcig_queue_push(&q, &r[i].q, prio[i], tenant[i], now,
                                200 + mcig_rng_next(&rng) % 2)
                == MCIG_QUEUE_OK)
            {
                depth++;
            }

            break;

        case 2:
            best = INT32_MIN;

            for (id = 0; id < N; id++) {
                if (mcig_queue_queued(&r[id].q) && prio[id] > best) {
                    best = prio[id];
                }
            }

            e = mcig_queue_pop(&q);

            if (e == NULL) {
                assert_int_equal(depth, 0);
                break;
            }

            id = req_of(e)->id;
            depth--;
            assert_int_equal(prio[id], best);

            /* FIFO per tenant and band, among the entries popped */
            assert_true(seq[id] > last_seq[prio[id] + 1][tenant[id]]);
            last_seq[prio[id] + 1][tenant[id]] = seq[id];
            break;

        case 3:
            if (mcig_queue_queued(&r[i].q)) {
                mcig_queue_remove(&q, &r[i].q);
                depth--;
            }

            break;

        default:
            while ((e = mcig_queue_expire(&q, now)) != NULL) {
                assert_true(e->deadline <= now);
                depth--;
            }

            assert_true(mcig_queue_next_deadline(&q) > now);
            break;
        }

        assert_int_equal(mcig_queue_depth(&q), depth);
        assert_true(depth <= 150);
    }
#undef N
}


static void
test_counts(void **state)
{
    int                  i;
    mcig_queue_counts_t  c;

    (void) state;

    mcig_queue_counts_init(&c);
    assert_false(mcig_queue_higher_waiting(&c, INT32_MIN));

    assert_int_equal(mcig_queue_counts_add(&c, 10, 1), 0);
    assert_int_equal(mcig_queue_counts_add(&c, 0, 2), 0);

    assert_true(mcig_queue_higher_waiting(&c, 0));
    assert_true(mcig_queue_higher_waiting(&c, -1));
    assert_false(mcig_queue_higher_waiting(&c, 10));
    assert_false(mcig_queue_higher_waiting(&c, 11));

    assert_int_equal(mcig_queue_counts_add(&c, 10, -1), 0);
    assert_false(mcig_queue_higher_waiting(&c, 0));
    assert_true(mcig_queue_higher_waiting(&c, -1));

    /* never below zero; taking from an unknown band changes nothing */
    assert_int_equal(mcig_queue_counts_add(&c, 0, -5), 0);
    assert_int_equal(mcig_queue_counts_add(&c, 77, -1), 0);
    assert_false(mcig_queue_higher_waiting(&c, -1000));

    /* bands at zero are reused; all slots taken refuses */
    for (i = 0; i < MCIG_QUEUE_BANDS_MAX; i++) {
        assert_int_equal(mcig_queue_counts_add(&c, 100 + i, 1), 0);
    }

    assert_int_equal(c.nbands, MCIG_QUEUE_BANDS_MAX);
    assert_int_equal(mcig_queue_counts_add(&c, 500, 1), -1);
    assert_int_equal(mcig_queue_counts_add(&c, 105, 1), 0);
    assert_int_equal(mcig_queue_counts_add(&c, 100, -1), 0);
    assert_int_equal(mcig_queue_counts_add(&c, 500, 1), 0);
    assert_true(mcig_queue_higher_waiting(&c, 499));
    assert_false(mcig_queue_higher_waiting(&c, 500));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bands_strict),
        cmocka_unit_test(test_fifo_and_round_robin),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_random_ops),
        cmocka_unit_test(test_counts),
    };

    return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
