
/*
 * Copyright (C) ngx_mcig_module authors
 *
 * The request side of ngx_mcig_module: reads the model from OpenAI-style
 * JSON bodies as they arrive, takes the x-gateway-* headers, exposes what it
 * learnt as variables, and turns the errors of inference requests into
 * OpenAI-style JSON bodies.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_mcig_module.h"
#include "mcig_json.h"


#define NGX_HTTP_MCIG_OBJECTIVE_HEADER  "x-gateway-inference-objective"
#define NGX_HTTP_MCIG_FAIRNESS_HEADER   "x-gateway-inference-fairness-id"
#define NGX_HTTP_MCIG_REWRITE_HEADER    "x-gateway-model-name-rewrite"

/* at most this much of a name from the request is shown in an answer */
#define NGX_HTTP_MCIG_SHOWN_MAX         128


typedef struct {
    /* ctx_index of ngx_http_proxy_module, NGX_CONF_UNSET_UINT if absent */
    ngx_uint_t                  proxy_index;
} ngx_http_mcig_main_conf_t;


typedef struct {
    ngx_flag_t                  enable;   /* unset: when proxying to a pool */
} ngx_http_mcig_loc_conf_t;


typedef struct {
    ngx_uint_t                  status;
    const char                 *type;
    ngx_uint_t                  retry_after;
} ngx_http_mcig_error_kind_t;


typedef enum {
    NGX_HTTP_MCIG_VAR_MODEL = 0,
    NGX_HTTP_MCIG_VAR_TARGET_MODEL,
    NGX_HTTP_MCIG_VAR_OBJECTIVE,
    NGX_HTTP_MCIG_VAR_PRIORITY,
    NGX_HTTP_MCIG_VAR_POOL,
    NGX_HTTP_MCIG_VAR_ENDPOINT,
    NGX_HTTP_MCIG_VAR_REGION,
    NGX_HTTP_MCIG_VAR_CLUSTER,
    NGX_HTTP_MCIG_VAR_DECISION,
    NGX_HTTP_MCIG_VAR_SESSION_AFFINITY,
    NGX_HTTP_MCIG_VAR_ERROR
} ngx_http_mcig_var_e;


