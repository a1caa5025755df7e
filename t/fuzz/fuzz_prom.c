/*
 * Copyright (C) ngx_mcig_module authors
 *
 * libFuzzer target of the Prometheus text parser (mcig_prom).
 *
 * Input: four control bytes, then the page.
 *
 *     byte 0, 1   how the page is cut into chunks (mode, seed), and
 *                 whether the chunked parse has a page cap
 *     byte 2      length of the page prefix parsed as a spec
 *     byte 3      which slice of the page is looked up as a LoRA adapter
 *
 * libcurl hands the write callback chunks cut anywhere: the page is parsed
 * in chunks and whole, and every result of the two compared.  A prefix of
 * the page is also parsed as a spec (mcig_metrics ... metric=), and when it
 * is one, added to the set, so that the fuzzer also chooses label filters.
 *
 *     util/fuzz.sh prom
 */

#define _GNU_SOURCE                 /* memmem() */

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcig_prom.h"
#include "mcig_pick.h"


#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_prom: %s:%d: check failed: %s\n",         \
                    __FILE__, __LINE__, #cond);                             \
            abort();                                                        \
        }                                                                   \
    } while (0)

/* doubles compared bit for bit: NaN and -0 are results too */
#define SAME_DOUBLE(a, b)  (memcmp(&(a), &(b), sizeof(double)) == 0)


typedef struct {
    mcig_rng_t  rng;
    uint32_t    mode;
} splitter_t;


/* specs with label filters, besides vLLM's preset */
static const struct {
    const char       *text;
    mcig_prom_agg_e   agg;
    mcig_prom_role_e  role;
} extra_specs[] = {
    { "vllm:num_requests_waiting{model_name=\"Qwen/Qwen2.5-Coder-1.5B-"
      "Instruct\"}", MCIG_PROM_MAX, MCIG_PROM_ROLE_NONE },
    { " vllm:num_requests_running { engine = \"0\" , model_name=\"m\\\"q\\\\"
      "\\n\", } ", MCIG_PROM_AVG, MCIG_PROM_ROLE_RUNNING },
    { "vllm:kv_cache_usage_perc{engine=\"1\"}", MCIG_PROM_MAX,
      MCIG_PROM_ROLE_KV_USAGE },
    { "foo{a=\"x\",b=\"\",c=\"z\",d=\"w\"}", MCIG_PROM_SUM,
      MCIG_PROM_ROLE_WAITING }
};

#define NEXTRA  (sizeof(extra_specs) / sizeof(extra_specs[0]))


/* any fixed sequence will do: it only has to be replayable */
static uint32_t
split_next(splitter_t *sp)
{
    return (uint32_t) (mcig_rng_next(&sp->rng) >> 32);
}


/* small sizes cut lines anywhere; large ones keep whole lines in place */
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
        n = r % 17;
        break;
    case 2:
        n = 1 + r % 256;
        break;
    case 3:
        n = 1 + r % 16384;
        break;
    case 4:
        n = (r & 1) ? 1 : 1 + (r >> 1) % 5000;
        break;
    case 5:
        n = 4090 + r % 12;          /* around MCIG_PROM_LINE_MAX */
        break;
    case 6:
        n = r % (left + 1);
        break;
    default:
        n = r % 64;
        break;
    }

    return (n < left) ? n : left;
}


static mcig_prom_rc_e
parse_chunked(mcig_prom_t *p, const mcig_prom_set_t *set, const uint8_t *data,
    size_t len, uint64_t page_max, splitter_t *sp)
{
    size_t          off, n;
    unsigned        zeros;
    mcig_prom_rc_e  rc, err;

    mcig_prom_init(p, set, page_max);
    err = MCIG_PROM_AGAIN;
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

        rc = mcig_prom_feed(p, data + off, n);
        CHECK(rc == MCIG_PROM_AGAIN || rc == MCIG_PROM_TOO_LARGE);

        if (err != MCIG_PROM_AGAIN) {
            CHECK(rc == err);
        }

        err = rc;
    }

    return mcig_prom_finish(p);
}


static void
check_list(const mcig_prom_lora_t *lora, const char *list, uint32_t len,
    uint8_t truncated, uint32_t bit)
{
    const char  *s, *e, *end, *comma;

    CHECK(len <= MCIG_PROM_LORA_LIST_MAX);
    CHECK(list[len] == '\0');
    CHECK(truncated <= 1);

    /* every name of the list is found in it */
    for (s = list, end = list + len; /* void */; s = comma + 1) {
        comma = memchr(s, ',', (size_t) (end - s));
        e = comma ? comma : end;

        while (s < e && *s == ' ') {
            s++;
        }

        while (e > s && e[-1] == ' ') {
            e--;
        }

        if (e > s) {
            CHECK(mcig_prom_lora_state(lora, s, (size_t) (e - s)) & bit);
        }

        if (comma == NULL) {
            break;
        }
    }
}


