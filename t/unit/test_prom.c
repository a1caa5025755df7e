/*
 * Unit tests of the Prometheus text parser: every page is also fed split
 * in two at every byte and one byte at a time, which must give the same
 * results.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mcig_prom.h"


/* a real /metrics page of vLLM V0 serving LoRA adapters, 1337 bytes */
static const char  sample[] =
    "# TYPE vllm:cache_config_info gauge\n"
    "vllm:cache_config_info{block_size=\"16\",cache_dtype=\"auto\","
    "calculate_kv_scales=\"False\",cpu_offload_gb=\"0\","
    "enable_prefix_caching=\"False\",gpu_memory_utilization=\"0.9\","
    "is_attention_free=\"False\",num_cpu_blocks=\"9362\","
    "num_gpu_blocks=\"81767\",num_gpu_blocks_override=\"None\","
    "sliding_window=\"None\",swap_space_bytes=\"4294967296\"} 1.0\n"
    "# HELP vllm:num_requests_running Number of requests currently running on G"
    "PU.\n"
    "# TYPE vllm:num_requests_running gauge\n"
    "vllm:num_requests_running{model_name=\"Qwen/Qwen2.5-Coder-1.5B-Instruct\"}"
    " 0.0\n"
    "# HELP vllm:num_requests_swapped Number of requests swapped to CPU.\n"
    "# TYPE vllm:num_requests_swapped gauge\n"
    "vllm:num_requests_swapped{model_name=\"Qwen/Qwen2.5-Coder-1.5B-Instruct\"}"
    " 0.0\n"
    "# HELP vllm:num_requests_waiting Number of requests waiting to be processe"
    "d.\n"
    "# TYPE vllm:num_requests_waiting gauge\n"
    "vllm:num_requests_waiting{model_name=\"Qwen/Qwen2.5-Coder-1.5B-Instruct\"}"
    " 0.0\n"
    "# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent u"
    "sage.\n"
    "# TYPE vllm:gpu_cache_usage_perc gauge\n"
    "vllm:gpu_cache_usage_perc{model_name=\"Qwen/Qwen2.5-Coder-1.5B-Instruct\"}"
    " 0.0\n"
    "# HELP vllm:lora_requests_info Running stats on lora requests.\n"
    "# TYPE vllm:lora_requests_info gauge\n"
    "vllm:lora_requests_info{max_lora=\"0\",running_lora_adapters=\"\","
    "waiting_lora_adapters=\"\"} 1.7382173358407154e+09\n";


/* feeds the first bytes, then the rest step bytes at a time */
static mcig_prom_rc_e
feed(mcig_prom_t *p, const mcig_prom_set_t *set, const char *text,
    size_t len, uint64_t page_max, size_t first, size_t step)
{
    size_t          off, n;
    mcig_prom_rc_e  rc;

    mcig_prom_init(p, set, page_max);
    rc = mcig_prom_feed(p, (const uint8_t *) text, first);

    for (off = first; off < len && rc == MCIG_PROM_AGAIN; off += n) {
        n = (len - off < step) ? len - off : step;
        rc = mcig_prom_feed(p, (const uint8_t *) text + off, n);
    }

    return (rc == MCIG_PROM_AGAIN) ? mcig_prom_finish(p) : rc;
}


/* parses text whole, then in every other way; returns the first, to free */
static mcig_prom_t *
parse_cap(const mcig_prom_set_t *set, const char *text, uint64_t page_max,
    mcig_prom_rc_e want)
{
    size_t        len, split, from;
    mcig_prom_t  *p, *q;

    len = strlen(text);
    p = malloc(sizeof(*p));
    q = malloc(sizeof(*q));
    from = offsetof(mcig_prom_t, result);

    assert_int_equal(feed(p, set, text, len, page_max, len, 1), want);

    /* split == len + 1: byte by byte */
    for (split = 0; split <= len + 1; split++) {
        assert_int_equal(feed(q, set, text, len, page_max,
                              split <= len ? split : 0,
                              split <= len ? len : 1), want);

        if (want == MCIG_PROM_OK
            && (q->samples != p->samples || q->skipped != p->skipped
                || q->malformed != p->malformed
                || memcmp((char *) p + from, (char *) q + from,
                          offsetof(mcig_prom_t, line) - from) != 0))
        {
            fail_msg("<%.40s...> split at %zu differs", text, split);
        }
    }

    free(q);
    return p;
}

#define parse(set, text)  parse_cap(set, text, 0, MCIG_PROM_OK)


/* a set of (text, agg) pairs ending with NULL; each must parse */
static void
make_set(mcig_prom_set_t *set, uint32_t flags, ...)
{
    va_list      ap;
    const char  *text;

    mcig_prom_set_init(set, flags);
    va_start(ap, flags);

    while ((text = va_arg(ap, const char *)) != NULL) {
        assert_int_equal(mcig_prom_set_add(set, text, strlen(text),
                                           va_arg(ap, int),
                                           MCIG_PROM_ROLE_NONE),
                         MCIG_PROM_SPEC_OK);
    }

    va_end(ap);
}


