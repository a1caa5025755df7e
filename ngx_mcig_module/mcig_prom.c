/*
 * Copyright (C) ngx_mcig_module authors
 *
 * The page is cut into lines with memchr().  A line wholly inside a chunk
 * is parsed where it lies; only a line cut by the end of a chunk is copied,
 * into a buffer of MCIG_PROM_LINE_MAX bytes, and parsed once its LF comes.
 * Comments are skipped unread.  A sample line is read up to its metric
 * name; only the lines of names a spec asks for are checked in full and
 * used: most lines of a vLLM page are histogram buckets nobody asked for.
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "mcig_prom.h"


enum {
    LS_START = 0,         /* at a line start, leading blanks skipped */
    LS_LINE,              /* in a sample line, copied into p->line */
    LS_SKIP,              /* in a comment */
    LS_LONG               /* in a sample line too long to keep */
};


/* byte classes */
#define C_NAME        0x01  /* may start a metric name */
#define C_NAME_CHAR   0x02
#define C_LABEL       0x04  /* may start a label name */
#define C_LABEL_CHAR  0x08
#define C_BLANK       0x10
#define C_DIGIT       0x20
#define C_LETTER      (C_NAME | C_NAME_CHAR | C_LABEL | C_LABEL_CHAR)

static const uint8_t  ctype[256] = {
    [' '] = C_BLANK, ['\t'] = C_BLANK, [':'] = C_NAME | C_NAME_CHAR,
    ['0' ... '9'] = C_NAME_CHAR | C_LABEL_CHAR | C_DIGIT,
    ['A' ... 'Z'] = C_LETTER, ['_'] = C_LETTER, ['a' ... 'z'] = C_LETTER
};


/* longest value token; Go and Python write a float64 in under 25 bytes */
#define VALUE_MAX     64

enum { V_BAD = 0, V_NUM, V_NAN, V_INF };


/* the vLLM info series and the labels read from them */
enum { INFO_NONE = 0, INFO_LORA, INFO_CACHE };
enum { L_MAX_LORA = 0, L_RUNNING, L_WAITING, L_BLOCK_SIZE, L_GPU_BLOCKS,
       L_COUNT };

static const char  *info_names[] = {
    NULL, "vllm:lora_requests_info", "vllm:cache_config_info"
};

static const char  *info_labels[L_COUNT] = {
    "max_lora", "running_lora_adapters", "waiting_lora_adapters",
    "block_size", "num_gpu_blocks"
};


typedef struct {
    const uint8_t          *data;
    size_t                  len;
    int                     escaped;
} span_t;


/* what a sample line is parsed for */
typedef struct {
    const mcig_prom_set_t  *set;
    uint32_t                specs;      /* a bit per spec of that name */
    uint32_t                info;       /* INFO_* */
    uint8_t                 got[MCIG_PROM_SPECS_MAX];  /* filters matched */
    span_t                  label[L_COUNT];
} line_t;


/* returns nonzero to refuse the labels */
typedef int (*label_handler_pt)(void *data, const uint8_t *name,
    size_t name_len, const span_t *value);


static const uint8_t *
skip(const uint8_t *s, const uint8_t *end, uint8_t class)
{
    while (s < end && (ctype[*s] & class)) {
        s++;
    }

    return s;
}


#if defined(__SSE2__)

/* a byte mask of the v[i] in [lo, hi], unsigned */
static inline __m128i
in_range(__m128i v, char lo, char hi)
{
    __m128i  d;

    d = _mm_sub_epi8(v, _mm_set1_epi8(lo));

    return _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8((char) (hi - lo))),
                          d);
}

#endif


/*
 * Skips the bytes of a metric name, 16 at a time: a name is read on every
 * line, and vLLM's are 30 to 50 bytes long.
 */
static const uint8_t *
skip_name(const uint8_t *s, const uint8_t *end)
{
#if defined(__SSE2__)
    int      mask;
    __m128i  v, m;

    while (end - s >= 16) {
        v = _mm_loadu_si128((const __m128i *) s);
        m = _mm_or_si128(in_range(_mm_or_si128(v, _mm_set1_epi8(0x20)),
                                  'a', 'z'),
                         in_range(v, '0', '9'));
        m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8('_')));
        m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8(':')));

        mask = ~_mm_movemask_epi8(m) & 0xffff;

        if (mask) {
            return s + __builtin_ctz((unsigned) mask);
        }

        s += 16;
    }