static ngx_int_t ngx_http_mcig_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_mcig_log_handler(ngx_http_request_t *r);
static void ngx_http_mcig_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_mcig_is_inference(ngx_http_request_t *r);
static ngx_http_upstream_mcig_srv_conf_t *ngx_http_mcig_location_pool(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_mcig_has_json_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_mcig_body_encoded(ngx_http_request_t *r,
    ngx_http_mcig_ctx_t *ctx);
static ngx_int_t ngx_http_mcig_take_headers(ngx_http_request_t *r,
    ngx_http_mcig_ctx_t *ctx);
static void ngx_http_mcig_cleanup(void *data);
static ngx_int_t ngx_http_mcig_request_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_mcig_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_mcig_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static void ngx_http_mcig_nginx_error(ngx_http_request_t *r,
    ngx_http_mcig_ctx_t *ctx, ngx_uint_t status);
static ngx_int_t ngx_http_mcig_unknown_pool(ngx_http_request_t *r,
    ngx_str_t *name);
static ngx_int_t ngx_http_mcig_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_mcig_add_variables(ngx_conf_t *cf);
static void *ngx_http_mcig_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_mcig_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_mcig_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_mcig_init(ngx_conf_t *cf);


static ngx_command_t  ngx_http_mcig_commands[] = {

    { ngx_string("mcig"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_mcig_loc_conf_t, enable),
      NULL },

    { ngx_string("mcig_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_mcig_status,
      0,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_mcig_module_ctx = {
    ngx_http_mcig_add_variables,           /* preconfiguration */
    ngx_http_mcig_init,                    /* postconfiguration */

    ngx_http_mcig_create_main_conf,        /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_mcig_create_loc_conf,         /* create location configuration */
    ngx_http_mcig_merge_loc_conf           /* merge location configuration */
};


ngx_module_t  ngx_http_mcig_module = {
    NGX_MODULE_V1,
    &ngx_http_mcig_module_ctx,             /* module context */
    ngx_http_mcig_commands,                /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_mcig_error_kind_t  ngx_http_mcig_error_kinds[] = {
    { 0, "", 0 },                                       /* none */
    { NGX_HTTP_BAD_REQUEST, "invalid_request_error", 0 },
    { NGX_HTTP_TOO_MANY_REQUESTS, "rate_limit_error", 1 },
    { NGX_HTTP_SERVICE_UNAVAILABLE, "server_error", 1 },
    { NGX_HTTP_GATEWAY_TIME_OUT, "server_error", 0 },
    { 0, "invalid_request_error", 0 },                  /* nginx's 4xx */
    { 0, "server_error", 0 },                           /* nginx's 5xx */
    { NGX_HTTP_TOO_MANY_REQUESTS, "rate_limit_error", 1 },  /* queue full */
    { NGX_HTTP_SERVICE_UNAVAILABLE, "server_error", 1 },    /* queue timeout */
    { NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, "invalid_request_error", 0 }
};


/* error codes of the body scan results, indexed by mcig_body_rc_e */
static const char  *ngx_http_mcig_body_codes[] = {
    "", "invalid_json", "empty_body", "invalid_json", "body_not_object",
    "json_too_deep", "model_missing", "model_not_string", "model_too_long",
    "model_invalid"
};


static ngx_http_variable_t  ngx_http_mcig_vars[] = {

    { ngx_string("mcig_model"), NULL, ngx_http_mcig_variable,
      NGX_HTTP_MCIG_VAR_MODEL, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("mcig_target_model"), NULL, ngx_http_mcig_variable,
      NGX_HTTP_MCIG_VAR_TARGET_MODEL, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("mcig_objective"), NULL, ngx_http_mcig_variable,
      NGX_HTTP_MCIG_VAR_OBJECTIVE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("mcig_priority"), NULL, ngx_http_mcig_variable,
      NGX_HTTP_MCIG_VAR_PRIORITY, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("mcig_pool"), NULL, ngx_http_mcig_variable,
      NGX_HTTP_MCIG_VAR_POOL, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("mcig_endpoint"), NULL, ngx_http_mcig_variable,
      NGX_HTTP_MCIG_VAR_ENDPOINT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("mcig_region"), NULL, ngx_http_mcig_variable,
      NGX_HTTP_MCIG_VAR_REGION, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("mcig_cluster"), NULL, ngx_http_mcig_variable,
      NGX_HTTP_MCIG_VAR_CLUSTER, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("mcig_decision"), NULL, ngx_http_mcig_variable,
      NGX_HTTP_MCIG_VAR_DECISION, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("mcig_session_affinity"), NULL, ngx_http_mcig_variable,
      NGX_HTTP_MCIG_VAR_SESSION_AFFINITY, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("mcig_error"), NULL, ngx_http_mcig_variable,
      NGX_HTTP_MCIG_VAR_ERROR, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_http_request_body_filter_pt   ngx_http_next_request_body_filter;
static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;

/* rejected bodies, one line a second per worker */
static ngx_http_mcig_log_limit_t         ngx_http_mcig_body_log_limit;


/*
 * The precontent handler reads the body of inference requests before the
 * content phase, so that $mcig_model is known when proxy_pass evaluates its
 * variables.  The bytes are scanned by the request body filter as they are
 * read, so a body that nginx spills to a temporary file is never read back.
 */

static ngx_int_t
ngx_http_mcig_handler(ngx_http_request_t *r)
{
    ngx_int_t                           rc;
    ngx_http_mcig_ctx_t                *ctx;
    ngx_http_upstream_mcig_srv_conf_t  *pool;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_mcig_module);

    if (ctx) {
        return ctx->phase_status;
    }

    if (!ngx_http_mcig_is_inference(r)) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_mcig_create_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* known now for a static proxy_pass; else when the upstream starts */
    ctx->pool = ngx_http_mcig_location_pool(r);
    ctx->phase_status = NGX_DECLINED;

    if (!ngx_http_mcig_has_json_body(r)) {
        return NGX_DECLINED;
    }

    if (ngx_http_mcig_body_encoded(r, ctx)) {
        /* nginx's special response code discards the unread body */
        ctx->phase_status = NGX_HTTP_UNSUPPORTED_MEDIA_TYPE;
        return NGX_HTTP_UNSUPPORTED_MEDIA_TYPE;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "mcig read body");

    ctx->phase_status = NGX_DONE;
    ctx->scanning = 1;
    mcig_body_scan_init(&ctx->scan);

    /* the prompt is hashed for the prefix scorer as it is read */
    pool = ngx_http_upstream_mcig_hashing_pool(r, ctx->pool);

    if (pool) {
        ctx->hasher = ngx_palloc(r->pool, sizeof(mcig_prefix_hasher_t));
        ctx->hashes = ngx_palloc(r->pool, pool->max_blocks * sizeof(uint64_t));

        if (ctx->hasher == NULL || ctx->hashes == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        mcig_prefix_hasher_init(ctx->hasher, (uint32_t) pool->block_size,
                                (uint32_t) pool->max_blocks, ctx->hashes);
        mcig_body_scan_set_hasher(&ctx->scan, ctx->hasher);
    }

    rc = ngx_http_read_client_request_body(r, ngx_http_mcig_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        ctx->scanning = 0;
        return rc;
    }

    ngx_http_finalize_request(r, NGX_DONE);
    return NGX_DONE;
}


/* counts the answers of each pool by status class */

static ngx_int_t
ngx_http_mcig_log_handler(ngx_http_request_t *r)
{
    ngx_uint_t            status;
    ngx_http_mcig_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mcig_module);

    if (ctx == NULL || ctx->pool == NULL || ctx->pool->node == NULL) {
        return NGX_OK;
    }

    status = r->err_status ? r->err_status : r->headers_out.status;

    if (status >= 100 && status < 600) {
        (void) ngx_atomic_fetch_add(&ctx->pool->node->responses[status / 100],
                                    1);
    }

    return NGX_OK;
}


static void
ngx_http_mcig_body_handler(ngx_http_request_t *r)
{
    ngx_str_t            *repeats;
    mcig_body_rc_e        rc;
    ngx_http_mcig_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mcig_module);

    ctx->scanning = 0;

    rc = mcig_body_scan_finish(&ctx->scan);

    if (rc == MCIG_BODY_OK) {
        ctx->model.data = (u_char *) ctx->scan.model;
        ctx->model.len = ctx->scan.model_len;

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "mcig model: \"%V\"", &ctx->model);

        switch (ngx_http_mcig_rewrite_model(r, ctx)) {
        case NGX_OK:
            ctx->phase_status = NGX_DECLINED;

            if (ctx->hasher) {
                /* blocks of different models never match: the server's */
                ctx->nblocks = mcig_prefix_hasher_seed(ctx->hasher,
                                   mcig_prefix_seed(ctx->target_model.data,
                                                    ctx->target_model.len,
                                                    ctx->scan.salt));
            }

            break;
        case NGX_HTTP_BAD_REQUEST:
            ctx->phase_status = NGX_HTTP_BAD_REQUEST;
            break;
        default:
            ctx->phase_status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } else {
        repeats = ngx_http_mcig_log_limited(&ngx_http_mcig_body_log_limit);

        if (repeats) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "mcig: rejected request body: %s (after %uL "
                          "bytes)%V", mcig_body_rc_text(rc),
                          ctx->scan.offset, repeats);
        }

        ngx_http_mcig_set_error(r, ctx, NGX_HTTP_MCIG_ERR_BODY,
                                ngx_http_mcig_body_codes[rc], "%s",
                                mcig_body_rc_text(rc));

        ctx->phase_status = NGX_HTTP_BAD_REQUEST;
    }

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}


/* "mcig on", or left unset in a location that proxies to a pool */

static ngx_int_t
ngx_http_mcig_is_inference(ngx_http_request_t *r)
{
    ngx_http_mcig_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_mcig_module);

    if (mlcf->enable == NGX_CONF_UNSET) {
        return ngx_http_mcig_location_pool(r) != NULL;
    }

    return mlcf->enable;
}


/*
 * A location whose static proxy_pass names an upstream with mcig_pool is
 * an inference location without further configuration.  The proxy module
 * keeps its configuration private, but every nginx version starts
 * ngx_http_proxy_loc_conf_t with the ngx_http_upstream_conf_t that names
 * the upstream, as all upstream-based modules do.
 */

static ngx_http_upstream_mcig_srv_conf_t *
ngx_http_mcig_location_pool(ngx_http_request_t *r)
{
    ngx_http_upstream_conf_t           *ucf;
    ngx_http_mcig_main_conf_t          *mmcf;
    ngx_http_upstream_srv_conf_t       *uscf;
    ngx_http_upstream_mcig_srv_conf_t  *pool;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_mcig_module);

    if (mmcf->proxy_index == NGX_CONF_UNSET_UINT) {
        return NULL;
    }

    ucf = r->loc_conf[mmcf->proxy_index];
    uscf = ucf->upstream;

    if (uscf == NULL || uscf->srv_conf == NULL) {
        return NULL;
    }

    pool = ngx_http_conf_upstream_srv_conf(uscf,
                                           ngx_http_upstream_mcig_module);

    return pool->enabled ? pool : NULL;
}


/*
 * Any body is scanned as JSON except multipart uploads (audio
 * transcriptions), which carry the model in a form field: OpenAI clients
 * are not always careful about Content-Type.
 */

static ngx_int_t
ngx_http_mcig_has_json_body(ngx_http_request_t *r)
{
    ngx_table_elt_t  *ct;

    if (r->headers_in.content_length_n <= 0 && !r->headers_in.chunked) {
        return 0;
    }

    ct = r->headers_in.content_type;

    if (ct && ct->value.len >= sizeof("multipart/") - 1
        && ngx_strncasecmp(ct->value.data, (u_char *) "multipart/",
                           sizeof("multipart/") - 1) == 0)
    {
        return 0;
    }

    return 1;
}


/*
 * The scanner reads the body as it arrives and does not decompress it: a
 * compressed body would be refused as "not a JSON object".  The client is
 * told what is wrong instead, before the body is read.  Every
 * Content-Encoding header counts (several make a list of codings); only
 * "identity" leaves the body as it is.
 */

static ngx_int_t
ngx_http_mcig_body_encoded(ngx_http_request_t *r, ngx_http_mcig_ctx_t *ctx)
{
    ngx_str_t        *repeats, value;
    ngx_uint_t        i;
    ngx_table_elt_t  *h;
    ngx_list_part_t  *part;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return 0;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash == 0 || h[i].value.len == 0
            || h[i].key.len != sizeof("content-encoding") - 1
            || ngx_strncmp(h[i].lowcase_key, "content-encoding",
                           sizeof("content-encoding") - 1) != 0)
        {
            continue;
        }

        if (h[i].value.len == sizeof("identity") - 1
            && ngx_strncasecmp(h[i].value.data, (u_char *) "identity",
                               sizeof("identity") - 1) == 0)
        {
            continue;
        }

        break;
    }

    value = h[i].value;

    if (value.len > NGX_HTTP_MCIG_SHOWN_MAX) {
        value.len = NGX_HTTP_MCIG_SHOWN_MAX;
    }

    repeats = ngx_http_mcig_log_limited(&ngx_http_mcig_body_log_limit);

    if (repeats) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "mcig: rejected request body: Content-Encoding "
                      "\"%V\", not read%V", &value, repeats);
    }

    ngx_http_mcig_set_error(r, ctx, NGX_HTTP_MCIG_ERR_ENCODING,
                            "unsupported_content_encoding",
                            "the request body is %V-encoded; send it "
                            "uncompressed (Content-Encoding: identity)",
                            &value);

    return 1;
}


