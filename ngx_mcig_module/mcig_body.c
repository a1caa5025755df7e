/*
 * Copyright (C) ngx_mcig_module authors
 *
 * A resumable byte-level JSON validator that decodes only what routing needs:
 * the keys of the top-level object and the value of its "model" key.  Every
 * other string is skipped 16 bytes at a time, which is where almost all bytes
 * of a chat or completion body are.  Strings of the prompt, when hashed, are
 * cut by the same 16-byte skip and handed to the hasher a span at a time.
 *
 * The containers that lead to the prompt are followed with one small kind
 * per depth (ctx[]), set when a container opens: the top object, "prompt"
 * and "messages" arrays, message objects, "content" arrays and their part
 * objects.  Keys are decoded only inside the objects among these.
 */

#include <string.h>

#include "mcig_body.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif


enum {
    S_START = 0,          /* before the top-level value */
    S_VALUE,              /* a value must follow */
    S_VALUE_OR_CLOSE,     /* after '[' */
    S_KEY_OR_CLOSE,       /* after '{' */
    S_KEY,                /* after ',' inside an object */
    S_COLON,
    S_AFTER,              /* after a value inside an object or array */
    S_STRING,
    S_NUM_MINUS,
    S_NUM_ZERO,
    S_NUM_INT,
    S_NUM_DOT,
    S_NUM_FRAC,
    S_NUM_E,
    S_NUM_ESIGN,
    S_NUM_EXP,
    S_LITERAL,
    S_END                 /* after the top-level value */
};


enum {
    ROLE_SKIP = 0,
    ROLE_KEY,             /* a key that may count: decoded */
    ROLE_MODEL,           /* the value of the top-level "model" key */
    ROLE_HASH,            /* prompt text: raw bytes to the hasher */
    ROLE_SALT             /* "cache_salt": raw bytes to the salt */
};

#define DECODED(role)  ((role) == ROLE_KEY || (role) == ROLE_MODEL)


/* kinds of containers, in ctx[] */
enum {
    K_NONE = 0,
    K_TOP,                /* the body's object */
    K_PROMPT,             /* "prompt": [...] */
    K_MESSAGES,           /* "messages": [...] */
    K_MESSAGE,            /* {"role": ..., "content": ...} */
    K_CONTENT,            /* "content": [...] */
    K_PART                /* {"type": "text", "text": ...} */
};


enum {
    KEY_OTHER = 0,
    KEY_MODEL,
    KEY_PROMPT,
    KEY_MESSAGES,
    KEY_SALT,
    KEY_ROLE,
    KEY_CONTENT,
    KEY_TEXT
};


/* bytes fed between the strings of messages: no JSON string holds them */
#define SEP_MESSAGE   0x1e
#define TAG_ROLE      0x01
#define TAG_CONTENT   0x02


typedef struct {
    uint8_t      kind;
    uint8_t      id;
    uint8_t      len;
    const char  *name;
} known_key_t;


static const known_key_t  known_keys[] = {
    { K_TOP, KEY_MODEL, 5, "model" },
    { K_TOP, KEY_PROMPT, 6, "prompt" },
    { K_TOP, KEY_MESSAGES, 8, "messages" },
    { K_TOP, KEY_SALT, 10, "cache_salt" },
    { K_MESSAGE, KEY_ROLE, 4, "role" },
    { K_MESSAGE, KEY_CONTENT, 7, "content" },
    { K_PART, KEY_TEXT, 4, "text" }
};


static int
is_ws(uint8_t c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}


