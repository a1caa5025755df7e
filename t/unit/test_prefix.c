/*
 * Unit tests of prefix hashing and of the prefix-cache affinity index.
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
#include "mcig_prefix.h"


#define NBLOCKS  MCIG_PREFIX_MAX_BLOCKS


/* hashes text fed in pieces of at most step bytes (0: all at once) */
static uint32_t
hash_text(const char *text, size_t len, size_t step, uint32_t block_size,
    uint32_t max_blocks, uint64_t *out)
{
    size_t                off, n;
    mcig_prefix_hasher_t  h;

    mcig_prefix_hasher_init(&h, block_size, max_blocks, out);

    for (off = 0; off < len; off += n) {
        n = (step == 0 || len - off < step) ? len - off : step;
        mcig_prefix_hasher_feed(&h, (const uint8_t *) text + off, n);
    }

    return h.nblocks;
}


static char *
make_text(size_t len, unsigned seed)
{
    size_t   i;
    char    *t = malloc(len + 1);

    for (i = 0; i < len; i++) {
        t[i] = (char) ('a' + (i * 7 + seed * 13 + i / 5) % 26);
    }

    t[len] = '\0';
    return t;
}


static void
test_blocks_and_chunking(void **state)
{
    char      *text;
    size_t     step;
    uint32_t   n;
    uint64_t   whole[NBLOCKS], part[NBLOCKS];

    (void) state;

    text = make_text(1000, 1);

    /* 1000 bytes: 15 blocks of 64, the partial 16th is not hashed */
    n = hash_text(text, 1000, 0, 64, NBLOCKS, whole);
    assert_int_equal(n, 15);
    assert_int_equal(hash_text(text, 63, 0, 64, NBLOCKS, part), 0);
    assert_int_equal(hash_text(text, 64, 0, 64, NBLOCKS, part), 1);
    assert_true(part[0] == whole[0]);

    for (step = 1; step <= 130; step++) {
        memset(part, 0, sizeof(part));
        assert_int_equal(hash_text(text, 1000, step, 64, NBLOCKS, part), n);
        assert_memory_equal(part, whole, n * sizeof(uint64_t));
    }

    free(text);
}


static void
test_chain_covers_the_prefix(void **state)
{
    char      *a, *b;
    uint32_t   i, na, nb;
    uint64_t   ha[NBLOCKS], hb[NBLOCKS];

    (void) state;

    a = make_text(2048, 1);
    b = strdup(a);

    /* b differs from a in block 10 only */
    b[10 * 64 + 5] ^= 1;

    na = hash_text(a, 2048, 0, 64, NBLOCKS, ha);
    nb = hash_text(b, 2048, 0, 64, NBLOCKS, hb);
    assert_int_equal(na, 32);
    assert_int_equal(nb, 32);

    for (i = 0; i < 10; i++) {
        assert_true(ha[i] == hb[i]);
    }

    /* every block after the difference differs, equal bytes or not */
    for (i = 10; i < 32; i++) {
        assert_true(ha[i] != hb[i]);
    }

    /* the same block at another position hashes differently */
    memcpy(b, a + 64, 64);
    memcpy(b + 64, a + 64, 64);
    hash_text(b, 128, 0, 64, NBLOCKS, hb);
    assert_true(hb[0] != hb[1]);

    free(a);
    free(b);
}


