/*
 * Copyright (C) ngx_mcig_module authors
 *
 * The JSON: cJSON builds each pool's object and writes the numbers, as it
 * did when the nginx side built the whole answer, so the digits are the
 * same; every string and the pools' keys are escaped here, because cJSON
 * stops a string at NUL and copies bytes of invalid UTF-8 as they are.
 * Strings go in as cJSON raw items, and the outer object, keyed by the
 * pools' names, is written here around the pools' printed objects.
 *
 * The Prometheus text is written in one pass through a cursor that counts
 * every byte and stores those that fit: the same code measures and
 * writes.
 */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "mcig_status.h"


/* a cursor over the caller's buffer: len counts what does not fit too */
typedef struct {
    char                           *pos;
    char                           *end;
    size_t                          len;
} out_t;


/* the families of the Prometheus text, in the order they are written */
enum {
    F_MEMBER_REQUESTS = 0,
    F_MEMBER_FAILURES,
    F_MEMBER_IN_FLIGHT,
    F_MEMBER_HEALTHY,
    F_MEMBER_EJECTED,
    F_MEMBER_EJECTIONS,
    F_MEMBER_KV_CACHE,
    F_MEMBER_WAITING,
    F_MEMBER_RUNNING,
    F_MEMBER_METRICS_AGE,
    F_MEMBER_SCRAPES,
    F_MEMBER_SCRAPE_ERRORS,
    F_POOL_REFUSED,
    F_OBJECTIVE_REQUESTS,
    F_OBJECTIVE_SHED,
    F_POOL_DECISIONS,
    F_REGION_REQUESTS,
    F_POOL_RESPONSES,
    F_MEMBER_SCRAPE_DURATION,
    F_QUEUE_DEPTH,
    F_QUEUE_REQUESTS,
    F_QUEUE_WAIT,
    F_OBJECTIVE_QUEUE,
    F_POOL_SESSION_AFFINITY,
    F_COUNT
};


typedef struct {
    const char                     *name;
    const char                     *help;
    const char                     *type;
} family_t;


static void out_init(out_t *o, char *buf, size_t size);
static void out_bytes(out_t *o, const void *data, size_t n);
static void out_text(out_t *o, const char *s);
static void out_u64(out_t *o, uint64_t v);
static void out_i64(out_t *o, int64_t v);
static void out_fixed(out_t *o, uint64_t v, uint64_t unit, int digits);
static size_t utf8_len(const unsigned char *s, size_t n);
static void json_escape(out_t *o, const mcig_status_str_t *s);
static void label_escape(out_t *o, const mcig_status_str_t *s);

static void json_root(out_t *o, const mcig_status_t *st, const char *time,
    char **pools);
static cJSON *json_pool(const mcig_status_pool_t *pool);
static void json_queue(cJSON *p, const mcig_status_pool_t *pool,
    int *failed);
static void json_session(cJSON *p, const mcig_status_pool_t *pool,
    int *failed);
static void json_regions(cJSON *p, const mcig_status_pool_t *pool,
    int *failed);
static void json_members(cJSON *p, const mcig_status_pool_t *pool,
    int *failed);
static void json_objective(cJSON *list, const mcig_status_objective_t *obj,
    const mcig_status_str_t *name, int *failed);
static cJSON *json_add(cJSON *parent, const char *key, cJSON *item,
    int *failed);
static cJSON *json_string(const mcig_status_str_t *s);
static void json_number(cJSON *o, const char *key, double v, int *failed);
static void json_bool(cJSON *o, const char *key, int v, int *failed);

static void prom_family(out_t *o, const mcig_status_pool_t *pool,
    unsigned family);
static void prom_member(out_t *o, const mcig_status_pool_t *pool,
    const mcig_status_member_t *m, unsigned family);
static void prom_objective(out_t *o, const mcig_status_pool_t *pool,
    const mcig_status_objective_t *obj, const mcig_status_str_t *name,
    unsigned family);
static void prom_depth(out_t *o, const mcig_status_pool_t *pool);
static void prom_wait(out_t *o, const mcig_status_pool_t *pool);
static void prom_open(out_t *o, const char *name,
    const mcig_status_pool_t *pool);
static void prom_label(out_t *o, const char *label,
    const mcig_status_str_t *value);
static void prom_label_text(out_t *o, const char *label, const char *value);
static void prom_value(out_t *o);


