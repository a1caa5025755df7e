/*
 * Cost per request of prefix-aware endpoint scoring, on one core: a 16 KB
 * chat body scanned with prompt hashing on (64-byte blocks, at most 256),
 * its blocks matched against the prefix index of a pool (every member at
 * once), and the pool's members scored.  Then, apart, the credit of the
 * chosen member (done after the pick, under the zone's mutex), and the
 * ranking of the members for a request's session (mcig_session_affinity:
 * one weight a member, in the pass that offers them).
 *
 * The index is filled first as traffic would fill it: requests of a few
 * system prompts, each sent to a few members, with their own questions.
 * Two cases are timed: a request sharing its system prompt with a few
 * members (the usual case), and a request every member holds whole (the
 * most lookups a match can take).
 *
 *   bench_score [members] [entries_per_member] [seconds]
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcig_body.h"
#include "mcig_pick.h"
#include "mcig_prefix.h"
#include "mcig_score.h"
#include "mcig_session.h"


#define BODIES     64
#define FAMILIES   8
#define SYS_LEN    4096
#define BODY_LEN   (16 * 1024)


typedef struct {
    char       *body;
    size_t      len;
} body_t;


static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


/* prose with an escape now and then, as a chat client sends it */
static size_t
prose(char *p, size_t len, unsigned seed)
{
    static const char  words[] =
        "the best pizza in the world is a matter of taste but many say "
        "that Neapolitan pizza with San Marzano tomatoes wins \\\"hands "
        "down\\\" over any other \\n";
    size_t             i, k;

    k = (seed * 7919) % (sizeof(words) - 40);

    for (i = 0; i < len; i++) {
        p[i] = words[k];
        k = (k + 1 == sizeof(words) - 1) ? 0 : k + 1;

        /* a per-seed mark every 61 bytes keeps bodies apart */
        if (i % 61 == 60 && p[i] >= 'a' && p[i] <= 'z' && p[i - 1] != '\\') {
            p[i] = (char) ('A' + ((seed * 2654435761u + (unsigned) i
                                   * 40503u) >> 16) % 26);
        }
    }

    if (p[len - 1] == '\\') {
        p[len - 1] = '.';
    }

    return len;
}


/* a 16 KB chat body: a family's system prompt, then its own question */
static void
make_body(body_t *b, unsigned family, unsigned seed)
{
    size_t  n;
    char   *p;

    p = malloc(BODY_LEN + 512);
    n = (size_t) sprintf(p, "{\"model\":\"food-review-1\",\"messages\":["
                            "{\"role\":\"system\",\"content\":\"");
    n += prose(p + n, SYS_LEN, family);
    n += (size_t) sprintf(p + n, "\"},{\"role\":\"user\",\"content\":\"");
    n += prose(p + n, BODY_LEN - n - 64, 1000 + seed);
    n += (size_t) sprintf(p + n, "\"}],\"max_tokens\":100,"
                                 "\"stream\":true}");

    b->body = p;
    b->len = n;
}


static uint32_t
hash_body(const body_t *b, mcig_body_scan_t *s, mcig_prefix_hasher_t *h,
    uint64_t *out)
{
    mcig_prefix_hasher_init(h, MCIG_PREFIX_BLOCK_SIZE,
                            MCIG_PREFIX_MAX_BLOCKS, out);
    mcig_body_scan_init(s);
    mcig_body_scan_set_hasher(s, h);
    mcig_body_scan_feed(s, (const uint8_t *) b->body, b->len);

    if (mcig_body_scan_finish(s) != MCIG_BODY_OK) {
        fprintf(stderr, "bench_score: body refused\n");
        exit(1);
    }

    return h->nblocks;
}


static void
candidates(mcig_score_cand_t *c, uint32_t members, const uint32_t *counts,
    unsigned iter)
{
    uint32_t  m;

    for (m = 0; m < members; m++) {
        c[m].kv_ppm = 200000 + (m * 7919 + iter) % 600000;
        c[m].waiting = (m + iter) % 6;
        c[m].in_flight = (m * 3 + iter) % 40;
        c[m].capacity = 256;
        c[m].prefix_blocks = counts[m];
        c[m].fresh = (m % 16) != 0;
        c[m].full = (m % 13) == 0;
        c[m].lora = MCIG_LORA_NONE;
    }
}