static int
hex_value(uint8_t c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


static void
emit_byte(mcig_body_scan_t *s, uint8_t c)
{
    if (s->str_role == ROLE_KEY) {
        /* a key longer than key[] matches nothing: its length says so */
        if (s->key_len < MCIG_BODY_KEY_MAX) {
            s->key[s->key_len++] = c;

        } else {
            s->key_len = MCIG_BODY_KEY_MAX + 1;
        }

        return;
    }

    if (s->model_len < MCIG_MODEL_MAX) {
        s->model[s->model_len++] = (char) c;

    } else {
        s->model_state = MCIG_MODEL_TOO_LONG;
    }
}


/* surrogates are encoded as they are, so that validation rejects them */
static void
emit_code_point(mcig_body_scan_t *s, uint32_t cp)
{
    if (cp < 0x80) {
        emit_byte(s, (uint8_t) cp);

    } else if (cp < 0x800) {
        emit_byte(s, (uint8_t) (0xc0 | (cp >> 6)));
        emit_byte(s, (uint8_t) (0x80 | (cp & 0x3f)));

    } else if (cp < 0x10000) {
        emit_byte(s, (uint8_t) (0xe0 | (cp >> 12)));
        emit_byte(s, (uint8_t) (0x80 | ((cp >> 6) & 0x3f)));
        emit_byte(s, (uint8_t) (0x80 | (cp & 0x3f)));

    } else {
        emit_byte(s, (uint8_t) (0xf0 | (cp >> 18)));
        emit_byte(s, (uint8_t) (0x80 | ((cp >> 12) & 0x3f)));
        emit_byte(s, (uint8_t) (0x80 | ((cp >> 6) & 0x3f)));
        emit_byte(s, (uint8_t) (0x80 | (cp & 0x3f)));
    }
}


static void
flush_high_surrogate(mcig_body_scan_t *s)
{
    if (s->high) {
        emit_code_point(s, s->high);
        s->high = 0;
    }
}


static void
emit_escaped(mcig_body_scan_t *s, uint32_t cp)
{
    if (s->high) {
        if (cp >= 0xdc00 && cp <= 0xdfff) {
            emit_code_point(s, 0x10000 + ((s->high - 0xd800) << 10)
                               + (cp - 0xdc00));
            s->high = 0;
            return;
        }

        flush_high_surrogate(s);
    }

    if (cp >= 0xd800 && cp <= 0xdbff) {
        s->high = cp;
        return;
    }

    emit_code_point(s, cp);
}


/*
 * Skips the inside of a string whose contents do not matter, up to the
 * closing quote, a control byte (invalid) or an escape that cannot be
 * checked here (\u, or one cut by the end of the buffer).  Two-byte escapes
 * are checked and skipped in place: chat bodies have one every few dozen
 * bytes, and leaving the loop for each costs more than the loop itself.
 */

#if defined(__SSE2__)

/* 0xff in each lane holding '"', '\\' or a byte below 0x20 */
static inline __m128i
special_bytes(__m128i v, __m128i quote, __m128i bslash, __m128i ctl)
{
    __m128i  m;

    m = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash));

    /* unsigned v <= 0x1f exactly when max(v, 0x1f) == 0x1f */
    return _mm_or_si128(m, _mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl));
}

#endif


static const uint8_t *
skip_plain(const uint8_t *p, const uint8_t *end)
{
#if defined(__SSE2__)
    const __m128i  quote = _mm_set1_epi8('"');
    const __m128i  bslash = _mm_set1_epi8('\\');
    const __m128i  ctl = _mm_set1_epi8(0x1f);
#endif

    for ( ;; ) {

#if defined(__SSE2__)
        while (end - p >= 16) {
            __m128i  v, m;
            int      mask;

            v = _mm_loadu_si128((const __m128i *) p);
            m = special_bytes(v, quote, bslash, ctl);
            mask = _mm_movemask_epi8(m);

            if (mask) {
                p += __builtin_ctz((unsigned) mask);
                goto special;
            }

            p += 16;
        }
#endif

        while (p < end && *p != '"' && *p != '\\' && *p >= 0x20) {
            p++;
        }

#if defined(__SSE2__)
    special:
#endif

        if (p + 1 >= end || *p != '\\') {
            return p;
        }

        switch (p[1]) {
        case '"': case '\\': case '/': case 'b':
        case 'f': case 'n': case 'r': case 't':
            p += 2;
            continue;
        }

        return p;
    }
}


static mcig_body_rc_e
fail(mcig_body_scan_t *s, mcig_body_rc_e rc)
{
    s->error = rc;
    return rc;
}


static uint32_t
ctx_of(mcig_body_scan_t *s)
{
    return (s->depth < MCIG_BODY_CTX_DEPTH) ? s->ctx[s->depth] : K_NONE;
}


/* opens an object or array of a kind; returns 0 or an error code */
static mcig_body_rc_e
push(mcig_body_scan_t *s, int object, uint32_t kind)
{
    if (s->depth == MCIG_BODY_MAX_DEPTH) {
        return fail(s, MCIG_BODY_TOO_DEEP);
    }

    if (object) {
        s->stack[s->depth / 8] |= (uint8_t) (1u << (s->depth % 8));

    } else {
        s->stack[s->depth / 8] &= (uint8_t) ~(1u << (s->depth % 8));
    }

    s->depth++;

    if (s->depth < MCIG_BODY_CTX_DEPTH) {
        s->ctx[s->depth] = (uint8_t) kind;
    }

    return 0;
}