static const family_t  families[F_COUNT] = {
    { "mcig_member_requests_total",
      "Requests sent to the member.", "counter" },
    { "mcig_member_failures_total",
      "Requests to the member that failed (error or timeout).", "counter" },
    { "mcig_member_in_flight",
      "Requests in flight to the member, across all workers.", "gauge" },
    { "mcig_member_healthy",
      "1 when the member takes traffic, 0 when unhealthy.", "gauge" },
    { "mcig_member_ejected",
      "1 while outlier detection keeps the member out, else 0.", "gauge" },
    { "mcig_member_ejections_total",
      "Times outlier detection ejected the member.", "counter" },
    { "mcig_member_kv_cache_usage",
      "Scraped KV-cache usage (0..1), when fresh.", "gauge" },
    { "mcig_member_waiting_requests",
      "Scraped waiting requests, when fresh.", "gauge" },
    { "mcig_member_running_requests",
      "Scraped running requests, when fresh.", "gauge" },
    { "mcig_member_metrics_age_seconds",
      "Age of the member's scraped figures, when fresh.", "gauge" },
    { "mcig_member_scrapes_total",
      "Good scrapes of the member's metrics.", "counter" },
    { "mcig_member_scrape_errors_total",
      "Failed scrapes of the member's metrics.", "counter" },
    { "mcig_pool_refused_total",
      "Requests the gateway refused, by reason.", "counter" },
    { "mcig_objective_requests_total",
      "Requests by InferenceObjective (\"\": none).", "counter" },
    { "mcig_objective_shed_total",
      "Sheddable requests refused, by InferenceObjective.", "counter" },
    { "mcig_pool_decisions_total",
      "Region decisions: local, spillover, failover.", "counter" },
    { "mcig_region_requests_total",
      "Requests sent to each region of the pool.", "counter" },
    { "mcig_pool_responses_total",
      "Answers to the pool's requests, by status class.", "counter" },
    { "mcig_member_scrape_duration_seconds",
      "Duration of the member's last good scrape.", "gauge" },
    { "mcig_pool_queue_depth",
      "Requests waiting in the pool's queue, all workers, by priority.",
      "gauge" },
    { "mcig_pool_queue_requests_total",
      "Requests that met the pool's queue, by outcome.", "counter" },
    { "mcig_pool_queue_wait_seconds",
      "Time dispatched requests waited in the pool's queue.", "histogram" },
    { "mcig_objective_queue_requests_total",
      "Requests that waited or were refused by the queue, by"
      " InferenceObjective.", "counter" },
    { "mcig_pool_session_affinity_total",
      "Picks of requests with a session: to its member (kept), or"
      " elsewhere as it was full (moved).", "counter" }
};


static const char  *outcomes[MCIG_STATUS_OUTCOMES] = {
    "queued", "dispatched", "queue_full", "queue_timeout", "abandoned"
};


/* --- the cursor ------------------------------------------------------ */

static void
out_init(out_t *o, char *buf, size_t size)
{
    o->pos = buf;
    o->end = buf ? buf + size : NULL;
    o->len = 0;
}


static void
out_bytes(out_t *o, const void *data, size_t n)
{
    size_t  room;

    room = (size_t) (o->end - o->pos);

    if (n <= room) {
        if (n) {
            memcpy(o->pos, data, n);
            o->pos += n;
        }

    } else if (room) {
        /* a prefix of the text, nothing after it */
        memcpy(o->pos, data, room);
        o->pos = o->end;
    }

    o->len += n;
}


static void
out_text(out_t *o, const char *s)
{
    out_bytes(o, s, strlen(s));
}


static void
out_u64(out_t *o, uint64_t v)
{
    char  buf[24];

    out_bytes(o, buf, (size_t) snprintf(buf, sizeof(buf), "%" PRIu64, v));
}


static void
out_i64(out_t *o, int64_t v)
{
    char  buf[24];

    out_bytes(o, buf, (size_t) snprintf(buf, sizeof(buf), "%" PRId64, v));
}


/* v / unit with digits decimals, zero-padded: 250 ms as 0.250 s */
static void
out_fixed(out_t *o, uint64_t v, uint64_t unit, int digits)
{
    char  buf[48];

    out_bytes(o, buf, (size_t) snprintf(buf, sizeof(buf),
                                        "%" PRIu64 ".%0*" PRIu64,
                                        v / unit, digits, v % unit));
}


/* --- escapes --------------------------------------------------------- */

/* the length of the well-formed UTF-8 sequence at s, 0 if there is none */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
    size_t         len, i;
    unsigned char  lo, hi;

    if (s[0] < 0x80) {
        return 1;
    }

    /* the second byte's range narrows for E0, ED, F0 and F4 (RFC 3629) */
    lo = 0x80;
    hi = 0xbf;

    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;

    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        lo = (s[0] == 0xe0) ? 0xa0 : 0x80;      /* no overlong form */
        hi = (s[0] == 0xed) ? 0x9f : 0xbf;      /* no surrogate */

    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        lo = (s[0] == 0xf0) ? 0x90 : 0x80;
        hi = (s[0] == 0xf4) ? 0x8f : 0xbf;      /* up to U+10FFFF */

    } else {
        return 0;
    }

    if (n < len || s[1] < lo || s[1] > hi) {
        return 0;
    }

    for (i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf) {
            return 0;
        }
    }

    return len;
}