static void
test_limits_and_block_size(void **state)
{
    char                  *text;
    uint32_t               i;
    uint64_t               h64[NBLOCKS], h128[NBLOCKS], hcap[NBLOCKS];
    mcig_prefix_hasher_t   h;

    (void) state;

    text = make_text(64 * 300, 2);

    /* at most max_blocks, whatever the length */
    assert_int_equal(hash_text(text, 64 * 300, 0, 64, NBLOCKS, h64), 256);
    assert_int_equal(hash_text(text, 64 * 300, 7, 64, 10, hcap), 10);
    assert_memory_equal(hcap, h64, 10 * sizeof(uint64_t));
    assert_int_equal(hash_text(text, 64 * 300, 0, 64, 0, hcap), 0);

    /* 128-byte blocks: other hashes, half as many */
    assert_int_equal(hash_text(text, 64 * 300, 0, 128, NBLOCKS, h128), 150);
    assert_true(h128[0] != h64[0] && h128[0] != h64[1]);

    /* sizes are rounded down to 16 and clamped */
    mcig_prefix_hasher_init(&h, 70, 4, hcap);
    assert_int_equal(h.block_size, 64);
    mcig_prefix_hasher_init(&h, 1, 4, hcap);
    assert_int_equal(h.block_size, MCIG_PREFIX_BLOCK_MIN);
    mcig_prefix_hasher_init(&h, 1 << 20, 4, hcap);
    assert_int_equal(h.block_size, MCIG_PREFIX_BLOCK_MAX);
    mcig_prefix_hasher_init(&h, 64, 4, NULL);
    assert_int_equal(h.max_blocks, 0);

    /* reset forgets what was fed */
    mcig_prefix_hasher_init(&h, 64, NBLOCKS, hcap);
    mcig_prefix_hasher_feed(&h, (const uint8_t *) "xyz", 3);
    mcig_prefix_hasher_reset(&h);
    mcig_prefix_hasher_feed(&h, (const uint8_t *) text, 64 * 3);
    assert_int_equal(h.nblocks, 3);

    for (i = 0; i < 3; i++) {
        assert_true(hcap[i] == h64[i]);
    }

    free(text);
}


static void
test_seeds(void **state)
{
    char                  *text;
    uint32_t               i, j;
    uint64_t               a[8], b[8], c[8], s1, s2, s3;
    mcig_prefix_hasher_t   h;

    (void) state;

    text = make_text(512, 3);
    s1 = mcig_prefix_seed((const uint8_t *) "llama", 5, 0);
    s2 = mcig_prefix_seed((const uint8_t *) "gemma", 5, 0);
    s3 = mcig_prefix_seed((const uint8_t *) "llama", 5,
                          mcig_prefix_salt_feed(MCIG_PREFIX_SALT_INIT,
                                                (const uint8_t *) "s", 1));
    assert_true(s1 != s2 && s1 != s3 && s2 != s3);

    hash_text(text, 512, 0, 64, 8, a);
    hash_text(text, 512, 0, 64, 8, b);
    memcpy(c, a, sizeof(c));

    mcig_prefix_hasher_init(&h, 64, 8, a);
    mcig_prefix_hasher_feed(&h, (const uint8_t *) text, 512);
    assert_int_equal(mcig_prefix_hasher_seed(&h, s1), 8);

    mcig_prefix_hasher_init(&h, 64, 8, b);
    mcig_prefix_hasher_feed(&h, (const uint8_t *) text, 512);
    mcig_prefix_hasher_seed(&h, s2);

    /* two models never share a block */
    for (i = 0; i < 8; i++) {
        for (j = 0; j < 8; j++) {
            assert_true(a[i] != b[j]);
        }
    }

    /* seeding again replaces the seed: b is now seeded with s1 */
    mcig_prefix_hasher_seed(&h, s1);
    assert_memory_equal(a, b, sizeof(a));
    mcig_prefix_hasher_seed(&h, s1);
    assert_memory_equal(a, b, sizeof(a));

    /* and the unseeded chain is recovered exactly */
    mcig_prefix_hasher_seed(&h, s2);
    mcig_prefix_hasher_seed(&h, 0);
    mcig_prefix_hasher_seed(&h, s1);
    assert_memory_equal(a, b, sizeof(a));
    assert_true(c[0] != a[0]);

    /* the general hash sees every byte and the length */
    assert_true(mcig_hash64("abc", 3, 0) != mcig_hash64("abd", 3, 0));
    assert_true(mcig_hash64("abc", 3, 0) != mcig_hash64("abc", 3, 1));
    assert_true(mcig_hash64("a\0", 2, 0) != mcig_hash64("a", 1, 0));
    assert_true(mcig_hash64(text, 100, 0) == mcig_hash64(text, 100, 0));
    assert_true(mcig_hash64(text, 100, 0) != mcig_hash64(text, 99, 0));

    free(text);
}