#endif

    return skip(s, end, C_NAME_CHAR);
}


/* the first '"' or '\\' in [s, end), or end */
static const uint8_t *
find_quote(const uint8_t *s, const uint8_t *end)
{
#if defined(__SSE2__)
    int      mask;
    __m128i  v;

    while (end - s >= 16) {
        v = _mm_loadu_si128((const __m128i *) s);
        mask = _mm_movemask_epi8(
                   _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));

        if (mask) {
            return s + __builtin_ctz((unsigned) mask);
        }

        s += 16;
    }
#endif

    while (s < end && *s != '"' && *s != '\\') {
        s++;
    }

    return s;
}


/*
 * Parses {a="x",b="y"} from s at '{'; returns the byte after '}', or NULL
 * when the syntax is wrong or the handler refuses a label.  Values are not
 * decoded here, only their escapes checked: most are never looked at.
 */
static const uint8_t *
parse_labels(const uint8_t *s, const uint8_t *end, label_handler_pt handler,
    void *data)
{
    span_t          value;
    const uint8_t  *name;

    for (s = skip(s + 1, end, C_BLANK); s < end && *s != '}'; /* void */) {

        if (!(ctype[*s] & C_LABEL)) {
            return NULL;
        }

        name = s;
        s = skip(s + 1, end, C_LABEL_CHAR);
        value.len = (size_t) (s - name);
        s = skip(s, end, C_BLANK);

        if (s == end || *s++ != '=') {
            return NULL;
        }

        s = skip(s, end, C_BLANK);

        if (s == end || *s++ != '"') {
            return NULL;
        }

        value.data = s;
        value.escaped = 0;

        for ( ;; ) {
            s = find_quote(s, end);

            if (s == end || *s == '"') {
                break;
            }

            s++;

            if (s == end || (*s != '\\' && *s != '"' && *s != 'n')) {
                return NULL;
            }

            value.escaped = 1;
            s++;
        }

        if (s == end) {
            return NULL;
        }

        if (handler) {
            size_t  name_len = value.len;

            value.len = (size_t) (s - value.data);

            if (handler(data, name, name_len, &value)) {
                return NULL;
            }
        }

        s = skip(s + 1, end, C_BLANK);

        if (s < end && *s == ',') {
            s = skip(s + 1, end, C_BLANK);      /* a trailing comma is fine */

        } else if (s < end && *s != '}') {
            return NULL;
        }
    }

    return (s < end) ? s + 1 : NULL;
}


/* decodes at most max bytes of a label value; returns the whole length */
static size_t
unescape(char *dst, size_t max, const span_t *v)
{
    size_t          n;
    uint8_t         c;
    const uint8_t  *s, *end;

    if (!v->escaped) {
        if (v->len) {                       /* data is NULL if absent */
            memcpy(dst, v->data, v->len < max ? v->len : max);
        }

        return v->len;
    }

    for (n = 0, s = v->data, end = s + v->len; s < end; s++, n++) {
        c = *s;

        if (c == '\\') {
            c = *++s;
            c = (c == 'n') ? '\n' : c;
        }

        if (n < max) {
            dst[n] = (char) c;
        }
    }

    return n;
}


static int
value_equals(const span_t *v, const char *want, size_t len)
{
    char  buf[MCIG_PROM_LVALUE_MAX];

    if (!v->escaped) {
        return v->len == len && memcmp(v->data, want, len) == 0;
    }

    return v->len >= len && unescape(buf, sizeof(buf), v) == len
           && memcmp(buf, want, len) == 0;
}


/* a label value of decimal digits; 0 if absent, not digits or too large */
static uint64_t
label_integer(const span_t *v)
{
    size_t    i;
    uint64_t  n;

    if (v->len == 0 || v->len > 19
        || skip(v->data, v->data + v->len, C_DIGIT) != v->data + v->len)
    {
        return 0;
    }

    for (n = 0, i = 0; i < v->len; i++) {
        n = n * 10 + (uint64_t) (v->data[i] - '0');
    }

    return n;
}


static int
lower_equals(const uint8_t *s, const uint8_t *end, const char *lower)
{
    for ( /* void */ ; s < end; s++, lower++) {
        if ((*s | 0x20) != (uint8_t) *lower) {
            return 0;
        }
    }

    return *lower == '\0';
}