static void
json_escape(out_t *o, const mcig_status_str_t *s)
{
    static const char     hex[] = "0123456789abcdef";
    char                  esc[6];
    size_t                i, n;
    unsigned char         c;
    const unsigned char  *p;

    p = (const unsigned char *) s->data;

    out_bytes(o, "\"", 1);

    for (i = 0; i < s->len; i += n) {
        c = p[i];
        n = 1;

        if (c >= 0x80) {
            n = utf8_len(p + i, s->len - i);

            if (n) {
                out_bytes(o, p + i, n);
                continue;
            }

            n = 1;              /* Latin-1 */

        } else if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char) c;
            out_bytes(o, esc, 2);
            continue;

        } else if (c >= 0x20) {
            out_bytes(o, &p[i], 1);
            continue;
        }

        /* the short escapes cJSON writes, then \u00XX */
        esc[0] = '\\';

        switch (c) {
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:   esc[1] = 0;
        }

        if (esc[1]) {
            out_bytes(o, esc, 2);
            continue;
        }

        esc[1] = 'u';
        esc[2] = '0';
        esc[3] = '0';
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 0xf];
        out_bytes(o, esc, 6);
    }

    out_bytes(o, "\"", 1);
}


static void
label_escape(out_t *o, const mcig_status_str_t *s)
{
    char                  esc[2];
    size_t                i, n;
    unsigned char         c;
    const unsigned char  *p;

    p = (const unsigned char *) s->data;

    for (i = 0; i < s->len; i += n) {
        c = p[i];
        n = 1;

        switch (c) {
        case '\\': out_bytes(o, "\\\\", 2); continue;
        case '"':  out_bytes(o, "\\\"", 2); continue;
        case '\n': out_bytes(o, "\\n", 2); continue;
        }

        if (c < 0x80) {
            out_bytes(o, &p[i], 1);
            continue;
        }

        n = utf8_len(p + i, s->len - i);

        if (n) {
            out_bytes(o, p + i, n);
            continue;
        }

        /* Latin-1, as UTF-8 */
        n = 1;
        esc[0] = (char) (0xc0 | c >> 6);
        esc[1] = (char) (0x80 | (c & 0x3f));
        out_bytes(o, esc, 2);
    }
}


size_t
mcig_status_json_string(char *buf, size_t size, const char *s, size_t len)
{
    out_t              o;
    mcig_status_str_t  str;

    str.data = s;
    str.len = len;

    out_init(&o, buf, size);
    json_escape(&o, &str);

    return o.len;
}


size_t
mcig_status_label_value(char *buf, size_t size, const char *s, size_t len)
{
    out_t              o;
    mcig_status_str_t  str;

    str.data = s;
    str.len = len;

    out_init(&o, buf, size);
    label_escape(&o, &str);

    return o.len;
}


/* --- JSON ------------------------------------------------------------ */

char *
mcig_status_json(const mcig_status_t *st, size_t *len)
{
    char    *time, **pools, *text;
    size_t   i, n;
    out_t    o;
    cJSON   *item;

    text = NULL;

    /* one more than needed: cJSON_malloc(0) may give NULL */
    pools = cJSON_malloc((st->npools + 1) * sizeof(char *));
    if (pools == NULL) {
        return NULL;
    }

    memset(pools, 0, (st->npools + 1) * sizeof(char *));

    /* cJSON writes the number, as it did */
    item = cJSON_CreateNumber((double) st->time_ms);
    time = item ? cJSON_PrintUnformatted(item) : NULL;
    cJSON_Delete(item);

    if (time == NULL) {
        goto done;
    }

    for (i = 0; i < st->npools; i++) {
        item = json_pool(&st->pools[i]);
        pools[i] = item ? cJSON_PrintUnformatted(item) : NULL;
        cJSON_Delete(item);

        if (pools[i] == NULL) {
            goto done;
        }
    }

    /* measured, then written */
    out_init(&o, NULL, 0);
    json_root(&o, st, time, pools);
    n = o.len;

    text = cJSON_malloc(n + 1);
    if (text == NULL) {
        goto done;
    }

    out_init(&o, text, n);
    json_root(&o, st, time, pools);
    text[n] = '\0';

    if (len) {
        *len = n;
    }

done:

    for (i = 0; i < st->npools; i++) {
        cJSON_free(pools[i]);
    }

    cJSON_free(pools);
    cJSON_free(time);

    return text;
}


void
mcig_status_json_free(char *text)
{
    cJSON_free(text);
}


