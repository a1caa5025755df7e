/*
 * Copyright (C) ngx_mcig_module authors
 *
 * Incremental scanner that finds the top-level "model" string of a JSON
 * request body.  Pure C, no nginx headers: the body is fed in chunks as it
 * arrives, in one pass, without copying it; only the decoded model name is
 * kept (in a fixed buffer inside the scanner).
 */

#ifndef MCIG_BODY_H
#define MCIG_BODY_H

#include <stddef.h>
#include <stdint.h>


/* longest model name accepted, in bytes of UTF-8 after unescaping */
#define MCIG_MODEL_MAX        256

/* deepest nesting of objects and arrays accepted */
#define MCIG_BODY_MAX_DEPTH   512


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
    uint32_t        str_role;     /* skip, top-level key, model value */
    uint32_t        esc;          /* position inside an escape sequence */
    uint32_t        code;         /* \uXXXX being read */
    uint32_t        high;         /* pending high surrogate, 0 if none */
    uint32_t        key_pos;      /* bytes of "model" matched by the key */
    uint32_t        key_is_model; /* last top-level key was "model" */
    uint32_t        str_is_key;

    /* literal (true, false, null) being read */
    const char     *literal;
    uint32_t        literal_pos;

    uint32_t        model_state;  /* mcig_model_state_e */
    uint32_t        model_len;
    uint8_t         stack[MCIG_BODY_MAX_DEPTH / 8];   /* 1 bit: object */
    char            model[MCIG_MODEL_MAX + 1];
} mcig_body_scan_t;


void mcig_body_scan_init(mcig_body_scan_t *s);

/*
 * Feeds the next chunk.  Returns MCIG_BODY_AGAIN while the input is
 * acceptable so far, or the error that makes it unacceptable; once an
 * error is returned further input is ignored.
 */
mcig_body_rc_e mcig_body_scan_feed(mcig_body_scan_t *s, const uint8_t *p,
    size_t len);

/* Ends the input: MCIG_BODY_OK with s->model set, or why not. */
mcig_body_rc_e mcig_body_scan_finish(mcig_body_scan_t *s);

/* A sentence for a result code, suitable for an error message. */
const char *mcig_body_rc_text(mcig_body_rc_e rc);

/* Checks that s[0..len) is UTF-8 without control characters. */
int mcig_utf8_printable(const uint8_t *s, size_t len);


#endif /* MCIG_BODY_H */
