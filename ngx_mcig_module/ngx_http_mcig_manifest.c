
/*
 * Copyright (C) ngx_mcig_module authors
 *
 * The GKE guide's Kubernetes manifests as configuration.  "mcig_manifests"
 * loads them with the core's loader while nginx reads its configuration;
 * once every upstream is known, each pool takes what the manifests attach
 * to its name.  A directive written in the upstream block wins over a
 * manifest, and nginx -t warns where the two disagree, naming both.
 *
 * At request time, InferenceModelRewrite rules and the
 * x-gateway-model-name-rewrite header replace the model of the body: only
 * the bytes of the value change, in memory or in the temporary file's
 * chain, and the length nginx sends upstream follows.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_mcig_module.h"


static ngx_int_t ngx_http_mcig_manifests_strict(ngx_conf_t *cf,
    ngx_str_t *pattern);
static void ngx_http_mcig_manifests_cleanup(void *data);
static ngx_int_t ngx_http_mcig_manifests_log(ngx_conf_t *cf,
    ngx_http_mcig_manifests_t *mf);
static void ngx_http_mcig_manifests_overridden(ngx_conf_t *cf,
    ngx_http_upstream_mcig_srv_conf_t *pool, const char *directive,
    const mcig_manifest_src_t *src);
static ngx_int_t ngx_http_mcig_manifests_health(ngx_conf_t *cf,
    ngx_http_upstream_mcig_srv_conf_t *pool, const mcig_manifest_pool_t *p);
static ngx_int_t ngx_http_mcig_manifests_metrics(ngx_conf_t *cf,
    ngx_http_upstream_mcig_srv_conf_t *pool, const mcig_manifest_pool_t *p);
static ngx_int_t ngx_http_mcig_manifests_objectives(ngx_conf_t *cf,
    ngx_http_upstream_mcig_srv_conf_t *pool, const mcig_manifest_pool_t *p);
static ngx_int_t ngx_http_mcig_manifests_members(ngx_conf_t *cf,
    ngx_http_upstream_mcig_srv_conf_t *pool, const mcig_manifest_pool_t *p,
    ngx_array_t *regions);
static ngx_int_t ngx_http_mcig_splice_body(ngx_http_request_t *r,
    off_t offset, off_t len, ngx_str_t *with);
static ngx_buf_t *ngx_http_mcig_buf_part(ngx_pool_t *pool, ngx_buf_t *b,
    off_t from, off_t to);


/*
 * One parameter of "mcig_manifests file | glob ... [strict]": the caller
 * passes each in turn, the flag included, which this takes from the
 * directive's last argument for every file before it.
 */

