/*
 * Unit tests of the body scanner: every case is also fed split at every
 * byte and one byte at a time, which must give the same answer.  So are
 * the model value's place in the body and the prompt's block hashes.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mcig_body.h"
#include "mcig_prefix.h"


static mcig_body_rc_e
scan_chunks(const char *body, size_t len, size_t split, char *model)
{
    mcig_body_scan_t  *s;
    mcig_body_rc_e     rc;

    s = malloc(sizeof(*s));
    mcig_body_scan_init(s);

    rc = mcig_body_scan_feed(s, (const uint8_t *) body, split);

    if (rc == MCIG_BODY_AGAIN) {
        rc = mcig_body_scan_feed(s, (const uint8_t *) body + split,
                                 len - split);
    }

    if (rc == MCIG_BODY_AGAIN) {
        rc = mcig_body_scan_finish(s);
    }

    if (rc == MCIG_BODY_OK) {
        strcpy(model, s->model);
    }

    free(s);
    return rc;
}


static mcig_body_rc_e
scan_bytewise(const char *body, size_t len, char *model)
{
    mcig_body_scan_t  *s;
    mcig_body_rc_e     rc;
    size_t             i;

    s = malloc(sizeof(*s));
    mcig_body_scan_init(s);
    rc = MCIG_BODY_AGAIN;

    for (i = 0; i < len && rc == MCIG_BODY_AGAIN; i++) {
        rc = mcig_body_scan_feed(s, (const uint8_t *) body + i, 1);
    }

    if (rc == MCIG_BODY_AGAIN) {
        rc = mcig_body_scan_finish(s);
    }

    if (rc == MCIG_BODY_OK) {
        strcpy(model, s->model);
    }

    free(s);
    return rc;
}


/* checks one body under every split; model may be NULL when rc != OK */
static void
expect_len(const char *body, size_t len, mcig_body_rc_e want,
    const char *model)
{
    char    got[MCIG_MODEL_MAX + 1];
    size_t  split;

    for (split = 0; split <= len; split++) {
        got[0] = '\0';

        if (scan_chunks(body, len, split, got) != want) {
            fail_msg("body <%s> split at %zu: rc %d, want %d", body, split,
                     scan_chunks(body, len, split, got), want);
        }

        if (want == MCIG_BODY_OK) {
            assert_string_equal(got, model);
        }
    }

    got[0] = '\0';
    assert_int_equal(scan_bytewise(body, len, got), want);

    if (want == MCIG_BODY_OK) {
        assert_string_equal(got, model);
    }
}


static void
expect(const char *body, mcig_body_rc_e want, const char *model)
{
    expect_len(body, strlen(body), want, model);
}


static void
test_simple_bodies(void **state)
{
    (void) state;

    expect("{\"model\":\"food-review-1\"}", MCIG_BODY_OK, "food-review-1");
    expect(" \r\n\t{ \"model\" : \"m\" } \n", MCIG_BODY_OK, "m");
    expect("{\"model\": \"food-review-1\", \"prompt\": \"What is the best "
           "pizza in the world?\", \"max_tokens\": 100, \"temperature\": 0}",
           MCIG_BODY_OK, "food-review-1");
    expect("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
           "\"model\":\"llama\",\"stream\":true}", MCIG_BODY_OK, "llama");
}


static void
test_values_of_every_kind(void **state)
{
    (void) state;

    expect("{\"a\":1,\"b\":-0.5e+10,\"c\":0,\"d\":-12.25E-3,\"e\":true,"
           "\"f\":false,\"g\":null,\"h\":[],\"i\":{},\"j\":[1,[2,{}],\"x\"],"
           "\"model\":\"m\"}", MCIG_BODY_OK, "m");
    expect("{\"model\":\"m\",\"n\":10}", MCIG_BODY_OK, "m");
    expect("{\"n\":10,\"model\":\"m\"}", MCIG_BODY_OK, "m");
    expect("{\"n\":1e5}", MCIG_BODY_NO_MODEL, NULL);
}


static void
test_nested_model_does_not_count(void **state)
{
    (void) state;

    expect("{\"x\":{\"model\":\"inner\"}}", MCIG_BODY_NO_MODEL, NULL);
    expect("{\"x\":[{\"model\":\"inner\"}],\"model\":\"outer\"}",
           MCIG_BODY_OK, "outer");
    expect("{\"model\":\"outer\",\"x\":{\"model\":\"inner\"}}",
           MCIG_BODY_OK, "outer");
    expect("{\"x\":\"model\",\"y\":\"model\"}", MCIG_BODY_NO_MODEL, NULL);
    expect("{\"model\":{\"model\":\"inner\"}}", MCIG_BODY_MODEL_NOT_STRING,
           NULL);
}


