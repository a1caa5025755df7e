/*
 * Copyright (C) ngx_mcig_module authors
 *
 * libFuzzer target of the status writers (mcig_status): the JSON and the
 * Prometheus text.
 *
 * Input: a snapshot read field by field, every name of 0 to 40 arbitrary
 * bytes (NUL, CR, LF, quotes, backslashes, invalid UTF-8), up to 4 pools
 * with up to 4 regions, 5 members, 4 objectives and 5 waiting bands each,
 * and session affinity's header and counts; a number is one byte, or past
 * 0xf7 an extreme or 8 bytes.  What the input lacks reads as zeros.
 *
 * Checks:
 *   - the JSON is valid UTF-8 without a raw control byte, cJSON parses it,
 *     and the names come back (up to a NUL, where cJSON's strings end),
 *     in their places, with the numbers (to the precision cJSON prints);
 *   - each name escaped alone decodes back exactly, NUL included, to the
 *     name with its invalid UTF-8 bytes read as Latin-1;
 *   - the Prometheus text is valid UTF-8; each line is a HELP or TYPE
 *     comment of the family in turn or a sample of it, which mcig_prom
 *     reads with the same label values as a strict decoder here; the label
 *     values are the snapshot's names; each family has as many samples as
 *     the snapshot says;
 *   - the text is measured then written into buffers of exactly that size
 *     and of a smaller one: same length, a prefix, nothing past the end.
 *
 *     util/fuzz.sh status
 */

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "mcig_prom.h"
#include "mcig_status.h"


#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_status: %s:%d: check failed: %s\n",       \
                    __FILE__, __LINE__, #cond);                             \
            abort();                                                        \
        }                                                                   \
    } while (0)


#define POOLS       4
#define REGIONS     4
#define MEMBERS     5
#define OBJECTIVES  4
#define BANDS       5
#define NAME_MAX    40
#define LABELS      4

/* a name decoded: Latin-1 bytes take 2 */
#define DECODED_MAX (2 * NAME_MAX)


typedef struct {
    const uint8_t            *pos;
    const uint8_t            *end;
} input_t;


typedef struct {
    mcig_status_t             st;
    mcig_status_pool_t        pool[POOLS];
    mcig_status_region_t      region[POOLS][REGIONS];
    mcig_status_member_t      member[POOLS][MEMBERS];
    mcig_status_objective_t   objective[POOLS][OBJECTIVES];
    mcig_status_band_t        band[POOLS][BANDS];
    void                     *names[256];      /* to free */
    size_t                    nnames;
} snapshot_t;


typedef struct {
    char                      name[64];
    size_t                    name_len;
    char                      value[DECODED_MAX + 1];
    size_t                    value_len;
} label_t;


/* the Prometheus families, in order, and the names their samples take */
static const char  *families[] = {
    "mcig_member_requests_total", "mcig_member_failures_total",
    "mcig_member_in_flight", "mcig_member_healthy",
    "mcig_member_kv_cache_usage", "mcig_member_waiting_requests",
    "mcig_member_running_requests", "mcig_member_metrics_age_seconds",
    "mcig_member_scrapes_total", "mcig_member_scrape_errors_total",
    "mcig_pool_refused_total", "mcig_objective_requests_total",
    "mcig_objective_shed_total", "mcig_pool_decisions_total",
    "mcig_region_requests_total", "mcig_pool_responses_total",
    "mcig_member_scrape_duration_seconds", "mcig_pool_queue_depth",
    "mcig_pool_queue_requests_total", "mcig_pool_queue_wait_seconds",
    "mcig_objective_queue_requests_total", "mcig_pool_session_affinity_total"
};

#define FAMILIES  (sizeof(families) / sizeof(families[0]))


/* --- input ----------------------------------------------------------- */

static uint8_t
in_byte(input_t *in)
{
    return (in->pos < in->end) ? *in->pos++ : 0;
}


static uint64_t
in_u64(input_t *in)
{
    int       i;
    uint8_t   b;
    uint64_t  v;

    b = in_byte(in);

    switch (b) {
    case 0xf8: return UINT64_MAX;
    case 0xf9: return (uint64_t) INT64_MAX;
    case 0xfa: return (uint64_t) 1 << 53 | 1;     /* not a double */
    case 0xfb: return 0xffffffffULL;
    case 0xfc: return 999999;
    case 0xfd: return 1000000;
    }

    if (b < 0xf8) {
        return b;
    }

    for (v = 0, i = 0; i < 8; i++) {
        v |= (uint64_t) in_byte(in) << (8 * i);
    }

    return v;
}