static void
make_preset(mcig_prom_set_t *set, mcig_prom_engine_e engine)
{
    mcig_prom_set_init(set, 0);
    assert_int_equal(mcig_prom_set_preset(set, mcig_prom_preset(engine)),
                     MCIG_PROM_SPEC_OK);
}


static void
check_value(const mcig_prom_t *p, uint32_t i, mcig_prom_status_e status,
    uint32_t series, double want)
{
    double  v;

    assert_int_equal(mcig_prom_value(p, i, &v), status);
    assert_int_equal(p->result[i].series, series);

    if (v != want) {
        fail_msg("spec %u: %.17g, want %.17g", i, v, want);
    }
}


static void
check_role(const mcig_prom_t *p, mcig_prom_role_e role, double want)
{
    double  v;

    assert_int_equal(mcig_prom_role_value(p, role, &v), MCIG_PROM_PRESENT);

    if (v != want) {
        fail_msg("role %d: %.17g, want %.17g", role, v, want);
    }
}


static void
test_sample_vllm_v0(void **state)
{
    double            v;
    mcig_prom_t      *p;
    mcig_prom_set_t   set;

    (void) state;

    assert_int_equal(sizeof(sample) - 1, 1337);
    make_preset(&set, MCIG_PROM_VLLM);
    p = parse(&set, sample);

    assert_int_equal(p->samples, 5);
    assert_int_equal(p->skipped, 1);
    assert_int_equal(p->malformed, 0);
    check_value(p, 0, MCIG_PROM_PRESENT, 1, 0.0);
    check_value(p, 1, MCIG_PROM_PRESENT, 1, 0.0);
    check_value(p, 2, MCIG_PROM_ABSENT, 0, 0.0);
    check_value(p, 3, MCIG_PROM_PRESENT, 1, 0.0);
    check_role(p, MCIG_PROM_ROLE_WAITING, 0.0);
    check_role(p, MCIG_PROM_ROLE_RUNNING, 0.0);
    check_role(p, MCIG_PROM_ROLE_KV_USAGE, 0.0);

    assert_int_equal(p->lora.series, 1);
    assert_int_equal(p->lora.max_lora, 0);
    assert_true(p->lora.time == 1.7382173358407154e+09);
    assert_string_equal(p->lora.running, "");
    assert_string_equal(p->lora.waiting, "");
    assert_int_equal(mcig_prom_lora_state(&p->lora, "a", 1), 0);
    assert_int_equal(mcig_prom_lora_state(&p->lora, "", 0), 0);

    assert_int_equal(p->cache.series, 1);
    assert_int_equal(p->cache.block_size, 16);
    assert_int_equal(p->cache.num_gpu_blocks, 81767);
    free(p);

    /* the same without the info series */
    set.flags = 0;
    p = parse(&set, sample);
    assert_int_equal(p->lora.series + p->cache.series, 0);
    assert_true(mcig_prom_role_value(p, MCIG_PROM_ROLE_KV_USAGE, &v)
                == MCIG_PROM_PRESENT);
    free(p);
}


static void
test_comments_and_blank_lines(void **state)
{
    mcig_prom_t      *p;
    mcig_prom_set_t   set;

    (void) state;

    make_set(&set, 0, "m", MCIG_PROM_SUM, NULL);
    p = parse(&set, "# HELP m Requests {\"a\"} \\ waiting.\n#TYPE m gauge\n"
                    "#\n\n   \n\t# indented\n# m 5\n \t m 1\n\n");
    assert_int_equal(p->samples, 1);
    assert_int_equal(p->malformed, 0);
    check_value(p, 0, MCIG_PROM_PRESENT, 1, 1.0);
    free(p);
}


static void
test_names(void **state)
{
    mcig_prom_t      *p;
    mcig_prom_set_t   set;

    (void) state;

    make_set(&set, 0, "vllm:num_requests_waiting", MCIG_PROM_SUM,
             ":a_b:c", MCIG_PROM_SUM, "_x", MCIG_PROM_SUM, NULL);
    p = parse(&set, "vllm:num_requests_waiting_x 5\nvllm:num_requests_waitin 5"
                    "\nvllm:num_requests_waiting 1\n:a_b:c 2\n_x 3\n"
                    "vllm_num_requests_waiting 5\n");
    assert_int_equal(p->samples, 3);
    assert_int_equal(p->skipped, 3);
    check_value(p, 0, MCIG_PROM_PRESENT, 1, 1.0);
    check_value(p, 1, MCIG_PROM_PRESENT, 1, 2.0);
    check_value(p, 2, MCIG_PROM_PRESENT, 1, 3.0);
    free(p);
}