static void
test_last_duplicate_wins(void **state)
{
    (void) state;

    expect("{\"model\":\"a\",\"model\":\"b\"}", MCIG_BODY_OK, "b");
    expect("{\"model\":1,\"model\":\"b\"}", MCIG_BODY_OK, "b");
    expect("{\"model\":\"a\",\"model\":null}", MCIG_BODY_MODEL_NOT_STRING,
           NULL);
}


static void
test_escapes(void **state)
{
    (void) state;

    expect("{\"model\":\"a\\\"b\\\\c\\/d\"}", MCIG_BODY_OK, "a\"b\\c/d");
    expect("{\"mod\\u0065l\":\"x\"}", MCIG_BODY_OK, "x");
    expect("{\"model\":\"caf\\u00e9\"}", MCIG_BODY_OK, "caf\xc3\xa9");
    expect("{\"model\":\"\\u20ac\"}", MCIG_BODY_OK, "\xe2\x82\xac");
    /* U+1F355 slice of pizza, as a surrogate pair */
    expect("{\"model\":\"p\\ud83c\\udf55\"}", MCIG_BODY_OK,
           "p\xf0\x9f\x8d\x95");
    expect("{\"model\":\"p\\uD83C\\uDF55\"}", MCIG_BODY_OK,
           "p\xf0\x9f\x8d\x95");
    /* raw UTF-8 passes through */
    expect("{\"model\":\"\xf0\x9f\x8d\x95\"}", MCIG_BODY_OK,
           "\xf0\x9f\x8d\x95");
    /* escapes in skipped strings are checked too */
    expect("{\"p\":\"\\u12\"}", MCIG_BODY_INVALID_JSON, NULL);
    expect("{\"p\":\"\\x\"}", MCIG_BODY_INVALID_JSON, NULL);
    expect("{\"p\":\"\\ud800\",\"model\":\"m\"}", MCIG_BODY_OK, "m");
}


static void
test_bad_model_names(void **state)
{
    (void) state;

    expect("{\"model\":\"\\ud83c\"}", MCIG_BODY_MODEL_INVALID, NULL);
    expect("{\"model\":\"\\udf55x\"}", MCIG_BODY_MODEL_INVALID, NULL);
    expect("{\"model\":\"\\ud83c\\u0041\"}", MCIG_BODY_MODEL_INVALID, NULL);
    expect("{\"model\":\"\"}", MCIG_BODY_MODEL_INVALID, NULL);
    expect("{\"model\":\"a\\nb\"}", MCIG_BODY_MODEL_INVALID, NULL);
    expect("{\"model\":\"a\\u0000b\"}", MCIG_BODY_MODEL_INVALID, NULL);
    expect("{\"model\":\"\xff\"}", MCIG_BODY_MODEL_INVALID, NULL);
    expect("{\"model\":\"\xc3\"}", MCIG_BODY_MODEL_INVALID, NULL);
    expect("{\"model\":\"\xe2\x82\"}", MCIG_BODY_MODEL_INVALID, NULL);
    expect("{\"model\":\"\xc0\xaf\"}", MCIG_BODY_MODEL_INVALID, NULL);
    expect("{\"model\":\"\xed\xa0\x80\"}", MCIG_BODY_MODEL_INVALID, NULL);
    expect("{\"model\":42}", MCIG_BODY_MODEL_NOT_STRING, NULL);
    expect("{\"model\":[\"a\"]}", MCIG_BODY_MODEL_NOT_STRING, NULL);
    expect("{\"model\":true}", MCIG_BODY_MODEL_NOT_STRING, NULL);
}


static void
test_model_length_limit(void **state)
{
    char  body[1024], want[MCIG_MODEL_MAX + 1];

    (void) state;

    memset(want, 'm', MCIG_MODEL_MAX);
    want[MCIG_MODEL_MAX] = '\0';

    snprintf(body, sizeof(body), "{\"model\":\"%s\"}", want);
    expect(body, MCIG_BODY_OK, want);

    snprintf(body, sizeof(body), "{\"model\":\"%sm\"}", want);
    expect(body, MCIG_BODY_MODEL_TOO_LONG, NULL);

    /* a later, shorter duplicate wins */
    snprintf(body, sizeof(body), "{\"model\":\"%sm\",\"model\":\"s\"}", want);
    expect(body, MCIG_BODY_OK, "s");
}