ngx_http_mcig_ctx_t *
ngx_http_mcig_get_ctx(ngx_http_request_t *r)
{
    return ngx_http_get_module_ctx(r, ngx_http_mcig_module);
}


ngx_http_mcig_ctx_t *
ngx_http_mcig_create_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t   *cln;
    ngx_http_mcig_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_mcig_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_mcig_cleanup;
    cln->data = ctx;

    ctx->request = r;
    ctx->phase_status = NGX_DECLINED;

    if (ngx_http_mcig_take_headers(r, ctx) != NGX_OK) {
        return NULL;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_mcig_module);

    return ctx;
}


static void
ngx_http_mcig_cleanup(void *data)
{
    ngx_http_mcig_ctx_t  *ctx = data;

    if (ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }
}


/* the gateway's own header that h is, or NULL */

static ngx_str_t *
ngx_http_mcig_gateway_header(ngx_table_elt_t *h, ngx_http_mcig_ctx_t *ctx)
{
    static ngx_str_t  names[] = {
        ngx_string(NGX_HTTP_MCIG_OBJECTIVE_HEADER),
        ngx_string(NGX_HTTP_MCIG_FAIRNESS_HEADER),
        ngx_string(NGX_HTTP_MCIG_REWRITE_HEADER)
    };

    ngx_uint_t  i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (h->key.len == names[i].len
            && ngx_strncmp(h->lowcase_key, names[i].data, names[i].len) == 0)
        {
            return (i == 0) ? &ctx->objective_header
                   : (i == 1) ? &ctx->fairness_id : &ctx->rewrite_header;
        }
    }

    return NULL;
}


