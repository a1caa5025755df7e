
/*
 * Copyright (C) ngx_mcig_module authors
 *
 * The metrics scraper and health checker: every worker runs a cancelable
 * timer, and the one holding the scrape lease in the shared zone fetches
 * each member's /metrics and health path with libcurl on the event loop.
 * Metrics are parsed as they arrive and published in the member's shared
 * node; health checks move the member's shared health state.  A worker that
 * dies or exits stops renewing the lease, and another takes it over within
 * one lease period.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_mcig_module.h"
#include "ngx_http_mcig_curl.h"


/* a lease outlives this many missed rounds, and at least a second */
#define NGX_HTTP_MCIG_LEASE_ROUNDS  4
#define NGX_HTTP_MCIG_LEASE_MIN     1000

/* members of a round start in this many batches over its interval */
#define NGX_HTTP_MCIG_TICKS_PER_ROUND  16


/* one periodic fetch: a member's metrics page or its health path */
typedef struct {
    ngx_http_mcig_curl_transfer_t       transfer;
    ngx_http_upstream_mcig_srv_conf_t  *pool;
    ngx_http_mcig_member_t             *member;
    ngx_msec_t                          due;
    ngx_msec_t                          interval;
    mcig_prom_t                        *parser;   /* NULL: health check */
    struct curl_slist                  *headers;
    ngx_str_t                           url;      /* logged: no query */
    unsigned                            query:1;  /* logged as "?..." */
    unsigned                            failing:1;
} ngx_http_mcig_scrape_t;


static void ngx_http_mcig_scrape_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_mcig_scrape_lease(void);
static ngx_int_t ngx_http_mcig_scrape_targets(ngx_log_t *log);
static void ngx_http_mcig_scrape_start(ngx_http_mcig_scrape_t *s);
static size_t ngx_http_mcig_scrape_write(char *data, size_t size,
    size_t n, void *userdata);
static void ngx_http_mcig_scrape_done(ngx_http_mcig_curl_transfer_t *t,
    CURLcode result);
static void ngx_http_mcig_scrape_failed(ngx_http_mcig_scrape_t *s,
    const char *reason, const char *detail);
static size_t ngx_http_mcig_health_write(char *data, size_t size, size_t n,
    void *userdata);
static void ngx_http_mcig_health_done(ngx_http_mcig_curl_transfer_t *t,
    CURLcode result);
static void ngx_http_mcig_health_change(
    ngx_http_upstream_mcig_srv_conf_t *pool, ngx_http_mcig_member_t *member,
    ngx_uint_t ok, ngx_uint_t checked, const char *reason);
static CURL *ngx_http_mcig_probe_easy(ngx_http_mcig_scrape_t *s,
    ngx_str_t *url, ngx_msec_t timeout, ngx_log_t *log);
static ngx_int_t ngx_http_mcig_scrape_tls(ngx_http_mcig_scrape_t *s,
    ngx_log_t *log);


static ngx_http_mcig_shctx_t   *ngx_http_mcig_scrape_sh;
static ngx_array_t             *ngx_http_mcig_scrape_pools;
static ngx_http_mcig_scrape_t  *ngx_http_mcig_scrapes;
static ngx_uint_t               ngx_http_mcig_nscrapes;
static ngx_msec_t               ngx_http_mcig_scrape_tick;
static ngx_msec_t               ngx_http_mcig_lease_period;
static ngx_event_t              ngx_http_mcig_scrape_event;
static ngx_connection_t         ngx_http_mcig_scrape_conn;
static ngx_log_t               *ngx_http_mcig_scrape_log;