static void
test_invalid_json(void **state)
{
    (void) state;

    expect("", MCIG_BODY_EMPTY, NULL);
    expect("  \n", MCIG_BODY_EMPTY, NULL);
    expect("[\"model\"]", MCIG_BODY_NOT_OBJECT, NULL);
    expect("\"model\"", MCIG_BODY_NOT_OBJECT, NULL);
    expect("model=x", MCIG_BODY_NOT_OBJECT, NULL);
    expect("{", MCIG_BODY_INVALID_JSON, NULL);
    expect("{\"model\":\"m\"", MCIG_BODY_INVALID_JSON, NULL);
    expect("{\"model\":\"m\"}}", MCIG_BODY_INVALID_JSON, NULL);
    expect("{\"model\":\"m\"} x", MCIG_BODY_INVALID_JSON, NULL);
    expect("{\"model\" \"m\"}", MCIG_BODY_INVALID_JSON, NULL);
    expect("{\"model\":\"m\",}", MCIG_BODY_INVALID_JSON, NULL);
    expect("{\"a\":[1,]}", MCIG_BODY_INVALID_JSON, NULL);
    expect("{\"a\":[1}", MCIG_BODY_INVALID_JSON, NULL);
    expect("{\"a\":{]}", MCIG_BODY_INVALID_JSON, NULL);
    expect("{\"a\":01}", MCIG_BODY_INVALID_JSON, NULL);
    expect("{\"a\":1.}", MCIG_BODY_INVALID_JSON, NULL);
    expect("{\"a\":.5}", MCIG_BODY_INVALID_JSON, NULL);
    expect("{\"a\":1e}", MCIG_BODY_INVALID_JSON, NULL);
    expect("{\"a\":-}", MCIG_BODY_INVALID_JSON, NULL);
    expect("{\"a\":+1}", MCIG_BODY_INVALID_JSON, NULL);
    expect("{\"a\":tru}", MCIG_BODY_INVALID_JSON, NULL);
    expect("{\"a\":nul1}", MCIG_BODY_INVALID_JSON, NULL);
    expect("{\"a\":\"x\ny\"}", MCIG_BODY_INVALID_JSON, NULL);
    expect("{'model':'m'}", MCIG_BODY_INVALID_JSON, NULL);
    expect("{model:\"m\"}", MCIG_BODY_INVALID_JSON, NULL);
    expect("{\"a\":1 \"model\":\"m\"}", MCIG_BODY_INVALID_JSON, NULL);
    expect_len("{\"model\":\"m\0\"}", 14, MCIG_BODY_INVALID_JSON, NULL);
}


static void
test_depth_limit(void **state)
{
    size_t  n, i;
    char   *body;

    (void) state;

    /* MCIG_BODY_MAX_DEPTH levels in all: the top object and n arrays */
    for (n = MCIG_BODY_MAX_DEPTH - 1; n <= MCIG_BODY_MAX_DEPTH; n++) {
        body = malloc(2 * n + 64);
        strcpy(body, "{\"model\":\"m\",\"x\":");

        for (i = 0; i < n; i++) {
            strcat(body, "[");
        }

        for (i = 0; i < n; i++) {
            strcat(body, "]");
        }

        strcat(body, "}");
        expect(body, n < MCIG_BODY_MAX_DEPTH ? MCIG_BODY_OK
                                             : MCIG_BODY_TOO_DEEP, "m");
        free(body);
    }
}


static void
test_large_body(void **state)
{
    mcig_body_scan_t  *s;
    char              *body;
    size_t             len, i;

    (void) state;

    /* 4 MB of chat content, fed in 8 KB buffers as nginx reads it */
    len = 4 * 1024 * 1024;
    body = malloc(len);
    i = (size_t) sprintf(body, "{\"messages\":[{\"role\":\"user\","
                                "\"content\":\"");

    while (i < len - 64) {
        if (i % 97 == 0) {
            body[i++] = '\\';
            body[i++] = 'n';

        } else {
            body[i] = (char) ('a' + i % 26);
            i++;
        }
    }

    i += (size_t) sprintf(body + i, "\"}],\"model\":\"big\"}");

    s = malloc(sizeof(*s));
    mcig_body_scan_init(s);

    for (size_t off = 0; off < i; off += 8192) {
        size_t  n = (i - off < 8192) ? i - off : 8192;

        assert_int_equal(mcig_body_scan_feed(s, (uint8_t *) body + off, n),
                         MCIG_BODY_AGAIN);
    }

    assert_int_equal(mcig_body_scan_finish(s), MCIG_BODY_OK);
    assert_string_equal(s->model, "big");
    assert_int_equal(s->offset, i);

    free(s);
    free(body);
}


