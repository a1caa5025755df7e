/*
 * Copyright (C) ngx_mcig_module authors
 *
 * libFuzzer target of the request body scanner (mcig_body).
 *
 * Input: two control bytes, then the body.  The control bytes choose how
 * the body is cut into chunks, since nginx hands the body filter buffers
 * cut anywhere: the scanner must give the same answer, and the same error
 * offset, whatever the cuts.  The body is scanned in chunks and whole,
 * with prompt hashing on (block size and limit from the control bytes),
 * and whole without hashing: hashing must change no verdict, and give the
 * same blocks whatever the cuts.  The model value's place must hold the
 * model: scanned alone, it gives the same name.
 *
 *     util/fuzz.sh body
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcig_body.h"
#include "mcig_pick.h"
#include "mcig_prefix.h"


#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_body: %s:%d: check failed: %s\n",         \
                    __FILE__, __LINE__, #cond);                             \
            abort();                                                        \
        }                                                                   \
    } while (0)


typedef struct {
    mcig_rng_t  rng;
    uint32_t    mode;
} splitter_t;


/* any fixed sequence will do: it only has to be replayable */
static uint32_t
split_next(splitter_t *sp)
{
    return (uint32_t) (mcig_rng_next(&sp->rng) >> 32);
}


/*
 * The size of the next chunk, 0 included: an empty buffer (a flushed
 * empty chain link) must change nothing.  Small sizes put cuts inside
 * escapes, literals, numbers and the 16-byte skip of plain strings.
 */
static size_t
split_size(splitter_t *sp, size_t left)
{
    size_t    n;
    uint32_t  r = split_next(sp);

    switch (sp->mode) {
    case 0:
        n = 1;
        break;
    case 1:
        n = 1 + r % 3;
        break;
    case 2:
        n = r % 17;
        break;
    case 3:
        n = 15 + r % 3;             /* around the SSE2 block */
        break;
    case 4:
        n = 1 + r % 256;
        break;
    case 5:
        n = (r & 1) ? 1 : 1 + (r >> 1) % 4096;
        break;
    case 6:
        n = r % (left + 1);         /* anywhere, in two or three pieces */
        break;
    default:
        n = r % 64;
        break;
    }

    return (n < left) ? n : left;
}


static mcig_body_rc_e
scan_chunked(mcig_body_scan_t *s, const uint8_t *p, size_t len,
    splitter_t *sp, mcig_prefix_hasher_t *h)
{
    size_t          off, n;
    unsigned        zeros;
    mcig_body_rc_e  rc, err;

    mcig_body_scan_init(s);
    mcig_body_scan_set_hasher(s, h);
    err = MCIG_BODY_AGAIN;
    zeros = 0;

    for (off = 0; off < len; off += n) {
        n = split_size(sp, len - off);

        /* a few empty chunks in a row at most, so that this ends */
        if (n > 0) {
            zeros = 0;

        } else if (++zeros > 3) {
            n = 1;
            zeros = 0;
        }

        rc = mcig_body_scan_feed(s, p + off, n);
        CHECK(rc != MCIG_BODY_OK);

        /* once failed, the scanner answers the same error for ever */
        if (err != MCIG_BODY_AGAIN) {
            CHECK(rc == err);
        }

        err = rc;
    }

    /* the last buffer of a body may be empty */
    rc = mcig_body_scan_feed(s, p + len, 0);
    CHECK(rc == err);

    if (rc == MCIG_BODY_AGAIN) {
        CHECK(s->offset == len);
    }

    return mcig_body_scan_finish(s);
}


static void
check_result(const mcig_body_scan_t *s, mcig_body_rc_e rc, const uint8_t *p,
    size_t len)
{
    size_t  i, j;

    CHECK(rc != MCIG_BODY_AGAIN);
    CHECK(rc <= MCIG_BODY_MODEL_INVALID);
    CHECK(s->model_len <= MCIG_MODEL_MAX);
    CHECK(s->offset <= len);
    CHECK(mcig_body_rc_text(rc) != NULL);

    if (rc != MCIG_BODY_OK) {
        CHECK(s->error == (uint32_t) rc);
        return;
    }

    CHECK(s->error == 0);
    CHECK(s->offset == len);
    CHECK(s->depth == 0);
    CHECK(s->model_len > 0);
    CHECK(s->model[s->model_len] == '\0');
    CHECK(strlen(s->model) == s->model_len);
    CHECK(mcig_utf8_printable((const uint8_t *) s->model, s->model_len));

    /* an accepted body is an object: '{' first and '}' last but blanks */
    for (i = 0; i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r'
                            || p[i] == '\n'); i++)
    {
        /* void */
    }

    for (j = len; j > i && (p[j - 1] == ' ' || p[j - 1] == '\t'
                            || p[j - 1] == '\r' || p[j - 1] == '\n'); j--)
    {
        /* void */
    }

    CHECK(j - i >= 2 && p[i] == '{' && p[j - 1] == '}');

    /* {"model":"m"} is the shortest body accepted */
    CHECK(j - i >= 13);
}


