/*
 * Copyright (C) ngx_mcig_module authors
 *
 * libFuzzer target of the OpenAI error body writer (mcig_json).
 *
 * Input: the message, any bytes, NUL included (a model name or a member's
 * answer can end up in a message).  The body must have the length
 * announced, be printable ASCII but its final LF, escape every quote of
 * the message, and decode back to the message.
 *
 *     util/fuzz.sh json
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcig_json.h"


#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_json: %s:%d: check failed: %s\n",         \
                    __FILE__, __LINE__, #cond);                             \
            abort();                                                        \
        }                                                                   \
    } while (0)


static const char  head[] = "{\"error\":{\"message\":\"";
static const char  mid_type[] = "\",\"type\":\"";
static const char  mid_code[] = "\",\"param\":null,\"code\":\"";
static const char  tail[] = "\"}}\n";

/* types and codes the module writes */
static const char  *types[] = {
    "invalid_request_error", "server_error", ""
};

static const char  *codes[] = {
    "model_not_found", "service_unavailable", "request_timeout", ""
};


static int
hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/*
 * Decodes the escaped message in s[0..len) into dst; returns its length.
 * Aborts on a quote not escaped or an escape the writer does not make.
 */
static size_t
decode(uint8_t *dst, const char *s, size_t len)
{
    int     hi, lo;
    size_t  i, n;

    for (i = 0, n = 0; i < len; n++) {

        CHECK(s[i] != '"');

        if (s[i] != '\\') {
            dst[n] = (uint8_t) s[i++];
            continue;
        }

        CHECK(i + 1 < len);

        if (s[i + 1] == '"' || s[i + 1] == '\\') {
            dst[n] = (uint8_t) s[i + 1];
            i += 2;
            continue;
        }

        CHECK(s[i + 1] == 'u');
        CHECK(i + 5 < len);
        CHECK(s[i + 2] == '0' && s[i + 3] == '0');

        hi = hex_digit(s[i + 4]);
        lo = hex_digit(s[i + 5]);
        CHECK(hi >= 0 && lo >= 0);

        dst[n] = (uint8_t) (hi << 4 | lo);

        /* only bytes that are not printable ASCII are written as \u00XX */
        CHECK(dst[n] < 0x20 || dst[n] >= 0x7f);

        i += 6;
    }

    return n;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char        *msg, *buf, *esc;
    size_t       len, written, i, mlen, tlen, clen, elen;
    uint8_t     *back;
    const char  *type, *code;

    type = types[size % (sizeof(types) / sizeof(types[0]))];
    code = codes[size % (sizeof(codes) / sizeof(codes[0]))];
    tlen = strlen(type);
    clen = strlen(code);

    /* a copy of exactly size bytes: no terminating NUL to rely on */
    msg = malloc(size ? size : 1);
    CHECK(msg != NULL);
    memcpy(msg, data, size);

    len = mcig_error_json_len(msg, size, type, code);

    /* exactly len bytes, so that ASan catches one written past them */
    buf = malloc(len);
    CHECK(buf != NULL);

    written = mcig_error_json(buf, msg, size, type, code);
    CHECK(written == len);

    for (i = 0; i + 1 < len; i++) {
        CHECK((unsigned char) buf[i] >= 0x20 && (unsigned char) buf[i] < 0x7f);
    }

    CHECK(buf[len - 1] == '\n');

    /* the frame around the message */
    CHECK(len >= sizeof(head) - 1 + sizeof(mid_type) - 1 + tlen
                 + sizeof(mid_code) - 1 + clen + sizeof(tail) - 1);
    CHECK(memcmp(buf, head, sizeof(head) - 1) == 0);

    mlen = len - (sizeof(head) - 1) - (sizeof(mid_type) - 1) - tlen
           - (sizeof(mid_code) - 1) - clen - (sizeof(tail) - 1);

    i = sizeof(head) - 1 + mlen;
    CHECK(memcmp(buf + i, mid_type, sizeof(mid_type) - 1) == 0);
    i += sizeof(mid_type) - 1;
    CHECK(memcmp(buf + i, type, tlen) == 0);
    i += tlen;
    CHECK(memcmp(buf + i, mid_code, sizeof(mid_code) - 1) == 0);
    i += sizeof(mid_code) - 1;
    CHECK(memcmp(buf + i, code, clen) == 0);
    i += clen;
    CHECK(memcmp(buf + i, tail, sizeof(tail) - 1) == 0);

    /* every quote of the message escaped, and the message decodes back */
    back = malloc(mlen ? mlen : 1);
    CHECK(back != NULL);
    CHECK(decode(back, buf + sizeof(head) - 1, mlen) == size);
    CHECK(size == 0 || memcmp(back, data, size) == 0);

    /* the escaper alone agrees with its length function */
    elen = mcig_json_escaped_len(msg, size);
    CHECK(elen == mlen);

    esc = malloc(elen ? elen : 1);
    CHECK(esc != NULL);
    CHECK(mcig_json_escape(esc, msg, size) == elen);
    CHECK(elen == 0 || memcmp(esc, buf + sizeof(head) - 1, elen) == 0);

    free(esc);
    free(back);
    free(buf);
    free(msg);

    return 0;
}
