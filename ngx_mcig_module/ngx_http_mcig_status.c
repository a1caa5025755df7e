
/*
 * Copyright (C) ngx_mcig_module authors
 *
 * What the gateway knows and decided, for people and for Prometheus:
 * "mcig_status;" answers JSON (built with cJSON), "mcig_status prometheus;"
 * the Prometheus text format.  Both read the shared zone without locks;
 * a member's scraped figures are read through its sequence counter, so
 * they are consistent with each other.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <cjson/cJSON.h>

#include "ngx_http_mcig_module.h"


typedef struct {
    u_char      *pos;
    u_char      *last;
} ngx_http_mcig_text_t;


static ngx_int_t ngx_http_mcig_status_json(ngx_http_request_t *r);
static ngx_int_t ngx_http_mcig_status_prometheus(ngx_http_request_t *r);
static ngx_int_t ngx_http_mcig_status_send(ngx_http_request_t *r,
    ngx_str_t *type, u_char *data, size_t len);
static cJSON *ngx_http_mcig_status_pool(
    ngx_http_upstream_mcig_srv_conf_t *pool);
static cJSON *ngx_http_mcig_status_string(ngx_str_t *s);
static void ngx_http_mcig_status_queue(cJSON *p,
    ngx_http_upstream_mcig_srv_conf_t *pool);
static ngx_uint_t ngx_http_mcig_status_priorities(
    ngx_http_upstream_mcig_srv_conf_t *pool, ngx_http_mcig_queue_band_t *b);
static u_char *ngx_http_mcig_status_queue_series(u_char *p,
    ngx_http_upstream_mcig_srv_conf_t *pool, ngx_str_t *name,
    ngx_uint_t family, ngx_http_mcig_queue_band_t *bands);
static u_char *ngx_http_mcig_label(u_char *p, ngx_str_t *value);


/* waiting bands a status answer shows, besides the objectives' priorities */
#define NGX_HTTP_MCIG_STATUS_BANDS  64

/* the first family of flow control in ngx_http_mcig_families[] */
#define NGX_HTTP_MCIG_QUEUE_FAMILY  17


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