char *
ngx_http_mcig_manifests_load(ngx_conf_t *cf, ngx_http_mcig_manifests_t *mf,
    ngx_str_t *pattern)
{
    int                  rc;
    ngx_str_t            path;
    ngx_int_t            strict;
    ngx_pool_cleanup_t  *cln;

    strict = ngx_http_mcig_manifests_strict(cf, pattern);

    if (strict == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    if (strict == NGX_DONE) {
        return NGX_CONF_OK;
    }

    if (mf->manifest == NULL) {
        mf->manifest = mcig_manifest_create();
        if (mf->manifest == NULL) {
            return NGX_CONF_ERROR;
        }

        cln = ngx_pool_cleanup_add(cf->pool, 0);
        if (cln == NULL) {
            mcig_manifest_destroy(mf->manifest);
            mf->manifest = NULL;
            return NGX_CONF_ERROR;
        }

        cln->handler = ngx_http_mcig_manifests_cleanup;
        cln->data = mf->manifest;
    }

    /* relative to the configuration's directory, as "include" is */
    path = *pattern;

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    mcig_manifest_set_strict(mf->manifest, (int) strict);

    rc = mcig_manifest_load_glob(mf->manifest, (char *) path.data);

    if (ngx_http_mcig_manifests_log(cf, mf) != NGX_OK
        || rc != MCIG_MANIFEST_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mcig_manifests could not load \"%V\"", pattern);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Whether the directive ends in "strict": 1 or 0 for a file or glob,
 * NGX_DONE for the flag itself, NGX_ERROR for a "strict" elsewhere (a file
 * of that name is written "./strict").
 */

static ngx_int_t
ngx_http_mcig_manifests_strict(ngx_conf_t *cf, ngx_str_t *pattern)
{
    ngx_str_t  *value, *last;

    value = cf->args->elts;
    last = &value[cf->args->nelts - 1];

    if (pattern->len == sizeof("strict") - 1
        && ngx_strncmp(pattern->data, "strict", pattern->len) == 0)
    {
        if (pattern == last && cf->args->nelts > 2) {
            return NGX_DONE;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"strict\" of mcig_manifests must follow the "
                           "files and globs, as its last parameter; a file "
                           "of that name is written \"./strict\"");
        return NGX_ERROR;
    }

    /* as the directive's handler passes them: one of its arguments */
    if (pattern <= value || pattern >= last) {
        return 0;
    }

    return (last->len == sizeof("strict") - 1
            && ngx_strncmp(last->data, "strict", last->len) == 0);
}


static void
ngx_http_mcig_manifests_cleanup(void *data)
{
    mcig_manifest_destroy(data);
}


/* prints the diagnostics not printed yet; NGX_ERROR if one is an error */

static ngx_int_t
ngx_http_mcig_manifests_log(ngx_conf_t *cf, ngx_http_mcig_manifests_t *mf)
{
    size_t                       n;
    ngx_int_t                    rc;
    const mcig_manifest_diag_t  *d;

    rc = NGX_OK;
    n = mcig_manifest_ndiags(mf->manifest);

    for ( /* void */ ; mf->logged < n; mf->logged++) {
        d = mcig_manifest_diag(mf->manifest, mf->logged);

        if (d->severity == MCIG_MANIFEST_SEV_ERROR) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0, "mcig_manifests: %s",
                          d->text);
            rc = NGX_ERROR;

        } else {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0, "mcig_manifests: %s",
                          d->text);
        }
    }

    return rc;
}


/*
 * Called by each pool's init: the first call resolves the manifests
 * against every pool of the configuration (policies may only target
 * pools that exist), then the pool takes its settings.
 */