static void
test_label_escapes(void **state)
{
    mcig_prom_t      *p;
    mcig_prom_set_t   set;

    (void) state;

    make_set(&set, 0, "m{path=\"a\\\\b\\\"c\\nd\"}", MCIG_PROM_SUM,
             "q{v=\"plain\"}", MCIG_PROM_SUM, NULL);
    assert_string_equal(set.spec[0].filter[0].value, "a\\b\"c\nd");

    p = parse(&set, "m{path=\"a\\\\b\\\"c\\nd\"} 1\n"
                    "m{x=\"}{,\\\" \\\\\",path=\"a\\\\b\\\"c\\nd\"} 2\n"
                    "m{path=\"a\\\\b\\\"c\\\\nd\"} 4\n"
                    "m{path=\"a\\\\b\\\"c\"} 8\n"
                    "q{v=\"plain\"} 16\nq{v=\"pla\\\\in\"} 32\n");
    assert_int_equal(p->malformed, 0);
    check_value(p, 0, MCIG_PROM_PRESENT, 2, 3.0);
    check_value(p, 1, MCIG_PROM_PRESENT, 1, 16.0);
    free(p);
}


static void
test_label_syntax(void **state)
{
    mcig_prom_t      *p;
    mcig_prom_set_t   set;

    (void) state;

    make_set(&set, 0, "m", MCIG_PROM_SUM, "m{b=\"2\"}", MCIG_PROM_SUM, NULL);
    p = parse(&set, "m { a = \"1\" ,\tb=\"2\", } 3\nm{} 4\nm{a=\"1\",} 5\n"
                    "m{ } 6\nm 7\nm{a=\"1\"}8\n");
    assert_int_equal(p->malformed, 0);
    check_value(p, 0, MCIG_PROM_PRESENT, 6, 33.0);
    check_value(p, 1, MCIG_PROM_PRESENT, 1, 3.0);
    free(p);
}


static void
test_values(void **state)
{
    mcig_prom_t      *p;
    mcig_prom_set_t   set;

    (void) state;

    make_set(&set, 0, "a", MCIG_PROM_SUM, "b", MCIG_PROM_SUM,
             "c", MCIG_PROM_SUM, "d", MCIG_PROM_SUM, "e", MCIG_PROM_SUM,
             "f", MCIG_PROM_SUM, "g", MCIG_PROM_SUM, NULL);
    p = parse(&set, "a 1.7382173358407154e+09\nb -12\nc 2.5E-3\nd .5\n"
                    "e +7\nf 5.\ng 81767\n");
    assert_int_equal(p->malformed, 0);
    check_value(p, 0, MCIG_PROM_PRESENT, 1, 1.7382173358407154e+09);
    check_value(p, 1, MCIG_PROM_PRESENT, 1, -12.0);
    check_value(p, 2, MCIG_PROM_PRESENT, 1, 2.5e-3);
    check_value(p, 3, MCIG_PROM_PRESENT, 1, 0.5);
    check_value(p, 4, MCIG_PROM_PRESENT, 1, 7.0);
    check_value(p, 5, MCIG_PROM_PRESENT, 1, 5.0);
    check_value(p, 6, MCIG_PROM_PRESENT, 1, 81767.0);
    free(p);
}


static void
test_nan_and_inf(void **state)
{
    mcig_prom_t      *p;
    mcig_prom_set_t   set;

    (void) state;

    make_set(&set, 0, "m", MCIG_PROM_SUM, "m", MCIG_PROM_AVG,
             "m", MCIG_PROM_MAX, "bad", MCIG_PROM_AVG, NULL);
    p = parse(&set, "m{e=\"0\"} NaN\nm{e=\"1\"} 2\nm{e=\"2\"} +Inf\n"
                    "m{e=\"3\"} -Inf\nm{e=\"4\"} 3\nm{e=\"5\"} Inf\n"
                    "m{e=\"6\"} nan\nm{e=\"7\"} -inf\nm{e=\"8\"} +Infinity\n"
                    "bad NaN\nbad -Inf\n");
    assert_int_equal(p->malformed, 0);
    check_value(p, 0, MCIG_PROM_PRESENT, 9, 5.0);
    check_value(p, 1, MCIG_PROM_PRESENT, 9, 2.5);
    check_value(p, 2, MCIG_PROM_PRESENT, 9, 3.0);
    assert_int_equal(p->result[0].nan, 2);
    assert_int_equal(p->result[0].inf, 5);
    check_value(p, 3, MCIG_PROM_NOT_FINITE, 2, 0.0);
    assert_int_equal(p->result[3].nan, 1);
    assert_int_equal(p->result[3].inf, 1);
    free(p);
}