static uint32_t
key_id(mcig_body_scan_t *s)
{
    size_t    i;
    uint32_t  kind = ctx_of(s);

    for (i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++) {
        if (known_keys[i].kind == kind && known_keys[i].len == s->key_len
            && memcmp(known_keys[i].name, s->key, s->key_len) == 0)
        {
            return known_keys[i].id;
        }
    }

    return KEY_OTHER;
}


static int
hashing(mcig_body_scan_t *s)
{
    return s->hasher != NULL && !mcig_prefix_hasher_full(s->hasher);
}


static void
hash_byte(mcig_body_scan_t *s, uint8_t c)
{
    mcig_prefix_hasher_feed(s->hasher, &c, 1);
}


/* raw bytes of a hashed or salt string */
static void
raw_bytes(mcig_body_scan_t *s, const uint8_t *p, size_t n)
{
    if (s->str_role == ROLE_HASH) {
        mcig_prefix_hasher_feed(s->hasher, p, n);

        /* the rest of the string takes the fast path */
        if (mcig_prefix_hasher_full(s->hasher)) {
            s->str_role = ROLE_SKIP;
        }

        return;
    }

    if (n > MCIG_BODY_SALT_MAX - s->salt_len) {
        n = MCIG_BODY_SALT_MAX - s->salt_len;
    }

    s->salt = mcig_prefix_salt_feed(s->salt, p, n);
    s->salt_len += (uint32_t) n;

    if (s->salt_len == MCIG_BODY_SALT_MAX) {
        s->str_role = ROLE_SKIP;
    }
}


static int
top_is_object(mcig_body_scan_t *s)
{
    uint32_t  d = s->depth - 1;

    return (s->stack[d / 8] >> (d % 8)) & 1;
}


static void
value_done(mcig_body_scan_t *s)
{
    s->state = (s->depth == 0) ? S_END : S_AFTER;
}


/*
 * What a value is, from the container it is in and the key before it: the
 * role of a string, or the kind of the container it opens.
 */
static uint32_t
classify(mcig_body_scan_t *s, uint8_t c, uint32_t *role)
{
    uint32_t  key;

    key = s->key_id;
    s->key_id = KEY_OTHER;
    *role = ROLE_SKIP;

    switch (ctx_of(s)) {

    case K_TOP:
        switch (key) {

        case KEY_MODEL:
            s->model_value_len = 0;

            if (c != '"') {
                s->model_state = MCIG_MODEL_NOT_STRING;
                return K_NONE;
            }

            *role = ROLE_MODEL;
            s->model_state = MCIG_MODEL_STRING;
            s->model_len = 0;
            return K_NONE;

        case KEY_PROMPT:
        case KEY_MESSAGES:
            if (s->hasher == NULL) {
                return K_NONE;
            }

            /* a later duplicate replaces the first, as for "model" */
            mcig_prefix_hasher_reset(s->hasher);

            if (key == KEY_MESSAGES) {
                return (c == '[') ? K_MESSAGES : K_NONE;
            }

            if (c == '"') {
                *role = hashing(s) ? ROLE_HASH : ROLE_SKIP;
                return K_NONE;
            }

            s->prompt_first = 1;
            return (c == '[') ? K_PROMPT : K_NONE;

        case KEY_SALT:
            if (s->hasher == NULL) {
                return K_NONE;
            }

            s->salt = 0;

            if (c == '"') {
                *role = ROLE_SALT;
                s->salt = MCIG_PREFIX_SALT_INIT;
                s->salt_len = 0;
            }

            return K_NONE;
        }

        return K_NONE;

    case K_PROMPT:
        if (s->prompt_first) {
            s->prompt_first = 0;

            if (c == '"' && hashing(s)) {
                *role = ROLE_HASH;
            }
        }

        return K_NONE;

    case K_MESSAGES:
        if (c != '{' || !hashing(s)) {
            return K_NONE;
        }

        hash_byte(s, SEP_MESSAGE);
        return K_MESSAGE;

    case K_MESSAGE:
        if (!hashing(s)) {
            return K_NONE;
        }

        if (key == KEY_ROLE && c == '"') {
            hash_byte(s, TAG_ROLE);
            *role = ROLE_HASH;
            return K_NONE;
        }

        if (key != KEY_CONTENT) {
            return K_NONE;
        }

        if (c == '"') {
            hash_byte(s, TAG_CONTENT);
            *role = ROLE_HASH;
            return K_NONE;
        }

        return (c == '[') ? K_CONTENT : K_NONE;

    case K_CONTENT:
        return (c == '{' && hashing(s)) ? K_PART : K_NONE;

    case K_PART:
        /* a text part counts as a string content would */
        if (key == KEY_TEXT && c == '"' && hashing(s)) {
            hash_byte(s, TAG_CONTENT);
            *role = ROLE_HASH;
        }

        return K_NONE;
    }

    return K_NONE;
}