ngx_int_t
ngx_http_mcig_manifests_apply(ngx_conf_t *cf, ngx_http_mcig_manifests_t *mf,
    ngx_array_t *pools, ngx_array_t *regions,
    ngx_http_upstream_mcig_srv_conf_t *pool)
{
    size_t                               i;
    ngx_str_t                           *host;
    ngx_uint_t                           mode;
    const mcig_manifest_pool_t          *p;
    ngx_http_upstream_mcig_srv_conf_t  **all;

    if (mf->manifest == NULL) {
        return NGX_OK;
    }

    if (!mf->resolved) {
        mf->resolved = 1;
        all = pools->elts;

        for (i = 0; i < pools->nelts; i++) {
            host = &all[i]->upstream->host;

            if (mcig_manifest_add_known_pool(mf->manifest,
                                             (char *) host->data, host->len)
                != MCIG_MANIFEST_OK)
            {
                return NGX_ERROR;
            }
        }

        (void) mcig_manifest_resolve(mf->manifest);

        if (ngx_http_mcig_manifests_log(cf, mf) != NGX_OK) {
            return NGX_ERROR;
        }

        for (i = 0; i < mcig_manifest_npools(mf->manifest); i++) {
            p = mcig_manifest_pool(mf->manifest, i);

            if (p->manifest && !p->registered) {
                ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                              "mcig_manifests: %s:%uD: InferencePool \"%s\" "
                              "has no upstream with mcig_pool of that name; "
                              "its settings are not used",
                              p->src.file, p->src.line, p->name);
            }
        }
    }

    host = &pool->upstream->host;
    p = mcig_manifest_pool_find(mf->manifest, (char *) host->data, host->len);

    if (p == NULL) {
        return NGX_OK;
    }

    pool->manifest = p;

    /* GCPBackendPolicy: mcig_balancing_mode, as a whole */

    if (p->balancing_mode.set) {
        mode = (p->balancing_mode.value == MCIG_MANIFEST_MODE_CUSTOM_METRICS)
               ? NGX_HTTP_MCIG_CUSTOM_METRICS : NGX_HTTP_MCIG_IN_FLIGHT;

        if (pool->mode == NGX_CONF_UNSET_UINT) {
            pool->mode = mode;

            if (p->dry_run.set) {
                pool->dry_run = (p->dry_run.value != 0);
            }

        } else if (pool->mode != mode) {
            ngx_http_mcig_manifests_overridden(cf, pool,
                                               "mcig_balancing_mode",
                                               &p->balancing_mode.src);
        }
    }

    if (p->max_utilization.set) {
        if (p->max_utilization.value < 1) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "mcig_manifests: %s:%uD:%uD: %s: 0 gives the pool "
                          "no capacity; a target from 1 to 100 is expected",
                          p->max_utilization.src.file,
                          p->max_utilization.src.line,
                          p->max_utilization.src.column,
                          p->max_utilization.src.field);
            return NGX_ERROR;
        }

        if (pool->max_utilization == NGX_CONF_UNSET_UINT) {
            pool->max_utilization = (ngx_uint_t) p->max_utilization.value;

        } else if (pool->max_utilization
                   != (ngx_uint_t) p->max_utilization.value)
        {
            ngx_http_mcig_manifests_overridden(cf, pool,
                                               "mcig_balancing_mode "
                                               "max_utilization=",
                                               &p->max_utilization.src);
        }
    }

    if (p->max_in_flight.set) {
        if (pool->max_in_flight == NGX_CONF_UNSET_UINT) {
            pool->max_in_flight = (ngx_uint_t) p->max_in_flight.value;

        } else if (pool->max_in_flight != (ngx_uint_t) p->max_in_flight.value)
        {
            ngx_http_mcig_manifests_overridden(cf, pool, "mcig_max_in_flight",
                                               &p->max_in_flight.src);
        }
    }

    if (p->timeout_sec.set) {
        if (pool->request_timeout == NGX_CONF_UNSET_MSEC) {
            pool->request_timeout = (ngx_msec_t) p->timeout_sec.value * 1000;

        } else if (pool->request_timeout
                   != (ngx_msec_t) p->timeout_sec.value * 1000)
        {
            ngx_http_mcig_manifests_overridden(cf, pool,
                                               "mcig_request_timeout",
                                               &p->timeout_sec.src);
        }
    }

    if (ngx_http_mcig_manifests_health(cf, pool, p) != NGX_OK
        || ngx_http_mcig_manifests_metrics(cf, pool, p) != NGX_OK
        || ngx_http_mcig_manifests_objectives(cf, pool, p) != NGX_OK
        || ngx_http_mcig_manifests_members(cf, pool, p, regions) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * EndpointSlice members join the pool's server lines (one naming the same
 * address wins): weight 1, nginx's max_fails and fail_timeout defaults,
 * "down" while not ready.  With mcig_regions, a member's region is its
 * zone's.
 */