static void
test_timestamps(void **state)
{
    mcig_prom_t      *p;
    mcig_prom_set_t   set;

    (void) state;

    make_set(&set, 0, "m", MCIG_PROM_SUM, NULL);
    p = parse(&set, "m 3 1712345678000\nm 4 -1\nm{a=\"x\"} 5 +17 \t\n"
                    "m 6  \t 1712345678000\nm 7 1.5\nm 8 12x\nm 9 1 2\n");
    assert_int_equal(p->malformed, 3);
    check_value(p, 0, MCIG_PROM_PRESENT, 4, 18.0);
    free(p);
}


static void
test_crlf_and_last_line(void **state)
{
    mcig_prom_t      *p;
    mcig_prom_set_t   set;

    (void) state;

    make_set(&set, 0, "m", MCIG_PROM_SUM, NULL);

    p = parse(&set, "# HELP m x\r\nm 1\r\n\r\n  \r\nm{a=\"b\"} 2 17\r\nm 3");
    assert_int_equal(p->malformed, 0);
    check_value(p, 0, MCIG_PROM_PRESENT, 3, 6.0);
    free(p);

    p = parse(&set, "m 4\r");
    check_value(p, 0, MCIG_PROM_PRESENT, 1, 4.0);
    free(p);

    p = parse(&set, "# HELP m no sample");
    assert_int_equal(p->samples + p->malformed, 0);
    check_value(p, 0, MCIG_PROM_ABSENT, 0, 0.0);
    free(p);

    p = parse(&set, "");
    check_value(p, 0, MCIG_PROM_ABSENT, 0, 0.0);
    free(p);
}


static void
test_histograms_and_created_skipped(void **state)
{
    mcig_prom_t      *p;
    mcig_prom_set_t   set;

    (void) state;

    make_set(&set, 0, "h", MCIG_PROM_SUM, "foo", MCIG_PROM_SUM,
             "foo_total", MCIG_PROM_SUM, "h_count", MCIG_PROM_SUM,
             "h_bucket{le=\"+Inf\"}", MCIG_PROM_SUM, "s", MCIG_PROM_SUM,
             "s_created", MCIG_PROM_SUM, NULL);
    p = parse(&set,
              "# HELP h A histogram.\n# TYPE h histogram\n"
              "h_bucket{le=\"0.1\"} 1.0\nh_bucket{le=\"+Inf\"} 2.0\n"
              "h_count 2.0\nh_sum 0.25\nh_created 1.7382173358407154e+09\n"
              "# TYPE foo counter\nfoo_total 5.0\n"
              "foo_created 1.7382173358407154e+09\n"
              "# TYPE s summary\ns{quantile=\"0.5\"} 0.125\ns_sum 1.5\n"
              "s_count 3\ns_created 1.5e9\n");
    assert_int_equal(p->samples, 6);
    assert_int_equal(p->skipped, 5);
    assert_int_equal(p->malformed, 0);
    check_value(p, 0, MCIG_PROM_ABSENT, 0, 0.0);
    check_value(p, 1, MCIG_PROM_ABSENT, 0, 0.0);
    check_value(p, 2, MCIG_PROM_PRESENT, 1, 5.0);
    check_value(p, 3, MCIG_PROM_PRESENT, 1, 2.0);
    check_value(p, 4, MCIG_PROM_PRESENT, 1, 2.0);
    check_value(p, 5, MCIG_PROM_PRESENT, 1, 0.125);
    check_value(p, 6, MCIG_PROM_PRESENT, 1, 1.5e9);
    free(p);
}


static void
test_label_filters(void **state)
{
    mcig_prom_t      *p;
    mcig_prom_set_t   set;

    (void) state;

    make_set(&set, 0, "m{engine=\"1\"}", MCIG_PROM_SUM,
             "m{engine=\"1\",model=\"x\"}", MCIG_PROM_SUM,
             "m{engine=\"2\"}", MCIG_PROM_SUM, NULL);
    p = parse(&set, "m{engine=\"0\",model=\"x\"} 1\n"
                    "m{model=\"x\",engine=\"1\"} 2\nm{engine=\"1\"} 4\n"
                    "m{engine=\"10\"} 8\nmm{engine=\"1\"} 16\n"
                    "m{engine=\"1\",model=\"y\"} 32\n");
    check_value(p, 0, MCIG_PROM_PRESENT, 3, 38.0);
    check_value(p, 1, MCIG_PROM_PRESENT, 1, 2.0);
    check_value(p, 2, MCIG_PROM_ABSENT, 0, 0.0);
    free(p);
}