static void
test_error_is_sticky(void **state)
{
    mcig_body_scan_t  s;

    (void) state;

    mcig_body_scan_init(&s);
    assert_int_equal(mcig_body_scan_feed(&s, (uint8_t *) "{x", 2),
                     MCIG_BODY_INVALID_JSON);
    assert_int_equal(mcig_body_scan_feed(&s, (uint8_t *) "\"model\"", 7),
                     MCIG_BODY_INVALID_JSON);
    assert_int_equal(mcig_body_scan_finish(&s), MCIG_BODY_INVALID_JSON);
}


static void
test_utf8_printable(void **state)
{
    (void) state;

    assert_true(mcig_utf8_printable((uint8_t *) "meta-llama/Llama-3.1-8B", 23));
    assert_true(mcig_utf8_printable((uint8_t *) "\xf4\x8f\xbf\xbf", 4));
    assert_false(mcig_utf8_printable((uint8_t *) "\xf4\x90\x80\x80", 4));
    assert_false(mcig_utf8_printable((uint8_t *) "\x7f", 1));
    assert_false(mcig_utf8_printable((uint8_t *) "\xc2\x85", 2));
    assert_false(mcig_utf8_printable((uint8_t *) "\xe0\x80\x80", 3));
    assert_false(mcig_utf8_printable((uint8_t *) "a\xf0\x9f\x8d", 4));
    assert_true(mcig_body_rc_text(MCIG_BODY_NO_MODEL)[0] != '\0');
}


/* --- the model value's place ------------------------------------------ */

/* scans body cut at split (len + 1: byte by byte) with an optional hasher */
static mcig_body_rc_e
scan_split(const char *body, size_t len, size_t split, mcig_body_scan_t *s,
    mcig_prefix_hasher_t *h)
{
    size_t          i;
    mcig_body_rc_e  rc;

    mcig_body_scan_init(s);
    mcig_body_scan_set_hasher(s, h);
    rc = MCIG_BODY_AGAIN;

    if (split > len) {
        for (i = 0; i < len && rc == MCIG_BODY_AGAIN; i++) {
            rc = mcig_body_scan_feed(s, (const uint8_t *) body + i, 1);
        }

    } else {
        rc = mcig_body_scan_feed(s, (const uint8_t *) body, split);

        if (rc == MCIG_BODY_AGAIN) {
            rc = mcig_body_scan_feed(s, (const uint8_t *) body + split,
                                     len - split);
        }
    }

    return (rc == MCIG_BODY_AGAIN) ? mcig_body_scan_finish(s) : rc;
}


/* the value token at [off, off + len) is want, quotes included */
static void
expect_model_at(const char *body, const char *want)
{
    size_t             len, split;
    mcig_body_scan_t  *s;

    len = strlen(body);
    s = malloc(sizeof(*s));

    for (split = 0; split <= len + 1; split++) {
        assert_int_equal(scan_split(body, len, split, s, NULL), MCIG_BODY_OK);

        if (s->model_value_len != strlen(want)
            || memcmp(body + s->model_value_offset, want, strlen(want)) != 0)
        {
            fail_msg("body <%s> split at %zu: value at %llu, %llu bytes",
                     body, split,
                     (unsigned long long) s->model_value_offset,
                     (unsigned long long) s->model_value_len);
        }
    }

    free(s);
}


static void
test_model_value_place(void **state)
{
    (void) state;

    expect_model_at("{\"model\":\"food-review-1\"}", "\"food-review-1\"");
    expect_model_at(" {\n \"model\" :  \"m\" , \"x\": 1 }", "\"m\"");
    expect_model_at("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],"
                 "\"model\":\"llama\",\"stream\":true}", "\"llama\"");

    /* escapes are counted as they are in the body */
    expect_model_at("{\"model\":\"caf\\u00e9\\/x\"}", "\"caf\\u00e9\\/x\"");
    expect_model_at("{\"mod\\u0065l\":\"x\"}", "\"x\"");

    /* the last duplicate, whatever came before */
    expect_model_at("{\"model\":\"a\",\"model\":\"bbb\"}", "\"bbb\"");
    expect_model_at("{\"model\":1,\"x\":\"model\",\"model\":\"b\"}", "\"b\"");
    expect_model_at("{\"model\":\"a\",\"x\":{\"model\":\"c\"}}", "\"a\"");
}