ngx_int_t
ngx_http_mcig_scrape_init_process(ngx_cycle_t *cycle, ngx_array_t *pools,
    ngx_http_mcig_shctx_t *sh)
{
    ngx_uint_t                           i;
    ngx_http_upstream_mcig_srv_conf_t  **pool;

    pool = pools->elts;
    ngx_http_mcig_scrape_tick = 0;

    for (i = 0; i < pools->nelts; i++) {
        if (pool[i]->metrics
            && (ngx_http_mcig_scrape_tick == 0
                || pool[i]->metrics_interval < ngx_http_mcig_scrape_tick))
        {
            ngx_http_mcig_scrape_tick = pool[i]->metrics_interval;
        }

        if (pool[i]->health
            && (ngx_http_mcig_scrape_tick == 0
                || pool[i]->health_interval < ngx_http_mcig_scrape_tick))
        {
            ngx_http_mcig_scrape_tick = pool[i]->health_interval;
        }
    }

    if (ngx_http_mcig_scrape_tick == 0) {
        return NGX_OK;
    }

    /* the lease period counts in rounds, the timer in sixteenths of one */
    ngx_http_mcig_lease_period = ngx_max(NGX_HTTP_MCIG_LEASE_MIN,
                        NGX_HTTP_MCIG_LEASE_ROUNDS * ngx_http_mcig_scrape_tick);
    ngx_http_mcig_scrape_tick = ngx_max(ngx_http_mcig_scrape_tick
                                        / NGX_HTTP_MCIG_TICKS_PER_ROUND, 1);

    if (ngx_http_mcig_curl_init(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_mcig_scrape_sh = sh;
    ngx_http_mcig_scrape_pools = pools;
    ngx_http_mcig_scrape_log = cycle->log;

    ngx_http_mcig_scrape_conn.fd = (ngx_socket_t) -1;

    ngx_http_mcig_scrape_event.handler = ngx_http_mcig_scrape_handler;
    ngx_http_mcig_scrape_event.data = &ngx_http_mcig_scrape_conn;
    ngx_http_mcig_scrape_event.log = cycle->log;
    ngx_http_mcig_scrape_event.cancelable = 1;

    ngx_add_timer(&ngx_http_mcig_scrape_event, ngx_http_mcig_scrape_tick);

    return NGX_OK;
}


void
ngx_http_mcig_scrape_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t  i;

    if (ngx_http_mcig_scrape_sh == NULL) {
        return;
    }

    for (i = 0; i < ngx_http_mcig_nscrapes; i++) {
        ngx_http_mcig_curl_cancel(&ngx_http_mcig_scrapes[i].transfer);
        curl_easy_cleanup(ngx_http_mcig_scrapes[i].transfer.easy);

        if (ngx_http_mcig_scrapes[i].parser) {
            ngx_free(ngx_http_mcig_scrapes[i].parser);
        }

        if (ngx_http_mcig_scrapes[i].headers) {
            curl_slist_free_all(ngx_http_mcig_scrapes[i].headers);
        }
    }

    if (ngx_http_mcig_scrapes) {
        ngx_free(ngx_http_mcig_scrapes);
        ngx_http_mcig_scrapes = NULL;
    }

    ngx_http_mcig_nscrapes = 0;

    /* hand the lease over at once rather than after it expires */
    (void) ngx_atomic_cmp_set(&ngx_http_mcig_scrape_sh->scrape_owner,
                              (ngx_atomic_uint_t) ngx_pid, 0);

    ngx_http_mcig_curl_exit();
    ngx_http_mcig_scrape_sh = NULL;
}


/*
 * Reads a member's scraped figures; NGX_DECLINED when there are none or
 * they are older than the pool's staleness threshold.
 */

ngx_int_t
ngx_http_mcig_read_metrics(ngx_http_upstream_mcig_srv_conf_t *pool,
    ngx_http_mcig_member_t *member, ngx_http_mcig_metrics_t *m)
{
    ngx_uint_t                    tries;
    ngx_msec_t                    when;
    ngx_atomic_uint_t             seq;
    ngx_http_mcig_member_node_t  *node;

    node = member->node;

    for (tries = 0; tries < 8; tries++) {
        seq = node->metrics_seq;

        if (seq & 1) {
            continue;
        }

        ngx_memory_barrier();

        m->kv_ppm = node->kv_ppm;
        m->waiting = node->waiting;
        m->running = node->running;
        when = node->metrics_msec;

        ngx_memory_barrier();

        if (node->metrics_seq != seq) {
            continue;
        }

        if (when == 0) {
            return NGX_DECLINED;
        }

        m->age = ngx_http_mcig_msec_since(when);

        return (m->age <= pool->metrics_stale) ? NGX_OK : NGX_DECLINED;
    }

    return NGX_DECLINED;
}


/*
 * Whether the pool's scrapes are working: some member's metrics are fresh.
 * While they are, a member whose own are stale has stopped answering them.
 */

ngx_int_t
ngx_http_mcig_pool_metrics_fresh(ngx_http_upstream_mcig_srv_conf_t *pool)
{
    ngx_msec_t  when;

    when = pool->node->metrics_msec;

    return when && ngx_http_mcig_msec_since(when) <= pool->metrics_stale;
}


/*
 * Where the adapter stands on the member, from its last fresh scrape: the
 * LoRA scorer's input.  A member without LoRA figures has no free slot.
 */

mcig_lora_e
ngx_http_mcig_read_lora(ngx_http_mcig_member_t *member, uint64_t adapter)
{
    int                           running_there, waiting_there;
    uint32_t                      running, waiting, max_lora;
    ngx_uint_t                    tries;
    ngx_atomic_uint_t             seq;
    ngx_http_mcig_member_node_t  *node;

    node = member->node;

    for (tries = 0; tries < 8; tries++) {
        seq = node->metrics_seq;

        if (seq & 1) {
            continue;
        }

        ngx_memory_barrier();

        max_lora = node->max_lora;
        running = ngx_min(node->lora_running_n, NGX_HTTP_MCIG_LORA_MAX);
        waiting = ngx_min(node->lora_waiting_n, NGX_HTTP_MCIG_LORA_MAX);
        running_there = mcig_lora_listed(node->lora_running, running,
                                         adapter);
        waiting_there = mcig_lora_listed(node->lora_waiting, waiting,
                                         adapter);

        ngx_memory_barrier();

        if (node->metrics_seq == seq) {
            return mcig_lora_state(running_there, waiting_there, running,
                                   waiting, max_lora);
        }
    }

    return MCIG_LORA_NONE;
}


static void
ngx_http_mcig_scrape_handler(ngx_event_t *ev)
{
    ngx_uint_t               i;
    ngx_http_mcig_scrape_t  *s;

    if (ngx_exiting || ngx_quit) {
        /*
         * an exiting worker still ticks while its last requests finish:
         * it hands the lease over now rather than let it expire
         */
        (void) ngx_atomic_cmp_set(&ngx_http_mcig_scrape_sh->scrape_owner,
                                  (ngx_atomic_uint_t) ngx_pid, 0);
        return;
    }

    if (ngx_http_mcig_scrape_lease() == NGX_OK) {

        if (ngx_http_mcig_scrapes == NULL
            && ngx_http_mcig_scrape_targets(ev->log) != NGX_OK)
        {
            goto next;
        }

        for (i = 0; i < ngx_http_mcig_nscrapes; i++) {
            s = &ngx_http_mcig_scrapes[i];

            /* a scrape still running is left to its timeout */
            if (s->transfer.active
                || (ngx_msec_int_t) (s->due - ngx_current_msec) > 0)
            {
                continue;
            }

            /* keep the spread: the next time follows this one's slot */
            s->due += s->interval;

            if ((ngx_msec_int_t) (s->due - ngx_current_msec) <= 0) {
                s->due = ngx_current_msec + s->interval;
            }

            ngx_http_mcig_scrape_start(s);
        }
    }

next:

    ngx_add_timer(ev, ngx_http_mcig_scrape_tick);
}


/* takes or renews the lease; NGX_OK while this worker holds it */

static ngx_int_t
ngx_http_mcig_scrape_lease(void)
{
    ngx_atomic_uint_t       owner;
    ngx_http_mcig_shctx_t  *sh;

    sh = ngx_http_mcig_scrape_sh;
    owner = sh->scrape_owner;

    if (owner != (ngx_atomic_uint_t) ngx_pid) {

        if (owner != 0
            && (ngx_msec_int_t) (sh->scrape_until - ngx_current_msec) > 0)
        {
            return NGX_DECLINED;
        }

        if (!ngx_atomic_cmp_set(&sh->scrape_owner, owner,
                                (ngx_atomic_uint_t) ngx_pid))
        {
            return NGX_DECLINED;
        }

        ngx_log_error(NGX_LOG_INFO, ngx_http_mcig_scrape_log, 0,
                      "mcig: this worker scrapes the members' metrics");
    }

    sh->scrape_until = ngx_current_msec + ngx_http_mcig_lease_period;

    return NGX_OK;
}


static ngx_int_t
ngx_http_mcig_scrape_targets(ngx_log_t *log)
{
    ngx_uint_t                           i, j, n;
    ngx_http_mcig_scrape_t              *s;
    ngx_http_upstream_mcig_srv_conf_t  **pool;

    pool = ngx_http_mcig_scrape_pools->elts;
    n = 0;

    for (i = 0; i < ngx_http_mcig_scrape_pools->nelts; i++) {
        n += ((pool[i]->metrics ? 1 : 0) + (pool[i]->health ? 1 : 0))
             * pool[i]->nmembers;
    }

    s = ngx_calloc(n * sizeof(ngx_http_mcig_scrape_t), log);
    if (s == NULL) {
        return NGX_ERROR;
    }

    /* one kept-alive connection per probe */
    ngx_http_mcig_curl_keep_connections(n);

    ngx_http_mcig_scrapes = s;

    /*
     * A pool's members are spread evenly over its interval: scraping all
     * at the same tick would make the worker parse a whole round at once
     * and hold up the requests it serves meanwhile.
     */

    for (i = 0; i < ngx_http_mcig_scrape_pools->nelts; i++) {
        for (j = 0; j < pool[i]->nmembers; j++) {

            if (pool[i]->metrics) {
                s->pool = pool[i];
                s->member = &pool[i]->members[j];
                s->interval = pool[i]->metrics_interval;
                s->due = ngx_current_msec
                         + s->interval * j / pool[i]->nmembers;
                s->transfer.done = ngx_http_mcig_scrape_done;

                s->parser = ngx_alloc(sizeof(mcig_prom_t), log);
                if (s->parser == NULL) {
                    return NGX_ERROR;
                }

                if (ngx_http_mcig_probe_easy(s, &s->member->metrics_url,
                                             pool[i]->metrics_timeout, log)
                    == NULL)
                {
                    return NGX_ERROR;
                }

                curl_easy_setopt(s->transfer.easy, CURLOPT_WRITEFUNCTION,
                                 ngx_http_mcig_scrape_write);

                if (ngx_http_mcig_scrape_tls(s, log) != NGX_OK) {
                    return NGX_ERROR;
                }

                s++;
            }

            if (pool[i]->health) {
                s->pool = pool[i];
                s->member = &pool[i]->members[j];
                s->interval = pool[i]->health_interval;
                s->due = ngx_current_msec
                         + s->interval * j / pool[i]->nmembers;
                s->transfer.done = ngx_http_mcig_health_done;

                if (ngx_http_mcig_probe_easy(s, &s->member->health_url,
                                             pool[i]->health_timeout, log)
                    == NULL)
                {
                    return NGX_ERROR;
                }

                curl_easy_setopt(s->transfer.easy, CURLOPT_WRITEFUNCTION,
                                 ngx_http_mcig_health_write);
                s++;
            }
        }
    }

    return NGX_OK;
}


/* the easy handle of a probe, kept for its keep-alive connection */

static CURL *
ngx_http_mcig_probe_easy(ngx_http_mcig_scrape_t *s, ngx_str_t *url,
    ngx_msec_t timeout, ngx_log_t *log)
{
    CURL    *easy;
    u_char  *p;

    /*
     * the name filter's query is long and the configuration's: the log
     * names where the page is, and that a query went with it
     */
    s->url.data = url->data;
    s->url.len = url->len;

    for (p = url->data; p < url->data + url->len; p++) {
        if (*p == '?') {
            s->url.len = p - url->data;
            s->query = 1;
            break;
        }
    }

    easy = curl_easy_init();
    if (easy == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "mcig: curl_easy_init() failed for %V%s of member %V "
                      "of pool \"%V\"", &s->url, s->query ? "?..." : "",
                      &s->member->name, &s->pool->upstream->host);
        return NULL;
    }

    s->transfer.easy = easy;
    s->transfer.data = s;
    ngx_http_mcig_nscrapes++;

    curl_easy_setopt(easy, CURLOPT_URL, url->data);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) timeout);
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "ngx_mcig_module");

    return easy;
}