/* what Go's strconv.ParseFloat accepts in decimal, as Prometheus does */
static int
value_kind(const uint8_t *s, const uint8_t *end)
{
    int             sign;
    size_t          digits;
    const uint8_t  *d;

    if (end - s > VALUE_MAX) {
        return V_BAD;
    }

    sign = (*s == '+' || *s == '-');
    s += sign;

    if (lower_equals(s, end, "inf") || lower_equals(s, end, "infinity")) {
        return V_INF;
    }

    if (!sign && lower_equals(s, end, "nan")) {
        return V_NAN;
    }

    d = s;
    s = skip(s, end, C_DIGIT);
    digits = (size_t) (s - d);

    if (s < end && *s == '.') {
        d = ++s;
        s = skip(s, end, C_DIGIT);
        digits += (size_t) (s - d);
    }

    if (digits == 0) {
        return V_BAD;
    }

    if (s < end && (*s | 0x20) == 'e') {
        s++;
        s += (s < end && (*s == '+' || *s == '-'));

        if (s == end || !(ctype[*s] & C_DIGIT)) {
            return V_BAD;
        }

        s = skip(s, end, C_DIGIT);
    }

    return (s == end) ? V_NUM : V_BAD;
}


/* strtod() needs a terminated string, the page is not */
static double
value_double(const uint8_t *s, const uint8_t *end, int kind)
{
    char  buf[VALUE_MAX + 1];

    if (kind == V_NAN) {
        return NAN;
    }

    if (kind == V_INF) {
        return (*s == '-') ? -INFINITY : INFINITY;
    }

    memcpy(buf, s, (size_t) (end - s));
    buf[end - s] = '\0';

    return strtod(buf, NULL);
}


static int
line_label(void *data, const uint8_t *name, size_t name_len,
    const span_t *value)
{
    line_t  *ln = data;

    uint32_t                   i, j;
    const mcig_prom_filter_t  *f;

    for (i = 0; i < ln->set->nspecs; i++) {
        if (!(ln->specs & (1u << i))) {
            continue;
        }

        for (j = 0; j < ln->set->spec[i].nfilters; j++) {
            f = &ln->set->spec[i].filter[j];

            if (f->name_len == name_len
                && memcmp(f->name, name, name_len) == 0
                && value_equals(value, f->value, f->value_len))
            {
                ln->got[i] |= (uint8_t) (1u << j);
            }
        }
    }

    for (i = 0; ln->info && i < L_COUNT; i++) {
        if (strlen(info_labels[i]) == name_len
            && memcmp(info_labels[i], name, name_len) == 0)
        {
            ln->label[i] = *value;
        }
    }

    return 0;
}


static void
add_value(mcig_prom_result_t *r, uint32_t agg, double v)
{
    r->series++;

    if (isnan(v)) {
        r->nan++;

    } else if (isinf(v)) {
        r->inf++;

    } else if (agg != MCIG_PROM_MAX) {
        r->acc += v;

    } else if (r->series - r->nan - r->inf == 1 || v > r->acc) {
        r->acc = v;
    }
}


/* a cut list keeps whole names only */
static void
keep_list(char *dst, uint32_t *len, uint8_t *truncated, const span_t *v)
{
    size_t  n;

    n = unescape(dst, MCIG_PROM_LORA_LIST_MAX + 1, v);
    *truncated = (n > MCIG_PROM_LORA_LIST_MAX);

    if (*truncated) {
        n = MCIG_PROM_LORA_LIST_MAX;

        while (dst[n] != ',' && n > 0) {
            n--;
        }
    }

    dst[n] = '\0';
    *len = (uint32_t) n;
}


static void
info_sample(mcig_prom_t *p, line_t *ln, double v)
{
    mcig_prom_lora_t  *lora;

    if (ln->info == INFO_CACHE) {
        if (p->cache.series++ == 0) {
            p->cache.block_size =
                          (uint32_t) label_integer(&ln->label[L_BLOCK_SIZE]);
            p->cache.num_gpu_blocks = label_integer(&ln->label[L_GPU_BLOCKS]);
        }

        return;
    }

    /* the value is a time: the newest series wins, NaN is the oldest */
    lora = &p->lora;
    v = isnan(v) ? -INFINITY : v;

    if (lora->series++ && v < lora->time) {
        return;
    }

    lora->time = v;
    lora->max_lora = (uint32_t) label_integer(&ln->label[L_MAX_LORA]);
    keep_list(lora->running, &lora->running_len, &lora->running_truncated,
              &ln->label[L_RUNNING]);
    keep_list(lora->waiting, &lora->waiting_len, &lora->waiting_truncated,
              &ln->label[L_WAITING]);
}


