/*
 * Copyright (C) ngx_mcig_module authors
 *
 * The OpenAI-style error body {"error":{"message","type","param","code"}}.
 */

#ifndef MCIG_JSON_H
#define MCIG_JSON_H

#include <stddef.h>


/*
 * Writes src[0..len) as the inside of a JSON string into dst, which must
 * hold mcig_json_escaped_len(src, len) bytes; returns the bytes written.
 * Bytes that are not printable ASCII are written as \u00XX, so the output
 * is safe in logs and headers whatever the input.
 */
size_t mcig_json_escaped_len(const char *src, size_t len);
size_t mcig_json_escape(char *dst, const char *src, size_t len);

/* bytes mcig_error_json() needs for this message */
size_t mcig_error_json_len(const char *message, size_t len, const char *type,
    const char *code);

/* writes the error body into buf, returns its length */
size_t mcig_error_json(char *buf, const char *message, size_t len,
    const char *type, const char *code);


#endif /* MCIG_JSON_H */