/* certificate checks stay on: libcurl verifies the peer and its name */

static ngx_int_t
ngx_http_mcig_scrape_tls(ngx_http_mcig_scrape_t *s, ngx_log_t *log)
{
    CURL                               *easy;
    ngx_http_upstream_mcig_srv_conf_t  *pool;

    easy = s->transfer.easy;
    pool = s->pool;

    if (pool->metrics_ca_file.len) {
        curl_easy_setopt(easy, CURLOPT_CAINFO, pool->metrics_ca_file.data);
    }

    if (pool->metrics_cert.len) {
        curl_easy_setopt(easy, CURLOPT_SSLCERT, pool->metrics_cert.data);
        curl_easy_setopt(easy, CURLOPT_SSLKEY, pool->metrics_key.data);
    }

    if (pool->metrics_auth.len) {
        s->headers = curl_slist_append(NULL,
                                       (char *) pool->metrics_auth.data);
        if (s->headers == NULL) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "mcig: curl_slist_append() failed for %V%s of "
                          "member %V of pool \"%V\"", &s->url,
                          s->query ? "?..." : "", &s->member->name,
                          &pool->upstream->host);
            return NGX_ERROR;
        }

        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, s->headers);
    }

    return NGX_OK;
}


static void
ngx_http_mcig_scrape_start(ngx_http_mcig_scrape_t *s)
{
    u_char      *p, reason[128];
    const char  *err;

    if (s->parser) {
        mcig_prom_init(s->parser, s->pool->metrics,
                       s->pool->metrics_max_size);
    }

    if (ngx_http_mcig_curl_start(&s->transfer, &err) == NGX_OK) {
        return;
    }

    if (s->parser) {
        ngx_http_mcig_scrape_failed(s, "it could not start:", err);
        return;
    }

    p = ngx_snprintf(reason, sizeof(reason) - 1, "could not start: %s", err);
    *p = '\0';

    ngx_http_mcig_health_change(s->pool, s->member, 0, 1, (char *) reason);
}