static ngx_int_t
ngx_http_mcig_status_json(ngx_http_request_t *r)
{
    char                                *text;
    ngx_int_t                            rc;
    ngx_str_t                            type;
    ngx_time_t                          *tp;
    ngx_uint_t                           i;
    ngx_array_t                         *pools;
    cJSON                               *root, *obj, *item;
    ngx_http_upstream_mcig_srv_conf_t  **pool;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    root = cJSON_CreateObject();
    if (root == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cJSON_AddStringToObject(root, "version", NGINX_VERSION);
    tp = ngx_timeofday();
    cJSON_AddNumberToObject(root, "time_ms", (double) tp->sec * 1000
                                             + tp->msec);

    obj = cJSON_AddObjectToObject(root, "pools");
    pools = ngx_http_mcig_pools(r);
    pool = pools ? pools->elts : NULL;

    for (i = 0; pools && obj && i < pools->nelts; i++) {
        item = ngx_http_mcig_status_pool(pool[i]);

        if (item == NULL) {
            cJSON_Delete(root);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        cJSON_AddItemToObject(obj, (char *) pool[i]->key.data + 1, item);
    }

    text = (obj == NULL) ? NULL : cJSON_PrintUnformatted(root);
    cJSON_Delete(root);

    if (text == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&type, "application/json");

    rc = ngx_http_mcig_status_send(r, &type, (u_char *) text,
                                   ngx_strlen(text));
    cJSON_free(text);

    return rc;
}


static cJSON *
ngx_http_mcig_status_pool(ngx_http_upstream_mcig_srv_conf_t *pool)
{
    ngx_str_t                   *region;
    ngx_uint_t                   i;
    cJSON                       *p, *list, *item, *m;
    ngx_http_mcig_member_t      *member;
    ngx_http_mcig_metrics_t      metrics;
    ngx_http_mcig_objective_t   *obj;
    ngx_http_mcig_member_node_t *node;

    p = cJSON_CreateObject();
    if (p == NULL) {
        return NULL;
    }

    cJSON_AddStringToObject(p, "balancing_mode",
                            pool->mode == NGX_HTTP_MCIG_CUSTOM_METRICS
                            ? "custom_metrics" : "in_flight");
    cJSON_AddNumberToObject(p, "max_in_flight", pool->max_in_flight);

    if (pool->mode == NGX_HTTP_MCIG_CUSTOM_METRICS) {
        cJSON_AddNumberToObject(p, "max_utilization", pool->max_utilization);
        cJSON_AddNumberToObject(p, "max_queue", pool->max_queue);
        cJSON_AddBoolToObject(p, "dry_run", pool->dry_run);
    }

    item = cJSON_AddObjectToObject(p, "refused");
    if (item) {
        cJSON_AddNumberToObject(item, "pool_saturated", pool->node->saturated);
        cJSON_AddNumberToObject(item, "no_member_available",
                                pool->node->no_member);
        cJSON_AddNumberToObject(item, "deadline_exceeded",
                                pool->node->deadline);
        cJSON_AddNumberToObject(item, "queue_full",
                      pool->node->queue_outcomes[NGX_HTTP_MCIG_QUEUE_FULL]);
        cJSON_AddNumberToObject(item, "queue_timeout",
                      pool->node->queue_outcomes[NGX_HTTP_MCIG_QUEUE_TIMEOUT]);
    }

    ngx_http_mcig_status_queue(p, pool);

    item = cJSON_AddObjectToObject(p, "responses");
    if (item) {
        cJSON_AddNumberToObject(item, "1xx", pool->node->responses[1]);
        cJSON_AddNumberToObject(item, "2xx", pool->node->responses[2]);
        cJSON_AddNumberToObject(item, "3xx", pool->node->responses[3]);
        cJSON_AddNumberToObject(item, "4xx", pool->node->responses[4]);
        cJSON_AddNumberToObject(item, "5xx", pool->node->responses[5]);
    }

    item = cJSON_AddObjectToObject(p, "decisions");
    if (item) {
        cJSON_AddNumberToObject(item, "local",
                                pool->node->decisions[MCIG_REGION_LOCAL]);
        cJSON_AddNumberToObject(item, "spillover",
                                pool->node->decisions[MCIG_REGION_SPILLOVER]);
        cJSON_AddNumberToObject(item, "failover",
                                pool->node->decisions[MCIG_REGION_FAILOVER]);
    }

    if (pool->regions) {
        double       util;
        uint32_t     load, capacity;
        ngx_uint_t   r, total, healthy;
        ngx_str_t   *name;

        name = pool->regions->elts;
        list = cJSON_AddArrayToObject(p, "regions");

        for (r = 0; list && r < pool->regions->nelts; r++) {
            total = 0;
            healthy = 0;
            util = 0;

            for (i = 0; i < pool->nmembers; i++) {
                if (pool->members[i].region != r) {
                    continue;
                }

                total++;

                if (!pool->members[i].node->unhealthy) {
                    healthy++;
                    ngx_http_mcig_member_load(pool, &pool->members[i], &load,
                                              &capacity);
                    util += (double) load / capacity;
                }
            }

            item = cJSON_CreateObject();
            if (item == NULL) {
                break;
            }

            cJSON_AddItemToArray(list, item);
            cJSON_AddItemToObject(item, "name",
                                  ngx_http_mcig_status_string(&name[r]));
            cJSON_AddBoolToObject(item, "local", r == 0);
            cJSON_AddNumberToObject(item, "members", total);
            cJSON_AddNumberToObject(item, "healthy", healthy);

            /* as a multiple of the target: over 1 spills */
            cJSON_AddNumberToObject(item, "utilization",
                                    healthy ? util / healthy : 0);
            cJSON_AddBoolToObject(item, "drained",
                                  pool->node->region_state[r].drained);
            cJSON_AddNumberToObject(item, "requests",
                                    pool->node->region_requests[r]);
        }
    }

    list = cJSON_AddArrayToObject(p, "members");

    for (i = 0; list && i < pool->nmembers; i++) {
        member = &pool->members[i];
        node = member->node;

        item = cJSON_CreateObject();
        if (item == NULL) {
            break;
        }

        cJSON_AddItemToArray(list, item);

        cJSON_AddItemToObject(item, "address",
                              ngx_http_mcig_status_string(&member->name));

        if (pool->regions) {
            region = pool->regions->elts;

            cJSON_AddItemToObject(item, "region",
                      ngx_http_mcig_status_string(&region[member->region]));
            cJSON_AddItemToObject(item, "cluster",
                      ngx_http_mcig_status_string(&member->cluster));
        }
        cJSON_AddBoolToObject(item, "healthy", !node->unhealthy);
        cJSON_AddNumberToObject(item, "in_flight",
                                (double) (ngx_atomic_int_t) node->in_flight);
        cJSON_AddNumberToObject(item, "capacity", member->capacity);
        cJSON_AddNumberToObject(item, "requests", node->requests);
        cJSON_AddNumberToObject(item, "failures", node->failures);

        if (pool->health) {
            if (node->health_checked) {
                cJSON_AddNumberToObject(item, "health_check_age_ms",
                              (double) (ngx_current_msec
                                        - node->health_checked));
            } else {
                cJSON_AddNullToObject(item, "health_check_age_ms");
            }
        }

        if (pool->metrics == NULL) {
            continue;
        }

        cJSON_AddNumberToObject(item, "scrapes", node->scrapes);
        cJSON_AddNumberToObject(item, "scrape_errors", node->scrape_errors);
        cJSON_AddNumberToObject(item, "scrape_duration_ms",
                                node->scrape_usec / 1000.0);

        if (ngx_http_mcig_read_metrics(pool, member, &metrics) != NGX_OK) {
            /* never scraped, or stale */
            cJSON_AddNullToObject(item, "metrics");
            continue;
        }

        m = cJSON_AddObjectToObject(item, "metrics");
        if (m) {
            cJSON_AddNumberToObject(m, "kv_cache_usage",
                                    metrics.kv_ppm / 1e6);
            cJSON_AddNumberToObject(m, "waiting", metrics.waiting);
            cJSON_AddNumberToObject(m, "running", metrics.running);
            cJSON_AddNumberToObject(m, "age_ms", metrics.age);
            cJSON_AddNumberToObject(m, "dispatched_since",
                                    node->dispatched);
        }
    }

    list = cJSON_AddArrayToObject(p, "objectives");

    if (list && pool->objectives) {
        obj = pool->objectives->elts;

        for (i = 0; i < pool->objectives->nelts; i++) {
            item = cJSON_CreateObject();
            if (item == NULL) {
                break;
            }

            cJSON_AddItemToArray(list, item);
            cJSON_AddItemToObject(item, "name",
                                  ngx_http_mcig_status_string(&obj[i].name));
            cJSON_AddNumberToObject(item, "priority", obj[i].priority);
            cJSON_AddNumberToObject(item, "requests", obj[i].node->requests);
            cJSON_AddNumberToObject(item, "shed", obj[i].node->shed);
            cJSON_AddNumberToObject(item, "queued", obj[i].node->queued);
            cJSON_AddNumberToObject(item, "queue_full",
                                    obj[i].node->queue_full);
            cJSON_AddNumberToObject(item, "queue_timeout",
                                    obj[i].node->queue_timeout);
        }
    }

    /* requests without an objective, or naming an unknown one */
    item = list ? cJSON_CreateObject() : NULL;

    if (item) {
        cJSON_AddItemToArray(list, item);
        cJSON_AddNullToObject(item, "name");
        cJSON_AddNumberToObject(item, "priority", 0);
        cJSON_AddNumberToObject(item, "requests",
                                pool->default_objective->requests);
        cJSON_AddNumberToObject(item, "shed", pool->default_objective->shed);
        cJSON_AddNumberToObject(item, "queued",
                                pool->default_objective->queued);
        cJSON_AddNumberToObject(item, "queue_full",
                                pool->default_objective->queue_full);
        cJSON_AddNumberToObject(item, "queue_timeout",
                                pool->default_objective->queue_timeout);
    }

    return p;
}


/* the pool's queue (flow control): null when it has none */

static void
ngx_http_mcig_status_queue(cJSON *p, ngx_http_upstream_mcig_srv_conf_t *pool)
{
    u_char                       le[NGX_INT_T_LEN + 1];
    ngx_uint_t                   i, n, sum;
    cJSON                       *q, *list, *item, *wait;
    ngx_atomic_t                *outcomes;
    ngx_http_mcig_queue_conf_t  *qcf;
    ngx_http_mcig_queue_band_t   bands[NGX_HTTP_MCIG_STATUS_BANDS];

    qcf = ngx_http_mcig_queue_conf(pool);

    if (!qcf->enable) {
        cJSON_AddNullToObject(p, "queue");
        return;
    }

    q = cJSON_AddObjectToObject(p, "queue");
    if (q == NULL) {
        return;
    }

    outcomes = pool->node->queue_outcomes;

    cJSON_AddNumberToObject(q, "max", qcf->max);
    cJSON_AddNumberToObject(q, "max_per_priority", qcf->max_per_priority);
    cJSON_AddNumberToObject(q, "timeout_ms", qcf->timeout);
    cJSON_AddStringToObject(q, "sheddable",
                            qcf->queue_sheddable ? "queue" : "shed");
    cJSON_AddNumberToObject(q, "depth",
                  (double) ngx_max((ngx_atomic_int_t) pool->node->queue_waiting,
                                   0));

    list = cJSON_AddArrayToObject(q, "bands");
    n = ngx_http_mcig_queue_bands(pool, bands, NGX_HTTP_MCIG_STATUS_BANDS);

    for (i = 0; list && i < n; i++) {
        item = cJSON_CreateObject();
        if (item == NULL) {
            break;
        }

        cJSON_AddItemToArray(list, item);
        cJSON_AddNumberToObject(item, "priority", bands[i].priority);
        cJSON_AddNumberToObject(item, "waiting", bands[i].waiting);
    }

    cJSON_AddNumberToObject(q, "queued", outcomes[NGX_HTTP_MCIG_QUEUE_QUEUED]);
    cJSON_AddNumberToObject(q, "dispatched",
                            outcomes[NGX_HTTP_MCIG_QUEUE_DISPATCHED]);
    cJSON_AddNumberToObject(q, "queue_full",
                            outcomes[NGX_HTTP_MCIG_QUEUE_FULL]);
    cJSON_AddNumberToObject(q, "queue_timeout",
                            outcomes[NGX_HTTP_MCIG_QUEUE_TIMEOUT]);
    cJSON_AddNumberToObject(q, "abandoned",
                            outcomes[NGX_HTTP_MCIG_QUEUE_ABANDONED]);

    /* waits of the dispatched requests; buckets cumulative, as Prometheus */
    wait = cJSON_AddObjectToObject(q, "wait_ms");
    if (wait == NULL) {
        return;
    }

    cJSON_AddNumberToObject(wait, "count",
                            outcomes[NGX_HTTP_MCIG_QUEUE_DISPATCHED]);
    cJSON_AddNumberToObject(wait, "sum", pool->node->queue_wait_ms);

    item = cJSON_AddObjectToObject(wait, "buckets");
    sum = 0;

    for (i = 0; item && i < NGX_HTTP_MCIG_QUEUE_BUCKETS; i++) {
        sum += pool->node->queue_wait_buckets[i];

        if (i < NGX_HTTP_MCIG_QUEUE_BUCKETS - 1) {
            *ngx_sprintf(le, "%M", ngx_http_mcig_queue_bucket_ms[i]) = '\0';
        } else {
            ngx_cpystrn(le, (u_char *) "+Inf", sizeof("+Inf"));
        }

        cJSON_AddNumberToObject(item, (char *) le, sum);
    }
}


static cJSON *
ngx_http_mcig_status_string(ngx_str_t *s)
{
    u_char  buf[NGX_MAX_ERROR_STR];

    /* names come from the configuration; cJSON escapes them */
    ngx_cpystrn(buf, s->data, ngx_min(s->len + 1, sizeof(buf)));

    return cJSON_CreateString((char *) buf);
}


/*
 * The Prometheus text format: every family has HELP and TYPE lines and
 * its series follow them.
 */

/* the HELP and TYPE lines of each family, in the order they are written */
static ngx_str_t  ngx_http_mcig_families[] = {
    ngx_string("# HELP mcig_member_requests_total"
               " Requests sent to the member.\n"
               "# TYPE mcig_member_requests_total counter\n"),
    ngx_string("# HELP mcig_member_failures_total"
               " Requests to the member that failed (error or timeout).\n"
               "# TYPE mcig_member_failures_total counter\n"),
    ngx_string("# HELP mcig_member_in_flight"
               " Requests in flight to the member, across all workers.\n"
               "# TYPE mcig_member_in_flight gauge\n"),
    ngx_string("# HELP mcig_member_healthy"
               " 1 when the member takes traffic, 0 when unhealthy.\n"
               "# TYPE mcig_member_healthy gauge\n"),
    ngx_string("# HELP mcig_member_kv_cache_usage"
               " Scraped KV-cache usage (0..1), when fresh.\n"
               "# TYPE mcig_member_kv_cache_usage gauge\n"),
    ngx_string("# HELP mcig_member_waiting_requests"
               " Scraped waiting requests, when fresh.\n"
               "# TYPE mcig_member_waiting_requests gauge\n"),
    ngx_string("# HELP mcig_member_running_requests"
               " Scraped running requests, when fresh.\n"
               "# TYPE mcig_member_running_requests gauge\n"),
    ngx_string("# HELP mcig_member_metrics_age_seconds"
               " Age of the member's scraped figures, when fresh.\n"
               "# TYPE mcig_member_metrics_age_seconds gauge\n"),
    ngx_string("# HELP mcig_member_scrapes_total"
               " Good scrapes of the member's metrics.\n"
               "# TYPE mcig_member_scrapes_total counter\n"),
    ngx_string("# HELP mcig_member_scrape_errors_total"
               " Failed scrapes of the member's metrics.\n"
               "# TYPE mcig_member_scrape_errors_total counter\n"),
    ngx_string("# HELP mcig_pool_refused_total"
               " Requests the gateway refused, by reason.\n"
               "# TYPE mcig_pool_refused_total counter\n"),
    ngx_string("# HELP mcig_objective_requests_total"
               " Requests by InferenceObjective (\"\": none).\n"
               "# TYPE mcig_objective_requests_total counter\n"),
    ngx_string("# HELP mcig_objective_shed_total"
               " Sheddable requests refused, by InferenceObjective.\n"
               "# TYPE mcig_objective_shed_total counter\n"),
    ngx_string("# HELP mcig_pool_decisions_total"
               " Region decisions: local, spillover, failover.\n"
               "# TYPE mcig_pool_decisions_total counter\n"),
    ngx_string("# HELP mcig_region_requests_total"
               " Requests sent to each region of the pool.\n"
               "# TYPE mcig_region_requests_total counter\n"),
    ngx_string("# HELP mcig_pool_responses_total"
               " Answers to the pool's requests, by status class.\n"
               "# TYPE mcig_pool_responses_total counter\n"),
    ngx_string("# HELP mcig_member_scrape_duration_seconds"
               " Duration of the member's last good scrape.\n"
               "# TYPE mcig_member_scrape_duration_seconds gauge\n"),

    /* flow control: NGX_HTTP_MCIG_QUEUE_FAMILY on */
    ngx_string("# HELP mcig_pool_queue_depth"
               " Requests waiting in the pool's queue, all workers, by"
               " priority.\n"
               "# TYPE mcig_pool_queue_depth gauge\n"),
    ngx_string("# HELP mcig_pool_queue_requests_total"
               " Requests that met the pool's queue, by outcome.\n"
               "# TYPE mcig_pool_queue_requests_total counter\n"),
    ngx_string("# HELP mcig_pool_queue_wait_seconds"
               " Time dispatched requests waited in the pool's queue.\n"
               "# TYPE mcig_pool_queue_wait_seconds histogram\n"),
    ngx_string("# HELP mcig_objective_queue_requests_total"
               " Requests that waited or were refused by the queue, by"
               " InferenceObjective.\n"
               "# TYPE mcig_objective_queue_requests_total counter\n"),
};


static ngx_int_t
ngx_http_mcig_status_prometheus(ngx_http_request_t *r)
{
    u_char                              *buf, *p;
    size_t                               size;
    ngx_int_t                            rc;
    ngx_str_t                            type;
    ngx_uint_t                           i, j, family, nobj;
    ngx_array_t                         *pools;
    ngx_http_mcig_member_t              *m;
    ngx_http_mcig_metrics_t              metrics;
    ngx_http_mcig_objective_t           *obj;
    ngx_http_mcig_member_node_t         *node;
    ngx_http_mcig_queue_band_t          *bands;
    ngx_http_upstream_mcig_srv_conf_t  **pool;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    pools = ngx_http_mcig_pools(r);
    pool = pools ? pools->elts : NULL;

    /* HELP and TYPE lines, then every series with its labels escaped */
    size = sizeof(ngx_http_mcig_families) / sizeof(ngx_str_t) * 192;

    nobj = 0;

    for (i = 0; pools && i < pools->nelts; i++) {
        size_t  longest = 0;

        if (pool[i]->objectives) {
            nobj = ngx_max(nobj, pool[i]->objectives->nelts);
        }

        for (j = 0; j < pool[i]->nmembers; j++) {
            longest = ngx_max(longest, pool[i]->members[j].name.len);
        }

        obj = pool[i]->objectives ? pool[i]->objectives->elts : NULL;

        for (j = 0; obj && j < pool[i]->objectives->nelts; j++) {
            longest = ngx_max(longest, obj[j].name.len);
        }

        for (j = 0; pool[i]->regions && j < pool[i]->regions->nelts; j++) {
            longest = ngx_max(longest,
                          ((ngx_str_t *) pool[i]->regions->elts)[j].len);
        }

        size += (pool[i]->nmembers * 11 + 3 + 3 + 5
                 + (pool[i]->regions ? pool[i]->regions->nelts : 0)
                 + 2 * (1 + (obj ? pool[i]->objectives->nelts : 0)))
                * (128 + 2 * pool[i]->key.len + 2 * longest);

        /* flow control: bands, outcomes, histogram, objectives' series */
        size += (2 + NGX_HTTP_MCIG_STATUS_BANDS + NGX_HTTP_MCIG_QUEUE_OUTCOMES
                 + NGX_HTTP_MCIG_QUEUE_BUCKETS + 2
                 + 4 * (1 + (obj ? pool[i]->objectives->nelts : 0)))
                * (128 + 2 * pool[i]->key.len + 2 * longest);
    }

    buf = ngx_pnalloc(r->pool, size);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    bands = ngx_palloc(r->pool, (1 + NGX_HTTP_MCIG_STATUS_BANDS + nobj)
                                * sizeof(ngx_http_mcig_queue_band_t));
    if (bands == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = buf;

    /* one family at a time, over every pool and member */

    for (family = 0;
         family < sizeof(ngx_http_mcig_families) / sizeof(ngx_str_t);
         family++)
    {

        p = ngx_cpymem(p, ngx_http_mcig_families[family].data,
                       ngx_http_mcig_families[family].len);

        for (i = 0; pools && i < pools->nelts; i++) {
            ngx_str_t  name;

            name.data = pool[i]->key.data + 1;
            name.len = pool[i]->key.len - 1;

            if (family >= NGX_HTTP_MCIG_QUEUE_FAMILY) {
                p = ngx_http_mcig_status_queue_series(p, pool[i], &name,
                                          family - NGX_HTTP_MCIG_QUEUE_FAMILY,
                                          bands);
                continue;
            }

            if (family == 15) {
                for (j = 1; j < 6; j++) {
                    p = ngx_sprintf(p, "mcig_pool_responses_total{pool=\"");
                    p = ngx_http_mcig_label(p, &name);
                    p = ngx_sprintf(p, "\",code=\"%uixx\"} %uA\n", j,
                                    pool[i]->node->responses[j]);
                }

                continue;
            }

            if (family == 16 && pool[i]->metrics) {
                for (j = 0; j < pool[i]->nmembers; j++) {
                    p = ngx_sprintf(p,
                                "mcig_member_scrape_duration_seconds{pool=\"");
                    p = ngx_http_mcig_label(p, &name);
                    p = ngx_sprintf(p, "\",member=\"");
                    p = ngx_http_mcig_label(p, &pool[i]->members[j].name);
                    p = ngx_sprintf(p, "\"} %uA.%06uA\n",
                                    pool[i]->members[j].node->scrape_usec
                                    / 1000000,
                                    pool[i]->members[j].node->scrape_usec
                                    % 1000000);
                }

                continue;
            }

            if (family == 16) {
                continue;
            }

            if (family == 13) {
                static const char  *kinds[] = { "", "local", "spillover",
                                                "failover" };

                for (j = 1; j < 4; j++) {
                    p = ngx_sprintf(p, "mcig_pool_decisions_total{pool=\"");
                    p = ngx_http_mcig_label(p, &name);
                    p = ngx_sprintf(p, "\",decision=\"%s\"} %uA\n", kinds[j],
                                    pool[i]->node->decisions[j]);
                }

                continue;
            }

            if (family == 14) {
                ngx_str_t  *rname;

                if (pool[i]->regions == NULL) {
                    continue;
                }

                rname = pool[i]->regions->elts;

                for (j = 0; j < pool[i]->regions->nelts; j++) {
                    p = ngx_sprintf(p, "mcig_region_requests_total{pool=\"");
                    p = ngx_http_mcig_label(p, &name);
                    p = ngx_sprintf(p, "\",region=\"");
                    p = ngx_http_mcig_label(p, &rname[j]);
                    p = ngx_sprintf(p, "\"} %uA\n",
                                    pool[i]->node->region_requests[j]);
                }

                continue;
            }

            if (family == 10) {
                ngx_atomic_t  *count[] = { &pool[i]->node->saturated,
                                           &pool[i]->node->no_member,
                                           &pool[i]->node->deadline,
                                           &pool[i]->node->queue_outcomes[
                                               NGX_HTTP_MCIG_QUEUE_FULL],
                                           &pool[i]->node->queue_outcomes[
                                               NGX_HTTP_MCIG_QUEUE_TIMEOUT] };
                const char    *reason[] = { "pool_saturated",
                                            "no_member_available",
                                            "deadline_exceeded",
                                            "queue_full",
                                            "queue_timeout" };

                for (j = 0; j < 5; j++) {
                    p = ngx_sprintf(p, "mcig_pool_refused_total{pool=\"");
                    p = ngx_http_mcig_label(p, &name);
                    p = ngx_sprintf(p, "\",reason=\"%s\"} %uA\n", reason[j],
                                    *count[j]);
                }

                continue;
            }

            if (family == 11 || family == 12) {
                ngx_str_t                        oname;
                ngx_http_mcig_objective_node_t  *on;

                obj = pool[i]->objectives ? pool[i]->objectives->elts : NULL;

                for (j = 0; j <= (obj ? pool[i]->objectives->nelts : 0);
                     j++)
                {
                    if (obj && j < pool[i]->objectives->nelts) {
                        oname = obj[j].name;
                        on = obj[j].node;

                    } else {
                        ngx_str_null(&oname);
                        on = pool[i]->default_objective;
                    }

                    p = ngx_sprintf(p, "%s{pool=\"",
                                    family == 11
                                    ? "mcig_objective_requests_total"
                                    : "mcig_objective_shed_total");
                    p = ngx_http_mcig_label(p, &name);
                    p = ngx_sprintf(p, "\",objective=\"");
                    p = ngx_http_mcig_label(p, &oname);
                    p = ngx_sprintf(p, "\"} %uA\n",
                                    family == 11 ? on->requests : on->shed);
                }

                continue;
            }

            if (family >= 8 && pool[i]->metrics == NULL) {
                continue;
            }

            for (j = 0; j < pool[i]->nmembers; j++) {
                m = &pool[i]->members[j];
                node = m->node;

                if (family >= 4 && family <= 7
                    && (pool[i]->metrics == NULL
                        || ngx_http_mcig_read_metrics(pool[i], m, &metrics)
                           != NGX_OK))
                {
                    continue;
                }

                switch (family) {
                case 0: p = ngx_sprintf(p, "mcig_member_requests_total"); break;
                case 1: p = ngx_sprintf(p, "mcig_member_failures_total"); break;
                case 2: p = ngx_sprintf(p, "mcig_member_in_flight"); break;
                case 3: p = ngx_sprintf(p, "mcig_member_healthy"); break;
                case 4: p = ngx_sprintf(p, "mcig_member_kv_cache_usage"); break;
                case 5:
                    p = ngx_sprintf(p, "mcig_member_waiting_requests");
                    break;
                case 6:
                    p = ngx_sprintf(p, "mcig_member_running_requests");
                    break;
                case 7:
                    p = ngx_sprintf(p, "mcig_member_metrics_age_seconds");
                    break;
                case 8: p = ngx_sprintf(p, "mcig_member_scrapes_total"); break;
                default:
                    p = ngx_sprintf(p, "mcig_member_scrape_errors_total");
                    break;
                }

                p = ngx_sprintf(p, "{pool=\"");
                p = ngx_http_mcig_label(p, &name);
                p = ngx_sprintf(p, "\",member=\"");
                p = ngx_http_mcig_label(p, &m->name);
                p = ngx_sprintf(p, "\"} ");

                switch (family) {
                case 0: p = ngx_sprintf(p, "%uA\n", node->requests); break;
                case 1: p = ngx_sprintf(p, "%uA\n", node->failures); break;
                case 2:
                    p = ngx_sprintf(p, "%A\n",
                                    (ngx_atomic_int_t) node->in_flight);
                    break;
                case 3:
                    p = ngx_sprintf(p, "%d\n", node->unhealthy ? 0 : 1);
                    break;
                case 4:
                    p = ngx_sprintf(p, "%uD.%06uD\n", metrics.kv_ppm / 1000000,
                                    metrics.kv_ppm % 1000000);
                    break;
                case 5: p = ngx_sprintf(p, "%uD\n", metrics.waiting); break;
                case 6: p = ngx_sprintf(p, "%uD\n", metrics.running); break;
                case 7:
                    p = ngx_sprintf(p, "%M.%03M\n", metrics.age / 1000,
                                    metrics.age % 1000);
                    break;
                case 8: p = ngx_sprintf(p, "%uA\n", node->scrapes); break;
                default:
                    p = ngx_sprintf(p, "%uA\n", node->scrape_errors);
                    break;
                }
            }
        }
    }

    ngx_str_set(&type, "text/plain; version=0.0.4");

    return ngx_http_mcig_status_send(r, &type, buf, p - buf);
}


/*
 * The priorities a pool's depth is shown for: those waiting, and the
 * objectives' and 0 (no objective) with nothing waiting, highest first.
 */

static ngx_uint_t
ngx_http_mcig_status_priorities(ngx_http_upstream_mcig_srv_conf_t *pool,
    ngx_http_mcig_queue_band_t *b)
{
    ngx_int_t                   prio;
    ngx_uint_t                  i, j, k, n, nobj;
    ngx_http_mcig_objective_t  *obj;

    n = ngx_http_mcig_queue_bands(pool, b, NGX_HTTP_MCIG_STATUS_BANDS);

    obj = pool->objectives ? pool->objectives->elts : NULL;
    nobj = obj ? pool->objectives->nelts : 0;

    for (k = 0; k <= nobj; k++) {
        prio = (k < nobj) ? obj[k].priority : 0;

        for (j = 0; j < n && b[j].priority > prio; j++) {
            /* void */
        }

        if (j < n && b[j].priority == prio) {
            continue;
        }

        for (i = n; i > j; i--) {
            b[i] = b[i - 1];
        }

        b[j].priority = prio;
        b[j].waiting = 0;
        n++;
    }

    return n;
}


/* the series of a flow-control family for one pool */

static u_char *
ngx_http_mcig_status_queue_series(u_char *p,
    ngx_http_upstream_mcig_srv_conf_t *pool, ngx_str_t *name,
    ngx_uint_t family, ngx_http_mcig_queue_band_t *bands)
{
    ngx_uint_t                       i, j, n, sum;
    ngx_str_t                        oname;
    ngx_atomic_t                    *outcomes;
    ngx_http_mcig_objective_t       *obj;
    ngx_http_mcig_objective_node_t  *on;

    static const char  *outcome[] = { "queued", "dispatched", "queue_full",
                                      "queue_timeout", "abandoned" };

    if (!ngx_http_mcig_queue_conf(pool)->enable) {
        return p;
    }

    outcomes = pool->node->queue_outcomes;

    switch (family) {

    case 0:
        n = ngx_http_mcig_status_priorities(pool, bands);

        for (i = 0; i < n; i++) {
            p = ngx_sprintf(p, "mcig_pool_queue_depth{pool=\"");
            p = ngx_http_mcig_label(p, name);
            p = ngx_sprintf(p, "\",priority=\"%i\"} %ui\n",
                            bands[i].priority, bands[i].waiting);
        }

        break;

    case 1:
        for (i = 0; i < NGX_HTTP_MCIG_QUEUE_OUTCOMES; i++) {
            p = ngx_sprintf(p, "mcig_pool_queue_requests_total{pool=\"");
            p = ngx_http_mcig_label(p, name);
            p = ngx_sprintf(p, "\",outcome=\"%s\"} %uA\n", outcome[i],
                            outcomes[i]);
        }

        break;

    case 2:
        sum = 0;

        for (i = 0; i < NGX_HTTP_MCIG_QUEUE_BUCKETS; i++) {
            sum += pool->node->queue_wait_buckets[i];

            p = ngx_sprintf(p, "mcig_pool_queue_wait_seconds_bucket{pool=\"");
            p = ngx_http_mcig_label(p, name);

            if (i < NGX_HTTP_MCIG_QUEUE_BUCKETS - 1) {
                p = ngx_sprintf(p, "\",le=\"%M.%03M\"} %ui\n",
                                ngx_http_mcig_queue_bucket_ms[i] / 1000,
                                ngx_http_mcig_queue_bucket_ms[i] % 1000, sum);
            } else {
                p = ngx_sprintf(p, "\",le=\"+Inf\"} %ui\n", sum);
            }
        }

        p = ngx_sprintf(p, "mcig_pool_queue_wait_seconds_sum{pool=\"");
        p = ngx_http_mcig_label(p, name);
        p = ngx_sprintf(p, "\"} %uA.%03uA\n", pool->node->queue_wait_ms / 1000,
                        pool->node->queue_wait_ms % 1000);

        p = ngx_sprintf(p, "mcig_pool_queue_wait_seconds_count{pool=\"");
        p = ngx_http_mcig_label(p, name);
        p = ngx_sprintf(p, "\"} %ui\n", sum);

        break;

    default:
        obj = pool->objectives ? pool->objectives->elts : NULL;

        for (j = 0; j <= (obj ? pool->objectives->nelts : 0); j++) {
            if (obj && j < pool->objectives->nelts) {
                oname = obj[j].name;
                on = obj[j].node;

            } else {
                ngx_str_null(&oname);
                on = pool->default_objective;
            }

            for (i = 0; i < 3; i++) {
                p = ngx_sprintf(p,
                                "mcig_objective_queue_requests_total{pool=\"");
                p = ngx_http_mcig_label(p, name);
                p = ngx_sprintf(p, "\",objective=\"");
                p = ngx_http_mcig_label(p, &oname);
                p = ngx_sprintf(p, "\",outcome=\"%s\"} %uA\n",
                                i == 0 ? "queued"
                                : i == 1 ? "queue_full" : "queue_timeout",
                                i == 0 ? on->queued
                                : i == 1 ? on->queue_full
                                : on->queue_timeout);
            }
        }

        break;
    }

    return p;
}


/* a label value: \, " and newline escaped as the text format wants */

static u_char *
ngx_http_mcig_label(u_char *p, ngx_str_t *value)
{
    size_t  i;

    for (i = 0; i < value->len; i++) {
        switch (value->data[i]) {
        case '\\': *p++ = '\\'; *p++ = '\\'; break;
        case '"':  *p++ = '\\'; *p++ = '"'; break;
        case '\n': *p++ = '\\'; *p++ = 'n'; break;
        default:   *p++ = value->data[i];
        }
    }

    return p;
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