/* one request: hash, match, score; returns the member picked */
static int
request(const body_t *b, mcig_prefix_index_t *idx, uint32_t members,
    mcig_rng_t *rng, unsigned iter, uint64_t *out, uint32_t *nblocks)
{
    uint32_t                     n, counts[MCIG_PREFIX_MEMBERS_MAX];
    mcig_score_cand_t            c[MCIG_PREFIX_MEMBERS_MAX];
    mcig_body_scan_t             s;
    mcig_prefix_hasher_t         h;
    static mcig_score_weights_t  w = MCIG_SCORE_WEIGHTS_DEFAULT;

    n = hash_body(b, &s, &h, out);
    mcig_prefix_match_all(idx, out, n, counts);
    candidates(c, members, counts, iter);
    *nblocks = n;

    return mcig_score_pick(&w, c, members, n, rng, NULL);
}


static double
run(const char *name, body_t *bodies, int nb, mcig_prefix_index_t *idx,
    uint32_t members, double secs, mcig_rng_t *rng)
{
    int            best;
    double         t0, t1, us;
    uint32_t       n;
    uint64_t       out[MCIG_PREFIX_MAX_BLOCKS];
    unsigned long  iters, sink, matched;

    iters = 0;
    sink = 0;
    matched = 0;
    t0 = now();

    do {
        best = request(&bodies[iters % nb], idx, members, rng,
                       (unsigned) iters, out, &n);
        sink += (unsigned long) best + n;

        /* how much affinity the picks got, now and then */
        if ((iters & 255) == 0) {
            matched += mcig_prefix_match(idx, out, n, (uint32_t) best);
        }

        iters++;
        t1 = now();
    } while (t1 - t0 < secs);

    us = (t1 - t0) / iters * 1e6;

    printf("%-12s members=%u requests=%lu us_per_request=%.2f "
           "(sink %lu, matched %lu)\n", name, members, iters, us, sink,
           matched);

    return us;
}