static void
check_page(const mcig_prom_t *p, mcig_prom_rc_e rc)
{
    double                     v;
    uint32_t                   i;
    mcig_prom_status_e         st;
    const mcig_prom_result_t  *r;

    CHECK(rc == MCIG_PROM_OK || rc == MCIG_PROM_TOO_LARGE);
    CHECK(p->offset <= p->page_max);

    if (rc != MCIG_PROM_OK) {
        return;
    }

    for (i = 0; i < p->set->nspecs; i++) {
        r = &p->result[i];
        CHECK(r->nan + r->inf <= r->series);
        CHECK(r->series <= p->samples);

        st = mcig_prom_value(p, i, &v);
        CHECK(st == MCIG_PROM_ABSENT || st == MCIG_PROM_PRESENT
              || st == MCIG_PROM_NOT_FINITE);

        if (st != MCIG_PROM_PRESENT) {
            CHECK(v == 0);
        }

        CHECK(st != MCIG_PROM_ABSENT || r->series == 0);
    }

    CHECK(mcig_prom_value(p, p->set->nspecs, &v) == MCIG_PROM_ABSENT);

    check_list(&p->lora, p->lora.running, p->lora.running_len,
               p->lora.running_truncated, MCIG_PROM_LORA_RUNNING);
    check_list(&p->lora, p->lora.waiting, p->lora.waiting_len,
               p->lora.waiting_truncated, MCIG_PROM_LORA_WAITING);

    CHECK(p->lora.series <= p->samples);
    CHECK(p->cache.series <= p->samples);

    if (p->lora.series == 0) {
        CHECK(p->lora.running_len == 0 && p->lora.waiting_len == 0);
        CHECK(p->lora.max_lora == 0);
    }
}


static void
compare(const mcig_prom_t *a, const mcig_prom_t *b)
{
    double                     va, vb;
    uint32_t                   i, role;
    mcig_prom_status_e         sa, sb;
    const mcig_prom_result_t  *ra, *rb;

    CHECK(a->offset == b->offset);
    CHECK(a->samples == b->samples);
    CHECK(a->malformed == b->malformed);

    for (i = 0; i < a->set->nspecs; i++) {
        ra = &a->result[i];
        rb = &b->result[i];
        CHECK(ra->series == rb->series);
        CHECK(ra->nan == rb->nan);
        CHECK(ra->inf == rb->inf);
        CHECK(SAME_DOUBLE(ra->acc, rb->acc));
        CHECK(SAME_DOUBLE(ra->value, rb->value));
    }

    for (role = MCIG_PROM_ROLE_NONE; role <= MCIG_PROM_ROLE_KV_USAGE; role++) {
        sa = mcig_prom_role_value(a, role, &va);
        sb = mcig_prom_role_value(b, role, &vb);
        CHECK(sa == sb);
        CHECK(SAME_DOUBLE(va, vb));
    }

    CHECK(a->lora.series == b->lora.series);
    CHECK(a->lora.max_lora == b->lora.max_lora);
    CHECK(SAME_DOUBLE(a->lora.time, b->lora.time));
    CHECK(a->lora.running_len == b->lora.running_len);
    CHECK(a->lora.waiting_len == b->lora.waiting_len);
    CHECK(a->lora.running_truncated == b->lora.running_truncated);
    CHECK(a->lora.waiting_truncated == b->lora.waiting_truncated);
    CHECK(memcmp(a->lora.running, b->lora.running, a->lora.running_len + 1)
          == 0);
    CHECK(memcmp(a->lora.waiting, b->lora.waiting, a->lora.waiting_len + 1)
          == 0);

    CHECK(a->cache.series == b->cache.series);
    CHECK(a->cache.block_size == b->cache.block_size);
    CHECK(a->cache.num_gpu_blocks == b->cache.num_gpu_blocks);
}


