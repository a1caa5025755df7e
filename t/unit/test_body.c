/*
 * Unit tests of the body scanner: every case is also fed split at every
 * byte and one byte at a time, which must give the same answer.
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
    };

    return cmocka_run_group_tests_name("body scanner", tests, NULL, NULL);
}