/* --- prompt hashing ---------------------------------------------------- */

#define HMAX  MCIG_PREFIX_MAX_BLOCKS


typedef struct {
    uint32_t    n;
    uint64_t    h[HMAX];
} hashes_t;


/*
 * Scans body under every split and byte by byte with hashing on (at most
 * max blocks of 64 bytes): the hashes must be the same each time.
 */
static void
scan_hashes(const char *body, uint32_t max, hashes_t *out)
{
    size_t                 len, split, step;
    hashes_t              *got;
    mcig_body_scan_t      *s;
    mcig_prefix_hasher_t   h;

    len = strlen(body);
    s = malloc(sizeof(*s));
    got = malloc(sizeof(*got));

    mcig_prefix_hasher_init(&h, 64, max, out->h);
    assert_int_equal(scan_split(body, len, len, s, &h), MCIG_BODY_OK);
    out->n = h.nblocks;

    /* every split of short bodies; of long ones, every 7th */
    step = (len > 3000) ? 7 : 1;

    for (split = 0; split <= len + 1; split += (split < len) ? step : 1) {
        mcig_prefix_hasher_init(&h, 64, max, got->h);
        assert_int_equal(scan_split(body, len, split, s, &h), MCIG_BODY_OK);

        if (h.nblocks != out->n
            || memcmp(got->h, out->h, out->n * sizeof(uint64_t)) != 0)
        {
            fail_msg("body of %zu bytes split at %zu: other hashes", len,
                     split);
        }
    }

    free(got);
    free(s);
}


/* what the scanner should give: the stream hashed and seeded directly */
static uint32_t
direct(const char *stream, size_t len, const char *model, const char *salt,
    uint32_t max, uint64_t *out)
{
    uint64_t              sv;
    mcig_prefix_hasher_t  h;

    sv = salt ? mcig_prefix_salt_feed(MCIG_PREFIX_SALT_INIT,
                                      (const uint8_t *) salt, strlen(salt))
              : 0;

    mcig_prefix_hasher_init(&h, 64, max, out);
    mcig_prefix_hasher_feed(&h, (const uint8_t *) stream, len);

    return mcig_prefix_hasher_seed(&h,
                                   mcig_prefix_seed((const uint8_t *) model,
                                                    strlen(model), sv));
}


static void
expect_direct(const hashes_t *got, const char *stream, size_t len,
    const char *model, const char *salt, uint32_t max)
{
    hashes_t  want;

    want.n = direct(stream, len, model, salt, max, want.h);
    assert_int_equal(got->n, want.n);
    assert_memory_equal(got->h, want.h, want.n * sizeof(uint64_t));
}


/* some prose with escapes, as JSON string contents */
static char *
prose(size_t len, int seed)
{
    size_t  i;
    char   *p = malloc(len + 1);

    for (i = 0; i < len; i++) {
        p[i] = (char) ('a' + (i * 7 + (size_t) seed * 3 + i / 11) % 26);

        if (i % 37 == 36) {
            p[i] = ' ';
        }
    }

    /* a two-byte and a \u escape, kept raw by the hasher */
    if (len > 40) {
        memcpy(p + 20, "\\n", 2);
        memcpy(p + 30, "\\u00e9", 6);
    }

    p[len] = '\0';
    return p;
}