static void
json_root(out_t *o, const mcig_status_t *st, const char *time, char **pools)
{
    size_t  i;

    out_text(o, "{\"version\":");
    json_escape(o, &st->version);
    out_text(o, ",\"time_ms\":");
    out_text(o, time);
    out_text(o, ",\"pools\":{");

    for (i = 0; i < st->npools; i++) {
        if (i) {
            out_bytes(o, ",", 1);
        }

        json_escape(o, &st->pools[i].name);
        out_bytes(o, ":", 1);
        out_text(o, pools[i]);
    }

    out_text(o, "}}");
}


static cJSON *
json_pool(const mcig_status_pool_t *pool)
{
    int     failed;
    size_t  i;
    cJSON  *p, *item, *list;

    static const mcig_status_str_t  custom = { "custom_metrics", 14 };
    static const mcig_status_str_t  in_flight = { "in_flight", 9 };

    p = cJSON_CreateObject();
    if (p == NULL) {
        return NULL;
    }

    failed = 0;

    json_add(p, "balancing_mode",
             json_string(pool->custom_metrics ? &custom : &in_flight),
             &failed);
    json_number(p, "max_in_flight", (double) pool->max_in_flight, &failed);

    if (pool->custom_metrics) {
        json_number(p, "max_utilization", (double) pool->max_utilization,
                    &failed);
        json_number(p, "max_queue", (double) pool->max_queue, &failed);
        json_bool(p, "dry_run", pool->dry_run, &failed);
    }

    item = json_add(p, "refused", cJSON_CreateObject(), &failed);
    json_number(item, "pool_saturated", (double) pool->saturated, &failed);
    json_number(item, "no_member_available", (double) pool->no_member,
                &failed);
    json_number(item, "deadline_exceeded", (double) pool->deadline,
                &failed);
    json_number(item, "queue_full",
                (double) pool->queue.outcomes[MCIG_STATUS_QUEUE_FULL],
                &failed);
    json_number(item, "queue_timeout",
                (double) pool->queue.outcomes[MCIG_STATUS_QUEUE_TIMEOUT],
                &failed);

    json_queue(p, pool, &failed);

    item = json_add(p, "responses", cJSON_CreateObject(), &failed);
    json_number(item, "1xx", (double) pool->responses[1], &failed);
    json_number(item, "2xx", (double) pool->responses[2], &failed);
    json_number(item, "3xx", (double) pool->responses[3], &failed);
    json_number(item, "4xx", (double) pool->responses[4], &failed);
    json_number(item, "5xx", (double) pool->responses[5], &failed);

    item = json_add(p, "decisions", cJSON_CreateObject(), &failed);
    json_number(item, "local", (double) pool->decisions[1], &failed);
    json_number(item, "spillover", (double) pool->decisions[2], &failed);
    json_number(item, "failover", (double) pool->decisions[3], &failed);

    json_session(p, pool, &failed);

    if (pool->regional) {
        json_regions(p, pool, &failed);
    }

    json_members(p, pool, &failed);

    list = json_add(p, "objectives", cJSON_CreateArray(), &failed);

    for (i = 0; i < pool->nobjectives; i++) {
        json_objective(list, &pool->objectives[i],
                       &pool->objectives[i].name, &failed);
    }

    /* requests without an objective, or naming an unknown one */
    json_objective(list, &pool->unnamed, NULL, &failed);

    if (failed) {
        cJSON_Delete(p);
        return NULL;
    }

    return p;
}


/* the pool's queue (flow control): null when it has none */

static void
json_queue(cJSON *p, const mcig_status_pool_t *pool, int *failed)
{
    char                        le[24];
    size_t                      i;
    uint64_t                    sum;
    cJSON                      *q, *list, *item, *wait;
    const mcig_status_queue_t  *queue;

    static const mcig_status_str_t  shed = { "shed", 4 };
    static const mcig_status_str_t  queue_text = { "queue", 5 };

    queue = &pool->queue;

    if (!queue->enabled) {
        json_add(p, "queue", cJSON_CreateNull(), failed);
        return;
    }

    q = json_add(p, "queue", cJSON_CreateObject(), failed);

    json_number(q, "max", (double) queue->max, failed);
    json_number(q, "max_per_priority", (double) queue->max_per_priority,
                failed);
    json_number(q, "timeout_ms", (double) queue->timeout_ms, failed);
    json_add(q, "sheddable",
             json_string(queue->queue_sheddable ? &queue_text : &shed),
             failed);
    json_number(q, "depth",
                (double) (queue->waiting > 0 ? queue->waiting : 0), failed);

    list = json_add(q, "bands", cJSON_CreateArray(), failed);

    for (i = 0; i < queue->nbands; i++) {
        item = json_add(list, NULL, cJSON_CreateObject(), failed);
        json_number(item, "priority", (double) queue->bands[i].priority,
                    failed);
        json_number(item, "waiting", (double) queue->bands[i].waiting,
                    failed);
    }

    for (i = 0; i < MCIG_STATUS_OUTCOMES; i++) {
        json_number(q, outcomes[i], (double) queue->outcomes[i], failed);
    }

    /* waits of the dispatched requests; buckets cumulative, as Prometheus */
    wait = json_add(q, "wait_ms", cJSON_CreateObject(), failed);

    json_number(wait, "count",
                (double) queue->outcomes[MCIG_STATUS_DISPATCHED], failed);
    json_number(wait, "sum", (double) queue->wait_ms, failed);

    item = json_add(wait, "buckets", cJSON_CreateObject(), failed);
    sum = 0;

    for (i = 0; i < MCIG_STATUS_WAIT_BUCKETS; i++) {
        sum += queue->wait_buckets[i];

        if (i < MCIG_STATUS_WAIT_BUCKETS - 1) {
            snprintf(le, sizeof(le), "%" PRIu64, queue->bucket_ms[i]);

        } else {
            memcpy(le, "+Inf", sizeof("+Inf"));
        }

        json_number(item, le, (double) sum, failed);
    }
}