/*
 * One line without its LF.  Nothing is recorded before the whole line is
 * known to be well formed: a bad line leaves no trace but the count.
 */
static void
parse_line(mcig_prom_t *p, const uint8_t *s, size_t len)
{
    int                     kind;
    double                  v;
    size_t                  n;
    uint32_t                i;
    line_t                  ln;
    const uint8_t          *end, *name, *value, *value_end, *digits;
    const mcig_prom_set_t  *set;

    end = s + len;
    end -= (len > 0 && end[-1] == '\r');
    s = skip(s, end, C_BLANK);

    if (s == end || *s == '#') {
        return;
    }

    if (len > MCIG_PROM_LINE_MAX || !(ctype[*s] & C_NAME)) {
        goto malformed;
    }

    name = s;
    s = skip_name(s + 1, end);
    n = (size_t) (s - name);

    set = p->set;
    ln.set = set;
    ln.specs = 0;
    ln.info = INFO_NONE;

    for (i = 0; i < set->nspecs; i++) {
        if (set->spec[i].name_len == n
            && memcmp(set->spec[i].name, name, n) == 0)
        {
            ln.specs |= 1u << i;
            ln.got[i] = 0;
        }
    }

    for (i = INFO_LORA; (set->flags & MCIG_PROM_VLLM_INFO) && i <= INFO_CACHE;
         i++)
    {
        if (strlen(info_names[i]) == n && memcmp(info_names[i], name, n) == 0)
        {
            ln.info = i;
            memset(ln.label, 0, sizeof(ln.label));
        }
    }

    if (ln.specs == 0 && ln.info == INFO_NONE) {
        /*
         * Nobody asked for this metric: most of a vLLM page is histogram
         * buckets, and reading their labels and values would double the
         * cost of a scrape for nothing.  Only the name is checked.
         */
        if (s == end || (!(ctype[*s] & C_BLANK) && *s != '{')) {
            goto malformed;
        }

        p->skipped++;
        return;
    }

    s = skip(s, end, C_BLANK);

    if (s < end && *s == '{') {
        s = parse_labels(s, end, line_label, &ln);

        if (s == NULL) {
            goto malformed;
        }

        s = skip(s, end, C_BLANK);

    } else if (s == name + n) {
        goto malformed;             /* a byte that may not be in a name */
    }

    value = s;

    while (s < end && !(ctype[*s] & C_BLANK)) {
        s++;
    }

    value_end = s;
    kind = (value < end) ? value_kind(value, value_end) : V_BAD;
    s = skip(s, end, C_BLANK);

    if (kind == V_BAD) {
        goto malformed;
    }

    if (s < end) {
        /* a timestamp, unused */
        s += (*s == '+' || *s == '-');
        digits = skip(s, end, C_DIGIT);

        if (digits == s || skip(digits, end, C_BLANK) != end) {
            goto malformed;
        }
    }

    p->samples++;

    v = value_double(value, value_end, kind);

    for (i = 0; i < set->nspecs; i++) {
        if ((ln.specs & (1u << i))
            && ln.got[i] == (1u << set->spec[i].nfilters) - 1)
        {
            add_value(&p->result[i], set->spec[i].agg, v);
        }
    }

    if (ln.info != INFO_NONE) {
        info_sample(p, &ln, v);
    }

    return;

malformed:

    p->malformed++;
}


void
mcig_prom_init(mcig_prom_t *p, const mcig_prom_set_t *set, uint64_t page_max)
{
    memset(p, 0, offsetof(mcig_prom_t, line));
    p->set = set;
    p->page_max = page_max ? page_max : UINT64_MAX;
    p->state = LS_START;
}