/* --- index --------------------------------------------------------------- */

static mcig_prefix_index_t *
index_new(uint32_t members, uint32_t entries)
{
    void                 *mem;
    size_t                size;
    mcig_prefix_index_t  *idx;

    size = mcig_prefix_index_size(members, entries);
    assert_true(size > 0);

    /* dirty memory: init must not rely on zeroes */
    mem = malloc(size);
    memset(mem, 0xa5, size);

    idx = mcig_prefix_index_init(mem, size, members, entries);
    assert_non_null(idx);
    assert_int_equal(mcig_prefix_index_check(idx), 0);

    return idx;
}


/* a request: n chained-looking hashes, the first `shared` from base */
static void
request(uint64_t *out, uint32_t n, uint64_t base, uint32_t shared,
    uint64_t own)
{
    uint32_t  i;

    for (i = 0; i < n; i++) {
        out[i] = mcig_hash64(&i, sizeof(i), (i < shared) ? base : own);
    }
}


static void
test_index_bounds(void **state)
{
    void     *mem;
    size_t    size;

    (void) state;

    assert_int_equal(mcig_prefix_index_size(0, 10), 0);
    assert_int_equal(mcig_prefix_index_size(MCIG_PREFIX_MEMBERS_MAX + 1, 10),
                     0);
    assert_int_equal(mcig_prefix_index_size(4, 0), 0);
    assert_true(mcig_prefix_index_size(64, MCIG_PREFIX_ENTRIES) > 0);

    /* memory bounded by members x entries, about 40 bytes each */
    size = mcig_prefix_index_size(64, 1000);
    assert_true(size < 64 * 1000 * 48);
    assert_true(mcig_prefix_index_size(128, 1000) > size);

    mem = malloc(size + 8);
    assert_null(mcig_prefix_index_init(mem, size - 1, 64, 1000));
    assert_null(mcig_prefix_index_init((char *) mem + 4, size, 64, 1000));
    assert_null(mcig_prefix_index_init(mem, size, 0, 1000));
    assert_non_null(mcig_prefix_index_init(mem, size, 64, 1000));
    assert_int_equal(mcig_prefix_index_members(mem), 64);
    assert_int_equal(mcig_prefix_index_entries(mem), 1000);
    free(mem);
}