/* the pool's session affinity: null when it has none */

static void
json_session(cJSON *p, const mcig_status_pool_t *pool, int *failed)
{
    cJSON  *item;

    if (!pool->session.enabled) {
        json_add(p, "session_affinity", cJSON_CreateNull(), failed);
        return;
    }

    item = json_add(p, "session_affinity", cJSON_CreateObject(), failed);

    json_add(item, "header", json_string(&pool->session.header), failed);
    json_number(item, "kept", (double) pool->session.kept, failed);
    json_number(item, "moved", (double) pool->session.moved, failed);
}


static void
json_regions(cJSON *p, const mcig_status_pool_t *pool, int *failed)
{
    double                       util;
    size_t                       r, i, total, healthy;
    cJSON                       *list, *item;
    const mcig_status_member_t  *m;

    list = json_add(p, "regions", cJSON_CreateArray(), failed);

    for (r = 0; r < pool->nregions; r++) {
        total = 0;
        healthy = 0;
        util = 0;

        for (i = 0; i < pool->nmembers; i++) {
            m = &pool->members[i];

            if (m->region != r) {
                continue;
            }

            total++;

            if (m->healthy) {
                healthy++;
                util += (double) m->load
                        / (m->load_capacity ? m->load_capacity : 1);
            }
        }

        item = json_add(list, NULL, cJSON_CreateObject(), failed);
        json_add(item, "name", json_string(&pool->regions[r].name), failed);
        json_bool(item, "local", r == 0, failed);
        json_number(item, "members", (double) total, failed);
        json_number(item, "healthy", (double) healthy, failed);

        /* as a multiple of the target: over 1 spills */
        json_number(item, "utilization", healthy ? util / healthy : 0,
                    failed);
        json_bool(item, "drained", pool->regions[r].drained, failed);
        json_number(item, "requests", (double) pool->regions[r].requests,
                    failed);
    }
}


static void
json_members(cJSON *p, const mcig_status_pool_t *pool, int *failed)
{
    size_t                       i;
    cJSON                       *list, *item, *metrics;
    const mcig_status_member_t  *m;

    list = json_add(p, "members", cJSON_CreateArray(), failed);

    for (i = 0; i < pool->nmembers; i++) {
        m = &pool->members[i];

        item = json_add(list, NULL, cJSON_CreateObject(), failed);
        json_add(item, "address", json_string(&m->address), failed);

        if (pool->regional) {
            json_add(item, "region",
                     m->region < pool->nregions
                     ? json_string(&pool->regions[m->region].name)
                     : cJSON_CreateNull(),
                     failed);
            json_add(item, "cluster", json_string(&m->cluster), failed);
        }

        json_bool(item, "healthy", m->healthy, failed);
        json_number(item, "in_flight", (double) m->in_flight, failed);
        json_number(item, "capacity", (double) m->capacity, failed);
        json_number(item, "requests", (double) m->requests, failed);
        json_number(item, "failures", (double) m->failures, failed);

        if (pool->outlier_detection) {
            json_bool(item, "ejected", m->ejected, failed);
            json_number(item, "ejected_ms", (double) m->ejected_ms, failed);
            json_number(item, "ejections", (double) m->ejections, failed);
        }

        if (pool->health_checks) {
            json_add(item, "health_check_age_ms",
                     m->health_checked
                     ? cJSON_CreateNumber((double) m->health_check_age_ms)
                     : cJSON_CreateNull(),
                     failed);
        }

        if (!pool->scraping) {
            continue;
        }

        json_number(item, "scrapes", (double) m->scrapes, failed);
        json_number(item, "scrape_errors", (double) m->scrape_errors,
                    failed);
        json_number(item, "scrape_duration_ms", m->scrape_usec / 1000.0,
                    failed);

        if (!m->metrics_fresh) {
            /* never scraped, or stale */
            json_add(item, "metrics", cJSON_CreateNull(), failed);
            continue;
        }

        metrics = json_add(item, "metrics", cJSON_CreateObject(), failed);
        json_number(metrics, "kv_cache_usage", m->kv_ppm / 1e6, failed);
        json_number(metrics, "waiting", m->waiting, failed);
        json_number(metrics, "running", m->running, failed);
        json_number(metrics, "age_ms", (double) m->metrics_age_ms, failed);
        json_number(metrics, "dispatched_since", (double) m->dispatched,
                    failed);
    }
}