static ngx_int_t
ngx_http_mcig_manifests_members(ngx_conf_t *cf,
    ngx_http_upstream_mcig_srv_conf_t *pool, const mcig_manifest_pool_t *p,
    ngx_array_t *regions)
{
    size_t                         i, j;
    ngx_url_t                      u;
    ngx_str_t                      text;
    ngx_addr_t                    *addr;
    ngx_http_mcig_region_conf_t   *rc;
    ngx_http_upstream_server_t    *server;
    ngx_http_upstream_srv_conf_t  *us;
    const mcig_manifest_member_t  *m;

    us = pool->upstream;

    for (i = 0; i < p->nmembers; i++) {
        m = &p->members[i];

        text.data = (u_char *) m->text;
        text.len = ngx_strlen(m->text);

        server = us->servers->elts;

        for (j = 0; j < us->servers->nelts; j++) {
            if (server[j].name.len == text.len
                && ngx_strncmp(server[j].name.data, text.data, text.len) == 0)
            {
                break;
            }
        }

        if (j < us->servers->nelts) {
            continue;
        }

        ngx_memzero(&u, sizeof(ngx_url_t));
        u.url = text;
        u.default_port = (in_port_t) m->port;

        if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "mcig_manifests: %s:%uD:%uD: %s in member \"%V\"",
                          m->src.file, m->src.line, m->src.column,
                          u.err ? u.err : "invalid address", &text);
            return NGX_ERROR;
        }

        server = ngx_array_push(us->servers);
        if (server == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(server, sizeof(ngx_http_upstream_server_t));

        server->name = text;
        server->addrs = u.addrs;
        server->naddrs = u.naddrs;
        server->weight = 1;
        server->max_fails = 1;
        server->fail_timeout = 10;
        server->down = !m->ready;

        if (m->region == NULL || regions == NULL) {
            continue;
        }

        if (pool->region_confs == NULL) {
            pool->region_confs = ngx_array_create(cf->pool, 4,
                                        sizeof(ngx_http_mcig_region_conf_t));
            if (pool->region_confs == NULL) {
                return NGX_ERROR;
            }
        }

        rc = pool->region_confs->elts;

        for (j = 0; j < pool->region_confs->nelts; j++) {
            if (rc[j].cluster.len == 0
                && rc[j].region.len == ngx_strlen(m->region)
                && ngx_strncmp(rc[j].region.data, m->region,
                               rc[j].region.len) == 0)
            {
                break;
            }
        }

        if (j == pool->region_confs->nelts) {
            rc = ngx_array_push(pool->region_confs);
            if (rc == NULL) {
                return NGX_ERROR;
            }

            ngx_memzero(rc, sizeof(ngx_http_mcig_region_conf_t));
            rc->region.data = (u_char *) m->region;
            rc->region.len = ngx_strlen(m->region);

            if (ngx_array_init(&rc->addrs, cf->pool, 4, sizeof(ngx_addr_t))
                != NGX_OK)
            {
                return NGX_ERROR;
            }

        } else {
            rc = &rc[j];
        }

        addr = ngx_array_push_n(&rc->addrs, u.naddrs);
        if (addr == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(addr, u.addrs, u.naddrs * sizeof(ngx_addr_t));
    }

    return NGX_OK;
}


static void
ngx_http_mcig_manifests_overridden(ngx_conf_t *cf,
    ngx_http_upstream_mcig_srv_conf_t *pool, const char *directive,
    const mcig_manifest_src_t *src)
{
    ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                  "\"%s\" in upstream \"%V\" in %s:%ui wins over %s of "
                  "%s:%uD:%uD",
                  directive, &pool->upstream->host,
                  pool->upstream->file_name, pool->upstream->line,
                  src->field, src->file, src->line, src->column);
}


/* HealthCheckPolicy: mcig_health_check, as a whole */