/*
 * The objective, fairness and rewrite headers are meant for the gateway,
 * as the EPP strips them: they are taken out of the request's header list.
 * The list is rebuilt rather than edited in place, because r->headers_in
 * keeps pointers to list elements (Host, Content-Length, ...) that must
 * stay valid.  The first of each counts.
 */

static ngx_int_t
ngx_http_mcig_take_headers(ngx_http_request_t *r, ngx_http_mcig_ctx_t *ctx)
{
    ngx_str_t        *value;
    ngx_uint_t        i, n, taken;
    ngx_list_t        headers;
    ngx_table_elt_t  *h, *copy;
    ngx_list_part_t  *part;

    n = 0;
    taken = 0;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        n++;

        value = ngx_http_mcig_gateway_header(&h[i], ctx);

        if (value) {
            if (value->len == 0) {
                *value = h[i].value;
            }

            taken++;
        }
    }

    if (taken == 0) {
        return NGX_OK;
    }

    if (ngx_list_init(&headers, r->pool, n - taken + 1,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (ngx_http_mcig_gateway_header(&h[i], ctx)) {
            continue;
        }

        copy = ngx_list_push(&headers);
        if (copy == NULL) {
            return NGX_ERROR;
        }

        *copy = h[i];
    }

    r->headers_in.headers = headers;

    return NGX_OK;
}