static size_t
ngx_http_mcig_scrape_write(char *data, size_t size, size_t n, void *userdata)
{
    ngx_http_mcig_scrape_t  *s = userdata;

    if (mcig_prom_feed(s->parser, (const uint8_t *) data, size * n)
        != MCIG_PROM_AGAIN)
    {
        /* over the size cap: returning less makes curl stop */
        return 0;
    }

    return size * n;
}


static void
ngx_http_mcig_scrape_done(ngx_http_mcig_curl_transfer_t *t, CURLcode result)
{
    ngx_http_mcig_scrape_t  *s = t->data;

    long                          status;
    u_char                        code[NGX_INT64_LEN + 1];
    double                        kv, waiting, running;
    curl_off_t                    usec;
    mcig_prom_lora_t             *lora;
    ngx_http_mcig_member_node_t  *node;

    node = s->member->node;

    /*
     * the sequence counter allows one writer: a scrape that ends after
     * this worker lost the lease is dropped
     */
    if (ngx_http_mcig_scrape_sh->scrape_owner != (ngx_atomic_uint_t) ngx_pid) {
        return;
    }

    if (result == CURLE_WRITE_ERROR
        && s->parser->error == MCIG_PROM_TOO_LARGE)
    {
        ngx_http_mcig_scrape_failed(s, "the page is larger than",
                                    "the size limit");
        return;
    }

    if (result != CURLE_OK) {
        ngx_http_mcig_scrape_failed(s, "", curl_easy_strerror(result));
        return;
    }

    status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);

    if (status < 200 || status > 299) {
        *ngx_sprintf(code, "%l", status) = '\0';
        ngx_http_mcig_scrape_failed(s, "it answered with status",
                                    (char *) code);
        return;
    }

    if (mcig_prom_finish(s->parser) != MCIG_PROM_OK) {
        ngx_http_mcig_scrape_failed(s, "the page is larger than",
                                    "the size limit");
        return;
    }

    if (mcig_prom_role_value(s->parser, MCIG_PROM_ROLE_KV_USAGE, &kv)
        != MCIG_PROM_PRESENT
        || kv < 0 || kv > 1)
    {
        ngx_http_mcig_scrape_failed(s, "the page has no valid",
                                    "KV-cache usage (0..1)");
        return;
    }

    if (mcig_prom_role_value(s->parser, MCIG_PROM_ROLE_WAITING, &waiting)
        != MCIG_PROM_PRESENT || waiting < 0 || waiting > 1e9)
    {
        waiting = 0;
    }

    if (mcig_prom_role_value(s->parser, MCIG_PROM_ROLE_RUNNING, &running)
        != MCIG_PROM_PRESENT || running < 0 || running > 1e9)
    {
        running = 0;
    }

    /* one writer: the lease holder; readers check the sequence */
    (void) ngx_atomic_fetch_add(&node->metrics_seq, 1);
    ngx_memory_barrier();

    node->kv_ppm = (uint32_t) (kv * 1000000 + 0.5);
    node->waiting = (uint32_t) waiting;
    node->running = (uint32_t) running;
    node->metrics_msec = ngx_current_msec ? ngx_current_msec : 1;

    lora = &s->parser->lora;

    if (lora->series) {
        node->max_lora = lora->max_lora;
        node->lora_running_n = mcig_lora_list_hashes(lora->running,
                                                     lora->running_len,
                                                     node->lora_running,
                                                     NGX_HTTP_MCIG_LORA_MAX);
        node->lora_waiting_n = mcig_lora_list_hashes(lora->waiting,
                                                     lora->waiting_len,
                                                     node->lora_waiting,
                                                     NGX_HTTP_MCIG_LORA_MAX);

    } else {
        node->max_lora = 0;
        node->lora_running_n = 0;
        node->lora_waiting_n = 0;
    }

    ngx_memory_barrier();
    (void) ngx_atomic_fetch_add(&node->metrics_seq, 1);

    s->pool->node->metrics_msec = node->metrics_msec;

    /* what was sent before this scrape is in its figures now */
    node->dispatched = 0;
    node->ended = 0;
    (void) ngx_atomic_fetch_add(&node->scrapes, 1);

    /* the member may have room again for what waits in this worker */
    ngx_http_mcig_queue_wake(s->pool);

    if (curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME_T, &usec) == CURLE_OK) {
        node->scrape_usec = (ngx_atomic_uint_t) usec;
    }

    if (s->failing) {
        s->failing = 0;
        ngx_log_error(NGX_LOG_NOTICE, ngx_http_mcig_scrape_log, 0,
                      "mcig: metrics of member %V of pool \"%V\" are "
                      "scraped again from %V%s", &s->member->name,
                      &s->pool->upstream->host, &s->url,
                      s->query ? "?..." : "");
    }
}