static mcig_body_rc_e
scan_whole(mcig_body_scan_t *s, const uint8_t *p, size_t len,
    mcig_prefix_hasher_t *h)
{
    mcig_body_rc_e  rc;

    mcig_body_scan_init(s);
    mcig_body_scan_set_hasher(s, h);

    rc = mcig_body_scan_feed(s, p, len);
    CHECK(rc != MCIG_BODY_OK);

    if (rc == MCIG_BODY_AGAIN) {
        CHECK(s->offset == len);
    }

    return mcig_body_scan_finish(s);
}


/* the value token, alone in a body, gives the same model name */
static void
check_model_value(const mcig_body_scan_t *s, const uint8_t *p, size_t len)
{
    size_t             n;
    uint8_t           *body;
    mcig_body_scan_t  *alone;

    CHECK(s->model_value_len >= 3);
    CHECK(s->model_value_offset + s->model_value_len <= len);
    CHECK(p[s->model_value_offset] == '"');
    CHECK(p[s->model_value_offset + s->model_value_len - 1] == '"');

    n = (size_t) s->model_value_len;
    body = malloc(n + 10);
    alone = malloc(sizeof(mcig_body_scan_t));
    CHECK(body != NULL && alone != NULL);

    memcpy(body, "{\"model\":", 9);
    memcpy(body + 9, p + s->model_value_offset, n);
    body[9 + n] = '}';

    CHECK(scan_whole(alone, body, n + 10, NULL) == MCIG_BODY_OK);
    CHECK(alone->model_len == s->model_len);
    CHECK(memcmp(alone->model, s->model, s->model_len) == 0);
    CHECK(alone->model_value_offset == 9);
    CHECK(alone->model_value_len == n);

    free(alone);
    free(body);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                 len;
    uint32_t               bsize, max, i;
    splitter_t             sp;
    const uint8_t         *body;
    mcig_body_rc_e         rc_whole, rc_chunked, rc_plain;
    mcig_body_scan_t      *whole, *chunked, *plain;
    mcig_prefix_hasher_t   hw, hc;
    uint64_t               out_w[MCIG_PREFIX_MAX_BLOCKS];
    uint64_t               out_c[MCIG_PREFIX_MAX_BLOCKS];

    if (size < 2) {
        return 0;
    }

    sp.mode = data[0] & 7;
    mcig_rng_seed(&sp.rng, ((uint64_t) data[0] << 8) ^ data[1]);
    body = data + 2;
    len = size - 2;

    /* small blocks and limits, so that short inputs reach them */
    bsize = 16 * (1 + (data[1] & 3));
    max = (data[1] & 0x80) ? MCIG_PREFIX_MAX_BLOCKS : 1 + (data[1] >> 2) % 8;

    /* on the heap, so that ASan sees any write past the model buffer */
    whole = malloc(sizeof(mcig_body_scan_t));
    chunked = malloc(sizeof(mcig_body_scan_t));
    plain = malloc(sizeof(mcig_body_scan_t));
    CHECK(whole != NULL && chunked != NULL && plain != NULL);

    /* a dirty struct: init must not rely on zeroed memory */
    memset(whole, 0xa5, sizeof(mcig_body_scan_t));
    memset(chunked, 0x5a, sizeof(mcig_body_scan_t));
    memset(plain, 0xff, sizeof(mcig_body_scan_t));

    mcig_prefix_hasher_init(&hw, bsize, max, out_w);
    mcig_prefix_hasher_init(&hc, bsize, max, out_c);

    rc_whole = scan_whole(whole, body, len, &hw);
    rc_chunked = scan_chunked(chunked, body, len, &sp, &hc);
    rc_plain = scan_whole(plain, body, len, NULL);

    check_result(whole, rc_whole, body, len);
    check_result(chunked, rc_chunked, body, len);
    check_result(plain, rc_plain, body, len);

    CHECK(rc_whole == rc_chunked);
    CHECK(rc_whole == rc_plain);
    CHECK(whole->offset == chunked->offset);
    CHECK(whole->offset == plain->offset);

    if (rc_whole == MCIG_BODY_OK) {
        CHECK(whole->model_len == chunked->model_len);
        CHECK(memcmp(whole->model, chunked->model, whole->model_len + 1)
              == 0);
        CHECK(whole->model_len == plain->model_len);
        CHECK(memcmp(whole->model, plain->model, whole->model_len + 1)
              == 0);

        CHECK(whole->model_value_offset == chunked->model_value_offset);
        CHECK(whole->model_value_len == chunked->model_value_len);
        CHECK(whole->model_value_offset == plain->model_value_offset);
        CHECK(whole->model_value_len == plain->model_value_len);
        check_model_value(whole, body, len);

        /* the same blocks, whatever the cuts */
        CHECK(hw.nblocks == hc.nblocks);
        CHECK(hw.nblocks <= max);
        CHECK((uint64_t) hw.nblocks * bsize <= len);
        CHECK(hw.seeded && hc.seeded);
        CHECK(whole->salt == chunked->salt);

        for (i = 0; i < hw.nblocks; i++) {
            CHECK(out_w[i] == out_c[i]);
        }
    }

    /* finish is idempotent, seeding included */
    CHECK(mcig_body_scan_finish(whole) == rc_whole);

    if (rc_whole == MCIG_BODY_OK) {
        for (i = 0; i < hw.nblocks; i++) {
            CHECK(out_w[i] == out_c[i]);
        }
    }

    free(whole);
    free(chunked);
    free(plain);

    return 0;
}