/* zigzag: 0, -1, 1, -2 ... and INT64_MIN from UINT64_MAX */
static int64_t
in_i64(input_t *in)
{
    uint64_t  v;

    v = in_u64(in);

    return (int64_t) (v >> 1) ^ -(int64_t) (v & 1);
}


/* a name of its exact length, so that ASan sees a read past it */
static void
in_name(input_t *in, snapshot_t *s, mcig_status_str_t *name)
{
    size_t    i, len;
    uint8_t  *p;

    len = in_byte(in) % (NAME_MAX + 1);

    p = malloc(len ? len : 1);
    CHECK(p != NULL);
    CHECK(s->nnames < sizeof(s->names) / sizeof(s->names[0]));
    s->names[s->nnames++] = p;

    for (i = 0; i < len; i++) {
        p[i] = in_byte(in);
    }

    name->data = (const char *) p;
    name->len = len;
}


static void
in_snapshot(input_t *in, snapshot_t *s)
{
    size_t                i, j;
    uint8_t               flags;
    mcig_status_pool_t   *p;
    mcig_status_member_t *m;

    memset(s, 0, sizeof(snapshot_t));

    s->st.npools = in_byte(in) % (POOLS + 1);
    s->st.pools = s->pool;
    in_name(in, s, &s->st.version);
    s->st.time_ms = in_u64(in);

    for (i = 0; i < s->st.npools; i++) {
        p = &s->pool[i];

        in_name(in, s, &p->name);

        flags = in_byte(in);
        p->custom_metrics = flags & 1;
        p->dry_run = (flags >> 1) & 1;
        p->regional = (flags >> 2) & 1;
        p->health_checks = (flags >> 3) & 1;
        p->scraping = (flags >> 4) & 1;
        p->queue.enabled = (flags >> 5) & 1;
        p->queue.queue_sheddable = (flags >> 6) & 1;
        p->session.enabled = (flags >> 7) & 1;

        p->max_in_flight = in_u64(in);
        p->max_utilization = in_u64(in);
        p->max_queue = in_u64(in);
        p->saturated = in_u64(in);
        p->no_member = in_u64(in);
        p->deadline = in_u64(in);

        for (j = 1; j < 6; j++) {
            p->responses[j] = in_u64(in);
        }

        for (j = 1; j < 4; j++) {
            p->decisions[j] = in_u64(in);
        }

        p->regions = s->region[i];
        p->nregions = in_byte(in) % (REGIONS + 1);

        for (j = 0; j < p->nregions; j++) {
            in_name(in, s, &s->region[i][j].name);
            s->region[i][j].requests = in_u64(in);
            s->region[i][j].drained = in_byte(in) & 1;
        }

        p->members = s->member[i];
        p->nmembers = in_byte(in) % (MEMBERS + 1);

        for (j = 0; j < p->nmembers; j++) {
            m = &s->member[i][j];

            in_name(in, s, &m->address);
            in_name(in, s, &m->cluster);

            /* sometimes out of range */
            m->region = in_byte(in) % (p->nregions + 2);

            flags = in_byte(in);
            m->healthy = flags & 1;
            m->health_checked = (flags >> 1) & 1;
            m->metrics_fresh = (flags >> 2) & 1;

            m->in_flight = in_i64(in);
            m->capacity = in_u64(in);
            m->requests = in_u64(in);
            m->failures = in_u64(in);
            m->load = (uint32_t) in_u64(in);
            m->load_capacity = (uint32_t) in_u64(in);
            m->health_check_age_ms = in_u64(in);
            m->scrapes = in_u64(in);
            m->scrape_errors = in_u64(in);
            m->scrape_usec = in_u64(in);
            m->kv_ppm = (uint32_t) in_u64(in);
            m->waiting = (uint32_t) in_u64(in);
            m->running = (uint32_t) in_u64(in);
            m->metrics_age_ms = in_u64(in);
            m->dispatched = in_u64(in);
        }

        p->objectives = s->objective[i];
        p->nobjectives = in_byte(in) % (OBJECTIVES + 1);

        for (j = 0; j <= p->nobjectives; j++) {
            mcig_status_objective_t  *o;

            o = (j < p->nobjectives) ? &s->objective[i][j] : &p->unnamed;

            if (j < p->nobjectives) {
                in_name(in, s, &o->name);
                o->priority = in_i64(in);
            }

            o->requests = in_u64(in);
            o->shed = in_u64(in);
            o->queued = in_u64(in);
            o->queue_full = in_u64(in);
            o->queue_timeout = in_u64(in);
        }

        p->queue.max = in_u64(in);
        p->queue.max_per_priority = in_u64(in);
        p->queue.timeout_ms = in_u64(in);
        p->queue.waiting = in_i64(in);

        for (j = 0; j < MCIG_STATUS_OUTCOMES; j++) {
            p->queue.outcomes[j] = in_u64(in);
        }

        p->queue.wait_ms = in_u64(in);

        for (j = 0; j < MCIG_STATUS_WAIT_BUCKETS; j++) {
            p->queue.wait_buckets[j] = in_u64(in);
        }

        for (j = 0; j < MCIG_STATUS_WAIT_BUCKETS - 1; j++) {
            p->queue.bucket_ms[j] = in_u64(in);
        }

        p->queue.bands = s->band[i];
        p->queue.nbands = in_byte(in) % (BANDS + 1);

        for (j = 0; j < p->queue.nbands; j++) {
            s->band[i][j].priority = in_i64(in);
            s->band[i][j].waiting = in_u64(in);
        }

        in_name(in, s, &p->session.header);
        p->session.kept = in_u64(in);
        p->session.moved = in_u64(in);
    }
}