/* logged when a member starts failing, not at every round */

static void
ngx_http_mcig_scrape_failed(ngx_http_mcig_scrape_t *s, const char *reason,
    const char *detail)
{
    (void) ngx_atomic_fetch_add(&s->member->node->scrape_errors, 1);

    if (s->failing) {
        return;
    }

    s->failing = 1;

    ngx_log_error(NGX_LOG_WARN, ngx_http_mcig_scrape_log, 0,
                  "mcig: scraping the metrics of member %V of pool \"%V\" "
                  "from %V%s failed: %s%s%s; its in-flight count is used "
                  "until it recovers", &s->member->name,
                  &s->pool->upstream->host, &s->url, s->query ? "?..." : "",
                  reason, reason[0] ? " " : "", detail);
}


static size_t
ngx_http_mcig_health_write(char *data, size_t size, size_t n, void *userdata)
{
    /* the status is the answer; the body is not needed */
    return size * n;
}


static void
ngx_http_mcig_health_done(ngx_http_mcig_curl_transfer_t *t, CURLcode result)
{
    ngx_http_mcig_scrape_t  *s = t->data;

    long     status;
    u_char  *p, reason[128];

    s->member->node->health_checked = ngx_current_msec;

    if (result != CURLE_OK) {
        p = ngx_snprintf(reason, sizeof(reason) - 1, "failed: %s",
                         curl_easy_strerror(result));

    } else {
        status = 0;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);

        if (status >= 200 && status <= 299) {
            ngx_http_mcig_health_change(s->pool, s->member, 1, 1, NULL);
            return;
        }

        p = ngx_snprintf(reason, sizeof(reason) - 1,
                         "answered with status %l, not 2xx", status);
    }

    *p = '\0';

    ngx_http_mcig_health_change(s->pool, s->member, 0, 1, (char *) reason);
}