/* name NULL: the requests of no objective, "name":null */

static void
json_objective(cJSON *list, const mcig_status_objective_t *obj,
    const mcig_status_str_t *name, int *failed)
{
    cJSON  *item;

    item = json_add(list, NULL, cJSON_CreateObject(), failed);

    json_add(item, "name", name ? json_string(name) : cJSON_CreateNull(),
             failed);
    json_number(item, "priority", name ? (double) obj->priority : 0, failed);
    json_number(item, "requests", (double) obj->requests, failed);
    json_number(item, "shed", (double) obj->shed, failed);
    json_number(item, "queued", (double) obj->queued, failed);
    json_number(item, "queue_full", (double) obj->queue_full, failed);
    json_number(item, "queue_timeout", (double) obj->queue_timeout, failed);
}


/*
 * Adds item to parent, under key or, without a key, to an array.  Any
 * failure, an item or a parent that could not be made included, sets
 * *failed and frees the item: the answer is then dropped whole rather
 * than sent with holes.  Returns the item added or NULL.
 */

static cJSON *
json_add(cJSON *parent, const char *key, cJSON *item, int *failed)
{
    cJSON_bool  added;

    if (item == NULL || parent == NULL) {
        cJSON_Delete(item);
        *failed = 1;
        return NULL;
    }

    added = key ? cJSON_AddItemToObject(parent, key, item)
                : cJSON_AddItemToArray(parent, item);

    if (!added) {
        cJSON_Delete(item);
        *failed = 1;
        return NULL;
    }

    return item;
}


/* a string escaped here, handed to cJSON as a raw item */

static cJSON *
json_string(const mcig_status_str_t *s)
{
    char    *buf;
    size_t   n;
    out_t    o;
    cJSON   *item;

    out_init(&o, NULL, 0);
    json_escape(&o, s);
    n = o.len;

    buf = cJSON_malloc(n + 1);
    if (buf == NULL) {
        return NULL;
    }

    out_init(&o, buf, n);
    json_escape(&o, s);
    buf[n] = '\0';

    item = cJSON_CreateRaw(buf);
    cJSON_free(buf);

    return item;
}


static void
json_number(cJSON *o, const char *key, double v, int *failed)
{
    json_add(o, key, cJSON_CreateNumber(v), failed);
}


static void
json_bool(cJSON *o, const char *key, int v, int *failed)
{
    json_add(o, key, cJSON_CreateBool(v), failed);
}


/* --- Prometheus ------------------------------------------------------ */

/*
 * Every family has its HELP and TYPE lines, then its series over every
 * pool, even when it has none.
 */

size_t
mcig_status_prometheus(const mcig_status_t *st, char *buf, size_t size)
{
    size_t    i;
    out_t     o;
    unsigned  f;

    out_init(&o, buf, size);

    for (f = 0; f < F_COUNT; f++) {
        out_text(&o, "# HELP ");
        out_text(&o, families[f].name);
        out_bytes(&o, " ", 1);
        out_text(&o, families[f].help);
        out_text(&o, "\n# TYPE ");
        out_text(&o, families[f].name);
        out_bytes(&o, " ", 1);
        out_text(&o, families[f].type);
        out_bytes(&o, "\n", 1);

        for (i = 0; i < st->npools; i++) {
            prom_family(&o, &st->pools[i], f);
        }
    }

    return o.len;
}