mcig_prom_rc_e
mcig_prom_feed(mcig_prom_t *p, const uint8_t *data, size_t len)
{
    size_t          n;
    const uint8_t  *s, *end, *lf;

    if (p->error) {
        return p->error;
    }

    if (len > p->page_max - p->offset) {
        p->error = MCIG_PROM_TOO_LARGE;
        return MCIG_PROM_TOO_LARGE;
    }

    p->offset += len;

    for (s = data, end = data + len; s < end; s = lf + 1) {

        if (p->state == LS_START) {
            s = skip(s, end, C_BLANK);

            if (s == end) {
                break;
            }

            if (*s == '#') {
                p->state = LS_SKIP;

            } else if ((lf = memchr(s, '\n', (size_t) (end - s)))) {
                parse_line(p, s, (size_t) (lf - s));
                continue;

            } else {
                p->state = LS_LINE;
                p->line_len = 0;
            }
        }

        lf = memchr(s, '\n', (size_t) (end - s));

        if (p->state == LS_LINE) {
            n = (size_t) ((lf ? lf : end) - s);

            if (p->line_len + n > MCIG_PROM_LINE_MAX) {
                p->state = LS_LONG;

            } else {
                memcpy(p->line + p->line_len, s, n);
                p->line_len += (uint32_t) n;
            }
        }

        if (lf == NULL) {
            break;
        }

        if (p->state == LS_LINE) {
            parse_line(p, p->line, p->line_len);

        } else if (p->state == LS_LONG) {
            p->malformed++;
        }

        p->state = LS_START;
    }

    return MCIG_PROM_AGAIN;
}


mcig_prom_rc_e
mcig_prom_finish(mcig_prom_t *p)
{
    uint32_t             i, finite;
    mcig_prom_result_t  *r;

    if (p->error) {
        return p->error;
    }

    if (p->state == LS_LINE) {
        parse_line(p, p->line, p->line_len);

    } else if (p->state == LS_LONG) {
        p->malformed++;
    }

    p->state = LS_START;

    for (i = 0; i < p->set->nspecs; i++) {
        r = &p->result[i];
        finite = r->series - r->nan - r->inf;
        r->value = (finite == 0) ? 0
                   : (p->set->spec[i].agg == MCIG_PROM_AVG) ? r->acc / finite
                   : r->acc;
    }

    return MCIG_PROM_OK;
}


mcig_prom_status_e
mcig_prom_value(const mcig_prom_t *p, uint32_t i, double *value)
{
    const mcig_prom_result_t  *r;

    *value = 0;

    if (i >= p->set->nspecs || p->result[i].series == 0) {
        return MCIG_PROM_ABSENT;
    }

    r = &p->result[i];

    if (r->series == r->nan + r->inf) {
        return MCIG_PROM_NOT_FINITE;
    }

    *value = r->value;

    return MCIG_PROM_PRESENT;
}


mcig_prom_status_e
mcig_prom_role_value(const mcig_prom_t *p, mcig_prom_role_e role,
    double *value)
{
    uint32_t  i;

    for (i = 0; i < p->set->nspecs; i++) {
        if (p->set->spec[i].role == (uint32_t) role && p->result[i].series) {
            return mcig_prom_value(p, i, value);
        }
    }

    *value = 0;

    return MCIG_PROM_ABSENT;
}


uint32_t
mcig_prom_lora_state(const mcig_prom_lora_t *lora, const char *name,
    size_t len)
{
    uint32_t     state, bit;
    const char  *s, *e, *end, *comma;

    state = 0;

    for (bit = MCIG_PROM_LORA_RUNNING; bit <= MCIG_PROM_LORA_WAITING; bit <<= 1)
    {
        s = (bit == MCIG_PROM_LORA_RUNNING) ? lora->running : lora->waiting;
        end = s + ((bit == MCIG_PROM_LORA_RUNNING) ? lora->running_len
                                                   : lora->waiting_len);

        for ( ;; ) {
            comma = memchr(s, ',', (size_t) (end - s));
            e = comma ? comma : end;

            while (s < e && *s == ' ') {
                s++;
            }

            while (e > s && e[-1] == ' ') {
                e--;
            }

            if ((size_t) (e - s) == len && len && memcmp(s, name, len) == 0) {
                state |= bit;
            }

            if (comma == NULL) {
                break;
            }

            s = comma + 1;
        }
    }

    return state;
}


/* specs */