/* --- models ---------------------------------------------------------- */

/*
 * The length of a well-formed UTF-8 sequence at s, 0 if none: decoded to
 * its code point and checked, not by byte ranges as the writer does.
 */
static size_t
utf8_seq(const uint8_t *s, size_t n)
{
    size_t    len, i;
    uint32_t  cp;

    if (s[0] < 0x80) {
        return 1;
    }

    if ((s[0] & 0xe0) == 0xc0) {
        len = 2;
        cp = s[0] & 0x1f;

    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3;
        cp = s[0] & 0x0f;

    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4;
        cp = s[0] & 0x07;

    } else {
        return 0;
    }

    if (n < len) {
        return 0;
    }

    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }

        cp = cp << 6 | (s[i] & 0x3f);
    }

    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800)
        || (len == 4 && cp < 0x10000) || cp > 0x10ffff
        || (cp >= 0xd800 && cp <= 0xdfff))
    {
        return 0;
    }

    return len;
}


static int
utf8_valid(const uint8_t *s, size_t n)
{
    size_t  i, len;

    for (i = 0; i < n; i += len) {
        len = utf8_seq(s + i, n - i);

        if (len == 0) {
            return 0;
        }
    }

    return 1;
}


/* what a name reads as in both formats: invalid bytes as Latin-1 */
static size_t
model(const mcig_status_str_t *name, uint8_t *out)
{
    size_t          i, n, len;
    const uint8_t  *s;

    s = (const uint8_t *) name->data;

    for (i = 0, n = 0; i < name->len; i += len) {
        len = utf8_seq(s + i, name->len - i);

        if (len) {
            memcpy(out + n, s + i, len);
            n += len;
            continue;
        }

        len = 1;
        out[n++] = (uint8_t) (0xc0 | s[i] >> 6);
        out[n++] = (uint8_t) (0x80 | (s[i] & 0x3f));
    }

    return n;
}


static int
hex(uint8_t c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}


/* a JSON string with its quotes, strictly; returns the bytes decoded */
static size_t
json_decode(const uint8_t *s, size_t len, uint8_t *out)
{
    int       d;
    size_t    i, j, n;
    uint32_t  cp;

    CHECK(len >= 2 && s[0] == '"' && s[len - 1] == '"');

    for (i = 1, n = 0; i < len - 1; /* void */) {
        CHECK(s[i] >= 0x20 && s[i] != '"');

        if (s[i] != '\\') {
            out[n++] = s[i++];
            continue;
        }

        CHECK(i + 1 < len - 1);

        switch (s[i + 1]) {
        case '"':  out[n++] = '"'; break;
        case '\\': out[n++] = '\\'; break;
        case '/':  out[n++] = '/'; break;
        case 'b':  out[n++] = '\b'; break;
        case 'f':  out[n++] = '\f'; break;
        case 'n':  out[n++] = '\n'; break;
        case 'r':  out[n++] = '\r'; break;
        case 't':  out[n++] = '\t'; break;

        case 'u':
            CHECK(i + 5 < len - 1);

            for (cp = 0, j = 2; j < 6; j++) {
                d = hex(s[i + j]);
                CHECK(d >= 0);
                cp = cp << 4 | (uint32_t) d;
            }

            /* the writer escapes bytes, never a surrogate */
            CHECK(cp < 0x100);

            if (cp < 0x80) {
                out[n++] = (uint8_t) cp;

            } else {
                out[n++] = (uint8_t) (0xc0 | cp >> 6);
                out[n++] = (uint8_t) (0x80 | (cp & 0x3f));
            }

            i += 6;
            continue;

        default:
            CHECK(0);
        }

        i += 2;
    }

    return n;
}