static void
test_match_and_credit(void **state)
{
    uint32_t              counts[8];
    uint64_t              r1[20], r2[20], r3[20];
    mcig_prefix_index_t  *idx;

    (void) state;

    idx = index_new(8, 100);

    request(r1, 20, 1, 20, 1);
    request(r2, 20, 1, 12, 2);          /* shares 12 blocks with r1 */
    request(r3, 20, 3, 20, 3);

    assert_int_equal(mcig_prefix_match(idx, r1, 20, 2), 0);
    assert_int_equal(mcig_prefix_match_all(idx, r1, 20, counts), 0);

    mcig_prefix_credit(idx, 2, r1, 20);
    assert_int_equal(mcig_prefix_index_check(idx), 0);
    assert_int_equal(mcig_prefix_held(idx, 2), 20);
    assert_int_equal(mcig_prefix_held(idx, 3), 0);

    assert_int_equal(mcig_prefix_match(idx, r1, 20, 2), 20);
    assert_int_equal(mcig_prefix_match(idx, r1, 7, 2), 7);
    assert_int_equal(mcig_prefix_match(idx, r2, 20, 2), 12);
    assert_int_equal(mcig_prefix_match(idx, r3, 20, 2), 0);
    assert_int_equal(mcig_prefix_match(idx, r1, 20, 1), 0);
    assert_int_equal(mcig_prefix_match(idx, r1, 20, 99), 0);

    /* the longest run of leading blocks: a hole ends it */
    mcig_prefix_credit(idx, 5, r1 + 1, 19);
    assert_int_equal(mcig_prefix_match(idx, r1, 20, 5), 0);
    assert_int_equal(mcig_prefix_match(idx, r1 + 1, 19, 5), 19);

    mcig_prefix_credit(idx, 6, r2, 20);
    assert_int_equal(mcig_prefix_match_all(idx, r1, 20, counts), 20);
    assert_int_equal(counts[2], 20);
    assert_int_equal(counts[5], 0);
    assert_int_equal(counts[6], 12);
    assert_int_equal(counts[0], 0);
    assert_int_equal(counts[7], 0);

    assert_int_equal(mcig_prefix_match_all(idx, r2, 20, counts), 20);
    assert_int_equal(counts[2], 12);
    assert_int_equal(counts[6], 20);

    /* credit again: nothing new is held */
    mcig_prefix_credit(idx, 2, r1, 20);
    assert_int_equal(mcig_prefix_held(idx, 2), 20);
    assert_int_equal(mcig_prefix_index_check(idx), 0);

    /* a hash of 0 is a hash like another */
    r3[0] = 0;
    mcig_prefix_credit(idx, 0, r3, 3);
    assert_int_equal(mcig_prefix_match(idx, r3, 3, 0), 3);
    assert_int_equal(mcig_prefix_index_check(idx), 0);

    free(idx);
}


static void
test_batch_equals_single(void **state)
{
    uint32_t              m, k, i, counts[100], best, want;
    uint64_t              req[40];
    mcig_rng_t            rng;
    mcig_prefix_index_t  *idx;

    (void) state;

    /* 100 members: member sets of two words */
    idx = index_new(100, 64);
    mcig_rng_seed(&rng, 7);

    for (k = 0; k < 400; k++) {
        m = (uint32_t) (mcig_rng_next(&rng) % 100);
        i = (uint32_t) (mcig_rng_next(&rng) % 40);
        request(req, 40, 1 + mcig_rng_next(&rng) % 3, i,
                mcig_rng_next(&rng));
        mcig_prefix_credit(idx, m, req, 1 + (uint32_t) (mcig_rng_next(&rng)
                                                         % 40));
    }

    assert_int_equal(mcig_prefix_index_check(idx), 0);

    for (k = 1; k <= 3; k++) {
        request(req, 40, k, 40, k);
        best = mcig_prefix_match_all(idx, req, 40, counts);
        want = 0;

        for (m = 0; m < 100; m++) {
            assert_int_equal(counts[m], mcig_prefix_match(idx, req, 40, m));

            if (counts[m] > want) {
                want = counts[m];
            }
        }

        assert_int_equal(best, want);
        assert_true(best > 0);
    }

    free(idx);
}