static void
test_engine_aggregation(void **state)
{
    static const char  page[] =
        "vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 1.0\n"
        "vllm:num_requests_running{engine=\"1\",model_name=\"m\"} 2.0\n"
        "vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 3.0\n"
        "vllm:num_requests_waiting{engine=\"1\",model_name=\"m\"} 4.0\n"
        "vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.5\n"
        "vllm:kv_cache_usage_perc{engine=\"1\",model_name=\"m\"} 0.25\n"
        "vllm:gpu_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.9\n";
    mcig_prom_t      *p;
    mcig_prom_set_t   set;

    (void) state;

    make_preset(&set, MCIG_PROM_VLLM);
    p = parse(&set, page);
    check_role(p, MCIG_PROM_ROLE_WAITING, 7.0);
    check_role(p, MCIG_PROM_ROLE_RUNNING, 3.0);
    check_role(p, MCIG_PROM_ROLE_KV_USAGE, 0.375);   /* not the older 0.9 */
    check_value(p, 3, MCIG_PROM_PRESENT, 1, 0.9);
    free(p);

    make_set(&set, 0, "vllm:num_requests_waiting", MCIG_PROM_SUM,
             "vllm:num_requests_waiting", MCIG_PROM_AVG,
             "vllm:num_requests_waiting", MCIG_PROM_MAX,
             "vllm:num_requests_waiting{engine=\"1\"}", MCIG_PROM_SUM, NULL);
    p = parse(&set, page);
    check_value(p, 0, MCIG_PROM_PRESENT, 2, 7.0);
    check_value(p, 1, MCIG_PROM_PRESENT, 2, 3.5);
    check_value(p, 2, MCIG_PROM_PRESENT, 2, 4.0);
    check_value(p, 3, MCIG_PROM_PRESENT, 1, 4.0);
    free(p);
}


static void
test_lora_newest(void **state)
{
    mcig_prom_t       *p;
    mcig_prom_set_t    set;
    mcig_prom_lora_t  *l;

    (void) state;

    make_preset(&set, MCIG_PROM_VLLM);
    p = parse(&set,
        "vllm:lora_requests_info{max_lora=\"2\",running_lora_adapters=\"old\","
        "waiting_lora_adapters=\"\"} 1.7e9\n"
        "vllm:lora_requests_info{max_lora=\"4\",running_lora_adapters="
        "\"a, b b ,c\",waiting_lora_adapters=\" d,c,q\\\"t\"} 1.9e9\n"
        "vllm:lora_requests_info{max_lora=\"3\",running_lora_adapters=\"mid\","
        "waiting_lora_adapters=\"\"} 1.8e9\n"
        "vllm:lora_requests_info{running_lora_adapters=\"nan\"} NaN\n");
    l = &p->lora;

    assert_int_equal(l->series, 4);
    assert_int_equal(l->max_lora, 4);
    assert_true(l->time == 1.9e9);
    assert_string_equal(l->running, "a, b b ,c");
    assert_string_equal(l->waiting, " d,c,q\"t");
    assert_int_equal(l->running_len, 9);
    assert_int_equal(mcig_prom_lora_state(l, "a", 1), MCIG_PROM_LORA_RUNNING);
    assert_int_equal(mcig_prom_lora_state(l, "b b", 3),
                     MCIG_PROM_LORA_RUNNING);
    assert_int_equal(mcig_prom_lora_state(l, "c", 1),
                     MCIG_PROM_LORA_RUNNING | MCIG_PROM_LORA_WAITING);
    assert_int_equal(mcig_prom_lora_state(l, "d", 1), MCIG_PROM_LORA_WAITING);
    assert_int_equal(mcig_prom_lora_state(l, "q\"t", 3),
                     MCIG_PROM_LORA_WAITING);
    assert_int_equal(mcig_prom_lora_state(l, "b", 1), 0);
    assert_int_equal(mcig_prom_lora_state(l, "old", 3), 0);
    assert_int_equal(mcig_prom_lora_state(l, "mid", 3), 0);
    free(p);
}


static void
test_lora_truncated(void **state)
{
    char              *page, *s;
    size_t             k, n, len;
    mcig_prom_t       *p;
    mcig_prom_set_t    set;

    (void) state;

    make_preset(&set, MCIG_PROM_VLLM);
    page = malloc(4096);

    /* 150 names of 11 bytes, then 41 of 24 which end at byte 1024 */
    for (k = 0; k < 2; k++) {
        s = page + sprintf(page, "vllm:lora_requests_info{max_lora=\"8\","
                                 "running_lora_adapters=\"");
        n = k ? 41 : 150;
        len = k ? 24 : 11;

        for (size_t i = 0; i < n; i++) {
            s += sprintf(s, "%s%0*zu", i ? "," : "", (int) len, i);
        }

        sprintf(s, ",more\"} 1\n");
        p = parse(&set, page);

        assert_int_equal(p->lora.max_lora, 8);
        assert_true(p->lora.running_truncated);
        assert_int_equal(p->lora.running_len, k ? 1024 : 85 * 12 - 1);
        assert_int_equal(strlen(p->lora.running), p->lora.running_len);
        assert_int_equal(mcig_prom_lora_state(&p->lora, page + 1000, 0), 0);
        sprintf(page, "%0*zu", (int) len, k ? (size_t) 40 : (size_t) 84);
        assert_int_equal(mcig_prom_lora_state(&p->lora, page, len),
                         MCIG_PROM_LORA_RUNNING);
        sprintf(page, "%0*zu", (int) len, k ? (size_t) 41 : (size_t) 85);
        assert_int_equal(mcig_prom_lora_state(&p->lora, page, len), 0);
        free(p);
    }

    free(page);
}