typedef struct {
    mcig_prom_spec_t     *spec;
    mcig_prom_spec_rc_e   rc;       /* why a label was refused */
} spec_ctx_t;


static int
spec_label(void *data, const uint8_t *name, size_t name_len,
    const span_t *value)
{
    spec_ctx_t  *ctx = data;

    size_t               n, j;
    mcig_prom_spec_t    *spec;
    mcig_prom_filter_t  *f;

    spec = ctx->spec;
    ctx->rc = MCIG_PROM_SPEC_TOO_MANY_LABELS;

    if (spec->nfilters == MCIG_PROM_FILTERS_MAX) {
        return 1;
    }

    ctx->rc = MCIG_PROM_SPEC_BAD_LABELS;

    for (j = 0; j < spec->nfilters; j++) {
        if (spec->filter[j].name_len == name_len
            && memcmp(spec->filter[j].name, name, name_len) == 0)
        {
            return 1;
        }
    }

    f = &spec->filter[spec->nfilters];
    n = unescape(f->value, MCIG_PROM_LVALUE_MAX, value);
    ctx->rc = MCIG_PROM_SPEC_LABEL_TOO_LONG;

    if (name_len > MCIG_PROM_LABEL_MAX || n > MCIG_PROM_LVALUE_MAX) {
        return 1;
    }

    memcpy(f->name, name, name_len);
    f->name[name_len] = '\0';
    f->name_len = (uint32_t) name_len;
    f->value[n] = '\0';
    f->value_len = (uint32_t) n;
    spec->nfilters++;
    ctx->rc = MCIG_PROM_SPEC_OK;

    return 0;
}


mcig_prom_spec_rc_e
mcig_prom_spec_parse(mcig_prom_spec_t *spec, const char *text, size_t len)
{
    size_t          n;
    spec_ctx_t      ctx;
    const uint8_t  *s, *end, *name;

    memset(spec, 0, sizeof(*spec));

    end = (const uint8_t *) text + len;
    s = skip((const uint8_t *) text, end, C_BLANK);

    while (end > s && (ctype[end[-1]] & C_BLANK)) {
        end--;
    }

    if (s == end) {
        return MCIG_PROM_SPEC_EMPTY;
    }

    name = s;
    s = skip(s, end, C_NAME_CHAR);
    n = (size_t) (s - name);
    s = skip(s, end, C_BLANK);

    if (!(ctype[*name] & C_NAME) || (s < end && *s != '{')) {
        return MCIG_PROM_SPEC_BAD_NAME;
    }

    if (n > MCIG_PROM_NAME_MAX) {
        return MCIG_PROM_SPEC_NAME_TOO_LONG;
    }

    memcpy(spec->name, name, n);
    spec->name[n] = '\0';
    spec->name_len = (uint32_t) n;

    if (s < end) {
        ctx.spec = spec;
        ctx.rc = MCIG_PROM_SPEC_OK;

        if (parse_labels(s, end, spec_label, &ctx) != end) {
            return ctx.rc ? ctx.rc : MCIG_PROM_SPEC_BAD_LABELS;
        }
    }

    return MCIG_PROM_SPEC_OK;
}


void
mcig_prom_set_init(mcig_prom_set_t *set, uint32_t flags)
{
    set->nspecs = 0;
    set->flags = flags;
}


mcig_prom_spec_rc_e
mcig_prom_set_add(mcig_prom_set_t *set, const char *text, size_t len,
    mcig_prom_agg_e agg, mcig_prom_role_e role)
{
    mcig_prom_spec_t     *spec;
    mcig_prom_spec_rc_e   rc;

    if (set->nspecs == MCIG_PROM_SPECS_MAX) {
        return MCIG_PROM_SPEC_TOO_MANY_SPECS;
    }

    spec = &set->spec[set->nspecs];
    rc = mcig_prom_spec_parse(spec, text, len);

    if (rc == MCIG_PROM_SPEC_OK) {
        spec->agg = agg;
        spec->role = role;
        set->nspecs++;
    }

    return rc;
}