static void
test_completions_prompt(void **state)
{
    char      *p, *body;
    hashes_t  *a, *b;

    (void) state;

    p = prose(1000, 1);
    body = malloc(2000);
    a = malloc(sizeof(*a));
    b = malloc(sizeof(*b));

    /* the raw bytes of the string: 15 whole blocks of 1000 bytes */
    sprintf(body, "{\"model\":\"m\",\"prompt\":\"%s\",\"max_tokens\":9}", p);
    scan_hashes(body, HMAX, a);
    assert_int_equal(a->n, 15);
    expect_direct(a, p, 1000, "m", NULL, HMAX);

    /* the model after the prompt: the same hashes */
    sprintf(body, "{\"prompt\":\"%s\",\"max_tokens\":9,\"model\":\"m\"}", p);
    scan_hashes(body, HMAX, b);
    assert_int_equal(b->n, 15);
    assert_memory_equal(a->h, b->h, sizeof(uint64_t) * 15);

    /* the first prompt of a batch */
    sprintf(body, "{\"model\":\"m\",\"prompt\":[\"%s\",\"other\"]}", p);
    scan_hashes(body, HMAX, b);
    assert_memory_equal(a->h, b->h, sizeof(uint64_t) * 15);
    assert_int_equal(b->n, 15);

    /* token ids are not hashed; nested prompts do not count */
    scan_hashes("{\"model\":\"m\",\"prompt\":[[1,2,3],\"text\"]}", HMAX, b);
    assert_int_equal(b->n, 0);
    sprintf(body, "{\"model\":\"m\",\"x\":{\"prompt\":\"%s\"}}", p);
    scan_hashes(body, HMAX, b);
    assert_int_equal(b->n, 0);

    /* the last duplicate wins */
    sprintf(body, "{\"model\":\"m\",\"prompt\":\"%.500s\",\"prompt\":\"%s\"}",
            p + 100, p);
    scan_hashes(body, HMAX, b);
    assert_int_equal(b->n, 15);
    assert_memory_equal(a->h, b->h, sizeof(uint64_t) * 15);

    /* another model: no block in common */
    sprintf(body, "{\"model\":\"m2\",\"prompt\":\"%s\"}", p);
    scan_hashes(body, HMAX, b);
    assert_int_equal(b->n, 15);

    for (int i = 0; i < 15; i++) {
        for (int j = 0; j < 15; j++) {
            assert_true(a->h[i] != b->h[j]);
        }
    }

    /* a cache_salt, before or after, seeds them too */
    sprintf(body, "{\"cache_salt\":\"s\\\"1\",\"model\":\"m\",\"prompt\":"
            "\"%s\"}", p);
    scan_hashes(body, HMAX, b);
    expect_direct(b, p, 1000, "m", "s\\\"1", HMAX);
    assert_true(a->h[0] != b->h[0]);
    sprintf(body, "{\"model\":\"m\",\"prompt\":\"%s\",\"cache_salt\":"
            "\"s\\\"1\"}", p);
    scan_hashes(body, HMAX, a);
    assert_memory_equal(a->h, b->h, sizeof(uint64_t) * 15);

    free(a);
    free(b);
    free(body);
    free(p);
}