static ngx_int_t
ngx_http_mcig_manifests_health(ngx_conf_t *cf,
    ngx_http_upstream_mcig_srv_conf_t *pool, const mcig_manifest_pool_t *p)
{
    size_t  len;

    if (!p->health_check) {
        return NGX_OK;
    }

    if (pool->health) {
        ngx_http_mcig_manifests_overridden(cf, pool, "mcig_health_check",
                                           &p->health_check_src);
        return NGX_OK;
    }

    pool->health = 1;
    ngx_str_set(&pool->health_path, "/health");
    pool->health_interval = MCIG_MANIFEST_HC_INTERVAL * 1000;
    pool->health_timeout = MCIG_MANIFEST_HC_TIMEOUT * 1000;
    pool->healthy_threshold = MCIG_MANIFEST_HC_THRESHOLD;
    pool->unhealthy_threshold = MCIG_MANIFEST_HC_THRESHOLD;

    if (p->health_path.set) {
        len = ngx_strlen(p->health_path.value);

        pool->health_path.data = ngx_pnalloc(cf->pool, len + 1);
        if (pool->health_path.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(pool->health_path.data, p->health_path.value, len + 1);
        pool->health_path.len = len;
    }

    if (p->health_port.set) {
        pool->health_port = (ngx_uint_t) p->health_port.value;
    }

    if (p->health_interval_sec.set) {
        pool->health_interval = (ngx_msec_t) p->health_interval_sec.value
                                * 1000;
    }

    if (p->health_timeout_sec.set) {
        pool->health_timeout = (ngx_msec_t) p->health_timeout_sec.value
                               * 1000;
    }

    if (p->healthy_threshold.set) {
        pool->healthy_threshold = (ngx_uint_t) p->healthy_threshold.value;
    }

    if (p->unhealthy_threshold.set) {
        pool->unhealthy_threshold = (ngx_uint_t) p->unhealthy_threshold.value;
    }

    return NGX_OK;
}


/*
 * AutoscalingMetric: the page and the KV metric that CUSTOM_METRICS
 * balances on.  Scraping starts only if the pool balances on metrics (dry
 * run included) and mcig_metrics does not say otherwise.
 */

static ngx_int_t
ngx_http_mcig_manifests_metrics(ngx_conf_t *cf,
    ngx_http_upstream_mcig_srv_conf_t *pool, const mcig_manifest_pool_t *p)
{
    size_t     len;
    ngx_str_t  role_spec[4];

    if (pool->metrics) {
        if (p->kv_metric.set) {
            ngx_http_mcig_manifests_overridden(cf, pool, "mcig_metrics",
                                               &p->kv_metric.src);
        }

        return NGX_OK;
    }

    if (pool->mode != NGX_HTTP_MCIG_CUSTOM_METRICS) {
        return NGX_OK;
    }

    ngx_http_upstream_mcig_metrics_defaults(pool);
    ngx_memzero(role_spec, sizeof(role_spec));

    if (p->kv_metric.set) {
        role_spec[MCIG_PROM_ROLE_KV_USAGE].data = (u_char *) p->kv_metric.value;
        role_spec[MCIG_PROM_ROLE_KV_USAGE].len = ngx_strlen(p->kv_metric.value);
    }

    if (p->metrics_port.set) {
        pool->metrics_port = (ngx_uint_t) p->metrics_port.value;
    }

    if (p->metrics_path.set) {
        len = ngx_strlen(p->metrics_path.value);

        pool->metrics_path.data = ngx_pnalloc(cf->pool, len + 1);
        if (pool->metrics_path.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(pool->metrics_path.data, p->metrics_path.value, len + 1);
        pool->metrics_path.len = len;
    }

    return ngx_http_upstream_mcig_metrics_set(cf, pool,
                                              mcig_prom_preset(MCIG_PROM_VLLM),
                                              role_spec);
}


/* InferenceObjectives; an mcig_objective of the same name wins */

static ngx_int_t
ngx_http_mcig_manifests_objectives(ngx_conf_t *cf,
    ngx_http_upstream_mcig_srv_conf_t *pool, const mcig_manifest_pool_t *p)
{
    size_t                            i, j;
    ngx_str_t                         name;
    ngx_http_mcig_objective_t        *obj;
    const mcig_manifest_objective_t  *o;

    for (i = 0; i < p->nobjectives; i++) {
        o = &p->objectives[i];

        name.data = (u_char *) o->name;
        name.len = ngx_strlen(o->name);

        if (pool->objectives == NULL) {
            pool->objectives = ngx_array_create(cf->pool, 4,
                                            sizeof(ngx_http_mcig_objective_t));
            if (pool->objectives == NULL) {
                return NGX_ERROR;
            }
        }

        obj = pool->objectives->elts;

        for (j = 0; j < pool->objectives->nelts; j++) {
            if (obj[j].name.len == name.len
                && ngx_strncmp(obj[j].name.data, name.data, name.len) == 0)
            {
                break;
            }
        }

        if (j < pool->objectives->nelts) {
            if (obj[j].priority != (ngx_int_t) o->priority.value) {
                ngx_http_mcig_manifests_overridden(cf, pool,
                                                   "mcig_objective", &o->src);
            }

            continue;
        }

        obj = ngx_array_push(pool->objectives);
        if (obj == NULL) {
            return NGX_ERROR;
        }

        obj->name = name;
        obj->priority = (ngx_int_t) o->priority.value;
        ngx_str_null(&obj->key);
        obj->node = NULL;
    }

    return NGX_OK;
}


/*
 * The model the server gets: the x-gateway-model-name-rewrite header, else
 * an InferenceModelRewrite rule of the pool (known here when the location
 * proxies to it by name).  The body's value is replaced, JSON-escaped.
 */

ngx_int_t
ngx_http_mcig_rewrite_model(ngx_http_request_t *r, ngx_http_mcig_ctx_t *ctx)
{
    u_char                      *p;
    size_t                       i, len;
    uint64_t                     draw;
    ngx_str_t                    target, value;
    const char                  *model;
    const mcig_manifest_rule_t  *rule;

    ctx->target_model = ctx->model;

    if (ctx->rewrite_header.len) {
        target = ctx->rewrite_header;

        if (target.len > MCIG_MODEL_MAX
            || !mcig_utf8_printable(target.data, target.len))
        {
            ngx_http_mcig_set_error(r, ctx, NGX_HTTP_MCIG_ERR_BODY,
                                    "invalid_model_rewrite",
                                    "the x-gateway-model-name-rewrite header "
                                    "is not a model name (1 to %d bytes of "
                                    "printable UTF-8)", MCIG_MODEL_MAX);
            return NGX_HTTP_BAD_REQUEST;
        }

    } else if (ctx->pool && ctx->pool->manifest) {
        rule = mcig_manifest_rewrite_rule(ctx->pool->manifest,
                                          (char *) ctx->model.data,
                                          ctx->model.len);
        if (rule == NULL) {
            return NGX_OK;
        }

        draw = ((uint64_t) ngx_random() << 32) ^ (uint64_t) ngx_random();
        model = mcig_manifest_rewrite_pick(rule, draw);

        if (model == NULL) {
            return NGX_OK;
        }

        target.data = (u_char *) model;
        target.len = ngx_strlen(model);

    } else {
        return NGX_OK;
    }

    if (target.len == ctx->model.len
        && ngx_strncmp(target.data, ctx->model.data, target.len) == 0)
    {
        return NGX_OK;
    }

    /* the JSON string: printable UTF-8 needs only '"' and '\' escaped */

    for (len = 2, i = 0; i < target.len; i++) {
        len += (target.data[i] == '"' || target.data[i] == '\\') ? 2 : 1;
    }

    value.data = ngx_pnalloc(r->pool, len);
    if (value.data == NULL) {
        return NGX_ERROR;
    }

    p = value.data;
    *p++ = '"';

    for (i = 0; i < target.len; i++) {
        if (target.data[i] == '"' || target.data[i] == '\\') {
            *p++ = '\\';
        }

        *p++ = target.data[i];
    }

    *p++ = '"';
    value.len = p - value.data;

    if (ngx_http_mcig_splice_body(r, (off_t) ctx->scan.model_value_offset,
                                  (off_t) ctx->scan.model_value_len, &value)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->target_model.data = ngx_pstrdup(r->pool, &target);
    if (ctx->target_model.data == NULL) {
        return NGX_ERROR;
    }

    ctx->target_model.len = target.len;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "mcig model \"%V\" rewritten to \"%V\"",
                   &ctx->model, &ctx->target_model);

    return NGX_OK;
}


/*
 * Replaces body bytes [offset, offset + len) with "with": the buffer that
 * holds them is cut in two around a new one, in memory or in the temporary
 * file alike, so nothing is copied or read back.
 */

static ngx_int_t
ngx_http_mcig_splice_body(ngx_http_request_t *r, off_t offset, off_t len,
    ngx_str_t *with)
{
    off_t         at, size, delta;
    u_char       *p;
    ngx_uint_t    k;
    ngx_buf_t    *b, *head, *tail, *mid, *parts[3];
    ngx_chain_t  *cl, **ll, *out, *next;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_ERROR;
    }

    out = NULL;
    ll = &out;
    at = 0;

    for (cl = r->request_body->bufs; cl; cl = next) {
        next = cl->next;
        b = cl->buf;
        size = ngx_buf_size(b);

        if (at + size <= offset || at >= offset + len) {
            /* untouched */
            *ll = cl;
            ll = &cl->next;
            at += size;
            continue;
        }

        /* the value lies in this buffer whole: the scanner saw it so */
        if (offset < at || offset + len > at + size) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "mcig: the model value is split over body "
                          "buffers; not rewritten");
            return NGX_ERROR;
        }

        head = ngx_http_mcig_buf_part(r->pool, b, 0, offset - at);
        tail = ngx_http_mcig_buf_part(r->pool, b, offset - at + len, size);

        mid = ngx_calloc_buf(r->pool);
        if (head == NULL || tail == NULL || mid == NULL) {
            return NGX_ERROR;
        }

        p = ngx_pnalloc(r->pool, with->len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p, with->data, with->len);
        mid->pos = p;
        mid->last = p + with->len;
        mid->memory = 1;

        head->last_buf = 0;
        head->last_in_chain = 0;

        parts[0] = head;
        parts[1] = mid;
        parts[2] = tail;

        for (k = 0; k < 3; k++) {
            cl = ngx_alloc_chain_link(r->pool);
            if (cl == NULL) {
                return NGX_ERROR;
            }

            cl->buf = parts[k];
            *ll = cl;
            ll = &cl->next;
        }

        at += size;
    }

    *ll = NULL;
    r->request_body->bufs = out;

    delta = (off_t) with->len - len;

    if (r->headers_in.content_length_n >= 0) {
        r->headers_in.content_length_n += delta;

        if (r->headers_in.content_length) {
            p = ngx_pnalloc(r->pool, NGX_OFF_T_LEN);
            if (p == NULL) {
                return NGX_ERROR;
            }

            r->headers_in.content_length->value.data = p;
            r->headers_in.content_length->value.len =
                     ngx_sprintf(p, "%O", r->headers_in.content_length_n) - p;
        }
    }

    return NGX_OK;
}


/* bytes [from, to) of a body buffer, in memory or in a file */

static ngx_buf_t *
ngx_http_mcig_buf_part(ngx_pool_t *pool, ngx_buf_t *b, off_t from, off_t to)
{
    ngx_buf_t  *part;

    part = ngx_calloc_buf(pool);
    if (part == NULL) {
        return NULL;
    }

    *part = *b;
    part->shadow = NULL;

    if (b->in_file) {
        part->file_pos = b->file_pos + from;
        part->file_last = b->file_pos + to;

        /* a copy in memory would be sent instead of the file's bytes */
        part->temporary = 0;
        part->memory = 0;
        part->mmap = 0;
        part->pos = NULL;
        part->last = NULL;

    } else {
        part->pos = b->pos + from;
        part->last = b->pos + to;
        part->temporary = 0;
        part->memory = 1;
    }

    return part;
}