static void
test_cache_config(void **state)
{
    mcig_prom_t      *p;
    mcig_prom_set_t   set;

    (void) state;

    make_preset(&set, MCIG_PROM_VLLM);
    p = parse(&set, "vllm:cache_config_info{block_size=\"32\","
                    "num_gpu_blocks=\"None\"} 1.0\n"
                    "vllm:cache_config_info{block_size=\"16\","
                    "num_gpu_blocks=\"5\"} 1.0\n");
    assert_int_equal(p->cache.series, 2);
    assert_int_equal(p->cache.block_size, 32);
    assert_int_equal(p->cache.num_gpu_blocks, 0);
    free(p);

    p = parse(&set, "vllm:cache_config_info{cache_dtype=\"auto\"} 1\n");
    assert_int_equal(p->cache.series, 1);
    assert_int_equal(p->cache.block_size + p->cache.num_gpu_blocks, 0);
    free(p);
}


static void
test_malformed_lines(void **state)
{
    static const char  *bad[] = {
        "1abc 5", "{a=\"b\"} 1", "ok", "ok{", "ok{a=\"b\"", "ok{a=\"b} 1",
        "ok{a=b} 1", "ok{a=\"\\x\"} 1", "ok{1a=\"b\"} 1", "ok{a=\"b\",,} 1",
        "ok{,} 1", "ok 1x", "ok NaNa", "ok +NaN", "ok 1e", "ok 1e+",
        "ok .", "ok -", "ok 0x10", "ok 1 2 3", "ok 1 -", "ok-x 1",
        "ok{a=\"b\"}} 1", "ok\x01 1", "ok\r1", "ok{a=\"b\"} ",
        "ok{a=\"b\" c=\"d\"} 1", "ok{a=\"b\"}{c=\"d\"} 1", "\xff", "ok{a} 1",
        "ok{a=\"b\\\"} 1"
    };
    char              page[2048];
    size_t            i, n, len;
    mcig_prom_t      *p;
    mcig_prom_set_t   set;

    (void) state;

    make_set(&set, 0, "ok", MCIG_PROM_SUM, NULL);
    n = sizeof(bad) / sizeof(bad[0]);

    for (len = 0, i = 0; i < n; i++) {
        len += (size_t) sprintf(page + len, "%s\nok 1\n", bad[i]);
    }

    p = parse(&set, page);
    assert_int_equal(p->malformed, n);
    assert_int_equal(p->samples, n);
    check_value(p, 0, MCIG_PROM_PRESENT, n, (double) n);
    free(p);
}


/* the lines of other metrics are read up to their name only */
static void
test_other_metrics_unchecked(void **state)
{
    mcig_prom_t      *p;
    mcig_prom_set_t   set;

    (void) state;

    make_set(&set, 0, "ok", MCIG_PROM_SUM, NULL);
    p = parse(&set, "other{a=b} 1\nother 1x\nother{\n"
                    "other-x 1\nother\n1other 1\nok 2\n");
    assert_int_equal(p->skipped, 3);
    assert_int_equal(p->malformed, 3);
    assert_int_equal(p->samples, 1);
    check_value(p, 0, MCIG_PROM_PRESENT, 1, 2.0);
    free(p);
}


static void
test_query(void **state)
{
    char              buf[512];
    size_t            n;
    mcig_prom_set_t   set;

    (void) state;

    make_preset(&set, MCIG_PROM_VLLM);
    n = mcig_prom_set_query(&set, buf, sizeof(buf));
    assert_string_equal(buf,
        "name%5B%5D=vllm:num_requests_waiting"
        "&name%5B%5D=vllm:num_requests_running"
        "&name%5B%5D=vllm:kv_cache_usage_perc"
        "&name%5B%5D=vllm:gpu_cache_usage_perc"
        "&name%5B%5D=vllm:lora_requests_info"
        "&name%5B%5D=vllm:cache_config_info");
    assert_int_equal(n, strlen(buf));
    assert_int_equal(mcig_prom_set_query(&set, NULL, 0), n);
    assert_int_equal(mcig_prom_set_query(&set, buf, n), n);

    /* a name asked for twice, with other labels, is asked once */
    make_set(&set, 0, "m{a=\"1\"}", MCIG_PROM_SUM, "m{a=\"2\"}",
             MCIG_PROM_SUM, "n", MCIG_PROM_SUM, NULL);
    assert_int_equal(mcig_prom_set_query(&set, buf, sizeof(buf)), 25);
    assert_string_equal(buf, "name%5B%5D=m&name%5B%5D=n");
}