/* handles the first byte of a value; returns 0 or an error code */
static mcig_body_rc_e
start_value(mcig_body_scan_t *s, uint8_t c)
{
    uint32_t  kind, role;

    kind = classify(s, c, &role);

    switch (c) {

    case '{':
        s->state = S_KEY_OR_CLOSE;
        return push(s, 1, kind);

    case '[':
        s->state = S_VALUE_OR_CLOSE;
        return push(s, 0, kind);

    case '"':
        s->state = S_STRING;
        s->esc = 0;
        s->high = 0;
        s->str_is_key = 0;
        s->str_role = role;
        return 0;

    case '-':
        s->state = S_NUM_MINUS;
        return 0;

    case '0':
        s->state = S_NUM_ZERO;
        return 0;

    case 't':
        s->literal = "true";
        break;

    case 'f':
        s->literal = "false";
        break;

    case 'n':
        s->literal = "null";
        break;

    default:
        if (c >= '1' && c <= '9') {
            s->state = S_NUM_INT;
            return 0;
        }

        return fail(s, MCIG_BODY_INVALID_JSON);
    }

    s->literal_pos = 1;
    s->state = S_LITERAL;

    return 0;
}


static void
start_key(mcig_body_scan_t *s)
{
    s->state = S_STRING;
    s->esc = 0;
    s->high = 0;
    s->key_len = 0;
    s->str_is_key = 1;

    /* keys matter only in the objects followed: others take the skip */
    s->str_role = (ctx_of(s) != K_NONE) ? ROLE_KEY : ROLE_SKIP;
}


void
mcig_body_scan_init(mcig_body_scan_t *s)
{
    memset(s, 0, offsetof(mcig_body_scan_t, stack));
    s->state = S_START;
    s->model[0] = '\0';
}


void
mcig_body_scan_set_hasher(mcig_body_scan_t *s, mcig_prefix_hasher_t *h)
{
    s->hasher = h;

    if (h) {
        mcig_prefix_hasher_reset(h);
    }
}