/* the two escapes alone decode back to the model, NUL included */
static void
check_escapes(const mcig_status_str_t *name)
{
    char     buf[6 * NAME_MAX + 2];
    size_t   len, n, want_len, i;
    uint8_t  want[DECODED_MAX], got[DECODED_MAX];

    want_len = model(name, want);

    len = mcig_status_json_string(buf, sizeof(buf), name->data, name->len);
    CHECK(len <= sizeof(buf));
    CHECK(utf8_valid((uint8_t *) buf, len));

    n = json_decode((uint8_t *) buf, len, got);
    CHECK(n == want_len);
    CHECK(n == 0 || memcmp(got, want, n) == 0);

    len = mcig_status_label_value(buf, sizeof(buf), name->data, name->len);
    CHECK(len <= sizeof(buf));
    CHECK(utf8_valid((uint8_t *) buf, len));

    for (i = 0, n = 0; i < len; i++) {
        CHECK(buf[i] != '\n' && buf[i] != '"');

        if (buf[i] == '\\') {
            CHECK(i + 1 < len);
            i++;
            got[n++] = (buf[i] == 'n') ? '\n' : (uint8_t) buf[i];
            CHECK(buf[i] == 'n' || buf[i] == '\\' || buf[i] == '"');
            continue;
        }

        got[n++] = (uint8_t) buf[i];
    }

    CHECK(n == want_len);
    CHECK(n == 0 || memcmp(got, want, n) == 0);
}


/* --- JSON ------------------------------------------------------------ */

/* a cJSON string: the model up to its first NUL, where cJSON's end */
static void
check_string(const cJSON *item, const mcig_status_str_t *name)
{
    size_t   n, len;
    uint8_t  want[DECODED_MAX + 1];

    CHECK(cJSON_IsString(item));
    CHECK(item->valuestring != NULL);

    n = model(name, want);
    want[n] = '\0';
    len = strlen((char *) want);

    CHECK(strlen(item->valuestring) == len);
    CHECK(memcmp(item->valuestring, want, len) == 0);
}


static void
check_key(const cJSON *item, const mcig_status_str_t *name)
{
    size_t   n;
    uint8_t  want[DECODED_MAX + 1];

    CHECK(item->string != NULL);

    n = model(name, want);
    want[n] = '\0';

    CHECK(strcmp(item->string, (char *) want) == 0);
}


static const cJSON *
member(const cJSON *obj, const char *key)
{
    const cJSON  *item;

    item = cJSON_GetObjectItemCaseSensitive(obj, key);
    CHECK(item != NULL);

    return item;
}


static void
check_number(const cJSON *obj, const char *key, double want)
{
    const cJSON  *item;

    item = member(obj, key);
    CHECK(cJSON_IsNumber(item));

    /*
     * cJSON prints 15 significant digits when they read back within
     * DBL_EPSILON of the number (relative), else 17: counters past 2^53
     * may come back a few units off.
     */
    if (fabs(item->valuedouble - want) > fabs(want) * DBL_EPSILON) {
        fprintf(stderr, "fuzz_status: \"%s\": %.17g, want %.17g\n", key,
                item->valuedouble, want);
        abort();
    }
}