static void
test_long_lines(void **state)
{
    char             *page;
    size_t            len;
    mcig_prom_t      *p;
    mcig_prom_set_t   set;

    (void) state;

    make_set(&set, 0, "ok", MCIG_PROM_SUM, NULL);
    page = malloc(32768);

    /* a comment of 10000 bytes, then sample lines of 4096 and 4097 */
    len = (size_t) sprintf(page, "# ");
    memset(page + len, 'c', 10000);
    len += 10000;
    len += (size_t) sprintf(page + len, "\n  ok{x=\"");
    memset(page + len, 'a', 4096 - 10);
    len += 4096 - 10;
    len += (size_t) sprintf(page + len, "\"} 1\nok{x=\"");
    memset(page + len, 'a', 4097 - 10);
    len += 4097 - 10;
    sprintf(page + len, "\"} 2\nok 4\nok{x=\"%04000d\"} 8 ", 0);

    p = parse(&set, page);
    assert_int_equal(p->malformed, 1);
    check_value(p, 0, MCIG_PROM_PRESENT, 3, 13.0);
    free(p);

    memset(page, 'x', 5000);
    page[5000] = '\0';
    p = parse(&set, page);
    assert_int_equal(p->malformed, 1);
    free(p);
    free(page);
}


static void
test_page_cap(void **state)
{
    uint8_t           c;
    mcig_prom_t      *p;
    mcig_prom_set_t   set;

    (void) state;

    make_set(&set, 0, "m", MCIG_PROM_SUM, NULL);
    p = parse_cap(&set, "m 1\nm 2\n", 8, MCIG_PROM_OK);
    check_value(p, 0, MCIG_PROM_PRESENT, 2, 3.0);
    free(p);

    p = parse_cap(&set, "m 1\nm 2\n", 7, MCIG_PROM_TOO_LARGE);
    c = '\n';
    assert_int_equal(mcig_prom_feed(p, &c, 0), MCIG_PROM_TOO_LARGE);
    assert_int_equal(mcig_prom_finish(p), MCIG_PROM_TOO_LARGE);
    free(p);
}