/*
 * The first non-empty value of a request header, by its lowercase name
 * (nginx's header names are compared case-insensitively); the gateway's
 * own headers, taken out of the list, are read from ctx.  NGX_DECLINED
 * when the request has none.
 */

ngx_int_t
ngx_http_mcig_header_value(ngx_http_request_t *r, ngx_http_mcig_ctx_t *ctx,
    ngx_str_t *name, ngx_str_t *value)
{
    ngx_str_t        *own;
    ngx_uint_t        i;
    ngx_table_elt_t  *h, wanted;
    ngx_list_part_t  *part;

    wanted.key = *name;
    wanted.lowcase_key = name->data;

    own = ngx_http_mcig_gateway_header(&wanted, ctx);

    if (own) {
        *value = *own;
        return own->len ? NGX_OK : NGX_DECLINED;
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash == 0 || h[i].value.len == 0
            || h[i].key.len != name->len
            || ngx_strncmp(h[i].lowcase_key, name->data, name->len) != 0)
        {
            continue;
        }

        *value = h[i].value;
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/*
 * NULL: a line was written less than a second ago, skip this one.  Else
 * the text to append to the line: empty, or how many lines were skipped
 * since the last one.  The text lives until the next call.
 */

ngx_str_t *
ngx_http_mcig_log_limited(ngx_http_mcig_log_limit_t *limit)
{
    static u_char     text[NGX_INT_T_LEN + 64];
    static ngx_str_t  suffix;

    if (limit->started
        && (ngx_msec_int_t) (ngx_current_msec - limit->written) < 1000)
    {
        limit->skipped++;
        return NULL;
    }

    suffix.data = text;
    suffix.len = 0;

    if (limit->skipped) {
        suffix.len = ngx_snprintf(text, sizeof(text),
                                  " (and %ui times since the last line)",
                                  limit->skipped)
                     - text;
    }

    limit->started = 1;
    limit->written = ngx_current_msec;
    limit->skipped = 0;

    return &suffix;
}


void
ngx_http_mcig_set_error(ngx_http_request_t *r, ngx_http_mcig_ctx_t *ctx,
    ngx_http_mcig_error_e error, const char *code, const char *fmt, ...)
{
    u_char   *p, *last;
    va_list   args;

    ctx->error = error;
    ctx->error_code = code;
    ctx->keepalive = r->keepalive;

    p = ngx_pnalloc(r->pool, NGX_MAX_ERROR_STR);
    if (p == NULL) {
        ngx_str_null(&ctx->error_message);
        return;
    }

    va_start(args, fmt);
    last = ngx_vslprintf(p, p + NGX_MAX_ERROR_STR, fmt, args);
    va_end(args);

    ctx->error_message.data = p;
    ctx->error_message.len = last - p;

    /*
     * The response is made by nginx's special response code; skipping
     * error_page keeps the OpenAI-style body, which clients parse.
     */
    r->error_page = 1;
}


static ngx_int_t
ngx_http_mcig_request_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t            *b;
    ngx_chain_t          *cl;
    ngx_http_mcig_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mcig_module);

    if (ctx == NULL || !ctx->scanning) {
        return ngx_http_next_request_body_filter(r, in);
    }

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file || ngx_buf_special(b)) {
            continue;
        }

        if (mcig_body_scan_feed(&ctx->scan, b->pos, b->last - b->pos)
            != MCIG_BODY_AGAIN)
        {
            /* the verdict is known; the rest is read but not scanned */
            ctx->scanning = 0;
            break;
        }
    }

    return ngx_http_next_request_body_filter(r, in);
}


