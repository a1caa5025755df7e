/*
 * Copyright (C) ngx_mcig_module authors
 *
 * libFuzzer target of the prefix index and block hasher (mcig_prefix).
 *
 * Input: two bytes choosing the index's members (1..70, so that member
 * sets span two words) and ring size (1..40), then operations, one byte of
 * opcode and a few of arguments each: credit a member with a request,
 * match a request for one member and for all, forget a member, hash bytes
 * of the input whole and in pieces.  Requests are built from a few prompt
 * families sharing leading blocks, or taken raw from the input (0, 1 and
 * repeats included).  After every operation what must hold is checked:
 * batch and single matches agree, a member holds at most its ring, blocks
 * just credited are held, and the index's own invariants.
 *
 *     util/fuzz.sh prefix
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcig_prefix.h"


#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_prefix: %s:%d: check failed: %s\n",       \
                    __FILE__, __LINE__, #cond);                             \
            abort();                                                        \
        }                                                                   \
    } while (0)


#define REQ_MAX  48


typedef struct {
    const uint8_t  *p;
    size_t          left;
} input_t;


static uint8_t
next_byte(input_t *in)
{
    if (in->left == 0) {
        return 0;
    }

    in->left--;
    return *in->p++;
}


/* a request of up to REQ_MAX blocks; returns its length */
static uint32_t
make_request(input_t *in, uint64_t *req)
{
    uint8_t   kind, n, shared, family, own, b;
    uint32_t  i;

    kind = next_byte(in);
    n = (uint8_t) (next_byte(in) % REQ_MAX);

    if (kind & 1) {
        /* raw hashes: small values, so that they repeat and hit 0 and 1 */
        for (i = 0; i < n; i++) {
            b = next_byte(in);
            req[i] = (b < 8) ? b : mcig_hash64(&b, 1, 0);
        }

        return n;
    }

    /* a prompt family's leading blocks, then the request's own */
    family = (uint8_t) ((kind >> 1) % 6);
    shared = next_byte(in);
    own = next_byte(in);

    for (i = 0; i < n; i++) {
        req[i] = mcig_hash64(&i, sizeof(i),
                             (i < shared) ? family : 0x100 + own);
    }

    return n;
}


static int
distinct(const uint64_t *req, uint32_t n)
{
    uint32_t  i, j;

    for (i = 0; i < n; i++) {
        for (j = 0; j < i; j++) {
            /* 0 and 1 are one key in the index */
            if ((req[i] ? req[i] : 1) == (req[j] ? req[j] : 1)) {
                return 0;
            }
        }
    }

    return 1;
}


static void
check_matches(mcig_prefix_index_t *idx, const uint64_t *req, uint32_t n,
    uint32_t members)
{
    uint32_t  m, best, want, counts[MCIG_PREFIX_MEMBERS_MAX];

    best = mcig_prefix_match_all(idx, req, n, counts);
    want = 0;

    for (m = 0; m < members; m++) {
        CHECK(counts[m] == mcig_prefix_match(idx, req, n, m));
        CHECK(counts[m] <= n);

        if (counts[m] > want) {
            want = counts[m];
        }
    }

    CHECK(best == want);
}


static void
check_hasher(input_t *in)
{
    size_t                 len, off, step;
    uint32_t               bsize;
    uint64_t               whole[MCIG_PREFIX_MAX_BLOCKS];
    uint64_t               piece[MCIG_PREFIX_MAX_BLOCKS];
    mcig_prefix_hasher_t   hw, hp;

    bsize = 16 * (1 + next_byte(in) % 4);
    step = 1 + next_byte(in) % 40;
    len = next_byte(in);

    if (len > in->left) {
        len = in->left;
    }

    mcig_prefix_hasher_init(&hw, bsize, 8, whole);
    mcig_prefix_hasher_init(&hp, bsize, 8, piece);
    mcig_prefix_hasher_feed(&hw, in->p, len);

    for (off = 0; off < len; off += step) {
        mcig_prefix_hasher_feed(&hp, in->p + off,
                                (len - off < step) ? len - off : step);
    }

    CHECK(hw.nblocks == hp.nblocks);
    CHECK(hw.nblocks == ((len / bsize < 8) ? len / bsize : 8));
    CHECK(memcmp(whole, piece, hw.nblocks * sizeof(uint64_t)) == 0);

    /* reseeding undoes the previous seed exactly */
    mcig_prefix_hasher_seed(&hw, 7);
    mcig_prefix_hasher_seed(&hp, 9);
    mcig_prefix_hasher_seed(&hp, 7);
    CHECK(memcmp(whole, piece, hw.nblocks * sizeof(uint64_t)) == 0);

    in->p += len;
    in->left -= len;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    void                 *mem;
    size_t                msize;
    input_t               in;
    uint32_t              members, entries, m, n, ops;
    uint64_t              req[REQ_MAX];
    mcig_prefix_index_t  *idx;

    if (size < 2) {
        return 0;
    }

    members = 1 + data[0] % 70;
    entries = 1 + data[1] % 40;
    in.p = data + 2;
    in.left = size - 2;

    msize = mcig_prefix_index_size(members, entries);
    CHECK(msize > 0);

    /* dirty memory: init must not rely on zeroes */
    mem = malloc(msize);
    CHECK(mem != NULL);
    memset(mem, 0x5a, msize);

    idx = mcig_prefix_index_init(mem, msize, members, entries);
    CHECK(idx != NULL);
    CHECK(mcig_prefix_index_check(idx) == 0);

    for (ops = 0; in.left > 0 && ops < 2000; ops++) {

        switch (next_byte(&in) % 6) {

        case 0:
        case 1:
            m = next_byte(&in) % (members + 1);   /* one past the end too */
            n = make_request(&in, req);
            mcig_prefix_credit(idx, m, req, n);

            if (m < members) {
                CHECK(mcig_prefix_held(idx, m) <= entries);

                /* a request that fits is held whole once credited */
                if (n <= entries && distinct(req, n)) {
                    CHECK(mcig_prefix_match(idx, req, n, m) == n);
                }
            }

            break;

        case 2:
        case 3:
            n = make_request(&in, req);
            check_matches(idx, req, n, members);
            break;

        case 4:
            m = next_byte(&in) % (members + 1);
            mcig_prefix_forget(idx, m);
            CHECK(mcig_prefix_held(idx, m) == 0);
            break;

        default:
            check_hasher(&in);
            break;
        }

        CHECK(mcig_prefix_index_check(idx) == 0);
    }

    free(mem);

    return 0;
}