static void
prom_family(out_t *o, const mcig_status_pool_t *pool, unsigned family)
{
    size_t       i;
    uint64_t     count[5];
    const char  *name;

    static const char  *refused[] = { "pool_saturated",
                                      "no_member_available",
                                      "deadline_exceeded",
                                      "queue_full", "queue_timeout" };
    static const char  *decisions[] = { "", "local", "spillover",
                                        "failover" };
    static const char  *codes[] = { "", "1xx", "2xx", "3xx", "4xx",
                                    "5xx" };

    name = families[family].name;

    if (family >= F_QUEUE_DEPTH && family <= F_OBJECTIVE_QUEUE
        && !pool->queue.enabled)
    {
        return;
    }

    switch (family) {

    case F_POOL_REFUSED:
        count[0] = pool->saturated;
        count[1] = pool->no_member;
        count[2] = pool->deadline;
        count[3] = pool->queue.outcomes[MCIG_STATUS_QUEUE_FULL];
        count[4] = pool->queue.outcomes[MCIG_STATUS_QUEUE_TIMEOUT];

        for (i = 0; i < 5; i++) {
            prom_open(o, name, pool);
            prom_label_text(o, "reason", refused[i]);
            prom_value(o);
            out_u64(o, count[i]);
            out_bytes(o, "\n", 1);
        }

        return;

    case F_OBJECTIVE_REQUESTS:
    case F_OBJECTIVE_SHED:
    case F_OBJECTIVE_QUEUE:
        for (i = 0; i < pool->nobjectives; i++) {
            prom_objective(o, pool, &pool->objectives[i],
                           &pool->objectives[i].name, family);
        }

        /* requests of no objective: objective="" */
        prom_objective(o, pool, &pool->unnamed, NULL, family);
        return;

    case F_POOL_DECISIONS:
        for (i = 1; i < 4; i++) {
            prom_open(o, name, pool);
            prom_label_text(o, "decision", decisions[i]);
            prom_value(o);
            out_u64(o, pool->decisions[i]);
            out_bytes(o, "\n", 1);
        }

        return;

    case F_REGION_REQUESTS:
        for (i = 0; pool->regional && i < pool->nregions; i++) {
            prom_open(o, name, pool);
            prom_label(o, "region", &pool->regions[i].name);
            prom_value(o);
            out_u64(o, pool->regions[i].requests);
            out_bytes(o, "\n", 1);
        }

        return;

    case F_POOL_RESPONSES:
        for (i = 1; i < 6; i++) {
            prom_open(o, name, pool);
            prom_label_text(o, "code", codes[i]);
            prom_value(o);
            out_u64(o, pool->responses[i]);
            out_bytes(o, "\n", 1);
        }

        return;

    case F_QUEUE_DEPTH:
        prom_depth(o, pool);
        return;

    case F_QUEUE_REQUESTS:
        for (i = 0; i < MCIG_STATUS_OUTCOMES; i++) {
            prom_open(o, name, pool);
            prom_label_text(o, "outcome", outcomes[i]);
            prom_value(o);
            out_u64(o, pool->queue.outcomes[i]);
            out_bytes(o, "\n", 1);
        }

        return;

    case F_QUEUE_WAIT:
        prom_wait(o, pool);
        return;

    case F_POOL_SESSION_AFFINITY:
        for (i = 0; pool->session.enabled && i < 2; i++) {
            prom_open(o, name, pool);
            prom_label_text(o, "outcome", i ? "moved" : "kept");
            prom_value(o);
            out_u64(o, i ? pool->session.moved : pool->session.kept);
            out_bytes(o, "\n", 1);
        }

        return;
    }

    /*
     * the members' families; outlier detection's only when it is on,
     * the scraper's only when it scrapes
     */

    if ((family == F_MEMBER_EJECTED || family == F_MEMBER_EJECTIONS)
        && !pool->outlier_detection)
    {
        return;
    }

    if ((family == F_MEMBER_SCRAPES || family == F_MEMBER_SCRAPE_ERRORS
         || family == F_MEMBER_SCRAPE_DURATION)
        && !pool->scraping)
    {
        return;
    }

    for (i = 0; i < pool->nmembers; i++) {
        prom_member(o, pool, &pool->members[i], family);
    }
}


static void
prom_member(out_t *o, const mcig_status_pool_t *pool,
    const mcig_status_member_t *m, unsigned family)
{
    if (family >= F_MEMBER_KV_CACHE && family <= F_MEMBER_METRICS_AGE
        && !(pool->scraping && m->metrics_fresh))
    {
        return;
    }

    prom_open(o, families[family].name, pool);
    prom_label(o, "member", &m->address);
    prom_value(o);

    switch (family) {
    case F_MEMBER_REQUESTS:    out_u64(o, m->requests); break;
    case F_MEMBER_FAILURES:    out_u64(o, m->failures); break;
    case F_MEMBER_IN_FLIGHT:   out_i64(o, m->in_flight); break;
    case F_MEMBER_HEALTHY:     out_u64(o, m->healthy ? 1 : 0); break;
    case F_MEMBER_EJECTED:     out_u64(o, m->ejected ? 1 : 0); break;
    case F_MEMBER_EJECTIONS:   out_u64(o, m->ejections); break;
    case F_MEMBER_KV_CACHE:    out_fixed(o, m->kv_ppm, 1000000, 6); break;
    case F_MEMBER_WAITING:     out_u64(o, m->waiting); break;
    case F_MEMBER_RUNNING:     out_u64(o, m->running); break;
    case F_MEMBER_METRICS_AGE: out_fixed(o, m->metrics_age_ms, 1000, 3);
                               break;
    case F_MEMBER_SCRAPES:     out_u64(o, m->scrapes); break;
    case F_MEMBER_SCRAPE_ERRORS:
                               out_u64(o, m->scrape_errors); break;
    default:                   out_fixed(o, m->scrape_usec, 1000000, 6);
    }

    out_bytes(o, "\n", 1);
}