/*
 * Errors of inference requests are produced by nginx's special response
 * code (so that the request body is discarded, keepalive decided, and so
 * on, as for any error); the header and body filters replace nginx's HTML
 * page with the OpenAI-style JSON error, and the status with the one the
 * module chose.
 */

static ngx_int_t
ngx_http_mcig_header_filter(ngx_http_request_t *r)
{
    size_t                       len;
    ngx_uint_t                   status;
    ngx_table_elt_t             *h;
    ngx_http_mcig_ctx_t         *ctx;
    ngx_http_mcig_error_kind_t  *kind;

    if (r != r->main || r->err_status < NGX_HTTP_BAD_REQUEST) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_mcig_module);

    if (ctx == NULL) {
        /*
         * nginx refuses some requests before the precontent phase, e.g.
         * a Content-Length over client_max_body_size
         */
        if (!ngx_http_mcig_is_inference(r)) {
            return ngx_http_next_header_filter(r);
        }

        ctx = ngx_http_mcig_create_ctx(r);
        if (ctx == NULL) {
            return NGX_ERROR;
        }
    }

    if (ctx->error == NGX_HTTP_MCIG_ERR_NONE) {
        ngx_http_mcig_nginx_error(r, ctx, r->err_status);
    }

    kind = &ngx_http_mcig_error_kinds[ctx->error];
    status = kind->status ? kind->status : (ngx_uint_t) r->err_status;

    if (kind->status && ctx->error != NGX_HTTP_MCIG_ERR_ENCODING) {
        /*
         * nginx closes the connection after a 400 or a 500, the status
         * admission goes through; the module's refusals come after the
         * whole body was read, so the connection can be kept.  A body
         * refused before it is read is discarded by nginx, which knows
         * whether the connection can be kept (nginx keeps it after a 415).
         */
        r->keepalive = ctx->keepalive;
    }

    r->err_status = status;
    r->headers_out.status = status;
    r->headers_out.status_line.len = 0;

    len = mcig_error_json_len((char *) ctx->error_message.data,
                              ctx->error_message.len, kind->type,
                              ctx->error_code);

    ctx->error_body.data = ngx_pnalloc(r->pool, len);
    if (ctx->error_body.data == NULL) {
        return NGX_ERROR;
    }

    ctx->error_body.len = mcig_error_json((char *) ctx->error_body.data,
                                          (char *) ctx->error_message.data,
                                          ctx->error_message.len, kind->type,
                                          ctx->error_code);

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.charset.len = 0;
    r->headers_out.content_length_n = ctx->error_body.len;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    if (kind->retry_after) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