mcig_body_rc_e
mcig_body_scan_feed(mcig_body_scan_t *s, const uint8_t *p, size_t len)
{
    uint8_t          c;
    mcig_body_rc_e   rc;
    const uint8_t   *start, *end;

    /* offset then tells where the input went wrong */
#define FAIL(rc)                                                            \
    do {                                                                    \
        s->offset += (uint64_t) (p - start);                                \
        return fail(s, rc);                                                 \
    } while (0)

    if (s->error) {
        return s->error;
    }

    start = p;
    end = p + len;

    while (p < end) {

        c = *p;

        switch (s->state) {

        case S_START:
            if (is_ws(c)) {
                break;
            }

            if (c != '{') {
                FAIL(MCIG_BODY_NOT_OBJECT);
            }

            s->state = S_KEY_OR_CLOSE;

            if ((rc = push(s, 1, K_TOP))) {
                FAIL(rc);
            }

            break;

        case S_VALUE_OR_CLOSE:
            if (c == ']') {
                s->depth--;
                value_done(s);
                break;
            }

            /* fall through */

        case S_VALUE:
            if (is_ws(c)) {
                break;
            }

            if ((rc = start_value(s, c))) {
                FAIL(rc);
            }

            if (s->str_role == ROLE_MODEL && s->state == S_STRING) {
                s->model_value_start = s->offset + (uint64_t) (p - start);
            }

            break;

        case S_KEY_OR_CLOSE:
            if (c == '}') {
                s->depth--;
                value_done(s);
                break;
            }

            /* fall through */

        case S_KEY:
            if (is_ws(c)) {
                break;
            }

            if (c != '"') {
                FAIL(MCIG_BODY_INVALID_JSON);
            }

            start_key(s);
            break;

        case S_COLON:
            if (is_ws(c)) {
                break;
            }

            if (c != ':') {
                FAIL(MCIG_BODY_INVALID_JSON);
            }

            s->state = S_VALUE;
            break;

        case S_AFTER:
            if (is_ws(c)) {
                break;
            }

            if (c == ',') {
                s->state = top_is_object(s) ? S_KEY : S_VALUE;
                s->key_id = KEY_OTHER;
                break;
            }

            if (c == (top_is_object(s) ? '}' : ']')) {
                s->depth--;
                value_done(s);
                break;
            }

            FAIL(MCIG_BODY_INVALID_JSON);

        case S_STRING:
            if (s->esc == 0) {

                if (s->str_role == ROLE_SKIP) {
                    p = skip_plain(p, end);

                    if (p == end) {
                        continue;
                    }

                    c = *p;

                } else if (s->str_role >= ROLE_HASH) {
                    const uint8_t  *q = skip_plain(p, end);

                    raw_bytes(s, p, (size_t) (q - p));
                    p = q;

                    if (p == end) {
                        continue;
                    }

                    c = *p;
                }

                if (c == '"') {
                    if (DECODED(s->str_role)) {
                        flush_high_surrogate(s);
                    }

                    if (s->str_is_key) {
                        s->key_id = (s->str_role == ROLE_KEY) ? key_id(s)
                                                              : KEY_OTHER;
                        s->state = S_COLON;

                    } else {
                        if (s->str_role == ROLE_MODEL) {
                            s->model_value_offset = s->model_value_start;
                            s->model_value_len = s->offset
                                                 + (uint64_t) (p - start) + 1
                                                 - s->model_value_start;
                        }

                        value_done(s);
                    }

                    s->str_role = ROLE_SKIP;
                    break;
                }

                if (c == '\\') {
                    if (s->str_role >= ROLE_HASH) {
                        raw_bytes(s, p, 1);
                    }

                    s->esc = 1;
                    break;
                }

                if (c < 0x20) {
                    FAIL(MCIG_BODY_INVALID_JSON);
                }

                if (DECODED(s->str_role)) {
                    flush_high_surrogate(s);
                    emit_byte(s, c);
                }

                break;
            }

            /* every byte of an escape goes to the hasher as it is */
            if (s->str_role >= ROLE_HASH) {
                raw_bytes(s, p, 1);
            }

            if (s->esc == 1) {
                uint8_t  d;

                switch (c) {
                case '"':  d = '"';  break;
                case '\\': d = '\\'; break;
                case '/':  d = '/';  break;
                case 'b':  d = '\b'; break;
                case 'f':  d = '\f'; break;
                case 'n':  d = '\n'; break;
                case 'r':  d = '\r'; break;
                case 't':  d = '\t'; break;

                case 'u':
                    s->esc = 2;
                    s->code = 0;
                    goto next;

                default:
                    FAIL(MCIG_BODY_INVALID_JSON);
                }

                s->esc = 0;

                if (DECODED(s->str_role)) {
                    flush_high_surrogate(s);
                    emit_byte(s, d);
                }

                break;
            }

            /* s->esc 2..5: the four hex digits of \uXXXX */
            {
                int  h = hex_value(c);

                if (h < 0) {
                    FAIL(MCIG_BODY_INVALID_JSON);
                }

                s->code = (s->code << 4) | (uint32_t) h;

                if (++s->esc == 6) {
                    s->esc = 0;

                    if (DECODED(s->str_role)) {
                        emit_escaped(s, s->code);
                    }
                }
            }

            break;

        case S_NUM_MINUS:
            if (c == '0') {
                s->state = S_NUM_ZERO;

            } else if (c >= '1' && c <= '9') {
                s->state = S_NUM_INT;

            } else {
                FAIL(MCIG_BODY_INVALID_JSON);
            }

            break;

        case S_NUM_INT:
            while (p < end && *p >= '0' && *p <= '9') {
                p++;
            }

            if (p == end) {
                continue;
            }

            c = *p;

            /* fall through */

        case S_NUM_ZERO:
            if (c == '.') {
                s->state = S_NUM_DOT;
                break;
            }

            if (c == 'e' || c == 'E') {
                s->state = S_NUM_E;
                break;
            }

            value_done(s);
            continue;               /* the byte ends the number */

        case S_NUM_DOT:
        case S_NUM_E:
        case S_NUM_ESIGN:
            if (c >= '0' && c <= '9') {
                s->state = (s->state == S_NUM_DOT) ? S_NUM_FRAC : S_NUM_EXP;
                break;
            }

            if (s->state == S_NUM_E && (c == '+' || c == '-')) {
                s->state = S_NUM_ESIGN;
                break;
            }

            FAIL(MCIG_BODY_INVALID_JSON);

        case S_NUM_FRAC:
        case S_NUM_EXP:
            while (p < end && *p >= '0' && *p <= '9') {
                p++;
            }

            if (p == end) {
                continue;
            }

            c = *p;

            if (s->state == S_NUM_FRAC && (c == 'e' || c == 'E')) {
                s->state = S_NUM_E;
                break;
            }

            value_done(s);
            continue;

        case S_LITERAL:
            if (c != (uint8_t) s->literal[s->literal_pos]) {
                FAIL(MCIG_BODY_INVALID_JSON);
            }

            if (s->literal[++s->literal_pos] == '\0') {
                s->literal = NULL;
                value_done(s);
            }

            break;

        case S_END:
            if (!is_ws(c)) {
                FAIL(MCIG_BODY_INVALID_JSON);
            }

            break;
        }

        p++;
        continue;

    next:
        p++;
    }

    s->offset += (uint64_t) (end - start);

    return MCIG_BODY_AGAIN;

#undef FAIL
}