static void
test_specs(void **state)
{
    static const struct {
        const char           *text;
        mcig_prom_spec_rc_e   rc;
    } bad[] = {
        { "", MCIG_PROM_SPEC_EMPTY },
        { " \t", MCIG_PROM_SPEC_EMPTY },
        { "1abc", MCIG_PROM_SPEC_BAD_NAME },
        { "a-b", MCIG_PROM_SPEC_BAD_NAME },
        { "a b", MCIG_PROM_SPEC_BAD_NAME },
        { "{a=\"b\"}", MCIG_PROM_SPEC_BAD_NAME },
        { "m{", MCIG_PROM_SPEC_BAD_LABELS },
        { "m{a}", MCIG_PROM_SPEC_BAD_LABELS },
        { "m{a=b}", MCIG_PROM_SPEC_BAD_LABELS },
        { "m{a=\"b\"", MCIG_PROM_SPEC_BAD_LABELS },
        { "m{a=\"b\"} x", MCIG_PROM_SPEC_BAD_LABELS },
        { "m{a=\"\\q\"}", MCIG_PROM_SPEC_BAD_LABELS },
        { "m{a=\"1\",a=\"2\"}", MCIG_PROM_SPEC_BAD_LABELS },
        { "m{a=\"1\",b=\"2\",c=\"3\",d=\"4\",e=\"5\"}",
          MCIG_PROM_SPEC_TOO_MANY_LABELS }
    };
    char              text[300];
    size_t            i;
    mcig_prom_set_t   set;

    (void) state;

    mcig_prom_set_init(&set, 0);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (mcig_prom_set_add(&set, bad[i].text, strlen(bad[i].text),
                              MCIG_PROM_SUM, MCIG_PROM_ROLE_NONE)
            != bad[i].rc)
        {
            fail_msg("spec <%s> not refused as %d", bad[i].text, bad[i].rc);
        }

        assert_true(mcig_prom_spec_rc_text(bad[i].rc)[0] != '\0');
    }

    assert_int_equal(set.nspecs, 0);

    /* limits of lengths: name 128, label name 64, label value 128 */
    memset(text, 'n', 129);
    assert_int_equal(mcig_prom_set_add(&set, text, 129, 0, 0),
                     MCIG_PROM_SPEC_NAME_TOO_LONG);
    assert_int_equal(mcig_prom_set_add(&set, text, 128, 0, 0), 0);
    sprintf(text, "m{l%064d=\"v\"}", 0);
    assert_int_equal(mcig_prom_set_add(&set, text, strlen(text), 0, 0),
                     MCIG_PROM_SPEC_LABEL_TOO_LONG);
    sprintf(text, "m{l=\"%0129d\"}", 0);
    assert_int_equal(mcig_prom_set_add(&set, text, strlen(text), 0, 0),
                     MCIG_PROM_SPEC_LABEL_TOO_LONG);
    sprintf(text, "m{l=\"%0128d\"}", 0);
    assert_int_equal(mcig_prom_set_add(&set, text, strlen(text), 0, 0), 0);

    /* blanks, escapes and a trailing comma */
    strcpy(text, " m { a = \"x\\\"y\\\\\" , } ");
    assert_int_equal(mcig_prom_set_add(&set, text, strlen(text),
                                       MCIG_PROM_MAX, MCIG_PROM_ROLE_RUNNING),
                     MCIG_PROM_SPEC_OK);
    assert_string_equal(set.spec[2].name, "m");
    assert_int_equal(set.spec[2].nfilters, 1);
    assert_string_equal(set.spec[2].filter[0].name, "a");
    assert_string_equal(set.spec[2].filter[0].value, "x\"y\\");
    assert_int_equal(set.spec[2].agg, MCIG_PROM_MAX);
    assert_int_equal(set.spec[2].role, MCIG_PROM_ROLE_RUNNING);

    while (set.nspecs < MCIG_PROM_SPECS_MAX - 2) {
        assert_int_equal(mcig_prom_set_add(&set, "m{}", 3, 0, 0), 0);
    }

    assert_int_equal(mcig_prom_set_preset(&set,
                                          mcig_prom_preset(MCIG_PROM_VLLM)),
                     MCIG_PROM_SPEC_TOO_MANY_SPECS);
    assert_int_equal(mcig_prom_set_add(&set, "m", 1, 0, 0), 0);
    assert_int_equal(mcig_prom_set_add(&set, "m", 1, 0, 0), 0);
    assert_int_equal(mcig_prom_set_add(&set, "m", 1, 0, 0),
                     MCIG_PROM_SPEC_TOO_MANY_SPECS);
}


static void
test_presets(void **state)
{
    mcig_prom_t      *p;
    mcig_prom_set_t   set;

    (void) state;

    assert_string_equal(mcig_prom_preset(MCIG_PROM_VLLM)->name, "vllm");
    assert_null(mcig_prom_preset((mcig_prom_engine_e) 3));

    make_preset(&set, MCIG_PROM_SGLANG);
    assert_int_equal(set.flags, 0);
    p = parse(&set, "sglang:num_queue_reqs{model_name=\"m\"} 2.0\n"
                    "sglang:num_running_reqs{model_name=\"m\"} 5.0\n"
                    "sglang:token_usage{model_name=\"m\"} 0.42\n"
                    "vllm:cache_config_info{block_size=\"16\"} 1.0\n");
    check_role(p, MCIG_PROM_ROLE_WAITING, 2.0);
    check_role(p, MCIG_PROM_ROLE_RUNNING, 5.0);
    check_role(p, MCIG_PROM_ROLE_KV_USAGE, 0.42);
    assert_int_equal(p->cache.series, 0);
    free(p);

    make_preset(&set, MCIG_PROM_TRTLLM);
    p = parse(&set, "trtllm_num_requests_waiting 1\n"
                    "trtllm_num_requests_running 6\n"
                    "trtllm_kv_cache_utilization 0.75\n");
    check_role(p, MCIG_PROM_ROLE_WAITING, 1.0);
    check_role(p, MCIG_PROM_ROLE_RUNNING, 6.0);
    check_role(p, MCIG_PROM_ROLE_KV_USAGE, 0.75);
    free(p);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_vllm_v0),
        cmocka_unit_test(test_comments_and_blank_lines),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_label_escapes),
        cmocka_unit_test(test_label_syntax),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_nan_and_inf),
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_crlf_and_last_line),
        cmocka_unit_test(test_histograms_and_created_skipped),
        cmocka_unit_test(test_label_filters),
        cmocka_unit_test(test_engine_aggregation),
        cmocka_unit_test(test_lora_newest),
        cmocka_unit_test(test_lora_truncated),
        cmocka_unit_test(test_cache_config),
        cmocka_unit_test(test_malformed_lines),
        cmocka_unit_test(test_other_metrics_unchecked),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_page_cap),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_specs),
        cmocka_unit_test(test_presets),
    };

    return cmocka_run_group_tests_name("prometheus parser", tests, NULL, NULL);
}