#if (nginx_version >= 1023000)
        h->next = NULL;
#endif
        ngx_str_set(&h->key, "Retry-After");
        h->value.data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
        if (h->value.data == NULL) {
            return NGX_ERROR;
        }

        h->value.len = ngx_sprintf(h->value.data, "%ui", kind->retry_after)
                       - h->value.data;
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_mcig_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t            *b;
    ngx_chain_t           out;
    ngx_http_mcig_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mcig_module);

    if (ctx == NULL || ctx->error_body.len == 0 || r != r->main) {
        return ngx_http_next_body_filter(r, in);
    }

    if (ctx->body_sent || in == NULL) {
        /* the rest of nginx's own page */
        return (in == NULL) ? ngx_http_next_body_filter(r, in) : NGX_OK;
    }

    ctx->body_sent = 1;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = ctx->error_body.data;
    b->last = ctx->error_body.data + ctx->error_body.len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}


static void
ngx_http_mcig_nginx_error(ngx_http_request_t *r, ngx_http_mcig_ctx_t *ctx,
    ngx_uint_t status)
{
    ngx_str_t    name;
    const char  *code, *text;

    switch (status) {

    case NGX_HTTP_BAD_REQUEST:
        code = "bad_request";
        text = "the request is malformed";
        break;

    case NGX_HTTP_REQUEST_TIME_OUT:
        code = "request_timeout";
        text = "the request was not received in time";
        break;

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        code = "body_too_large";
        text = "the request body is larger than client_max_body_size";
        break;

    case NGX_HTTP_BAD_GATEWAY:
        if (ngx_http_mcig_unknown_pool(r, &name)) {
            ngx_http_mcig_set_error(r, ctx, NGX_HTTP_MCIG_ERR_NGINX_SERVER,
                                    "pool_not_found",
                                    "no pool named \"%V\" is defined for "
                                    "this request", &name);
            return;
        }

        code = "model_server_error";
        text = "the model server failed or could not be reached";
        break;

    case NGX_HTTP_GATEWAY_TIME_OUT:
        code = "model_server_timeout";
        text = "the model server did not answer in time";
        break;

    default:
        code = (status < NGX_HTTP_INTERNAL_SERVER_ERROR) ? "request_error"
                                                          : "server_error";
        text = "the gateway could not serve the request";
        break;
    }

    ngx_http_mcig_set_error(r, ctx,
                            (status < NGX_HTTP_INTERNAL_SERVER_ERROR)
                            ? NGX_HTTP_MCIG_ERR_NGINX_CLIENT
                            : NGX_HTTP_MCIG_ERR_NGINX_SERVER,
                            code, "%s (status %ui)", text, status);
}


/*
 * A proxy_pass with variables whose value is no upstream's name has nginx
 * look the name up in DNS; without a resolver it gives up at once with a
 * 502 ("no resolver defined to resolve ..."), before any server was
 * picked.  That is a pool missing from the configuration (a map's default,
 * a typo), not a model server failing, and the answer names it.  With a
 * resolver the name may well be a DNS one: nginx's 502 stays.
 */

static ngx_int_t
ngx_http_mcig_unknown_pool(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_http_upstream_t       *u;
    ngx_http_core_loc_conf_t  *clcf;

    u = r->upstream;

    /* no upstream block found, no address parsed, no server picked */
    if (u == NULL || u->resolved == NULL || u->resolved->host.len == 0
        || u->resolved->sockaddr || u->upstream || u->peer.name)
    {
        return 0;
    }

    /* nginx gives every location a resolver, without servers by default */
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (clcf->resolver && clcf->resolver->connections.nelts) {
        return 0;
    }

    *name = u->resolved->host;

    if (name->len > NGX_HTTP_MCIG_SHOWN_MAX) {
        name->len = NGX_HTTP_MCIG_SHOWN_MAX;
    }

    return 1;
}


