
/*
 * Copyright (C) ngx_mcig_module authors
 *
 * What the gateway knows and decided, for people and for Prometheus:
 * "mcig_status;" answers JSON, "mcig_status prometheus;" the Prometheus
 * text format.  Both take a snapshot of the shared zone into plain values
 * without locks (a member's scraped figures are read through its sequence
 * counter, so they are consistent with each other), and the core,
 * mcig_status.c, writes the answer from it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_mcig_module.h"
#include "mcig_status.h"


static ngx_int_t ngx_http_mcig_status_prepare(ngx_http_request_t *r,
    mcig_status_t *st);
static ngx_int_t ngx_http_mcig_status_json(ngx_http_request_t *r);
static ngx_int_t ngx_http_mcig_status_prometheus(ngx_http_request_t *r);
static ngx_int_t ngx_http_mcig_status_snapshot(ngx_http_request_t *r,
    mcig_status_t *st);
static ngx_int_t ngx_http_mcig_status_pool(ngx_pool_t *p,
    ngx_http_upstream_mcig_srv_conf_t *pool, mcig_status_pool_t *sp);
static void ngx_http_mcig_status_member(
    ngx_http_upstream_mcig_srv_conf_t *pool, ngx_http_mcig_member_t *member,
    mcig_status_member_t *sm);
static void ngx_http_mcig_status_objective(ngx_http_mcig_objective_node_t *on,
    mcig_status_objective_t *so);
static ngx_int_t ngx_http_mcig_status_queue(ngx_pool_t *p,
    ngx_http_upstream_mcig_srv_conf_t *pool, mcig_status_queue_t *sq);
static ngx_int_t ngx_http_mcig_status_send(ngx_http_request_t *r,
    ngx_str_t *type, u_char *data, size_t len);


/* waiting bands a status answer shows */
#define NGX_HTTP_MCIG_STATUS_BANDS  64


#if (NGX_HTTP_MCIG_QUEUE_BUCKETS != MCIG_STATUS_WAIT_BUCKETS)
#error "NGX_HTTP_MCIG_QUEUE_BUCKETS differs from MCIG_STATUS_WAIT_BUCKETS"
#endif


#define ngx_http_mcig_status_str(dst, src)                                   \
    (dst)->data = (const char *) (src)->data;                                \
    (dst)->len = (src)->len