/* name NULL: the requests of no objective, objective="" */

static void
prom_objective(out_t *o, const mcig_status_pool_t *pool,
    const mcig_status_objective_t *obj, const mcig_status_str_t *name,
    unsigned family)
{
    unsigned                 i;
    const mcig_status_str_t  none = { NULL, 0 };

    static const char  *outcome[] = { "queued", "queue_full",
                                      "queue_timeout" };

    for (i = 0; i < (family == F_OBJECTIVE_QUEUE ? 3u : 1u); i++) {
        prom_open(o, families[family].name, pool);
        prom_label(o, "objective", name ? name : &none);

        if (family == F_OBJECTIVE_QUEUE) {
            prom_label_text(o, "outcome", outcome[i]);
        }

        prom_value(o);

        switch (family) {
        case F_OBJECTIVE_REQUESTS: out_u64(o, obj->requests); break;
        case F_OBJECTIVE_SHED:     out_u64(o, obj->shed); break;
        default:
            out_u64(o, i == 0 ? obj->queued
                       : i == 1 ? obj->queue_full : obj->queue_timeout);
        }

        out_bytes(o, "\n", 1);
    }
}


/*
 * The priorities a pool's depth is shown for, highest first: those
 * waiting, and with 0 waiting those of the objectives and 0 (requests of
 * no objective), so that their series do not come and go with the
 * traffic.  Each step looks for the highest priority under the last one
 * written: no room is needed to merge the lists.
 */

static void
prom_depth(out_t *o, const mcig_status_pool_t *pool)
{
    int                         found, first;
    size_t                      i;
    int64_t                     prio, last, c;
    uint64_t                    waiting;
    const mcig_status_queue_t  *q;

    q = &pool->queue;
    last = 0;
    prio = 0;

    for (first = 1; /* void */; first = 0) {
        found = 0;

        for (i = 0; i <= q->nbands + pool->nobjectives; i++) {
            c = (i < q->nbands) ? q->bands[i].priority
                : (i < q->nbands + pool->nobjectives)
                  ? pool->objectives[i - q->nbands].priority
                  : 0;

            if ((first || c < last) && (!found || c > prio)) {
                prio = c;
                found = 1;
            }
        }

        if (!found) {
            return;
        }

        waiting = 0;

        for (i = 0; i < q->nbands; i++) {
            if (q->bands[i].priority == prio) {
                waiting += q->bands[i].waiting;
            }
        }

        prom_open(o, families[F_QUEUE_DEPTH].name, pool);
        out_text(o, "\",priority=\"");
        out_i64(o, prio);
        prom_value(o);
        out_u64(o, waiting);
        out_bytes(o, "\n", 1);

        last = prio;
    }
}


static void
prom_wait(out_t *o, const mcig_status_pool_t *pool)
{
    size_t                      i;
    uint64_t                    sum;
    const mcig_status_queue_t  *q;

    q = &pool->queue;
    sum = 0;

    for (i = 0; i < MCIG_STATUS_WAIT_BUCKETS; i++) {
        sum += q->wait_buckets[i];

        prom_open(o, "mcig_pool_queue_wait_seconds_bucket", pool);
        out_text(o, "\",le=\"");

        if (i < MCIG_STATUS_WAIT_BUCKETS - 1) {
            out_fixed(o, q->bucket_ms[i], 1000, 3);

        } else {
            out_text(o, "+Inf");
        }

        prom_value(o);
        out_u64(o, sum);
        out_bytes(o, "\n", 1);
    }

    prom_open(o, "mcig_pool_queue_wait_seconds_sum", pool);
    prom_value(o);
    out_fixed(o, q->wait_ms, 1000, 3);
    out_bytes(o, "\n", 1);

    prom_open(o, "mcig_pool_queue_wait_seconds_count", pool);
    prom_value(o);
    out_u64(o, sum);
    out_bytes(o, "\n", 1);
}


/* name{pool="...  the label left open for the next one or the value */

static void
prom_open(out_t *o, const char *name, const mcig_status_pool_t *pool)
{
    out_text(o, name);
    out_text(o, "{pool=\"");
    label_escape(o, &pool->name);
}


static void
prom_label(out_t *o, const char *label, const mcig_status_str_t *value)
{
    out_text(o, "\",");
    out_text(o, label);
    out_text(o, "=\"");
    label_escape(o, value);
}


/* a label of ours: nothing to escape */

static void
prom_label_text(out_t *o, const char *label, const char *value)
{
    out_text(o, "\",");
    out_text(o, label);
    out_text(o, "=\"");
    out_text(o, value);
}


static void
prom_value(out_t *o)
{
    out_text(o, "\"} ");
}