/* a failure of real traffic (passive check) */

void
ngx_http_mcig_health_event(ngx_http_upstream_mcig_srv_conf_t *pool,
    ngx_http_mcig_member_t *member, ngx_uint_t ok, const char *reason)
{
    ngx_http_mcig_health_change(pool, member, ok, 0, reason);
}


/*
 * A health check result (checked: the reason follows "the health check
 * of URL"), or a passive one.  A member turns unhealthy after
 * unhealthy_threshold consecutive failures and healthy again after
 * healthy_threshold consecutive passed checks.  The URL is in every line:
 * the pool's health port and path, not the member's, are what was asked.
 */

static void
ngx_http_mcig_health_change(ngx_http_upstream_mcig_srv_conf_t *pool,
    ngx_http_mcig_member_t *member, ngx_uint_t ok, ngx_uint_t checked,
    const char *reason)
{
    ngx_http_mcig_member_node_t  *node;

    node = member->node;

    if (ok) {
        node->health_fails = 0;

        if (ngx_atomic_fetch_add(&node->health_oks, 1) + 1
                >= (ngx_atomic_uint_t) pool->healthy_threshold
            && node->unhealthy
            && ngx_atomic_cmp_set(&node->unhealthy, 1, 0))
        {
            ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                          "mcig: member %V of pool \"%V\" is healthy again: "
                          "%ui checks of %V passed", &member->name,
                          &pool->upstream->host, pool->healthy_threshold,
                          &member->health_url);
        }

        return;
    }

    node->health_oks = 0;

    if (ngx_atomic_fetch_add(&node->health_fails, 1) + 1
            < (ngx_atomic_uint_t) pool->unhealthy_threshold
        || node->unhealthy
        || !ngx_atomic_cmp_set(&node->unhealthy, 0, 1))
    {
        return;
    }

    if (checked) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "mcig: member %V of pool \"%V\" is unhealthy: the "
                      "health check of %V %s; it gets no traffic until %ui "
                      "checks pass", &member->name, &pool->upstream->host,
                      &member->health_url, reason, pool->healthy_threshold);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "mcig: member %V of pool \"%V\" is unhealthy: %s; it gets "
                  "no traffic until %ui checks of %V pass", &member->name,
                  &pool->upstream->host, reason, pool->healthy_threshold,
                  &member->health_url);
}
