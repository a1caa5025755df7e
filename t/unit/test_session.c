/*
 * Unit tests of session affinity's rendezvous hashing: deterministic,
 * even, stable when members leave or join, keyed by address rather than
 * by place, and the load guard.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "mcig_session.h"


#define SESSIONS  10000
#define MEMBERS   9


/* members' keys from their addresses, as the pool computes them */
static uint64_t  keys[MEMBERS];


static int
setup(void **state)
{
    int   i, n;
    char  addr[32];

    (void) state;

    for (i = 0; i < MEMBERS; i++) {
        n = snprintf(addr, sizeof(addr), "10.0.0.%d:8000", i + 1);
        keys[i] = mcig_session_hash(addr, (size_t) n);
    }

    return 0;
}


static uint64_t
session(int i)
{
    int   n;
    char  value[32];

    n = snprintf(value, sizeof(value), "session-%d", i);

    return mcig_session_hash(value, (size_t) n);
}


/*
 * The session's member among members[0..n) (indexes into keys), offered
 * in that order; returns the index into keys.
 */
static int
owner(uint64_t hash, const int *members, int n)
{
    int             i, best;
    mcig_session_t  s;

    mcig_session_start(&s, hash);

    for (i = 0; i < n; i++) {
        mcig_session_offer(&s, i, keys[members[i]], 0);
    }

    best = mcig_session_pick(&s);
    assert_true(best >= 0 && best < n);

    return members[best];
}


static const int  eight[] = { 0, 1, 2, 3, 4, 5, 6, 7 };


static void
test_deterministic(void **state)
{
    int  i, reversed[8];

    (void) state;

    for (i = 0; i < 8; i++) {
        reversed[i] = 7 - i;
    }

    /* the same value, the same hash; another value, another one */
    assert_true(mcig_session_hash("abc", 3) == mcig_session_hash("abc", 3));
    assert_true(mcig_session_hash("abc", 3) != mcig_session_hash("abd", 3));
    assert_true(mcig_session_hash("abc", 3) != mcig_session_hash("abc", 2));

    /* the same member whatever the order the members are offered in */
    for (i = 0; i < 1000; i++) {
        assert_int_equal(owner(session(i), eight, 8),
                         owner(session(i), reversed, 8));
    }

    /* weights depend on both the session and the member */
    assert_true(mcig_session_weight(session(1), keys[0])
                != mcig_session_weight(session(2), keys[0]));
    assert_true(mcig_session_weight(session(1), keys[0])
                != mcig_session_weight(session(1), keys[1]));
}


static void
test_even_spread(void **state)
{
    int  i, count[8];

    (void) state;

    memset(count, 0, sizeof(count));

    for (i = 0; i < SESSIONS; i++) {
        count[owner(session(i), eight, 8)]++;
    }

    /* 1250 each; the binomial's deviation is 33, so 15 % is over 5 of it */
    for (i = 0; i < 8; i++) {
        if (count[i] < 1063 || count[i] > 1437) {
            fail_msg("member %d has %d of %d sessions", i, count[i],
                     SESSIONS);
        }
    }
}


static void
test_member_leaves(void **state)
{
    int  i, before, after, moved, to[8];

    static const int  seven[] = { 0, 1, 2, 4, 5, 6, 7 };   /* 3 left */

    (void) state;

    moved = 0;
    memset(to, 0, sizeof(to));

    for (i = 0; i < SESSIONS; i++) {
        before = owner(session(i), eight, 8);
        after = owner(session(i), seven, 7);

        if (before != 3) {
            /* the others' sessions stay where they are */
            assert_int_equal(after, before);
            continue;
        }

        moved++;
        to[after]++;
    }

    assert_in_range(moved, 1063, 1437);

    /* the leaver's sessions spread over the rest: 179 each */
    for (i = 0; i < 8; i++) {
        if (i != 3 && (to[i] < 100 || to[i] > 260)) {
            fail_msg("member %d took %d of the %d moved sessions", i, to[i],
                     moved);
        }
    }
}


static void
test_member_joins(void **state)
{
    int  i, before, after, moved;

    /* the new member first: its place in the pool does not matter */
    static const int  nine[] = { 8, 0, 1, 2, 3, 4, 5, 6, 7 };

    (void) state;

    moved = 0;

    for (i = 0; i < SESSIONS; i++) {
        before = owner(session(i), eight, 8);
        after = owner(session(i), nine, 9);

        if (after != before) {
            /* a session moves only to the new member */
            assert_int_equal(after, 8);
            moved++;
        }
    }

    /* about 1 / 9 of them: 1111 */
    assert_in_range(moved, 800, 1400);
}


static void
test_load_guard(void **state)
{
    int             i, best;
    mcig_session_t  s;

    (void) state;

    /* none offered: the normal pick */
    mcig_session_start(&s, session(1));
    assert_int_equal(mcig_session_pick(&s), -1);

    best = owner(session(1), eight, 8);

    /* the session's member is full: the normal pick, whoever has room */
    mcig_session_start(&s, session(1));

    for (i = 0; i < 8; i++) {
        mcig_session_offer(&s, i, keys[i], i == best);
    }

    assert_int_equal(s.best, best);
    assert_int_equal(mcig_session_pick(&s), -1);

    /* another member full: the session's member all the same */
    mcig_session_start(&s, session(1));

    for (i = 0; i < 8; i++) {
        mcig_session_offer(&s, i, keys[i], i != best);
    }

    assert_int_equal(mcig_session_pick(&s), best);
}


static void
test_same_address_twice(void **state)
{
    mcig_session_t  s;

    (void) state;

    /* equal weights: the first offered, so that every worker agrees */
    mcig_session_start(&s, session(7));
    mcig_session_offer(&s, 4, keys[2], 0);
    mcig_session_offer(&s, 5, keys[2], 0);
    assert_int_equal(mcig_session_pick(&s), 4);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_even_spread),
        cmocka_unit_test(test_member_leaves),
        cmocka_unit_test(test_member_joins),
        cmocka_unit_test(test_load_guard),
        cmocka_unit_test(test_same_address_twice),
    };

    return cmocka_run_group_tests_name("session affinity", tests, setup,
                                       NULL);
}
