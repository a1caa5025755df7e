/*
 * Copyright (C) ngx_mcig_module authors
 *
 * Incremental scanner that finds the top-level "model" string of a JSON
 * request body.  Pure C, no nginx headers: the body is fed in chunks as it
 * arrives, in one pass, without copying it; only the decoded model name is
 * kept (in a fixed buffer inside the scanner), with where its value lies in
 * the body.
 *
 * Given a prefix hasher (mcig_body_scan_set_hasher()), the same pass feeds
 * it the prompt, raw bytes of the JSON strings as they are in the body
 * (escapes not decoded: the same text gives the same bytes):
 *
 *   - "prompt" (/v1/completions): the string, or the first element of an
 *     array when it is a string (a batch is routed by its first prompt;
 *     token-id prompts are not hashed);
 *   - "messages" (chat): for each message, 0x1e, then in the order of the
 *     body 0x01 + "role" and 0x02 + "content" when a string, or 0x02 +
 *     "text" of each part when "content" is an array of parts.
 *
 * Control bytes never occur raw inside a JSON string, so the separators
 * cannot be forged by content, and messages that start alike (a shared
 * system prompt) give the same leading blocks.  Only top-level keys count;
 * a later duplicate of "prompt" or "messages" starts the hashing over (the
 * last one wins, as for "model").  Hashing stops at the hasher's block
 * limit; strings not hashed keep the scanner's fast path.  The top-level
 * "cache_salt" string is hashed apart (its first MCIG_BODY_SALT_MAX raw
 * bytes) and, with the model name, seeds the block hashes when the scan
 * finishes.
 */

#ifndef MCIG_BODY_H
#define MCIG_BODY_H

#include <stddef.h>
#include <stdint.h>

#include "mcig_prefix.h"


/* longest model name accepted, in bytes of UTF-8 after unescaping */
#define MCIG_MODEL_MAX        256

/* deepest nesting of objects and arrays accepted */
#define MCIG_BODY_MAX_DEPTH   512

/* raw bytes of "cache_salt" that count */
#define MCIG_BODY_SALT_MAX    256

/* keys decoded: top level, messages, content parts; longest name kept */
#define MCIG_BODY_CTX_DEPTH   6
#define MCIG_BODY_KEY_MAX     12


typedef enum {
    MCIG_BODY_OK = 0,             /* valid JSON object with a model string */
    MCIG_BODY_AGAIN,              /* more input needed */
    MCIG_BODY_EMPTY,              /* no bytes besides whitespace */
    MCIG_BODY_INVALID_JSON,
    MCIG_BODY_NOT_OBJECT,
    MCIG_BODY_TOO_DEEP,
    MCIG_BODY_NO_MODEL,
    MCIG_BODY_MODEL_NOT_STRING,
    MCIG_BODY_MODEL_TOO_LONG,
    MCIG_BODY_MODEL_INVALID       /* empty, control bytes or bad UTF-8 */
} mcig_body_rc_e;


typedef enum {
    MCIG_MODEL_ABSENT = 0,
    MCIG_MODEL_STRING,
    MCIG_MODEL_NOT_STRING,
    MCIG_MODEL_TOO_LONG
} mcig_model_state_e;


typedef struct {
    uint64_t        offset;       /* bytes consumed so far */
    uint32_t        state;
    uint32_t        depth;        /* open objects and arrays */
    uint32_t        error;        /* mcig_body_rc_e once failed, else 0 */

    /* string being read */
    uint32_t        str_role;     /* skip, key, model value, hashed, salt */
    uint32_t        esc;          /* position inside an escape sequence */
    uint32_t        code;         /* \uXXXX being read */
    uint32_t        high;         /* pending high surrogate, 0 if none */
    uint32_t        key_len;      /* bytes of the key decoded into key[] */
    uint32_t        key_id;       /* the key just read, if one that counts */
    uint32_t        str_is_key;

    /* literal (true, false, null) being read */
    const char     *literal;
    uint32_t        literal_pos;

    uint32_t        model_state;  /* mcig_model_state_e */
    uint32_t        model_len;

    /*
     * The model value of the last "model" key, opening and closing quotes
     * included, in bytes from the start of the body: where a rewrite goes.
     * Valid when the scan finished with MCIG_BODY_OK.
     */
    uint64_t        model_value_offset;
    uint64_t        model_value_len;
    uint64_t        model_value_start;

    /* prompt hashing, NULL if off */
    mcig_prefix_hasher_t  *hasher;
    uint64_t        salt;         /* of "cache_salt", 0 if none */
    uint32_t        salt_len;
    uint32_t        prompt_first; /* the first element of "prompt" next */

    uint8_t         ctx[MCIG_BODY_CTX_DEPTH];  /* container at each depth */
    uint8_t         key[MCIG_BODY_KEY_MAX];

    uint8_t         stack[MCIG_BODY_MAX_DEPTH / 8];   /* 1 bit: object */
    char            model[MCIG_MODEL_MAX + 1];
} mcig_body_scan_t;


void mcig_body_scan_init(mcig_body_scan_t *s);

/*
 * Hashes the prompt into h (initialised by the caller, reset here) during
 * the scan; call after init, before the first feed.  When the scan ends
 * with MCIG_BODY_OK, h's blocks are seeded with the model name and the
 * cache_salt; NULL (the default) turns hashing off.
 */
void mcig_body_scan_set_hasher(mcig_body_scan_t *s, mcig_prefix_hasher_t *h);

/*
 * Feeds the next chunk.  Returns MCIG_BODY_AGAIN while the input is
 * acceptable so far, or the error that makes it unacceptable; once an
 * error is returned further input is ignored.
 */
mcig_body_rc_e mcig_body_scan_feed(mcig_body_scan_t *s, const uint8_t *p,
    size_t len);

/*
 * Ends the input: MCIG_BODY_OK with s->model and s->model_value_* set
 * (and the hasher's blocks seeded), or why not.
 */
mcig_body_rc_e mcig_body_scan_finish(mcig_body_scan_t *s);

/* A sentence for a result code, suitable for an error message. */
const char *mcig_body_rc_text(mcig_body_rc_e rc);

/* Checks that s[0..len) is UTF-8 without control characters. */
int mcig_utf8_printable(const uint8_t *s, size_t len);


#endif /* MCIG_BODY_H */