char *
ngx_http_mcig_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        return "is duplicate, or the location has another content handler";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 1 || ngx_strcmp(value[1].data, "json") == 0) {
        clcf->handler = ngx_http_mcig_status_json;

    } else if (ngx_strcmp(value[1].data, "prometheus") == 0) {
        clcf->handler = ngx_http_mcig_status_prometheus;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid format \"%V\" of mcig_status: json or "
                           "prometheus expected", &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* both formats: GET or HEAD, the body discarded, the figures taken */

static ngx_int_t
ngx_http_mcig_status_prepare(ngx_http_request_t *r, mcig_status_t *st)
{
    ngx_int_t  rc;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_mcig_status_snapshot(r, st) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_mcig_status_json(ngx_http_request_t *r)
{
    char           *text;
    size_t          len;
    ngx_int_t       rc;
    ngx_str_t       type;
    mcig_status_t   st;

    rc = ngx_http_mcig_status_prepare(r, &st);
    if (rc != NGX_OK) {
        return rc;
    }

    text = mcig_status_json(&st, &len);
    if (text == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&type, "application/json");

    rc = ngx_http_mcig_status_send(r, &type, (u_char *) text, len);
    mcig_status_json_free(text);

    return rc;
}


static ngx_int_t
ngx_http_mcig_status_prometheus(ngx_http_request_t *r)
{
    u_char         *buf;
    size_t          len;
    ngx_int_t       rc;
    ngx_str_t       type;
    mcig_status_t   st;

    rc = ngx_http_mcig_status_prepare(r, &st);
    if (rc != NGX_OK) {
        return rc;
    }

    /* measured, then written: the same snapshot gives the same length */
    len = mcig_status_prometheus(&st, NULL, 0);

    buf = ngx_pnalloc(r->pool, len);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (mcig_status_prometheus(&st, (char *) buf, len) != len) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&type, "text/plain; version=0.0.4");

    return ngx_http_mcig_status_send(r, &type, buf, len);
}


/*
 * The pools' configuration and counters as plain values, in the request's
 * pool; names point into the configuration, which outlives the request.
 */

static ngx_int_t
ngx_http_mcig_status_snapshot(ngx_http_request_t *r, mcig_status_t *st)
{
    ngx_uint_t                           i, n;
    ngx_time_t                          *tp;
    ngx_array_t                         *pools;
    mcig_status_pool_t                  *sp;
    ngx_http_upstream_mcig_srv_conf_t  **pool;

    ngx_memzero(st, sizeof(mcig_status_t));

    st->version.data = NGINX_VERSION;
    st->version.len = sizeof(NGINX_VERSION) - 1;

    tp = ngx_timeofday();
    st->time_ms = (uint64_t) tp->sec * 1000 + tp->msec;

    pools = ngx_http_mcig_pools(r);
    n = pools ? pools->nelts : 0;

    if (n == 0) {
        return NGX_OK;
    }

    sp = ngx_palloc(r->pool, n * sizeof(mcig_status_pool_t));
    if (sp == NULL) {
        return NGX_ERROR;
    }

    pool = pools->elts;

    for (i = 0; i < n; i++) {
        if (ngx_http_mcig_status_pool(r->pool, pool[i], &sp[i]) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    st->pools = sp;
    st->npools = n;

    return NGX_OK;
}


static ngx_int_t
ngx_http_mcig_status_pool(ngx_pool_t *p,
    ngx_http_upstream_mcig_srv_conf_t *pool, mcig_status_pool_t *sp)
{
    ngx_str_t                  *name;
    ngx_uint_t                  i, n;
    mcig_status_region_t       *sr;
    mcig_status_member_t       *sm;
    mcig_status_objective_t    *so;
    ngx_http_mcig_pool_node_t  *node;
    ngx_http_mcig_objective_t  *obj;

    ngx_memzero(sp, sizeof(mcig_status_pool_t));

    node = pool->node;

    /* the key is "\x01pool" */
    sp->name.data = (const char *) pool->key.data + 1;
    sp->name.len = pool->key.len - 1;

    sp->max_in_flight = pool->max_in_flight;
    sp->max_utilization = pool->max_utilization;
    sp->max_queue = pool->max_queue;
    sp->custom_metrics = (pool->mode == NGX_HTTP_MCIG_CUSTOM_METRICS);
    sp->dry_run = pool->dry_run ? 1 : 0;
    sp->regional = (pool->regions != NULL);
    sp->health_checks = pool->health ? 1 : 0;
    sp->outlier_detection = (pool->outlier_consecutive != 0);
    sp->scraping = (pool->metrics != NULL);

    sp->saturated = node->saturated;
    sp->no_member = node->no_member;
    sp->deadline = node->deadline;

    for (i = 0; i < 6; i++) {
        sp->responses[i] = node->responses[i];
    }

    for (i = 0; i < 4; i++) {
        sp->decisions[i] = node->decisions[i];
    }

    if (pool->session_header.len) {
        sp->session.enabled = 1;
        ngx_http_mcig_status_str(&sp->session.header, &pool->session_header);
        sp->session.kept = node->session_affinity[0];
        sp->session.moved = node->session_affinity[1];
    }

    if (pool->regions) {
        n = pool->regions->nelts;
        name = pool->regions->elts;

        sr = ngx_pcalloc(p, (n ? n : 1) * sizeof(mcig_status_region_t));
        if (sr == NULL) {
            return NGX_ERROR;
        }

        for (i = 0; i < n; i++) {
            ngx_http_mcig_status_str(&sr[i].name, &name[i]);
            sr[i].requests = node->region_requests[i];
            sr[i].drained = node->region_state[i].drained;
        }

        sp->regions = sr;
        sp->nregions = n;
    }

    sm = ngx_pcalloc(p, (pool->nmembers ? pool->nmembers : 1)
                        * sizeof(mcig_status_member_t));
    if (sm == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < pool->nmembers; i++) {
        ngx_http_mcig_status_member(pool, &pool->members[i], &sm[i]);
    }

    sp->members = sm;
    sp->nmembers = pool->nmembers;

    if (pool->objectives) {
        n = pool->objectives->nelts;
        obj = pool->objectives->elts;

        so = ngx_pcalloc(p, (n ? n : 1) * sizeof(mcig_status_objective_t));
        if (so == NULL) {
            return NGX_ERROR;
        }

        for (i = 0; i < n; i++) {
            ngx_http_mcig_status_str(&so[i].name, &obj[i].name);
            so[i].priority = obj[i].priority;
            ngx_http_mcig_status_objective(obj[i].node, &so[i]);
        }

        sp->objectives = so;
        sp->nobjectives = n;
    }

    ngx_http_mcig_status_objective(pool->default_objective, &sp->unnamed);

    return ngx_http_mcig_status_queue(p, pool, &sp->queue);
}


static void
ngx_http_mcig_status_member(ngx_http_upstream_mcig_srv_conf_t *pool,
    ngx_http_mcig_member_t *member, mcig_status_member_t *sm)
{
    ngx_msec_int_t                ejected;
    ngx_http_mcig_load_t          ml;
    ngx_http_mcig_metrics_t       metrics;
    ngx_http_mcig_member_node_t  *node;

    node = member->node;

    ngx_http_mcig_status_str(&sm->address, &member->name);
    ngx_http_mcig_status_str(&sm->cluster, &member->cluster);
    sm->region = member->region;

    sm->healthy = node->unhealthy ? 0 : 1;
    sm->in_flight = (ngx_atomic_int_t) node->in_flight;
    sm->capacity = member->capacity;
    sm->requests = node->requests;
    sm->failures = node->failures;

    ejected = (ngx_msec_int_t) (node->ejected_until - ngx_current_msec);

    if (pool->outlier_consecutive && ejected > 0) {
        sm->ejected = 1;
        sm->ejected_ms = (uint64_t) ejected;
    }

    sm->ejections = node->ejections;

    /* what the regions' utilization adds up */
    if (pool->regions && sm->healthy) {
        ngx_http_mcig_member_load(pool, member, &ml);
        sm->load = ml.load;
        sm->load_capacity = ml.capacity;
    }

    if (node->health_checked) {
        sm->health_checked = 1;
        sm->health_check_age_ms =
                            ngx_http_mcig_msec_since(node->health_checked);
    }

    sm->scrapes = node->scrapes;
    sm->scrape_errors = node->scrape_errors;
    sm->scrape_usec = node->scrape_usec;

    if (pool->metrics
        && ngx_http_mcig_read_metrics(pool, member, &metrics) == NGX_OK)
    {
        sm->metrics_fresh = 1;
        sm->kv_ppm = metrics.kv_ppm;
        sm->waiting = metrics.waiting;
        sm->running = metrics.running;
        sm->metrics_age_ms = metrics.age;
        sm->dispatched = node->dispatched;
    }
}


static void
ngx_http_mcig_status_objective(ngx_http_mcig_objective_node_t *on,
    mcig_status_objective_t *so)
{
    so->requests = on->requests;
    so->shed = on->shed;
    so->queued = on->queued;
    so->queue_full = on->queue_full;
    so->queue_timeout = on->queue_timeout;
}


static ngx_int_t
ngx_http_mcig_status_queue(ngx_pool_t *p,
    ngx_http_upstream_mcig_srv_conf_t *pool, mcig_status_queue_t *sq)
{
    ngx_uint_t                   i, n;
    mcig_status_band_t          *sb;
    ngx_atomic_t                *outcomes;
    ngx_http_mcig_queue_conf_t  *qcf;
    ngx_http_mcig_queue_band_t   bands[NGX_HTTP_MCIG_STATUS_BANDS];

    qcf = ngx_http_mcig_queue_conf(pool);
    outcomes = pool->node->queue_outcomes;

    sq->enabled = qcf->enable ? 1 : 0;
    sq->max = qcf->max;
    sq->max_per_priority = qcf->max_per_priority;
    sq->timeout_ms = qcf->timeout;
    sq->queue_sheddable = qcf->queue_sheddable ? 1 : 0;
    sq->waiting = (ngx_atomic_int_t) pool->node->queue_waiting;

    sq->outcomes[MCIG_STATUS_QUEUED] = outcomes[NGX_HTTP_MCIG_QUEUE_QUEUED];
    sq->outcomes[MCIG_STATUS_DISPATCHED] =
                                   outcomes[NGX_HTTP_MCIG_QUEUE_DISPATCHED];
    sq->outcomes[MCIG_STATUS_QUEUE_FULL] = outcomes[NGX_HTTP_MCIG_QUEUE_FULL];
    sq->outcomes[MCIG_STATUS_QUEUE_TIMEOUT] =
                                   outcomes[NGX_HTTP_MCIG_QUEUE_TIMEOUT];
    sq->outcomes[MCIG_STATUS_ABANDONED] =
                                   outcomes[NGX_HTTP_MCIG_QUEUE_ABANDONED];

    sq->wait_ms = pool->node->queue_wait_ms;

    for (i = 0; i < NGX_HTTP_MCIG_QUEUE_BUCKETS; i++) {
        sq->wait_buckets[i] = pool->node->queue_wait_buckets[i];
    }

    for (i = 0; i < NGX_HTTP_MCIG_QUEUE_BUCKETS - 1; i++) {
        sq->bucket_ms[i] = ngx_http_mcig_queue_bucket_ms[i];
    }

    if (!qcf->enable) {
        return NGX_OK;
    }

    n = ngx_http_mcig_queue_bands(pool, bands, NGX_HTTP_MCIG_STATUS_BANDS);

    sb = ngx_palloc(p, (n ? n : 1) * sizeof(mcig_status_band_t));
    if (sb == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        sb[i].priority = bands[i].priority;
        sb[i].waiting = bands[i].waiting;
    }

    sq->bands = sb;
    sq->nbands = n;

    return NGX_OK;
}


static ngx_int_t
ngx_http_mcig_status_send(ngx_http_request_t *r, ngx_str_t *type,
    u_char *data, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = len;
    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_create_temp_buf(r->pool, len ? len : 1);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->pos, data, len);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