int
main(int argc, char **argv)
{
    int                   i;
    void                 *mem;
    size_t                size;
    double                secs, t0, t1, us_hash, us_match, us_score,
                          us_credit;
    uint32_t              members, entries, m, n, counts[256];
    uint64_t              k, keys[MCIG_PREFIX_MEMBERS_MAX];
    uint64_t              out[MCIG_PREFIX_MAX_BLOCKS];
    body_t                bodies[BODIES], same;
    mcig_rng_t            rng;
    unsigned long         iters, sink;
    mcig_body_scan_t      s;
    mcig_score_cand_t     c[MCIG_PREFIX_MEMBERS_MAX];
    mcig_prefix_hasher_t  h;
    mcig_prefix_index_t  *idx;
    mcig_score_weights_t  w = MCIG_SCORE_WEIGHTS_DEFAULT;

    members = (argc > 1) ? (uint32_t) atoi(argv[1]) : 64;
    entries = (argc > 2) ? (uint32_t) atoi(argv[2]) : MCIG_PREFIX_ENTRIES;
    secs = (argc > 3) ? atof(argv[3]) : 2.0;

    if (members == 0 || members > MCIG_PREFIX_MEMBERS_MAX) {
        fprintf(stderr, "bench_score: 1..%d members\n",
                MCIG_PREFIX_MEMBERS_MAX);
        return 2;
    }

    size = mcig_prefix_index_size(members, entries);
    mem = (size > 0) ? malloc(size) : NULL;
    idx = mem ? mcig_prefix_index_init(mem, size, members, entries) : NULL;

    if (idx == NULL) {
        fprintf(stderr, "bench_score: no index\n");
        return 1;
    }

    mcig_rng_seed(&rng, 1);

    for (i = 0; i < BODIES; i++) {
        make_body(&bodies[i], (unsigned) i % FAMILIES, (unsigned) i);
    }

    /*
     * Fill the index: each family's requests go to an eighth of the
     * members, enough of them for every member's ring to wrap once.
     */
    t0 = now();
    k = 0;

    for (i = 0; k < (uint64_t) members * entries + members * 256ULL; i++) {
        body_t  b;

        make_body(&b, (unsigned) i % FAMILIES, 100000 + (unsigned) i);
        n = hash_body(&b, &s, &h, out);
        m = ((unsigned) i % FAMILIES
             + FAMILIES * ((unsigned) (i / FAMILIES)
                           % (members / FAMILIES ? members / FAMILIES : 1)))
            % members;
        mcig_prefix_credit(idx, m, out, n);
        k += n;
        free(b.body);
    }

    t1 = now();
    printf("index: members=%u entries=%u bytes=%zu filled with %d requests "
           "in %.1f s\n", members, entries, size, i, t1 - t0);

    if (mcig_prefix_index_check(idx) != 0) {
        fprintf(stderr, "bench_score: index unsound\n");
        return 1;
    }

    /* the usual case: the system prompt is held by an eighth of them */
    run("request", bodies, BODIES, idx, members, secs, &rng);

    /* the parts, apart */
    iters = 0;
    sink = 0;
    t0 = now();

    do {
        sink += hash_body(&bodies[iters % BODIES], &s, &h, out);
        iters++;
        t1 = now();
    } while (t1 - t0 < secs / 2);

    us_hash = (t1 - t0) / iters * 1e6;

    /* match alone: over precomputed hashes of each body */
    {
        static uint64_t  all[BODIES][MCIG_PREFIX_MAX_BLOCKS];
        static uint32_t  nall[BODIES];

        for (i = 0; i < BODIES; i++) {
            nall[i] = hash_body(&bodies[i], &s, &h, all[i]);
        }

        iters = 0;
        t0 = now();

        do {
            sink += mcig_prefix_match_all(idx, all[iters % BODIES],
                                          nall[iters % BODIES], counts);
            iters++;
            t1 = now();
        } while (t1 - t0 < secs / 2);

        us_match = (t1 - t0) / iters * 1e6;

        iters = 0;
        t0 = now();

        do {
            candidates(c, members, counts, (unsigned) iters);
            sink += (unsigned long) mcig_score_pick(&w, c, members, 256, &rng,
                                                    NULL);
            iters++;
            t1 = now();
        } while (t1 - t0 < secs / 2);

        us_score = (t1 - t0) / iters * 1e6;

        /* credit: after the pick, under the mutex; new questions evict */
        iters = 0;
        t0 = now();

        do {
            mcig_prefix_credit(idx, (uint32_t) (iters % members),
                               all[iters % BODIES], nall[iters % BODIES]);
            iters++;
            t1 = now();
        } while (t1 - t0 < secs / 2);

        us_credit = (t1 - t0) / iters * 1e6;

        /* a session's member among all of them, keys made at start-up */
        for (m = 0; m < members; m++) {
            char  addr[32];

            snprintf(addr, sizeof(addr), "10.0.%u.%u:8000", m / 250, m % 250);
            keys[m] = mcig_session_hash(addr, strlen(addr));
        }

        iters = 0;
        t0 = now();

        do {
            mcig_session_t  session;
            char            value[32];

            snprintf(value, sizeof(value), "session-%lu", iters % 4096);
            mcig_session_start(&session,
                               mcig_session_hash(value, strlen(value)));

            for (m = 0; m < members; m++) {
                mcig_session_offer(&session, (int) m, keys[m], 0);
            }

            sink += (unsigned long) mcig_session_pick(&session);
            iters++;
            t1 = now();
        } while (t1 - t0 < secs / 2);

        printf("parts:       hash_16KB_us=%.2f match_all_us=%.2f "
               "score_us=%.2f credit_us=%.2f session_us=%.2f (sink %lu)\n",
               us_hash, us_match, us_score, us_credit,
               (t1 - t0) / iters * 1e6, sink);
    }

    /* the worst case for the match: every member holds all 256 blocks */
    make_body(&same, 0, 7);
    n = hash_body(&same, &s, &h, out);

    for (m = 0; m < members; m++) {
        mcig_prefix_credit(idx, m, out, n);
    }

    run("all-hit", &same, 1, idx, members, secs, &rng);

    for (i = 0; i < BODIES; i++) {
        free(bodies[i].body);
    }

    free(same.body);
    free(mem);

    return 0;
}