static void
check_pool_json(const cJSON *p, const mcig_status_pool_t *pool)
{
    size_t                       i, r;
    double                       util;
    uint64_t                     total, healthy;
    const cJSON                 *list, *item, *q, *sa;
    const mcig_status_member_t  *m;

    CHECK(cJSON_IsObject(p));
    check_key(p, &pool->name);

    CHECK(cJSON_IsString(member(p, "balancing_mode")));
    CHECK(strcmp(member(p, "balancing_mode")->valuestring,
                 pool->custom_metrics ? "custom_metrics" : "in_flight")
          == 0);
    check_number(p, "max_in_flight", (double) pool->max_in_flight);
    check_number(member(p, "refused"), "pool_saturated",
                 (double) pool->saturated);

    q = member(p, "queue");

    if (!pool->queue.enabled) {
        CHECK(cJSON_IsNull(q));

    } else {
        check_number(q, "depth", pool->queue.waiting > 0
                                 ? (double) pool->queue.waiting : 0);
        CHECK(cJSON_GetArraySize(member(q, "bands"))
              == (int) pool->queue.nbands);
    }

    sa = member(p, "session_affinity");

    if (!pool->session.enabled) {
        CHECK(cJSON_IsNull(sa));

    } else {
        check_string(member(sa, "header"), &pool->session.header);
        check_number(sa, "kept", (double) pool->session.kept);
        check_number(sa, "moved", (double) pool->session.moved);
    }

    list = cJSON_GetObjectItemCaseSensitive(p, "regions");
    CHECK((list != NULL) == (pool->regional != 0));

    for (r = 0; list && r < pool->nregions; r++) {
        item = cJSON_GetArrayItem(list, (int) r);
        CHECK(item != NULL);
        check_string(member(item, "name"), &pool->regions[r].name);

        total = 0;
        healthy = 0;
        util = 0;

        for (i = 0; i < pool->nmembers; i++) {
            m = &pool->members[i];

            if (m->region == r) {
                total++;

                if (m->healthy) {
                    healthy++;
                    util += (double) m->load
                            / (m->load_capacity ? m->load_capacity : 1);
                }
            }
        }

        check_number(item, "members", (double) total);
        check_number(item, "healthy", (double) healthy);
        check_number(item, "utilization", healthy ? util / healthy : 0);
    }

    CHECK(list == NULL || cJSON_GetArraySize(list) == (int) pool->nregions);

    list = member(p, "members");
    CHECK(cJSON_GetArraySize(list) == (int) pool->nmembers);

    for (i = 0; i < pool->nmembers; i++) {
        m = &pool->members[i];
        item = cJSON_GetArrayItem(list, (int) i);

        check_string(member(item, "address"), &m->address);
        check_number(item, "in_flight", (double) m->in_flight);
        check_number(item, "requests", (double) m->requests);

        if (pool->regional) {
            if (m->region < pool->nregions) {
                check_string(member(item, "region"),
                             &pool->regions[m->region].name);

            } else {
                CHECK(cJSON_IsNull(member(item, "region")));
            }

            check_string(member(item, "cluster"), &m->cluster);

        } else {
            CHECK(cJSON_GetObjectItem(item, "region") == NULL);
        }

        if (pool->scraping && m->metrics_fresh) {
            check_number(member(item, "metrics"), "kv_cache_usage",
                         m->kv_ppm / 1e6);
        }
    }

    list = member(p, "objectives");
    CHECK(cJSON_GetArraySize(list) == (int) pool->nobjectives + 1);

    for (i = 0; i < pool->nobjectives; i++) {
        item = cJSON_GetArrayItem(list, (int) i);
        check_string(member(item, "name"), &pool->objectives[i].name);
        check_number(item, "priority",
                     (double) pool->objectives[i].priority);
    }

    item = cJSON_GetArrayItem(list, (int) pool->nobjectives);
    CHECK(cJSON_IsNull(member(item, "name")));
    check_number(item, "requests", (double) pool->unnamed.requests);
}


static void
check_json(const snapshot_t *s)
{
    char          *text;
    size_t         len, i;
    cJSON         *root;
    const cJSON   *pools, *p;

    text = mcig_status_json(&s->st, &len);
    CHECK(text != NULL);
    CHECK(strlen(text) == len);

    /* valid UTF-8, controls escaped */
    CHECK(utf8_valid((uint8_t *) text, len));

    for (i = 0; i < len; i++) {
        CHECK((uint8_t) text[i] >= 0x20);
    }

    root = cJSON_ParseWithLength(text, len);
    CHECK(root != NULL);
    CHECK(cJSON_IsObject(root));

    check_string(member(root, "version"), &s->st.version);
    check_number(root, "time_ms", (double) s->st.time_ms);

    pools = member(root, "pools");
    CHECK(cJSON_IsObject(pools));
    CHECK(cJSON_GetArraySize(pools) == (int) s->st.npools);

    /* in order: names may repeat, so not looked up by key */
    for (p = pools->child, i = 0; p; p = p->next, i++) {
        check_pool_json(p, &s->pool[i]);
    }

    cJSON_Delete(root);
    mcig_status_json_free(text);
}


