/*
 * Copyright (C) ngx_mcig_module authors
 */

#include <string.h>

#include "mcig_json.h"


static const char  head[] = "{\"error\":{\"message\":\"";
static const char  mid_type[] = "\",\"type\":\"";
static const char  mid_code[] = "\",\"param\":null,\"code\":\"";
static const char  tail[] = "\"}}\n";


size_t
mcig_json_escaped_len(const char *src, size_t len)
{
    size_t  i, n;

    n = 0;

    for (i = 0; i < len; i++) {
        unsigned char  c = (unsigned char) src[i];

        if (c == '"' || c == '\\') {
            n += 2;

        } else if (c < 0x20 || c >= 0x7f) {
            n += 6;

        } else {
            n++;
        }
    }

    return n;
}


size_t
mcig_json_escape(char *dst, const char *src, size_t len)
{
    static const char  hex[] = "0123456789abcdef";
    size_t             i;
    char              *p;

    p = dst;

    for (i = 0; i < len; i++) {
        unsigned char  c = (unsigned char) src[i];

        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = (char) c;

        } else if (c < 0x20 || c >= 0x7f) {
            *p++ = '\\';
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0xf];

        } else {
            *p++ = (char) c;
        }
    }

    return (size_t) (p - dst);
}


size_t
mcig_error_json_len(const char *message, size_t len, const char *type,
    const char *code)
{
    return sizeof(head) - 1 + mcig_json_escaped_len(message, len)
           + sizeof(mid_type) - 1 + strlen(type)
           + sizeof(mid_code) - 1 + strlen(code)
           + sizeof(tail) - 1;
}


size_t
mcig_error_json(char *buf, const char *message, size_t len, const char *type,
    const char *code)
{
    char  *p;

    p = buf;

    memcpy(p, head, sizeof(head) - 1);
    p += sizeof(head) - 1;
    p += mcig_json_escape(p, message, len);
    memcpy(p, mid_type, sizeof(mid_type) - 1);
    p += sizeof(mid_type) - 1;
    memcpy(p, type, strlen(type));
    p += strlen(type);
    memcpy(p, mid_code, sizeof(mid_code) - 1);
    p += sizeof(mid_code) - 1;
    memcpy(p, code, strlen(code));
    p += strlen(code);
    memcpy(p, tail, sizeof(tail) - 1);
    p += sizeof(tail) - 1;

    return (size_t) (p - buf);
}