static void
test_eviction(void **state)
{
    uint32_t              m;
    uint64_t              a[4], b[4], x[1], y[3], big[16];
    mcig_prefix_index_t  *idx;

    (void) state;

    idx = index_new(3, 8);

    request(a, 4, 10, 4, 10);
    request(b, 4, 11, 4, 11);
    request(x, 1, 12, 1, 12);
    request(y, 3, 13, 3, 13);

    mcig_prefix_credit(idx, 0, a, 4);
    mcig_prefix_credit(idx, 0, b, 4);
    assert_int_equal(mcig_prefix_held(idx, 0), 8);

    /* full: one more block pushes the oldest out */
    mcig_prefix_credit(idx, 0, x, 1);
    assert_int_equal(mcig_prefix_held(idx, 0), 8);
    assert_int_equal(mcig_prefix_match(idx, a, 4, 0), 0);
    assert_int_equal(mcig_prefix_match(idx, a + 1, 3, 0), 3);
    assert_int_equal(mcig_prefix_match(idx, x, 1, 0), 1);

    /* b is used again: the rest of a goes before it */
    mcig_prefix_credit(idx, 0, b, 4);
    mcig_prefix_credit(idx, 0, y, 3);
    assert_int_equal(mcig_prefix_held(idx, 0), 8);
    assert_int_equal(mcig_prefix_match(idx, a + 1, 3, 0), 0);
    assert_int_equal(mcig_prefix_match(idx, b, 4, 0), 4);
    assert_int_equal(mcig_prefix_match(idx, y, 3, 0), 3);
    assert_int_equal(mcig_prefix_index_check(idx), 0);

    /* another member holding the same blocks keeps them */
    mcig_prefix_credit(idx, 1, b, 4);
    request(big, 16, 14, 16, 14);
    mcig_prefix_credit(idx, 0, big, 16);
    assert_int_equal(mcig_prefix_match(idx, b, 4, 0), 0);
    assert_int_equal(mcig_prefix_match(idx, b, 4, 1), 4);
    assert_int_equal(mcig_prefix_match(idx, big + 8, 8, 0), 8);
    assert_int_equal(mcig_prefix_index_check(idx), 0);

    /* forget: nothing left of member 0, member 1 intact */
    mcig_prefix_forget(idx, 0);
    assert_int_equal(mcig_prefix_held(idx, 0), 0);
    assert_int_equal(mcig_prefix_match(idx, big + 8, 8, 0), 0);
    assert_int_equal(mcig_prefix_match(idx, b, 4, 1), 4);
    assert_int_equal(mcig_prefix_index_check(idx), 0);

    for (m = 0; m < 3; m++) {
        mcig_prefix_forget(idx, m);
    }

    assert_int_equal(mcig_prefix_index_check(idx), 0);
    mcig_prefix_credit(idx, 2, a, 4);
    assert_int_equal(mcig_prefix_match(idx, a, 4, 2), 4);

    free(idx);
}


static void
test_bounds_under_churn(void **state)
{
    uint32_t              k, m, n, e;
    uint64_t              req[64];
    mcig_rng_t            rng;
    mcig_prefix_index_t  *idx;

    (void) state;

    e = 90;
    idx = index_new(5, e);
    mcig_rng_seed(&rng, 3);

    for (k = 0; k < 3000; k++) {
        m = (uint32_t) (mcig_rng_next(&rng) % 5);
        n = 1 + (uint32_t) (mcig_rng_next(&rng) % 10);

        /* a few prompts share prefixes, most are new */
        request(req, n, mcig_rng_next(&rng) % 8,
                (uint32_t) (mcig_rng_next(&rng) % (n + 1)),
                mcig_rng_next(&rng));
        mcig_prefix_credit(idx, m, req, n);

        /* what was just sent is held, as long as it is a few blocks */
        assert_int_equal(mcig_prefix_match(idx, req, n, m), n);
        assert_true(mcig_prefix_held(idx, m) <= e);

        if (k % 97 == 0) {
            assert_int_equal(mcig_prefix_index_check(idx), 0);
        }

        if (k % 500 == 499) {
            mcig_prefix_forget(idx, m);
        }
    }

    for (m = 0; m < 5; m++) {
        assert_true(mcig_prefix_held(idx, m) <= e);
    }

    assert_int_equal(mcig_prefix_index_check(idx), 0);
    free(idx);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks_and_chunking),
        cmocka_unit_test(test_chain_covers_the_prefix),
        cmocka_unit_test(test_limits_and_block_size),
        cmocka_unit_test(test_seeds),
        cmocka_unit_test(test_index_bounds),
        cmocka_unit_test(test_match_and_credit),
        cmocka_unit_test(test_batch_equals_single),
        cmocka_unit_test(test_eviction),
        cmocka_unit_test(test_bounds_under_churn),
    };

    return cmocka_run_group_tests_name("prefix", tests, NULL, NULL);
}