/* --- Prometheus ------------------------------------------------------ */

/* the decoded label value, or NULL */
static const label_t *
label(const label_t *l, size_t n, const char *name)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (strcmp(l[i].name, name) == 0) {
            return &l[i];
        }
    }

    return NULL;
}


static int
label_is(const label_t *l, const mcig_status_str_t *name)
{
    size_t   n;
    uint8_t  want[DECODED_MAX];

    n = model(name, want);

    return l->value_len == n && memcmp(l->value, want, n) == 0;
}


/*
 * A sample line without its LF, read strictly: name{labels} value.
 * Returns the labels found.
 */
static size_t
parse_sample(const char *s, size_t len, size_t *name_len, label_t *l)
{
    char    c;
    size_t  i, n, start;

    for (i = 0; i < len && (s[i] == '_' || s[i] == ':'
                            || (s[i] >= 'a' && s[i] <= 'z')); i++)
    {
        /* void */
    }

    *name_len = i;
    CHECK(i > 0 && i < len && s[i] == '{');
    i++;

    for (n = 0; /* void */; n++) {
        CHECK(n < LABELS);

        for (start = i; i < len && s[i] >= 'a' && s[i] <= 'z'; i++) {
            /* void */
        }

        CHECK(i > start && i - start < sizeof(l[n].name));
        memcpy(l[n].name, s + start, i - start);
        l[n].name[i - start] = '\0';
        l[n].name_len = i - start;

        CHECK(i + 1 < len && s[i] == '=' && s[i + 1] == '"');
        i += 2;

        for (l[n].value_len = 0; i < len && s[i] != '"'; i++) {
            CHECK(l[n].value_len < DECODED_MAX);
            c = s[i];

            if (c == '\\') {
                CHECK(i + 1 < len);
                c = s[++i];
                CHECK(c == '\\' || c == '"' || c == 'n');
                c = (c == 'n') ? '\n' : c;
            }

            l[n].value[l[n].value_len++] = c;
        }

        CHECK(i + 1 < len);
        i++;

        if (s[i] == '}') {
            break;
        }

        CHECK(s[i] == ',');
        i++;
    }

    /* "} " and a value without blanks */
    CHECK(i + 2 < len && s[i + 1] == ' ');

    for (i += 2; i < len; i++) {
        CHECK(s[i] != ' ' && s[i] != '\t');
    }

    return n + 1;
}


/* mcig_prom reads the line, and its label values are those decoded here */
static void
check_read_back(mcig_prom_t *prom, const char *s, size_t len,
    size_t name_len, const label_t *l, size_t n, double *value)
{
    size_t              i;
    mcig_prom_set_t     set;
    mcig_prom_spec_t   *spec;
    mcig_prom_filter_t *f;

    memset(&set, 0, sizeof(set));
    set.nspecs = 1;
    spec = &set.spec[0];

    CHECK(name_len <= MCIG_PROM_NAME_MAX);
    memcpy(spec->name, s, name_len);
    spec->name_len = (uint32_t) name_len;
    spec->agg = MCIG_PROM_SUM;
    spec->nfilters = (uint32_t) n;

    for (i = 0; i < n; i++) {
        f = &spec->filter[i];
        memcpy(f->name, l[i].name, l[i].name_len + 1);
        f->name_len = (uint32_t) l[i].name_len;
        CHECK(l[i].value_len <= MCIG_PROM_LVALUE_MAX);
        memcpy(f->value, l[i].value, l[i].value_len);
        f->value_len = (uint32_t) l[i].value_len;
    }

    mcig_prom_init(prom, &set, 0);
    CHECK(mcig_prom_feed(prom, (const uint8_t *) s, len + 1)
          == MCIG_PROM_AGAIN);
    CHECK(mcig_prom_finish(prom) == MCIG_PROM_OK);

    CHECK(prom->samples == 1);
    CHECK(prom->malformed == 0);
    CHECK(prom->result[0].series == 1);

    *value = prom->result[0].value;
}