static const mcig_prom_preset_t  presets[] = {
    { "vllm", MCIG_PROM_VLLM_INFO, 4, {
        { "vllm:num_requests_waiting", MCIG_PROM_SUM, MCIG_PROM_ROLE_WAITING },
        { "vllm:num_requests_running", MCIG_PROM_SUM, MCIG_PROM_ROLE_RUNNING },
        { "vllm:kv_cache_usage_perc", MCIG_PROM_AVG, MCIG_PROM_ROLE_KV_USAGE },
        { "vllm:gpu_cache_usage_perc", MCIG_PROM_AVG,
          MCIG_PROM_ROLE_KV_USAGE } } },
    { "sglang", 0, 3, {
        { "sglang:num_queue_reqs", MCIG_PROM_SUM, MCIG_PROM_ROLE_WAITING },
        { "sglang:num_running_reqs", MCIG_PROM_SUM, MCIG_PROM_ROLE_RUNNING },
        { "sglang:token_usage", MCIG_PROM_AVG, MCIG_PROM_ROLE_KV_USAGE } } },
    { "trtllm", 0, 3, {
        { "trtllm_num_requests_waiting", MCIG_PROM_SUM,
          MCIG_PROM_ROLE_WAITING },
        { "trtllm_num_requests_running", MCIG_PROM_SUM,
          MCIG_PROM_ROLE_RUNNING },
        { "trtllm_kv_cache_utilization", MCIG_PROM_AVG,
          MCIG_PROM_ROLE_KV_USAGE } } }
};

#define NPRESETS  (sizeof(presets) / sizeof(presets[0]))


const mcig_prom_preset_t *
mcig_prom_preset(mcig_prom_engine_e engine)
{
    return ((size_t) engine < NPRESETS) ? &presets[engine] : NULL;
}


mcig_prom_spec_rc_e
mcig_prom_set_preset(mcig_prom_set_t *set, const mcig_prom_preset_t *preset)
{
    uint32_t             i;
    const char          *text;
    mcig_prom_spec_rc_e  rc;

    if (set->nspecs + preset->nspecs > MCIG_PROM_SPECS_MAX) {
        return MCIG_PROM_SPEC_TOO_MANY_SPECS;
    }

    for (i = 0; i < preset->nspecs; i++) {
        text = preset->spec[i].text;
        rc = mcig_prom_set_add(set, text, strlen(text), preset->spec[i].agg,
                               preset->spec[i].role);

        if (rc != MCIG_PROM_SPEC_OK) {
            return rc;
        }
    }

    set->flags |= preset->flags;

    return MCIG_PROM_SPEC_OK;
}


static size_t
query_add(char *buf, size_t size, size_t len, const char *name, size_t n)
{
    static const char  param[] = "name%5B%5D=";

    if (len) {
        if (len < size) {
            buf[len] = '&';
        }

        len++;
    }

    if (len + sizeof(param) - 1 + n < size) {
        memcpy(buf + len, param, sizeof(param) - 1);
        memcpy(buf + len + sizeof(param) - 1, name, n);
    }

    return len + sizeof(param) - 1 + n;
}


size_t
mcig_prom_set_query(const mcig_prom_set_t *set, char *buf, size_t size)
{
    size_t                   len;
    uint32_t                 i, j;
    const mcig_prom_spec_t  *spec;

    len = 0;

    for (i = 0; i < set->nspecs; i++) {
        spec = &set->spec[i];

        for (j = 0; j < i; j++) {
            if (set->spec[j].name_len == spec->name_len
                && memcmp(set->spec[j].name, spec->name, spec->name_len) == 0)
            {
                break;
            }
        }

        if (j == i) {
            len = query_add(buf, size, len, spec->name, spec->name_len);
        }
    }

    for (i = INFO_LORA; (set->flags & MCIG_PROM_VLLM_INFO) && i <= INFO_CACHE;
         i++)
    {
        len = query_add(buf, size, len, info_names[i], strlen(info_names[i]));
    }

    if (size) {
        buf[len < size ? len : size - 1] = '\0';
    }

    return len;
}


const char *
mcig_prom_spec_rc_text(mcig_prom_spec_rc_e rc)
{
    static const char  *text[] = {
        "ok",
        "the metric is empty",
        "the metric name is not a Prometheus metric name",
        "the metric name is longer than 128 bytes",
        "the labels are not {name=\"value\",...} with each name once",
        "a label name is over 64 bytes or a label value over 128 bytes",
        "more than 4 labels",
        "more than 16 metrics"
    };

    return ((size_t) rc < sizeof(text) / sizeof(text[0])) ? text[rc]
                                                          : "invalid metric";
}