static void
test_chat_messages(void **state)
{
    char      *sys, *u1, *u2, *body, *stream;
    size_t     n, common;
    uint32_t   i;
    hashes_t  *a, *b;

    (void) state;

    sys = prose(700, 2);
    u1 = prose(300, 3);
    u2 = prose(300, 4);
    body = malloc(4000);
    stream = malloc(4000);
    a = malloc(sizeof(*a));
    b = malloc(sizeof(*b));

    sprintf(body, "{\"model\":\"chat\",\"messages\":["
            "{\"role\":\"system\",\"content\":\"%s\"},"
            "{\"role\":\"user\",\"content\":\"%s\"}],\"stream\":true}",
            sys, u1);
    scan_hashes(body, HMAX, a);

    /* 0x1e per message, 0x01 + role, 0x02 + content, raw */
    n = (size_t) sprintf(stream, "\x1e\x01system\x02%s\x1e\x01user\x02%s",
                         sys, u1);
    expect_direct(a, stream, n, "chat", NULL, HMAX);
    assert_int_equal(a->n, n / 64);

    /* the same system prompt, another question, model last */
    sprintf(body, "{\"messages\":["
            "{\"role\":\"system\",\"content\":\"%s\"},"
            "{\"role\":\"user\",\"content\":\"%s\"}],\"model\":\"chat\"}",
            sys, u2);
    scan_hashes(body, HMAX, b);
    assert_int_equal(b->n, a->n);

    /* leading blocks in common, up to where the question starts */
    common = strlen("\x1e\x01system\x02") + 700 + strlen("\x1e\x01user\x02");

    for (i = 0; i < a->n; i++) {
        if (i < common / 64) {
            assert_true(a->h[i] == b->h[i]);

        } else {
            assert_true(a->h[i] != b->h[i]);
        }
    }

    /* content as an array of text parts counts as the same text */
    sprintf(body, "{\"model\":\"chat\",\"messages\":["
            "{\"role\":\"system\",\"content\":[{\"type\":\"text\","
            "\"text\":\"%s\"}]},"
            "{\"role\":\"user\",\"content\":[{\"text\":\"%s\",\"type\":"
            "\"text\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
            "\"data:x\"}}]}]}", sys, u1);
    scan_hashes(body, HMAX, b);
    assert_int_equal(b->n, a->n);
    assert_memory_equal(a->h, b->h, a->n * sizeof(uint64_t));

    /* keys of no interest are skipped, in any order */
    sprintf(body, "{\"temperature\":0.5,\"messages\":["
            "{\"name\":\"x\",\"role\":\"system\",\"content\":\"%s\","
            "\"extra\":[\"content\",{\"text\":\"no\"}]},"
            "{\"role\":\"user\",\"content\":\"%s\"}],\"model\":\"chat\"}",
            sys, u1);
    scan_hashes(body, HMAX, b);
    assert_memory_equal(a->h, b->h, a->n * sizeof(uint64_t));

    /* a role after the content is hashed where it is */
    sprintf(body, "{\"model\":\"chat\",\"messages\":["
            "{\"content\":\"%s\",\"role\":\"system\"}]}", sys);
    scan_hashes(body, HMAX, b);
    n = (size_t) sprintf(stream, "\x1e\x02%s\x01system", sys);
    expect_direct(b, stream, n, "chat", NULL, HMAX);

    /* at most the configured blocks, the first ones */
    sprintf(body, "{\"model\":\"chat\",\"messages\":["
            "{\"role\":\"system\",\"content\":\"%s\"},"
            "{\"role\":\"user\",\"content\":\"%s\"}],\"stream\":true}",
            sys, u1);
    scan_hashes(body, 4, b);
    assert_int_equal(b->n, 4);
    assert_memory_equal(a->h, b->h, 4 * sizeof(uint64_t));
    scan_hashes(body, 0, b);
    assert_int_equal(b->n, 0);

    free(a);
    free(b);
    free(body);
    free(stream);
    free(sys);
    free(u1);
    free(u2);
}


static void
test_hashing_keeps_verdicts(void **state)
{
    size_t                 i, len;
    uint64_t               out[HMAX];
    mcig_body_scan_t      *s;
    mcig_prefix_hasher_t   h;
    static const char     *bodies[] = {
        "{\"model\":\"m\",\"prompt\":\"a\\x\"}",
        "{\"model\":\"m\",\"prompt\":\"abc",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"u\","
        "\"content\":\"a\nb\"}]}",
        "{\"messages\":[{\"role\":\"u\",\"content\":\"abc\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":1,\"content\":[1,{}]}],"
        "\"prompt\":{\"a\":[\"b\"]},\"cache_salt\":7}",
        "{\"model\":\"m\",\"messages\":\"x\",\"prompt\":null}",
        "{\"model\":\"\",\"prompt\":\"abc\"}",
    };

    (void) state;

    s = malloc(sizeof(*s));

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        mcig_body_rc_e  plain;

        len = strlen(bodies[i]);
        plain = scan_split(bodies[i], len, len, s, NULL);
        mcig_prefix_hasher_init(&h, 64, HMAX, out);
        assert_int_equal(scan_split(bodies[i], len, len, s, &h), plain);
    }

    /* a body with an odd structure is still hashed where it counts */
    mcig_prefix_hasher_init(&h, 16, HMAX, out);
    assert_int_equal(scan_split(bodies[4], strlen(bodies[4]),
                                strlen(bodies[4]), s, &h), MCIG_BODY_OK);
    assert_int_equal(h.nblocks, 0);

    free(s);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_bodies),
        cmocka_unit_test(test_values_of_every_kind),
        cmocka_unit_test(test_nested_model_does_not_count),
        cmocka_unit_test(test_last_duplicate_wins),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_bad_model_names),
        cmocka_unit_test(test_model_length_limit),
        cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_large_body),
        cmocka_unit_test(test_error_is_sticky),
        cmocka_unit_test(test_utf8_printable),
        cmocka_unit_test(test_model_value_place),
        cmocka_unit_test(test_completions_prompt),
        cmocka_unit_test(test_chat_messages),
        cmocka_unit_test(test_hashing_keeps_verdicts),
    };

    return cmocka_run_group_tests_name("body scanner", tests, NULL, NULL);
}