/* the samples a family has, by the snapshot */
static size_t
expected(const snapshot_t *s, size_t family)
{
    int64_t                    prio, other;
    size_t                     i, j, k, n, fresh, distinct;
    const mcig_status_pool_t  *p;

    for (i = 0, n = 0; i < s->st.npools; i++) {
        p = &s->pool[i];

        for (j = 0, fresh = 0; j < p->nmembers; j++) {
            fresh += p->members[j].metrics_fresh;
        }

        switch (family) {
        case 0: case 1: case 2: case 3:
            n += p->nmembers;
            break;
        case 4: case 5: case 6: case 7:
            n += p->scraping ? fresh : 0;
            break;
        case 8: case 9: case 16:
            n += p->scraping ? p->nmembers : 0;
            break;
        case 10: case 15:
            n += 5;
            break;
        case 11: case 12:
            n += p->nobjectives + 1;
            break;
        case 13:
            n += 3;
            break;
        case 14:
            n += p->regional ? p->nregions : 0;
            break;
        case 17:
            if (!p->queue.enabled) {
                break;
            }

            /* distinct priorities of the bands, objectives and 0 */
            distinct = 0;

            for (k = 0; k <= p->queue.nbands + p->nobjectives; k++) {
                prio = (k < p->queue.nbands) ? p->queue.bands[k].priority
                       : (k < p->queue.nbands + p->nobjectives)
                         ? p->objectives[k - p->queue.nbands].priority : 0;

                for (j = 0; j < k; j++) {
                    other = (j < p->queue.nbands)
                            ? p->queue.bands[j].priority
                            : p->objectives[j - p->queue.nbands].priority;

                    if (other == prio) {
                        break;
                    }
                }

                distinct += (j == k);
            }

            n += distinct;
            break;
        case 18:
            n += p->queue.enabled ? 5 : 0;
            break;
        case 19:
            n += p->queue.enabled ? MCIG_STATUS_WAIT_BUCKETS + 2 : 0;
            break;
        case 20:
            n += p->queue.enabled ? 3 * (p->nobjectives + 1) : 0;
            break;
        default:
            n += p->session.enabled ? 2 : 0;
        }
    }

    return n;
}


/*
 * The labels name a member, region or objective of a pool with the pool's
 * name; a member's request count is the value of its requests' series.
 */
static int
pool_has(const mcig_status_pool_t *p, const label_t *l, size_t n,
    int requests, double value)
{
    int             found;
    size_t          j;
    const label_t  *x;

    if (!label_is(&l[0], &p->name)) {
        return 0;
    }

    x = label(l, n, "member");

    if (x) {
        for (j = 0, found = 0; j < p->nmembers && !found; j++) {
            found = label_is(x, &p->members[j].address)
                    && (!requests || value == (double) p->members[j].requests);
        }

        if (!found) {
            return 0;
        }
    }

    x = label(l, n, "region");

    if (x) {
        for (j = 0, found = 0; j < p->nregions && !found; j++) {
            found = p->regional && label_is(x, &p->regions[j].name);
        }

        if (!found) {
            return 0;
        }
    }

    x = label(l, n, "objective");

    if (x) {
        /* requests of no objective: "" */
        found = (x->value_len == 0);

        for (j = 0; j < p->nobjectives && !found; j++) {
            found = label_is(x, &p->objectives[j].name);
        }

        if (!found) {
            return 0;
        }
    }

    return 1;
}


/* a session affinity sample: its pool has it on, with that count */
static int
session_has(const snapshot_t *s, const label_t *l, size_t n, double value)
{
    int                        kept;
    size_t                     i;
    const label_t             *outcome;
    const mcig_status_pool_t  *p;

    outcome = label(l, n, "outcome");
    CHECK(outcome != NULL);

    kept = (outcome->value_len == 4 && memcmp(outcome->value, "kept", 4) == 0);
    CHECK(kept || (outcome->value_len == 5
                   && memcmp(outcome->value, "moved", 5) == 0));

    for (i = 0; i < s->st.npools; i++) {
        p = &s->pool[i];

        if (p->session.enabled && label_is(&l[0], &p->name)
            && value == (double) (kept ? p->session.kept : p->session.moved))
        {
            return 1;
        }
    }

    return 0;
}


static void
check_labels(const snapshot_t *s, const label_t *l, size_t n, int requests,
    double value)
{
    size_t  i;

    CHECK(strcmp(l[0].name, "pool") == 0);

    for (i = 1; i < n; i++) {
        CHECK(strcmp(l[i].name, "pool") != 0);
    }

    for (i = 0; i < s->st.npools; i++) {
        if (pool_has(&s->pool[i], l, n, requests, value)) {
            return;
        }
    }

    CHECK(0);
}