static ngx_int_t
ngx_http_mcig_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    u_char               *p;
    ngx_str_t             s;
    ngx_http_mcig_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_mcig_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_str_null(&s);

    switch (data) {

    case NGX_HTTP_MCIG_VAR_MODEL:
        s = ctx->model;
        break;

    case NGX_HTTP_MCIG_VAR_TARGET_MODEL:
        s = ctx->target_model;
        break;

    case NGX_HTTP_MCIG_VAR_OBJECTIVE:
        s = ctx->objective;
        break;

    case NGX_HTTP_MCIG_VAR_PRIORITY:
        p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        s.data = p;
        s.len = ngx_sprintf(p, "%i", ctx->priority) - p;
        break;

    case NGX_HTTP_MCIG_VAR_POOL:
        if (ctx->pool) {
            s = ctx->pool->upstream->host;
        }

        break;

    case NGX_HTTP_MCIG_VAR_ENDPOINT:
        if (ctx->member) {
            s = ctx->member->name;
        }

        break;

    case NGX_HTTP_MCIG_VAR_REGION:
        if (ctx->member && ctx->pool && ctx->pool->regions) {
            s = ((ngx_str_t *) ctx->pool->regions->elts)[ctx->member->region];
        }

        break;

    case NGX_HTTP_MCIG_VAR_CLUSTER:
        if (ctx->member) {
            s = ctx->member->cluster;
        }

        break;

    case NGX_HTTP_MCIG_VAR_DECISION:
        if (ctx->pool) {
            switch (ctx->decision) {
            case MCIG_REGION_LOCAL: ngx_str_set(&s, "local"); break;
            case MCIG_REGION_SPILLOVER: ngx_str_set(&s, "spillover"); break;
            case MCIG_REGION_FAILOVER: ngx_str_set(&s, "failover"); break;
            default: break;
            }
        }

        break;

    case NGX_HTTP_MCIG_VAR_SESSION_AFFINITY:
        switch (ctx->session_affinity) {
        case NGX_HTTP_MCIG_SESSION_KEPT: ngx_str_set(&s, "kept"); break;
        case NGX_HTTP_MCIG_SESSION_MOVED: ngx_str_set(&s, "moved"); break;
        default: break;
        }

        break;

    case NGX_HTTP_MCIG_VAR_ERROR:
        if (ctx->error_code) {
            s.data = (u_char *) ctx->error_code;
            s.len = ngx_strlen(ctx->error_code);
        }

        break;
    }

    v->data = s.data;
    v->len = s.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_mcig_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_mcig_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static void *
ngx_http_mcig_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_mcig_main_conf_t  *mmcf;

    mmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_mcig_main_conf_t));
    if (mmcf == NULL) {
        return NULL;
    }

    mmcf->proxy_index = NGX_CONF_UNSET_UINT;

    return mmcf;
}


static void *
ngx_http_mcig_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_mcig_loc_conf_t  *mlcf;

    mlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_mcig_loc_conf_t));
    if (mlcf == NULL) {
        return NULL;
    }

    mlcf->enable = NGX_CONF_UNSET;

    return mlcf;
}


static char *
ngx_http_mcig_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_mcig_loc_conf_t  *prev = parent;
    ngx_http_mcig_loc_conf_t  *conf = child;

    /* left unset, "auto": on where proxy_pass names an mcig pool */
    if (conf->enable == NGX_CONF_UNSET) {
        conf->enable = prev->enable;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_mcig_init(ngx_conf_t *cf)
{
    ngx_uint_t                  i;
    ngx_http_handler_pt        *h;
    ngx_http_mcig_main_conf_t  *mmcf;
    ngx_http_core_main_conf_t  *cmcf;

    mmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_mcig_module);

    for (i = 0; cf->cycle->modules[i]; i++) {
        if (ngx_strcmp(cf->cycle->modules[i]->name, "ngx_http_proxy_module")
            == 0)
        {
            mmcf->proxy_index = cf->cycle->modules[i]->ctx_index;
            break;
        }
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_mcig_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_mcig_log_handler;

    ngx_http_next_request_body_filter = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_http_mcig_request_body_filter;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_mcig_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_mcig_body_filter;

    return NGX_OK;
}