static void
check_spec(const mcig_prom_spec_t *spec, mcig_prom_spec_rc_e rc)
{
    uint32_t  i, j;

    CHECK(rc <= MCIG_PROM_SPEC_TOO_MANY_SPECS);
    CHECK(rc != MCIG_PROM_SPEC_TOO_MANY_SPECS);
    CHECK(mcig_prom_spec_rc_text(rc) != NULL);

    if (rc != MCIG_PROM_SPEC_OK) {
        return;
    }

    CHECK(spec->name_len > 0 && spec->name_len <= MCIG_PROM_NAME_MAX);
    CHECK(spec->name[spec->name_len] == '\0');
    CHECK(strlen(spec->name) == spec->name_len);
    CHECK(spec->nfilters <= MCIG_PROM_FILTERS_MAX);

    for (i = 0; i < spec->nfilters; i++) {
        CHECK(spec->filter[i].name_len > 0);
        CHECK(spec->filter[i].name_len <= MCIG_PROM_LABEL_MAX);
        CHECK(spec->filter[i].name[spec->filter[i].name_len] == '\0');
        CHECK(spec->filter[i].value_len <= MCIG_PROM_LVALUE_MAX);
        CHECK(spec->filter[i].value[spec->filter[i].value_len] == '\0');

        for (j = 0; j < i; j++) {
            CHECK(spec->filter[i].name_len != spec->filter[j].name_len
                  || memcmp(spec->filter[i].name, spec->filter[j].name,
                            spec->filter[i].name_len) != 0);
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t               len, n, off;
    uint32_t             i, state, bit;
    uint64_t             page_max;
    splitter_t           sp;
    mcig_prom_t         *whole, *chunked;
    const uint8_t       *page;
    mcig_prom_rc_e       rc_whole, rc_chunked;
    mcig_prom_set_t     *set;
    mcig_prom_spec_t    *spec;
    mcig_prom_spec_rc_e  src;

    if (size < 4) {
        return 0;
    }

    page = data + 4;
    len = size - 4;

    /* on the heap, so that ASan sees accesses past the buffers in them */
    set = malloc(sizeof(mcig_prom_set_t));
    spec = malloc(sizeof(mcig_prom_spec_t));
    whole = malloc(sizeof(mcig_prom_t));
    chunked = malloc(sizeof(mcig_prom_t));
    CHECK(set && spec && whole && chunked);

    memset(whole, 0xa5, sizeof(mcig_prom_t));
    memset(chunked, 0x5a, sizeof(mcig_prom_t));

    mcig_prom_set_init(set, 0);
    CHECK(mcig_prom_set_preset(set, mcig_prom_preset(MCIG_PROM_VLLM))
          == MCIG_PROM_SPEC_OK);
    CHECK(set->flags & MCIG_PROM_VLLM_INFO);

    for (i = 0; i < NEXTRA; i++) {
        CHECK(mcig_prom_set_add(set, extra_specs[i].text,
                                strlen(extra_specs[i].text),
                                extra_specs[i].agg, extra_specs[i].role)
              == MCIG_PROM_SPEC_OK);
    }

    CHECK(set->spec[5].nfilters == 2);
    CHECK(strcmp(set->spec[5].filter[1].value, "m\"q\\\n") == 0);

    /* a prefix of the page as a spec; kept in the set when it is one */
    n = (data[2] < len) ? data[2] : len;
    src = mcig_prom_spec_parse(spec, (const char *) page, n);
    check_spec(spec, src);

    if (src == MCIG_PROM_SPEC_OK) {
        CHECK(mcig_prom_set_add(set, (const char *) page, n,
                                (mcig_prom_agg_e) (data[0] % 3),
                                MCIG_PROM_ROLE_WAITING)
              == MCIG_PROM_SPEC_OK);
        CHECK(memcmp(&set->spec[set->nspecs - 1].filter, &spec->filter,
                     spec->nfilters * sizeof(mcig_prom_filter_t)) == 0);
    }

    /* whole, without a cap */
    mcig_prom_init(whole, set, 0);
    CHECK(mcig_prom_feed(whole, page, len) == MCIG_PROM_AGAIN);
    rc_whole = mcig_prom_finish(whole);
    CHECK(rc_whole == MCIG_PROM_OK);
    check_page(whole, rc_whole);

    /* chunked, under no cap, a cap of exactly the page, or one byte less */
    switch ((data[0] >> 3) & 7) {
    case 6:
        page_max = len;
        break;
    case 7:
        page_max = len ? len - 1 : 1;
        break;
    default:
        page_max = 0;
        break;
    }

    sp.mode = data[0] & 7;
    mcig_rng_seed(&sp.rng, ((uint64_t) data[0] << 8) ^ data[1]);
    rc_chunked = parse_chunked(chunked, set, page, len, page_max, &sp);
    check_page(chunked, rc_chunked);

    if (page_max == 0 || page_max >= len) {
        CHECK(rc_chunked == MCIG_PROM_OK);
        compare(whole, chunked);

    } else {
        CHECK(rc_chunked == MCIG_PROM_TOO_LARGE);
        CHECK(mcig_prom_finish(chunked) == MCIG_PROM_TOO_LARGE);
        CHECK(mcig_prom_feed(chunked, page, 0) == MCIG_PROM_TOO_LARGE);
    }

    /* a slice of the page as an adapter name */
    off = (len > 0) ? (data[3] * 131u) % len : 0;
    n = (len - off < (size_t) (data[3] & 0x3f)) ? len - off : data[3] & 0x3f;
    state = mcig_prom_lora_state(&whole->lora, (const char *) page + off, n);
    CHECK((state & ~(MCIG_PROM_LORA_RUNNING | MCIG_PROM_LORA_WAITING)) == 0);

    if (n == 0) {
        CHECK(state == 0);
    }

    for (bit = MCIG_PROM_LORA_RUNNING; bit <= MCIG_PROM_LORA_WAITING;
         bit <<= 1)
    {
        if (state & bit) {
            /* then the name is in that list */
            const char  *list = (bit == MCIG_PROM_LORA_RUNNING)
                                ? whole->lora.running : whole->lora.waiting;
            uint32_t     list_len = (bit == MCIG_PROM_LORA_RUNNING)
                                    ? whole->lora.running_len
                                    : whole->lora.waiting_len;

            CHECK(n <= list_len);
            CHECK(memmem(list, list_len, page + off, n) != NULL);
        }
    }

    free(set);
    free(spec);
    free(whole);
    free(chunked);

    return 0;
}