mcig_body_rc_e
mcig_body_scan_finish(mcig_body_scan_t *s)
{
    if (s->error) {
        return s->error;
    }

    if (s->state == S_START) {
        return fail(s, MCIG_BODY_EMPTY);
    }

    if (s->state != S_END) {
        return fail(s, MCIG_BODY_INVALID_JSON);
    }

    switch (s->model_state) {

    case MCIG_MODEL_ABSENT:
        return fail(s, MCIG_BODY_NO_MODEL);

    case MCIG_MODEL_NOT_STRING:
        return fail(s, MCIG_BODY_MODEL_NOT_STRING);

    case MCIG_MODEL_TOO_LONG:
        return fail(s, MCIG_BODY_MODEL_TOO_LONG);
    }

    s->model[s->model_len] = '\0';

    if (s->model_len == 0
        || !mcig_utf8_printable((const uint8_t *) s->model, s->model_len))
    {
        return fail(s, MCIG_BODY_MODEL_INVALID);
    }

    /*
     * Seeded last: the model may come after the prompt in the body, and
     * the blocks were chained without it.
     */
    if (s->hasher) {
        mcig_prefix_hasher_seed(s->hasher,
                                mcig_prefix_seed((const uint8_t *) s->model,
                                                 s->model_len, s->salt));
    }

    return MCIG_BODY_OK;
}


int
mcig_utf8_printable(const uint8_t *s, size_t len)
{
    size_t    i, n;
    uint32_t  cp, min;

    for (i = 0; i < len; /* void */) {
        uint8_t  c = s[i];

        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) {
                return 0;
            }

            i++;
            continue;
        }

        if ((c & 0xe0) == 0xc0) {
            n = 1; cp = c & 0x1f; min = 0x80;

        } else if ((c & 0xf0) == 0xe0) {
            n = 2; cp = c & 0x0f; min = 0x800;

        } else if ((c & 0xf8) == 0xf0) {
            n = 3; cp = c & 0x07; min = 0x10000;

        } else {
            return 0;
        }

        if (i + n >= len) {
            return 0;               /* truncated sequence */
        }

        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return 0;
            }

            cp = (cp << 6) | (s[i + k] & 0x3f);
        }

        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)
            || (cp >= 0x80 && cp < 0xa0))
        {
            return 0;
        }

        i += n + 1;
    }

    return 1;
}


const char *
mcig_body_rc_text(mcig_body_rc_e rc)
{
    switch (rc) {
    case MCIG_BODY_OK:
        return "ok";
    case MCIG_BODY_AGAIN:
        return "the request body is incomplete";
    case MCIG_BODY_EMPTY:
        return "the request body is empty";
    case MCIG_BODY_INVALID_JSON:
        return "the request body is not valid JSON";
    case MCIG_BODY_NOT_OBJECT:
        return "the request body is not a JSON object";
    case MCIG_BODY_TOO_DEEP:
        return "the request body nests objects and arrays too deeply";
    case MCIG_BODY_NO_MODEL:
        return "the request body has no top-level \"model\" field";
    case MCIG_BODY_MODEL_NOT_STRING:
        return "the \"model\" field is not a string";
    case MCIG_BODY_MODEL_TOO_LONG:
        return "the \"model\" name is longer than 256 bytes";
    case MCIG_BODY_MODEL_INVALID:
        return "the \"model\" name is empty, is not UTF-8 or contains "
               "control characters";
    }

    return "the request body could not be read";
}