static void
check_prometheus(const snapshot_t *s, size_t cut)
{
    char         *text, *buf;
    size_t        len, n, family, name_len, samples, comments, flen, slen;
    double        value;
    label_t       l[LABELS];
    mcig_prom_t  *prom;
    const char   *line, *lf, *fname, *suffix;

    len = mcig_status_prometheus(&s->st, NULL, 0);
    CHECK(len > 0);

    /* exactly len bytes: ASan sees one written past them */
    text = malloc(len);
    CHECK(text != NULL);
    CHECK(mcig_status_prometheus(&s->st, text, len) == len);

    /* a smaller buffer holds a prefix */
    cut %= len;
    buf = malloc(cut ? cut : 1);
    CHECK(buf != NULL);
    CHECK(mcig_status_prometheus(&s->st, buf, cut) == len);
    CHECK(cut == 0 || memcmp(buf, text, cut) == 0);
    free(buf);

    CHECK(utf8_valid((uint8_t *) text, len));
    CHECK(text[len - 1] == '\n');

    prom = malloc(sizeof(mcig_prom_t));
    CHECK(prom != NULL);

    family = 0;
    samples = 0;
    comments = 0;
    fname = NULL;

    for (line = text; line < text + len; line = lf + 1) {
        lf = memchr(line, '\n', (size_t) (text + len - line));
        CHECK(lf != NULL);
        n = (size_t) (lf - line);

        if (line[0] == '#') {
            /* HELP then TYPE of the next family */
            CHECK(comments / 2 < FAMILIES);
            fname = families[comments / 2];

            CHECK(n > 7 + strlen(fname));
            CHECK(memcmp(line, comments % 2 ? "# TYPE " : "# HELP ", 7)
                  == 0);
            CHECK(memcmp(line + 7, fname, strlen(fname)) == 0);
            CHECK(line[7 + strlen(fname)] == ' ');

            if (comments % 2 == 0 && comments > 0) {
                CHECK(samples == expected(s, family));
                family++;
                samples = 0;
            }

            comments++;
            continue;
        }

        CHECK(comments > 0 && comments % 2 == 0);

        n = parse_sample(line, n, &name_len, l);

        /* a sample of the family in turn; the histogram's have suffixes */
        flen = strlen(fname);
        CHECK(name_len >= flen && memcmp(line, fname, flen) == 0);

        if (family == 19) {
            suffix = line + flen;
            slen = name_len - flen;
            CHECK((slen == 7 && memcmp(suffix, "_bucket", 7) == 0)
                  || (slen == 4 && memcmp(suffix, "_sum", 4) == 0)
                  || (slen == 6 && memcmp(suffix, "_count", 6) == 0));

        } else {
            CHECK(name_len == flen);
        }

        check_read_back(prom, line, (size_t) (lf - line), name_len, l, n,
                        &value);
        check_labels(s, l, n, family == 0, value);
        CHECK(family != 21 || session_has(s, l, n, value));

        samples++;
    }

    CHECK(comments == 2 * FAMILIES);
    CHECK(samples == expected(s, family));

    free(prom);
    free(text);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t       i, j, k;
    input_t      in;
    snapshot_t  *s;

    s = malloc(sizeof(snapshot_t));
    CHECK(s != NULL);

    in.pos = data;
    in.end = data + size;
    in_snapshot(&in, s);

    check_json(s);
    check_prometheus(s, size * 7919);

    check_escapes(&s->st.version);

    for (i = 0; i < s->st.npools; i++) {
        check_escapes(&s->pool[i].name);

        for (j = 0; j < s->pool[i].nmembers; j++) {
            check_escapes(&s->pool[i].members[j].address);
            check_escapes(&s->pool[i].members[j].cluster);
        }

        for (j = 0; j < s->pool[i].nregions; j++) {
            check_escapes(&s->pool[i].regions[j].name);
        }

        for (j = 0; j < s->pool[i].nobjectives; j++) {
            check_escapes(&s->pool[i].objectives[j].name);
        }

        check_escapes(&s->pool[i].session.header);
    }

    for (k = 0; k < s->nnames; k++) {
        free(s->names[k]);
    }

    free(s);

    return 0;
}
