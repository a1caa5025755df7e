
/*
 * Copyright (C) ngx_mcig_module authors
 *
 * The balancer side of ngx_mcig_module: "mcig_pool" turns an upstream into
 * an inference pool.  In-flight counts of its members live in a shared
 * zone, so that every worker balances on the same figures; admission
 * (shedding, no member available) and the pool's request deadline are
 * decided here, where the pool of a request is known for certain.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_mcig_module.h"
#include "mcig_json.h"


#define NGX_HTTP_MCIG_DEFAULT_ZONE_SIZE  (1024 * 1024)

/* how often each worker looks for exited workers' in-flight counts */
#define NGX_HTTP_MCIG_REPAIR_INTERVAL    1000

/* how often the home region's share of requests is learnt, in ms */
#define NGX_HTTP_MCIG_KEEP_PERIOD        500


typedef struct {
    ngx_shm_zone_t                     *shm_zone;
    ngx_array_t                         pools;   /* srv_conf_t * */
    ngx_array_t                        *regions; /* ngx_str_t, local first */
    mcig_region_params_t                region_params;
    ngx_http_mcig_manifests_t           manifests;
} ngx_http_upstream_mcig_main_conf_t;


typedef struct {
    /* the round robin data goes first: round robin casts peer.data to it */
    ngx_http_upstream_rr_peer_data_t    rrp;

    ngx_http_upstream_mcig_srv_conf_t  *pool;
    ngx_http_mcig_ctx_t                *ctx;
    ngx_http_mcig_member_t             *member;   /* held, NULL if none */
} ngx_http_upstream_mcig_peer_data_t;


typedef struct {
    ngx_http_mcig_shctx_t              *sh;
    ngx_slab_pool_t                    *shpool;
    ngx_http_upstream_mcig_main_conf_t *mcf;
} ngx_http_upstream_mcig_zone_t;


static ngx_int_t ngx_http_upstream_init_mcig(ngx_conf_t *cf,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_upstream_mcig_pool_keys(ngx_conf_t *cf,
    ngx_http_upstream_mcig_srv_conf_t *pool);
static ngx_int_t ngx_http_upstream_init_mcig_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_upstream_admit_mcig_peer(ngx_http_request_t *r,
    ngx_http_upstream_mcig_peer_data_t *pd);
static ngx_int_t ngx_http_upstream_get_mcig_peer(ngx_peer_connection_t *pc,
    void *data);
static void ngx_http_upstream_free_mcig_peer(ngx_peer_connection_t *pc,
    void *data, ngx_uint_t state);
typedef struct {
    uint32_t                            total[MCIG_REGIONS_MAX];
    uint32_t                            healthy[MCIG_REGIONS_MAX];
    uint64_t                            util[MCIG_REGIONS_MAX];  /* ppm */
    uint32_t                            room[MCIG_REGIONS_MAX];
} ngx_http_upstream_mcig_regions_t;

static void ngx_http_upstream_offer_mcig_peers(
    ngx_http_upstream_mcig_peer_data_t *pd, mcig_pick_t *pick,
    ngx_uint_t skip_tried, ngx_int_t region,
    ngx_http_upstream_mcig_regions_t *agg, mcig_session_t *session);
static ngx_uint_t ngx_http_upstream_mcig_usable(
    ngx_http_upstream_mcig_peer_data_t *pd, ngx_http_upstream_rr_peer_t *peer,
    ngx_uint_t i, time_t now, ngx_uint_t skip_tried);
static void ngx_http_upstream_mcig_choose_region(ngx_http_request_t *r,
    ngx_http_upstream_mcig_peer_data_t *pd,
    ngx_http_upstream_mcig_regions_t *agg);
static void ngx_http_upstream_mcig_learn_keep(ngx_http_mcig_pool_node_t *node,
    mcig_region_load_t *load, ngx_uint_t n, uint64_t now);
static ngx_int_t ngx_http_upstream_mcig_break_tie(
    ngx_http_upstream_mcig_peer_data_t *pd, ngx_uint_t ntied);
static ngx_http_upstream_rr_peer_t *ngx_http_upstream_mcig_nth_peer(
    ngx_http_upstream_rr_peers_t *peers, ngx_int_t n);
static void ngx_http_upstream_mcig_deadline_handler(ngx_event_t *ev);
static void ngx_http_upstream_mcig_end_stream(ngx_http_request_t *r,
    ngx_http_mcig_ctx_t *ctx);

static ngx_int_t ngx_http_upstream_mcig_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_str_node_t *ngx_http_upstream_mcig_node(
    ngx_http_upstream_mcig_zone_t *zone, ngx_str_t *key, size_t size);
static ngx_int_t ngx_http_upstream_mcig_bind_members(
    ngx_http_upstream_mcig_zone_t *zone, ngx_log_t *log);
static ngx_uint_t ngx_http_upstream_mcig_pid_exited(ngx_pid_t pid);
static void ngx_http_upstream_mcig_release_slot(
    ngx_http_upstream_mcig_zone_t *zone, ngx_uint_t slot, ngx_log_t *log);
static void ngx_http_upstream_mcig_repair_handler(ngx_event_t *ev);
static void ngx_http_upstream_mcig_repair(ngx_log_t *log);
static void ngx_http_upstream_mcig_collect(ngx_log_t *log);

static char *ngx_http_upstream_mcig_pool(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void ngx_http_upstream_mcig_outlier(
    ngx_http_upstream_mcig_peer_data_t *pd, ngx_uint_t failed);
static char *ngx_http_upstream_mcig_outlier_detection(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_upstream_mcig_max_in_flight(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_upstream_mcig_metrics(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_upstream_mcig_balancing_mode(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_upstream_mcig_health_check(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_uint_t ngx_http_upstream_mcig_arg(ngx_str_t *arg, char *name,
    ngx_str_t *value);
static ngx_int_t ngx_http_upstream_mcig_percent(ngx_str_t *value);
static ngx_int_t ngx_http_upstream_mcig_probe_param(ngx_str_t *arg,
    ngx_uint_t *port, ngx_str_t *path, ngx_msec_t *interval,
    ngx_msec_t *timeout);
static ngx_int_t ngx_http_upstream_mcig_read_token(ngx_conf_t *cf,
    ngx_http_upstream_mcig_srv_conf_t *pool);
static ngx_int_t ngx_http_upstream_mcig_metrics_query(ngx_conf_t *cf,
    ngx_http_upstream_mcig_srv_conf_t *pool);
static ngx_int_t ngx_http_upstream_mcig_member_url(ngx_conf_t *cf,
    ngx_http_upstream_mcig_srv_conf_t *pool, ngx_http_upstream_rr_peer_t *peer,
    ngx_uint_t https, ngx_uint_t port, ngx_str_t *path, ngx_str_t *url);
static char *ngx_http_upstream_mcig_objective(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_upstream_mcig_add_zone(ngx_conf_t *cf,
    ngx_http_upstream_mcig_main_conf_t *mcf, ngx_str_t *name, size_t size);
static char *ngx_http_upstream_mcig_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_upstream_mcig_regions(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_upstream_mcig_manifests(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_upstream_mcig_scorers(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_upstream_mcig_prefix_zone(ngx_conf_t *cf,
    ngx_http_upstream_mcig_srv_conf_t *pool);
static ngx_int_t ngx_http_upstream_mcig_init_prefix_zone(
    ngx_shm_zone_t *shm_zone, void *data);
static ngx_int_t ngx_http_upstream_score_mcig_peers(
    ngx_http_upstream_mcig_peer_data_t *pd, ngx_int_t region,
    mcig_session_t *session, ngx_uint_t *ntied);
static void ngx_http_upstream_mcig_credit(
    ngx_http_upstream_mcig_peer_data_t *pd, ngx_uint_t i);
static char *ngx_http_upstream_mcig_session_affinity(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_upstream_mcig_region(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_upstream_mcig_member_region(ngx_conf_t *cf,
    ngx_http_upstream_mcig_srv_conf_t *pool, ngx_http_mcig_member_t *m,
    ngx_http_upstream_rr_peer_t *peer);
static void *ngx_http_upstream_mcig_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_upstream_mcig_init_main_conf(ngx_conf_t *cf,
    void *conf);
static void *ngx_http_upstream_mcig_create_srv_conf(ngx_conf_t *cf);
static ngx_int_t ngx_http_upstream_mcig_init_process(ngx_cycle_t *cycle);
static void ngx_http_upstream_mcig_exit_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_http_upstream_mcig_commands[] = {

    { ngx_string("mcig_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_upstream_mcig_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mcig_manifests"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_upstream_mcig_manifests,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mcig_regions"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_upstream_mcig_regions,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mcig_region"),
      NGX_HTTP_UPS_CONF|NGX_CONF_2MORE,
      ngx_http_upstream_mcig_region,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mcig_pool"),
      NGX_HTTP_UPS_CONF|NGX_CONF_NOARGS,
      ngx_http_upstream_mcig_pool,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mcig_outlier_detection"),
      NGX_HTTP_UPS_CONF|NGX_CONF_1MORE,
      ngx_http_upstream_mcig_outlier_detection,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mcig_max_in_flight"),
      NGX_HTTP_UPS_CONF|NGX_CONF_TAKE1,
      ngx_http_upstream_mcig_max_in_flight,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mcig_request_timeout"),
      NGX_HTTP_UPS_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_upstream_mcig_srv_conf_t, request_timeout),
      NULL },

    { ngx_string("mcig_metrics"),
      NGX_HTTP_UPS_CONF|NGX_CONF_ANY,
      ngx_http_upstream_mcig_metrics,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mcig_health_check"),
      NGX_HTTP_UPS_CONF|NGX_CONF_ANY,
      ngx_http_upstream_mcig_health_check,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mcig_balancing_mode"),
      NGX_HTTP_UPS_CONF|NGX_CONF_1MORE,
      ngx_http_upstream_mcig_balancing_mode,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mcig_scorers"),
      NGX_HTTP_UPS_CONF|NGX_CONF_ANY,
      ngx_http_upstream_mcig_scorers,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mcig_session_affinity"),
      NGX_HTTP_UPS_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_upstream_mcig_session_affinity,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("mcig_objective"),
      NGX_HTTP_UPS_CONF|NGX_CONF_TAKE12,
      ngx_http_upstream_mcig_objective,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_upstream_mcig_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_upstream_mcig_create_main_conf, /* create main configuration */
    ngx_http_upstream_mcig_init_main_conf, /* init main configuration */

    ngx_http_upstream_mcig_create_srv_conf, /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_upstream_mcig_module = {
    NGX_MODULE_V1,
    &ngx_http_upstream_mcig_module_ctx,    /* module context */
    ngx_http_upstream_mcig_commands,       /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_upstream_mcig_init_process,   /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_upstream_mcig_exit_process,   /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* per worker process */
static ngx_http_upstream_mcig_zone_t  *ngx_http_mcig_zone;
static ngx_int_t                       ngx_http_mcig_slot = -1;
static mcig_rng_t                      ngx_http_mcig_rng;
static ngx_event_t                     ngx_http_mcig_repair_event;
static ngx_connection_t                ngx_http_mcig_repair_conn;


static ngx_int_t
ngx_http_upstream_init_mcig(ngx_conf_t *cf, ngx_http_upstream_srv_conf_t *us)
{
    u_char                              *p;
    ngx_uint_t                           i;
    ngx_http_mcig_member_t              *m;
    ngx_http_upstream_server_t          *server;
    ngx_http_upstream_rr_peer_t         *peer;
    ngx_http_upstream_rr_peers_t        *peers;
    ngx_http_upstream_mcig_srv_conf_t   *pool;
    ngx_http_upstream_mcig_main_conf_t  *mcf;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, cf->log, 0, "init mcig pool");

    pool = ngx_http_conf_upstream_srv_conf(us, ngx_http_upstream_mcig_module);

    mcf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_upstream_mcig_module);

    /* what manifests set, where the upstream block does not */
    if (ngx_http_mcig_manifests_apply(cf, &mcf->manifests, &mcf->pools,
                                      mcf->regions, pool)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    server = us->servers->elts;

    ngx_memmove(&server[pool->placeholder], &server[pool->placeholder + 1],
                (us->servers->nelts - pool->placeholder - 1)
                * sizeof(ngx_http_upstream_server_t));
    us->servers->nelts--;

    if (us->servers->nelts == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "no servers are inside upstream \"%V\" in %s:%ui, "
                      "and no EndpointSlice of mcig_manifests names it",
                      &us->host, us->file_name, us->line);
        return NGX_ERROR;
    }

    /* upstream blocks are not merged: defaults are set here */
    ngx_conf_init_uint_value(pool->max_in_flight, 256);
    ngx_conf_init_msec_value(pool->request_timeout, 30000);
    ngx_conf_init_uint_value(pool->mode, NGX_HTTP_MCIG_IN_FLIGHT);
    ngx_conf_init_uint_value(pool->max_utilization, 80);
    ngx_conf_init_uint_value(pool->max_queue, 5);
    ngx_conf_init_uint_value(pool->outlier_consecutive, 5);
    ngx_conf_init_msec_value(pool->outlier_ejection, 30000);
    ngx_conf_init_msec_value(pool->outlier_max_ejection, 300000);
    ngx_conf_init_uint_value(pool->outlier_max_ejected, 50);

    if (pool->mode == NGX_HTTP_MCIG_CUSTOM_METRICS && pool->metrics == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"mcig_balancing_mode custom_metrics\" needs "
                      "\"mcig_metrics\" in upstream \"%V\" in %s:%ui",
                      &us->host, us->file_name, us->line);
        return NGX_ERROR;
    }

    /*
     * server lines before mcig_pool were parsed with the flags of round
     * robin, which accepts "backup"; a pool has no backup members
     */
    if (us->servers) {
        server = us->servers->elts;

        for (i = 0; i < us->servers->nelts; i++) {
            if (server[i].backup) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "mcig_pool does not support \"backup\" "
                              "servers, in upstream \"%V\" in %s:%ui",
                              &us->host, us->file_name, us->line);
                return NGX_ERROR;
            }
        }
    }

    if (ngx_http_upstream_init_round_robin(cf, us) != NGX_OK) {
        return NGX_ERROR;
    }

    us->peer.init = ngx_http_upstream_init_mcig_peer;

    pool->regions = mcf->regions;
    pool->region_params = mcf->region_params;

    if (pool->region_confs && pool->regions == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "mcig_region in upstream \"%V\" in %s:%ui needs "
                      "\"mcig_regions\" at http level: the gateway's own "
                      "region first, then the others, nearest first",
                      &us->host, us->file_name, us->line);
        return NGX_ERROR;
    }

    if (ngx_http_upstream_mcig_pool_keys(cf, pool) != NGX_OK) {
        return NGX_ERROR;
    }

    peers = us->peer.data;

    pool->nmembers = peers->number;
    pool->members = ngx_pcalloc(cf->pool,
                                peers->number * sizeof(ngx_http_mcig_member_t));
    if (pool->members == NULL) {
        return NGX_ERROR;
    }

    pool->tied = ngx_palloc(cf->pool, peers->number * sizeof(int));
    pool->swrr = ngx_palloc(cf->pool,
                            peers->number * sizeof(mcig_swrr_peer_t));
    if (pool->tied == NULL || pool->swrr == NULL) {
        return NGX_ERROR;
    }

    for (peer = peers->peer, i = 0; peer; peer = peer->next, i++) {
        m = &pool->members[i];

        m->name = peer->name;
        m->capacity = pool->max_in_flight * peer->weight;

        /* by address, not by place: a new server moves few sessions */
        m->session_key = mcig_session_hash(peer->name.data, peer->name.len);

        m->key.len = us->host.len + 1 + peer->name.len;
        m->key.data = ngx_pnalloc(cf->pool, m->key.len);
        if (m->key.data == NULL) {
            return NGX_ERROR;
        }

        p = ngx_cpymem(m->key.data, us->host.data, us->host.len);
        *p++ = ' ';
        ngx_memcpy(p, peer->name.data, peer->name.len);

        if (ngx_http_upstream_mcig_member_region(cf, pool, m, peer)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (pool->metrics
            && ngx_http_upstream_mcig_member_url(cf, pool, peer,
                                                 pool->metrics_https,
                                                 pool->metrics_port,
                                                 &pool->metrics_path,
                                                 &m->metrics_url)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (pool->health
            && ngx_http_upstream_mcig_member_url(cf, pool, peer, 0,
                                                 pool->health_port,
                                                 &pool->health_path,
                                                 &m->health_url)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }


    if (pool->scoring && pool->weights.prefix
        && ngx_http_upstream_mcig_prefix_zone(cf, pool) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the shared-zone keys of a pool and of its objectives */

static ngx_int_t
ngx_http_upstream_mcig_pool_keys(ngx_conf_t *cf,
    ngx_http_upstream_mcig_srv_conf_t *pool)
{
    u_char                     *p;
    ngx_str_t                  *host;
    ngx_uint_t                  i;
    ngx_http_mcig_objective_t  *obj;

    host = &pool->upstream->host;

    /* NUL-terminated, so that key.data + 1 is the pool's name as a string */
    pool->key.len = 1 + host->len;
    pool->key.data = ngx_pnalloc(cf->pool, pool->key.len + 1);
    if (pool->key.data == NULL) {
        return NGX_ERROR;
    }

    pool->key.data[0] = '\x01';
    ngx_memcpy(pool->key.data + 1, host->data, host->len);
    pool->key.data[pool->key.len] = '\0';

    /* requests with no objective or an unknown one */
    pool->default_objective_key.len = 1 + host->len + 1;
    pool->default_objective_key.data = ngx_pnalloc(cf->pool,
                                            pool->default_objective_key.len);
    if (pool->default_objective_key.data == NULL) {
        return NGX_ERROR;
    }

    p = pool->default_objective_key.data;
    *p++ = '\x02';
    p = ngx_cpymem(p, host->data, host->len);
    *p = '\0';

    if (pool->objectives == NULL) {
        return NGX_OK;
    }

    obj = pool->objectives->elts;

    for (i = 0; i < pool->objectives->nelts; i++) {
        obj[i].key.len = 1 + host->len + 1 + obj[i].name.len;
        obj[i].key.data = ngx_pnalloc(cf->pool, obj[i].key.len);
        if (obj[i].key.data == NULL) {
            return NGX_ERROR;
        }

        p = obj[i].key.data;
        *p++ = '\x02';
        p = ngx_cpymem(p, host->data, host->len);
        *p++ = '\0';
        ngx_memcpy(p, obj[i].name.data, obj[i].name.len);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_upstream_init_mcig_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us)
{
    ngx_str_t                            value;
    ngx_http_mcig_ctx_t                 *ctx;
    ngx_http_upstream_mcig_srv_conf_t   *pool;
    ngx_http_upstream_mcig_peer_data_t  *pd;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "init mcig peer");

    pool = ngx_http_conf_upstream_srv_conf(us, ngx_http_upstream_mcig_module);

    pd = ngx_pcalloc(r->pool, sizeof(ngx_http_upstream_mcig_peer_data_t));
    if (pd == NULL) {
        return NGX_ERROR;
    }

    r->upstream->peer.data = &pd->rrp;

    if (ngx_http_upstream_init_round_robin_peer(r, us) != NGX_OK) {
        return NGX_ERROR;
    }

    r->upstream->peer.get = ngx_http_upstream_get_mcig_peer;
    r->upstream->peer.free = ngx_http_upstream_free_mcig_peer;

    /*
     * A request that reached the pool without the precontent handler
     * (mcig off, or a proxy_pass with variables and no "mcig on") has no
     * model, but gets admission, a deadline and JSON errors all the same.
     */
    ctx = ngx_http_mcig_get_ctx(r);

    if (ctx == NULL) {
        ctx = ngx_http_mcig_create_ctx(r);
        if (ctx == NULL) {
            return NGX_ERROR;
        }
    }

    pd->pool = pool;
    pd->ctx = ctx;

    ctx->pool = pool;
    ngx_http_upstream_mcig_resolve_objective(ctx, pool);

    (void) ngx_atomic_fetch_add(&ctx->objective_node->requests, 1);

    /* a request without the header, or with an empty one, has no session */
    ctx->has_session = 0;
    ctx->session_affinity = NGX_HTTP_MCIG_SESSION_NONE;

    if (pool->session_header.len
        && ngx_http_mcig_header_value(r, ctx, &pool->session_header, &value)
           == NGX_OK)
    {
        ctx->session = mcig_session_hash(value.data, value.len);
        ctx->has_session = 1;
    }

    if (ngx_http_upstream_admit_mcig_peer(r, pd) != NGX_OK) {
        return NGX_ERROR;
    }

    if (pool->request_timeout && !ctx->deadline.timer_set) {
        ctx->deadline.handler = ngx_http_upstream_mcig_deadline_handler;
        ctx->deadline.data = ctx;
        ctx->deadline.log = r->connection->log;

        ngx_add_timer(&ctx->deadline, pool->request_timeout);
    }

    return NGX_OK;
}


void
ngx_http_upstream_mcig_resolve_objective(ngx_http_mcig_ctx_t *ctx,
    ngx_http_upstream_mcig_srv_conf_t *pool)
{
    ngx_uint_t                  i;
    ngx_http_mcig_objective_t  *obj;

    /* as the EPP: no header or an unknown objective means priority 0 */
    ngx_str_null(&ctx->objective);
    ctx->priority = 0;
    ctx->objective_node = pool->default_objective;

    if (ctx->objective_header.len == 0 || pool->objectives == NULL) {
        return;
    }

    obj = pool->objectives->elts;

    for (i = 0; i < pool->objectives->nelts; i++) {
        if (obj[i].name.len == ctx->objective_header.len
            && ngx_strncmp(obj[i].name.data, ctx->objective_header.data,
                           obj[i].name.len) == 0)
        {
            ctx->objective = obj[i].name;
            ctx->priority = obj[i].priority;
            ctx->objective_node = obj[i].node;
            return;
        }
    }
}


/*
 * Admission: a request that no member can take gets 503; a sheddable one
 * (priority < 0) gets 429 when every available member is at capacity.
 * Returning an error from peer.init makes nginx answer 500, which the
 * header filter of ngx_http_mcig_module turns into the chosen status.
 */

static ngx_int_t
ngx_http_upstream_admit_mcig_peer(ngx_http_request_t *r,
    ngx_http_upstream_mcig_peer_data_t *pd)
{
    ngx_str_t                         *repeats;
    mcig_pick_t                        pick;
    ngx_http_mcig_ctx_t               *ctx;
    ngx_http_upstream_rr_peers_t      *peers;
    ngx_http_upstream_mcig_regions_t   agg;

    ctx = pd->ctx;
    peers = pd->rrp.peers;

    ngx_memzero(&agg, sizeof(ngx_http_upstream_mcig_regions_t));

    ngx_http_upstream_rr_peers_rlock(peers);

    mcig_pick_start(&pick, &ngx_http_mcig_rng);
    ngx_http_upstream_offer_mcig_peers(pd, &pick, 0, -1, &agg, NULL);

    ngx_http_upstream_rr_peers_unlock(peers);

    ngx_http_upstream_mcig_choose_region(r, pd, &agg);

    if (pick.best < 0) {
        repeats = ngx_http_mcig_log_limited(
                         &pd->pool->log_limit[NGX_HTTP_MCIG_LOG_NO_MEMBER]);

        if (repeats) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "mcig: no member of pool \"%V\" can take "
                          "requests: all are down, failed or unhealthy%V",
                          &pd->pool->upstream->host, repeats);
        }

        (void) ngx_atomic_fetch_add(&pd->pool->node->no_member, 1);

        ngx_http_mcig_set_error(r, ctx, NGX_HTTP_MCIG_ERR_NO_MEMBER,
                                "no_member_available",
                                "no member of pool \"%V\" is available",
                                &pd->pool->upstream->host);
        return NGX_ERROR;
    }

    if (ctx->priority < 0 && mcig_pick_saturated(&pick)) {
        repeats = ngx_http_mcig_log_limited(
                              &pd->pool->log_limit[NGX_HTTP_MCIG_LOG_SHED]);

        if (repeats) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "mcig: pool \"%V\" is saturated, shed a request "
                          "of priority %i%V", &pd->pool->upstream->host,
                          ctx->priority, repeats);
        }

        (void) ngx_atomic_fetch_add(&pd->pool->node->saturated, 1);
        (void) ngx_atomic_fetch_add(&ctx->objective_node->shed, 1);

        ngx_http_mcig_set_error(r, ctx, NGX_HTTP_MCIG_ERR_SATURATED,
                                "pool_saturated",
                                "pool \"%V\" is saturated, sheddable request "
                                "dropped", &pd->pool->upstream->host);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The region of a request: local first, spilling over past the target
 * utilization in proportion, failing over from drained or empty regions
 * (mcig_region.c).  A pool without regions is all local.
 */

static void
ngx_http_upstream_mcig_choose_region(ngx_http_request_t *r,
    ngx_http_upstream_mcig_peer_data_t *pd,
    ngx_http_upstream_mcig_regions_t *agg)
{
    int                                  chosen;
    uint64_t                             now;
    ngx_uint_t                           i, n;
    ngx_time_t                          *tp;
    mcig_region_kind_e                   kind;
    mcig_region_load_t                   load[MCIG_REGIONS_MAX];
    ngx_http_mcig_pool_node_t           *node;
    ngx_http_upstream_mcig_srv_conf_t   *pool;

    pool = pd->pool;
    node = pool->node;

    if (pool->regions == NULL) {
        pd->ctx->region = -1;
        pd->ctx->decision = MCIG_REGION_LOCAL;
        (void) ngx_atomic_fetch_add(&node->decisions[MCIG_REGION_LOCAL], 1);
        return;
    }

    tp = ngx_timeofday();
    now = (uint64_t) tp->sec * 1000 + tp->msec;
    n = pool->regions->nelts;

    for (i = 0; i < n; i++) {
        load[i].healthy = agg->healthy[i];
        load[i].util_ppm = agg->healthy[i]
                           ? (uint32_t) ngx_min(agg->util[i] / agg->healthy[i],
                                                0xffffffffULL)
                           : 0;
        /* a request that waited for room goes where there is some */
        load[i].full = pd->ctx->queued && agg->room[i] == 0;
        load[i].keep_ppm = 0;
        load[i].drained = mcig_region_update(&node->region_state[i],
                                             agg->healthy[i], agg->total[i],
                                             now, &pool->region_params);
    }

    ngx_http_upstream_mcig_learn_keep(node, load, n, now);

    chosen = mcig_region_choose(load, (int) n, &ngx_http_mcig_rng, &kind);

    pd->ctx->region = chosen;
    pd->ctx->decision = kind;

    (void) ngx_atomic_fetch_add(&node->decisions[kind], 1);

    if (chosen >= 0) {
        (void) ngx_atomic_fetch_add(&node->region_requests[chosen], 1);
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "mcig region %i, decision %d, local utilization %uD ppm",
                   (ngx_int_t) chosen, (int) kind, load[0].util_ppm);
}


/*
 * The share the home region keeps is learnt from its utilization twice a
 * second: slower than a server's load follows its traffic, so that the
 * share does not overshoot.  A new home region starts from all.
 */

static void
ngx_http_upstream_mcig_learn_keep(ngx_http_mcig_pool_node_t *node,
    mcig_region_load_t *load, ngx_uint_t n, uint64_t now)
{
    int                home;
    ngx_atomic_uint_t  last;

    home = mcig_region_home(load, (int) n);

    if (home < 0) {
        return;
    }

    last = node->region_keep_msec;

    if (node->region_keep_home != (ngx_atomic_uint_t) home + 1) {
        if (ngx_atomic_cmp_set(&node->region_keep_msec, last,
                               (ngx_atomic_uint_t) now))
        {
            node->region_keep_ppm = MCIG_REGION_TARGET_PPM;
            node->region_keep_home = home + 1;
        }

    } else if (now - last >= NGX_HTTP_MCIG_KEEP_PERIOD
               && now > last
               && ngx_atomic_cmp_set(&node->region_keep_msec, last,
                                     (ngx_atomic_uint_t) now))
    {
        node->region_keep_ppm = mcig_region_next_keep(
                                    (uint32_t) node->region_keep_ppm,
                                    load[home].util_ppm);
    }

    load[home].keep_ppm = (uint32_t) node->region_keep_ppm;
}


static ngx_int_t
ngx_http_upstream_get_mcig_peer(ngx_peer_connection_t *pc, void *data)
{
    ngx_http_upstream_mcig_peer_data_t  *pd = data;

    int                            mine;
    ngx_uint_t                     n, ntied;
    uintptr_t                      m;
    mcig_pick_t                    pick;
    mcig_session_t                 session, *sp;
    ngx_http_mcig_member_t        *member;
    ngx_http_upstream_rr_peer_t   *best;
    ngx_http_upstream_rr_peers_t  *peers;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, pc->log, 0,
                   "get mcig peer, try: %ui", pc->tries);

    pc->cached = 0;
    pc->connection = NULL;

    peers = pd->rrp.peers;

    /* the members the pick considers are ranked for the session too */
    sp = pd->ctx->has_session ? &session : NULL;

    ngx_http_upstream_rr_peers_wlock(peers);

    if (pd->pool->scoring) {
        pick.best = ngx_http_upstream_score_mcig_peers(pd, pd->ctx->region,
                                                       sp, &ntied);

        if (pick.best < 0 && pd->ctx->region >= 0) {
            pick.best = ngx_http_upstream_score_mcig_peers(pd, -1, sp,
                                                           &ntied);
        }

    } else {
        mcig_pick_start(&pick, &ngx_http_mcig_rng);
        mcig_pick_collect_ties(&pick, pd->pool->tied, pd->pool->nmembers);
        ngx_http_upstream_offer_mcig_peers(pd, &pick, 1, pd->ctx->region,
                                           NULL, sp);

        if (pick.best < 0 && pd->ctx->region >= 0) {
            /* a retry with nothing left in the chosen region: any region */
            mcig_pick_start(&pick, &ngx_http_mcig_rng);
            mcig_pick_collect_ties(&pick, pd->pool->tied,
                                   pd->pool->nmembers);
            ngx_http_upstream_offer_mcig_peers(pd, &pick, 1, -1, NULL, sp);
        }

        ntied = pick.ntied;
    }

    /*
     * The session's member wins over the load and the scores while it has
     * room; full, the request takes the pick (the load guard).  Members
     * as loaded (or scored) as each other take turns as with nginx's round
     * robin, by weight: an idle pool balances as nginx would.
     */
    mine = sp ? mcig_session_pick(sp) : -1;

    if (mine >= 0) {
        pick.best = mine;

    } else if (ntied > 1) {
        pick.best = ngx_http_upstream_mcig_break_tie(pd, ntied);
    }

    if (pick.best < 0) {
        ngx_http_upstream_rr_peers_unlock(peers);

        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, pc->log, 0,
                       "get mcig peer, no member left");

        ngx_http_mcig_set_error(pd->ctx->request, pd->ctx,
                                NGX_HTTP_MCIG_ERR_NO_MEMBER,
                                "no_member_available",
                                "no member of pool \"%V\" is left to try",
                                &pd->pool->upstream->host);

        pc->name = peers->name;
        return NGX_BUSY;
    }

    if (sp) {
        /* a full member may still be the pick when every member is full */
        pd->ctx->session_affinity = (pick.best == sp->best)
                                    ? NGX_HTTP_MCIG_SESSION_KEPT
                                    : NGX_HTTP_MCIG_SESSION_MOVED;

        (void) ngx_atomic_fetch_add(&pd->pool->node->session_affinity[
                                        pd->ctx->session_affinity - 1], 1);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, pc->log, 0,
                       "get mcig peer, session's member %d, %s", sp->best,
                       (mine >= 0) ? "kept, it has room"
                                   : "the pick, it is full");
    }

    best = ngx_http_upstream_mcig_nth_peer(peers, pick.best);

    if (ngx_time() - best->checked > best->fail_timeout) {
        best->checked = ngx_time();
    }

    pc->sockaddr = best->sockaddr;
    pc->socklen = best->socklen;
    pc->name = &best->name;

    best->conns++;

    pd->rrp.current = best;

#if (nginx_version >= 1027003)
    /* round robin's free drops the reference that its get takes */
    ngx_http_upstream_rr_peer_ref(peers, best);
#endif

    n = pick.best / (8 * sizeof(uintptr_t));
    m = (uintptr_t) 1 << pick.best % (8 * sizeof(uintptr_t));

    pd->rrp.tried[n] |= m;

    ngx_http_upstream_rr_peers_unlock(peers);

    member = &pd->pool->members[pick.best];

    (void) ngx_atomic_fetch_add(&member->node->in_flight, 1);
    (void) ngx_atomic_fetch_add(&member->node->requests, 1);
    (void) ngx_atomic_fetch_add(&member->node->dispatched, 1);

    if (ngx_http_mcig_slot >= 0) {
        member->node->in_flight_by_worker[ngx_http_mcig_slot]++;
    }

    pd->member = member;
    pd->ctx->member = member;

    if (pd->pool->prefix_zone && pd->ctx->nblocks) {
        ngx_http_upstream_mcig_credit(pd, pick.best);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, pc->log, 0,
                   "get mcig peer, picked %V with %uA in flight",
                   &member->name, member->node->in_flight);

    return NGX_OK;
}


static void
ngx_http_upstream_free_mcig_peer(ngx_peer_connection_t *pc, void *data,
    ngx_uint_t state)
{
    ngx_http_upstream_mcig_peer_data_t  *pd = data;

    ngx_uint_t                    failed;
    ngx_http_upstream_t          *u;
    ngx_http_mcig_member_node_t  *node;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, pc->log, 0,
                   "free mcig peer %ui", state);

    if (pd->member) {
        node = pd->member->node;

        /*
         * A quick 500 is a failure as much as a refused connection, to
         * outlier detection, whether or not proxy_next_upstream retries it
         */
        u = pd->ctx->request->upstream;
        failed = (state & NGX_PEER_FAILED)
                 || (u && u->headers_in.status_n
                          >= NGX_HTTP_INTERNAL_SERVER_ERROR);

        if (pd->pool->outlier_consecutive) {
            ngx_http_upstream_mcig_outlier(pd, failed);
        }

        (void) ngx_atomic_fetch_add(&node->in_flight, -1);
        (void) ngx_atomic_fetch_add(&node->ended, 1);

        if (ngx_http_mcig_slot >= 0) {
            node->in_flight_by_worker[ngx_http_mcig_slot]--;
        }

        if (state & NGX_PEER_FAILED) {
            (void) ngx_atomic_fetch_add(&node->failures, 1);

            if (pd->pool->health) {
                ngx_http_mcig_health_event(pd->pool, pd->member, 0,
                                           "requests to it failed");
            }

        } else if (node->health_fails) {
            /* consecutive failures only */
            node->health_fails = 0;
        }

        pd->member = NULL;
    }

    ngx_http_upstream_free_round_robin_peer(pc, &pd->rrp, state);

    /* room for a request waiting in this worker's queue of the pool */
    ngx_http_mcig_queue_wake(pd->pool);

    if (pd->ctx->deadline_expired) {
        /* no retry once the pool's deadline has passed */
        pc->tries = 0;
    }
}


/*
 * Passive outlier detection, as Envoy's consecutive 5xx: a member whose
 * last requests all failed (5xx or no answer) is ejected, for the
 * ejection time times the number of times in a row it was, up to
 * max_ejection, so that a member that fails fast stops drawing the
 * traffic its short requests make room for.  No more than max_ejected of
 * the pool (at least one of two or more) is ejected at a time, and never
 * the last member that is healthy: a pool that fails as a whole is
 * answered by its members, not by 503.  A success resets the count and,
 * once back, the growing time.
 */

static void
ngx_http_upstream_mcig_outlier(ngx_http_upstream_mcig_peer_data_t *pd,
    ngx_uint_t failed)
{
    ngx_msec_t                          ejection;
    ngx_uint_t                          i, ejected, healthy, bound;
    ngx_atomic_uint_t                   n;
    ngx_http_mcig_member_node_t        *node, *other;
    ngx_http_upstream_mcig_srv_conf_t  *pool;

    pool = pd->pool;
    node = pd->member->node;

    if (!failed) {
        if (node->consecutive_failures) {
            node->consecutive_failures = 0;
        }

        if (node->ejection_level
            && (ngx_msec_int_t) (ngx_current_msec - node->ejected_until) > 0)
        {
            node->ejection_level = 0;
        }

        return;
    }

    n = ngx_atomic_fetch_add(&node->consecutive_failures, 1) + 1;

    if (n < pool->outlier_consecutive
        || (ngx_msec_int_t) (node->ejected_until - ngx_current_msec) > 0)
    {
        return;
    }

    ejected = 0;
    healthy = 0;

    for (i = 0; i < pool->nmembers; i++) {
        other = pool->members[i].node;

        if ((ngx_msec_int_t) (other->ejected_until - ngx_current_msec) > 0) {
            ejected++;

        } else if (!other->unhealthy && other != node) {
            healthy++;
        }
    }

    bound = ngx_max(pool->nmembers * pool->outlier_max_ejected / 100, 1);

    if (pool->nmembers < 2 || ejected >= bound || healthy == 0) {
        return;
    }

    node->consecutive_failures = 0;

    ejection = pool->outlier_ejection * (node->ejection_level + 1);
    ejection = ngx_min(ejection, pool->outlier_max_ejection);

    node->ejected_until = ngx_current_msec + ejection;
    node->ejection_level++;
    (void) ngx_atomic_fetch_add(&node->ejections, 1);

    ngx_log_error(NGX_LOG_WARN, pd->ctx->request->connection->log, 0,
                  "mcig: member %V of pool \"%V\" is ejected for %M ms: "
                  "its last %ui requests failed",
                  &pd->member->name, &pool->upstream->host, ejection,
                  (ngx_uint_t) n);
}


/*
 * Offers every member that can take a request to the pick: not marked
 * down, not failed (max_fails within fail_timeout; a pool of one member is
 * never failed, as with round robin), below max_conns, and, for the pick,
 * not tried yet for this request; and to the session's ranking, if given,
 * so that a session's member is one the pick could choose.  The caller
 * holds the peers lock.
 */

static void
ngx_http_upstream_offer_mcig_peers(ngx_http_upstream_mcig_peer_data_t *pd,
    mcig_pick_t *pick, ngx_uint_t skip_tried, ngx_int_t region,
    ngx_http_upstream_mcig_regions_t *agg, mcig_session_t *session)
{
    time_t                         now;
    ngx_http_mcig_load_t           ml;
    ngx_uint_t                     i;
    ngx_http_mcig_member_t        *member;
    ngx_http_upstream_rr_peer_t   *peer;
    ngx_http_upstream_rr_peers_t  *peers;

    now = ngx_time();
    peers = pd->rrp.peers;

    if (session) {
        mcig_session_start(session, pd->ctx->session);
    }

    for (peer = peers->peer, i = 0; peer; peer = peer->next, i++) {

        member = &pd->pool->members[i];

        if (region >= 0 && member->region != (ngx_uint_t) region) {
            continue;
        }

        if (agg) {
            agg->total[member->region]++;
        }

        if (!ngx_http_upstream_mcig_usable(pd, peer, i, now, skip_tried)) {
            continue;
        }

        ngx_http_mcig_member_load(pd->pool, member, &ml);

        mcig_pick_offer(pick, (int) i, ml.load, ml.capacity);

        if (session) {
            mcig_session_offer(session, (int) i, member->session_key,
                               ml.load >= ml.capacity);
        }

        if (agg) {
            agg->healthy[member->region]++;
            agg->util[member->region] += (uint64_t) ml.load * 1000000
                                         / ml.capacity;
            agg->room[member->region] += (ml.load < ml.capacity);
        }
    }
}


/*
 * A member can take a request: not marked down, not unhealthy, not failed
 * (max_fails within fail_timeout; a pool of one member is never failed, as
 * with round robin), below max_conns, and, if asked, not tried yet for
 * this request.  The caller holds the peers lock.
 */

static ngx_uint_t
ngx_http_upstream_mcig_usable(ngx_http_upstream_mcig_peer_data_t *pd,
    ngx_http_upstream_rr_peer_t *peer, ngx_uint_t i, time_t now,
    ngx_uint_t skip_tried)
{
    uintptr_t                      bit;
    ngx_uint_t                     n;
    ngx_http_upstream_rr_peers_t  *peers;

    peers = pd->rrp.peers;

    if (skip_tried) {
        n = i / (8 * sizeof(uintptr_t));
        bit = (uintptr_t) 1 << i % (8 * sizeof(uintptr_t));

        if (pd->rrp.tried[n] & bit) {
            return 0;
        }
    }

    if (peer->down || pd->pool->members[i].node->unhealthy) {
        return 0;
    }

    if ((ngx_msec_int_t) (pd->pool->members[i].node->ejected_until
                          - ngx_current_msec) > 0)
    {
        return 0;
    }

    if (!peers->single
        && peer->max_fails
        && peer->fails >= peer->max_fails
        && now - peer->checked <= peer->fail_timeout)
    {
        return 0;
    }

    if (peer->max_conns && peer->conns >= peer->max_conns) {
        return 0;
    }

    return 1;
}


/*
 * mcig_scorers: the EPP's weighted sum over the region's usable members
 * (mcig_score.c): KV-cache room, queue, prefix-cache and LoRA affinity,
 * in-flight room.  Affinity never picks a full member while another has
 * room.  Returns the member's index, or -1; the candidates are offered to
 * the session's ranking too, if given.  The caller holds the peers lock;
 * the prefix index's lock is taken for the match only.
 */

static ngx_int_t
ngx_http_upstream_score_mcig_peers(ngx_http_upstream_mcig_peer_data_t *pd,
    ngx_int_t region, mcig_session_t *session, ngx_uint_t *ntied)
{
    time_t                              now;
    uint32_t                            nblocks, *counts, waiting_max;
    uint64_t                            adapter;
    ngx_uint_t                          i, n, *index;
    ngx_str_t                          *model;
    ngx_slab_pool_t                    *shpool;
    mcig_score_cand_t                  *c;
    mcig_score_result_t                 res;
    ngx_http_mcig_ctx_t                *ctx;
    ngx_http_mcig_load_t                ml;
    ngx_http_mcig_member_t             *member;
    ngx_http_upstream_rr_peer_t        *peer;
    ngx_http_upstream_mcig_srv_conf_t  *pool;

    pool = pd->pool;
    ctx = pd->ctx;

    if (session) {
        mcig_session_start(session, ctx->session);
    }

    c = ngx_palloc(ctx->request->pool,
                   pool->nmembers * (sizeof(mcig_score_cand_t)
                                     + sizeof(ngx_uint_t)
                                     + sizeof(uint32_t)));
    if (c == NULL) {
        return -1;
    }

    index = (ngx_uint_t *) &c[pool->nmembers];
    counts = (uint32_t *) &index[pool->nmembers];

    /* leading blocks of the prompt each member holds, one lookup a block */
    nblocks = 0;

    if (pool->prefix_zone && ctx->nblocks
        && ctx->hasher->block_size == pool->block_size)
    {
        nblocks = ngx_min(ctx->nblocks, (uint32_t) pool->max_blocks);
        shpool = (ngx_slab_pool_t *) pool->prefix_zone->shm.addr;

        ngx_shmtx_lock(&shpool->mutex);
        (void) mcig_prefix_match_all(shpool->data, ctx->hashes, nblocks,
                                     counts);
        ngx_shmtx_unlock(&shpool->mutex);
    }

    model = ctx->target_model.len ? &ctx->target_model : &ctx->model;
    adapter = mcig_lora_hash(model->data, model->len);

    now = ngx_time();
    n = 0;
    waiting_max = 0;

    for (peer = pd->rrp.peers->peer, i = 0; peer; peer = peer->next, i++) {
        member = &pool->members[i];

        if ((region >= 0 && member->region != (ngx_uint_t) region)
            || !ngx_http_upstream_mcig_usable(pd, peer, i, now, 1))
        {
            continue;
        }

        ngx_http_mcig_member_load(pool, member, &ml);

        c[n].full = (ml.load >= ml.capacity);
        c[n].in_flight = (uint32_t) ngx_max(
                                 (ngx_atomic_int_t) member->node->in_flight, 0);
        c[n].capacity = (uint32_t) member->capacity;
        c[n].prefix_blocks = nblocks ? counts[i] : 0;
        c[n].fresh = 0;
        c[n].kv_ppm = 0;
        c[n].waiting = 0;
        c[n].lora = MCIG_LORA_NONE;

        if (ml.fresh) {
            c[n].kv_ppm = ml.cache_ppm;
            c[n].waiting = ml.waiting;
            c[n].fresh = 1;

            if (pool->weights.lora && model->len) {
                c[n].lora = (uint8_t) ngx_http_mcig_read_lora(member,
                                                              adapter);
            }

            waiting_max = ngx_max(waiting_max, c[n].waiting);

        } else if (ml.stale) {
            /*
             * It stopped answering its scrapes: scored as a full cache
             * with the longest queue, rather than on in-flight counts that
             * make it look empty, for when every member is full and all
             * are scored.
             */
            c[n].kv_ppm = 1000000;
            c[n].fresh = 1;
            c[n].waiting = (uint32_t) -1;
        }

        if (session) {
            mcig_session_offer(session, (int) i, member->session_key,
                               c[n].full);
        }

        index[n++] = i;
    }

    for (i = 0; i < n; i++) {
        if (c[i].waiting == (uint32_t) -1) {
            c[i].waiting = waiting_max;
        }
    }

    *ntied = 0;

    if (mcig_score_pick(&pool->weights, c, n, nblocks, NULL, pool->tied,
                        &res)
        < 0)
    {
        return -1;
    }

    /* the tied, as members, for the caller to break the tie */
    for (i = 0; i < res.ties; i++) {
        pool->tied[i] = (int) index[pool->tied[i]];
    }

    *ntied = res.ties;

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "mcig scored %uD members, best %ui with %uL, %uD ties",
                   res.scored, index[res.best], res.score, res.ties);

    return (ngx_int_t) index[res.best];
}


/* the member is sent the prompt's blocks: they are its most recent */

static void
ngx_http_upstream_mcig_credit(ngx_http_upstream_mcig_peer_data_t *pd,
    ngx_uint_t i)
{
    ngx_slab_pool_t  *shpool;

    if (pd->ctx->hasher->block_size != pd->pool->block_size) {
        return;
    }

    shpool = (ngx_slab_pool_t *) pd->pool->prefix_zone->shm.addr;

    ngx_shmtx_lock(&shpool->mutex);
    mcig_prefix_credit(shpool->data, (uint32_t) i, pd->ctx->hashes,
                       ngx_min(pd->ctx->nblocks,
                               (uint32_t) pd->pool->max_blocks));
    ngx_shmtx_unlock(&shpool->mutex);
}


/*
 * A member's load against its capacity, as the pick compares them: its
 * estimated KV usage against max_utilization when balancing on fresh
 * metrics (a queue over max_queue making it full, over its target in
 * proportion), else its in-flight count against max_in_flight x weight.
 * A member whose metrics are stale while others' are fresh has stopped
 * answering its scrapes, hung or overloaded: it counts as twice its
 * target, so that it is picked last and its region spills, rather than
 * looking empty to in-flight counts until health checks catch up.  In dry
 * run the metrics are scraped and reported, not balanced on.
 *
 * ml->limit is the load requests of priority >= 0 may fill the member to
 * (ngx_http_upstream_mcig_saturated()): the whole cache for a member with
 * fresh metrics and no more than max_queue waiting, else its capacity.
 * With mcig_metrics, when balancing on them or scoring, ml->fresh says
 * whether the member's metrics are, ml->cache_ppm and ml->waiting its
 * cache and queue with the requests sent and ended since the scrape (the
 * scorers' input), and ml->stale that they are not while the pool's are.
 * One read of the metrics serves both.
 */

void
ngx_http_mcig_member_load(ngx_http_upstream_mcig_srv_conf_t *pool,
    ngx_http_mcig_member_t *member, ngx_http_mcig_load_t *ml)
{
    uint32_t                 target, dispatched, ended;
    ngx_uint_t               balanced;
    ngx_atomic_int_t         in_flight;
    ngx_http_mcig_metrics_t  m;

    balanced = (pool->mode == NGX_HTTP_MCIG_CUSTOM_METRICS && !pool->dry_run);

    ml->fresh = 0;
    ml->stale = 0;
    m.waiting = 0;

    /* read only for those that use them: metrics balancing, the scorers */
    if (pool->metrics && (balanced || pool->scoring)) {
        if (ngx_http_mcig_read_metrics(pool, member, &m) == NGX_OK) {
            dispatched = (uint32_t) member->node->dispatched;
            ended = (uint32_t) member->node->ended;

            ml->fresh = 1;
            ml->cache_ppm = mcig_metrics_load_ppm(m.kv_ppm, m.running,
                                                  m.waiting, dispatched,
                                                  ended,
                                                  (uint32_t) member->capacity);
            ml->waiting = mcig_metrics_waiting_now(m.waiting, dispatched,
                                                   ended);

        } else {
            ml->stale = ngx_http_mcig_pool_metrics_fresh(pool) ? 1 : 0;
        }
    }

    if (balanced) {
        target = (uint32_t) pool->max_utilization * 10000;
        ml->capacity = target;

        if (ml->fresh) {
            ml->load = ml->cache_ppm;
            ml->limit = (m.waiting <= pool->max_queue)
                        ? ngx_max(target, 1000000) : target;

            /*
             * A queue past max_queue makes the member full, and as much
             * over its target as the queue is over max_queue: a region of
             * members whose queues grow spills in proportion, like one
             * whose caches do.
             */
            if (m.waiting > pool->max_queue) {
                ml->load = ngx_max(ml->load, (uint32_t) ngx_min(
                               (uint64_t) target * m.waiting
                               / ngx_max(pool->max_queue, 1),
                               0xffffffffULL));
            }

            return;
        }

        if (ml->stale) {
            ml->load = 2 * target;
            ml->limit = target;
            return;
        }
    }

    in_flight = (ngx_atomic_int_t) member->node->in_flight;

    ml->load = (uint32_t) ngx_max(in_flight, 0);
    ml->capacity = (uint32_t) ngx_max(member->capacity, 1);
    ml->limit = ml->capacity;
}


/*
 * Whether a request of this priority has to wait, for flow control before
 * the upstream starts: no member that admission would offer is below the
 * load the request may add to.  A sheddable request may add to members
 * below their target only: past it, admission would shed it.  Other
 * requests may use the headroom above the target: a member with fresh
 * metrics takes them until its cache is estimated full, the requests it
 * holds waiting included, or more than max_queue wait on it; so the queue
 * holds requests while the servers would only queue them, not while
 * their caches still have room.  A pool with no member available does not
 * hold requests: they go on, to get 503 from admission.
 */

ngx_int_t
ngx_http_upstream_mcig_saturated(ngx_http_upstream_mcig_srv_conf_t *pool,
    ngx_int_t priority)
{
    time_t                               now;
    ngx_http_mcig_load_t                 ml;
    ngx_uint_t                           i, offered, room;
    ngx_http_mcig_member_t              *member;
    ngx_http_upstream_rr_peer_t         *peer;
    ngx_http_upstream_rr_peers_t        *peers;
    ngx_http_upstream_mcig_peer_data_t   pd;

    peers = pool->upstream->peer.data;

    ngx_memzero(&pd, sizeof(ngx_http_upstream_mcig_peer_data_t));
    pd.rrp.peers = peers;
    pd.pool = pool;

    now = ngx_time();
    offered = 0;
    room = 0;

    ngx_http_upstream_rr_peers_rlock(peers);

    for (peer = peers->peer, i = 0; peer; peer = peer->next, i++) {

        if (!ngx_http_upstream_mcig_usable(&pd, peer, i, now, 0)) {
            continue;
        }

        offered++;
        member = &pool->members[i];

        ngx_http_mcig_member_load(pool, member, &ml);

        if (ml.load < (priority >= 0 ? ml.limit : ml.capacity)) {
            room = 1;
            break;
        }
    }

    ngx_http_upstream_rr_peers_unlock(peers);

    return offered && !room;
}


/*
 * Smooth weighted round robin among the members pool->tied[0..ntied) (in
 * peer order), on nginx's own current and effective weights of the peers:
 * per worker, or the zone's with "zone".  The caller holds the peers
 * write lock.
 */

static ngx_int_t
ngx_http_upstream_mcig_break_tie(ngx_http_upstream_mcig_peer_data_t *pd,
    ngx_uint_t ntied)
{
    int                           *tied;
    ngx_uint_t                     i, k;
    mcig_swrr_peer_t              *c;
    ngx_http_upstream_rr_peer_t   *peer;

    tied = pd->pool->tied;
    c = pd->pool->swrr;

    for (peer = pd->rrp.peers->peer, i = 0, k = 0;
         peer && k < ntied;
         peer = peer->next, i++)
    {
        if ((ngx_uint_t) tied[k] != i) {
            continue;
        }

        c[k].current = &peer->current_weight;
        c[k].effective = &peer->effective_weight;
        c[k].weight = peer->weight;
        k++;
    }

    i = (ngx_uint_t) mcig_swrr_choose(c, k);

    return (i < k) ? tied[i] : tied[0];
}


static ngx_http_upstream_rr_peer_t *
ngx_http_upstream_mcig_nth_peer(ngx_http_upstream_rr_peers_t *peers,
    ngx_int_t n)
{
    ngx_http_upstream_rr_peer_t  *peer;

    for (peer = peers->peer; n; n--) {
        peer = peer->next;
    }

    return peer;
}


/*
 * The deadline bounds the whole exchange with the pool, retries included.
 * It acts as if the member's connection timed out, so that nginx's own
 * code finalizes the upstream: 504 before the response header, a closed
 * stream after it.
 */

static void
ngx_http_upstream_mcig_deadline_handler(ngx_event_t *ev)
{
    ngx_http_mcig_ctx_t   *ctx = ev->data;

    ngx_str_t             *repeats;
    ngx_connection_t      *c;
    ngx_http_request_t    *r;
    ngx_http_upstream_t   *u;

    r = ctx->request;
    u = r->upstream;

    if (ngx_http_mcig_get_ctx(r) != ctx
        || u == NULL || u->peer.connection == NULL)
    {
        /* the member has answered; sending the answer is nginx's job */
        return;
    }

    ctx->deadline_expired = 1;
    (void) ngx_atomic_fetch_add(&ctx->pool->node->deadline, 1);

    repeats = ngx_http_mcig_log_limited(
                             &ctx->pool->log_limit[NGX_HTTP_MCIG_LOG_DEADLINE]);

    if (repeats) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mcig: request to pool \"%V\" passed its deadline of "
                      "%M ms at member %V%s%V",
                      &ctx->pool->upstream->host, ctx->pool->request_timeout,
                      u->peer.name,
                      r->header_sent ? ", response cut" : "", repeats);
    }

    if (!r->header_sent) {
        ngx_http_mcig_set_error(r, ctx, NGX_HTTP_MCIG_ERR_DEADLINE,
                                "deadline_exceeded",
                                "the request to pool \"%V\" did not complete "
                                "within %M ms", &ctx->pool->upstream->host,
                                ctx->pool->request_timeout);

    } else {
        ngx_http_upstream_mcig_end_stream(r, ctx);
    }

    c = u->peer.connection;
    c->read->timedout = 1;
    c->read->handler(c->read);
}


/*
 * A server-sent event stream cut by the deadline ends with an error event
 * in OpenAI's shape and the response's last chunk, so that a client can
 * tell a cut answer from a finished one (it gets no [DONE]).  The blank
 * line first ends an event the member may have left half written (extra
 * blank lines are no events).  With proxy_buffering on, what nginx still
 * buffers is lost with the cut.  nginx then finalizes the upstream as
 * timed out and closes the connection.
 */

static void
ngx_http_upstream_mcig_end_stream(ngx_http_request_t *r,
    ngx_http_mcig_ctx_t *ctx)
{
    u_char        message[NGX_MAX_ERROR_STR], *last;
    size_t        len;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    static const char  sse[] = "text/event-stream";

    if (r != r->main
        || r->headers_out.content_type.len < sizeof(sse) - 1
        || ngx_strncasecmp(r->headers_out.content_type.data,
                           (u_char *) sse, sizeof(sse) - 1)
           != 0)
    {
        return;
    }

    last = ngx_snprintf(message, sizeof(message),
                        "the request to pool \"%V\" did not complete "
                        "within %M ms; the response was cut",
                        &ctx->pool->upstream->host,
                        ctx->pool->request_timeout);

    len = mcig_error_json_len((char *) message, last - message,
                              "server_error", "deadline_exceeded");

    b = ngx_create_temp_buf(r->pool, sizeof("\n\ndata: \n\n") - 1 + len);
    if (b == NULL) {
        return;
    }

    b->last = ngx_cpymem(b->last, "\n\ndata: ", sizeof("\n\ndata: ") - 1);
    b->last += mcig_error_json((char *) b->last, (char *) message,
                               last - message, "server_error",
                               "deadline_exceeded");
    *b->last++ = '\n';
    *b->last++ = '\n';
    b->last_buf = 1;
    b->flush = 1;

    out.buf = b;
    out.next = NULL;

    if (ngx_http_output_filter(r, &out) == NGX_ERROR) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "mcig: the error event of a stream of pool \"%V\" "
                      "cut by its deadline could not be sent",
                      &ctx->pool->upstream->host);
    }
}


/* the pools, for the status handler */

ngx_array_t *
ngx_http_mcig_pools(ngx_http_request_t *r)
{
    ngx_http_upstream_mcig_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_upstream_mcig_module);

    return mcf->shm_zone ? &mcf->pools : NULL;
}


static ngx_int_t
ngx_http_upstream_mcig_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_upstream_mcig_zone_t  *ozone = data;

    size_t                          len;
    ngx_slab_pool_t                *shpool;
    ngx_http_mcig_shctx_t          *sh;
    ngx_http_upstream_mcig_zone_t  *zone;

    zone = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    zone->shpool = shpool;

    if (ozone) {
        /* a reload with the same zone keeps members' state */
        zone->sh = ozone->sh;
        zone->sh->generation++;
        return ngx_http_upstream_mcig_bind_members(zone, shm_zone->shm.log);
    }

    if (shm_zone->shm.exists) {
        zone->sh = shpool->data;
        zone->sh->generation++;
        return ngx_http_upstream_mcig_bind_members(zone, shm_zone->shm.log);
    }

    sh = ngx_slab_alloc(shpool, sizeof(ngx_http_mcig_shctx_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(sh, sizeof(ngx_http_mcig_shctx_t));

    ngx_rbtree_init(&sh->rbtree, &sh->sentinel, ngx_str_rbtree_insert_value);
    ngx_queue_init(&sh->members);

    zone->sh = sh;
    shpool->data = sh;

    len = sizeof(" in mcig_zone \"\"") + shm_zone->shm.name.len;

    shpool->log_ctx = ngx_slab_alloc(shpool, len);
    if (shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(shpool->log_ctx, " in mcig_zone \"%V\"%Z",
                &shm_zone->shm.name);

    shpool->log_nomem = 0;

    return ngx_http_upstream_mcig_bind_members(zone, shm_zone->shm.log);
}


/*
 * Finds the shared node of a key, or makes one of the given size, which
 * starts with an ngx_str_node_t and ends with room for the key.  Member,
 * pool and objective keys live in one tree: pool keys start with \x01 and
 * objective keys with \x02, bytes an upstream name does not start with.
 */

static ngx_str_node_t *
ngx_http_upstream_mcig_node(ngx_http_upstream_mcig_zone_t *zone,
    ngx_str_t *key, size_t size)
{
    uint32_t         hash;
    ngx_str_node_t  *sn;

    hash = ngx_crc32_long(key->data, key->len);
    sn = ngx_str_rbtree_lookup(&zone->sh->rbtree, key, hash);

    if (sn == NULL) {
        sn = ngx_slab_alloc_locked(zone->shpool, size + key->len);
        if (sn == NULL) {
            return NULL;
        }

        ngx_memzero(sn, size);

        sn->str.len = key->len;
        sn->str.data = (u_char *) sn + size;
        ngx_memcpy(sn->str.data, key->data, key->len);
        sn->node.key = hash;

        ngx_rbtree_insert(&zone->sh->rbtree, &sn->node);
    }

    /* used by this configuration: kept while a worker may run it */
    ((ngx_http_mcig_node_t *) sn)->generation = zone->sh->generation;

    return sn;
}


/* finds or makes the shared nodes of every pool, member and objective */

static ngx_int_t
ngx_http_upstream_mcig_bind_members(ngx_http_upstream_mcig_zone_t *zone,
    ngx_log_t *log)
{
    ngx_uint_t                           i, j;
    ngx_str_node_t                      *sn;
    ngx_http_mcig_member_t              *m;
    ngx_http_mcig_objective_t           *obj;
    ngx_http_mcig_member_node_t         *node;
    ngx_http_upstream_mcig_srv_conf_t  **pools, *pool;

    pools = zone->mcf->pools.elts;

    ngx_shmtx_lock(&zone->shpool->mutex);

    for (i = 0; i < zone->mcf->pools.nelts; i++) {
        pool = pools[i];

        for (j = 0; j < pool->nmembers; j++) {
            m = &pool->members[j];

            sn = ngx_http_upstream_mcig_node(zone, &m->key,
                                 offsetof(ngx_http_mcig_member_node_t, key));
            if (sn == NULL) {
                goto nomem;
            }

            node = (ngx_http_mcig_member_node_t *) sn;

            if (m->node == NULL && node->queue.next == NULL) {
                ngx_queue_insert_tail(&zone->sh->members, &node->queue);
            }

            m->node = node;
        }

        pool->node = (ngx_http_mcig_pool_node_t *)
                     ngx_http_upstream_mcig_node(zone, &pool->key,
                                  offsetof(ngx_http_mcig_pool_node_t, key));
        if (pool->node == NULL) {
            goto nomem;
        }

        pool->default_objective = (ngx_http_mcig_objective_node_t *)
                     ngx_http_upstream_mcig_node(zone,
                                  &pool->default_objective_key,
                                  offsetof(ngx_http_mcig_objective_node_t,
                                           key));
        if (pool->default_objective == NULL) {
            goto nomem;
        }

        if (pool->objectives == NULL) {
            continue;
        }

        obj = pool->objectives->elts;

        for (j = 0; j < pool->objectives->nelts; j++) {
            obj[j].node = (ngx_http_mcig_objective_node_t *)
                     ngx_http_upstream_mcig_node(zone, &obj[j].key,
                                  offsetof(ngx_http_mcig_objective_node_t,
                                           key));
            if (obj[j].node == NULL) {
                goto nomem;
            }
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return NGX_OK;

nomem:

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_log_error(NGX_LOG_EMERG, log, 0,
                  "mcig_zone \"%V\" is too small for the members of pool "
                  "\"%V\"; increase its size",
                  &zone->mcf->shm_zone->shm.name, &pool->upstream->host);

    return NGX_ERROR;
}


static ngx_uint_t
ngx_http_upstream_mcig_pid_exited(ngx_pid_t pid)
{
    return kill(pid, 0) == -1 && ngx_errno == NGX_ESRCH;
}


/*
 * Gives back the in-flight counts that the exited process of a worker
 * slot left behind: that process can no longer run "free" for them.  The
 * caller owns the slot, so no one else releases it at the same time.
 */

static void
ngx_http_upstream_mcig_release_slot(ngx_http_upstream_mcig_zone_t *zone,
    ngx_uint_t slot, ngx_log_t *log)
{
    uint32_t                      n;
    ngx_uint_t                    total;
    ngx_queue_t                  *q;
    ngx_http_mcig_member_node_t  *node;

    total = 0;

    ngx_shmtx_lock(&zone->shpool->mutex);

    for (q = ngx_queue_head(&zone->sh->members);
         q != ngx_queue_sentinel(&zone->sh->members);
         q = ngx_queue_next(q))
    {
        node = ngx_queue_data(q, ngx_http_mcig_member_node_t, queue);

        n = node->in_flight_by_worker[slot];

        if (n) {
            (void) ngx_atomic_fetch_add(&node->in_flight,
                                        -(ngx_atomic_int_t) n);
            node->in_flight_by_worker[slot] = 0;
            total += n;
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (total) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "mcig: released %ui in-flight requests left by an "
                      "exited worker process", total);
    }

    /* and the requests it counted as waiting in the pools' queues */
    ngx_http_mcig_queue_release_slot(zone->sh, zone->shpool, slot, log);
}


static void
ngx_http_upstream_mcig_repair(ngx_log_t *log)
{
    ngx_pid_t                       pid;
    ngx_uint_t                      i;
    ngx_http_upstream_mcig_zone_t  *zone;

    zone = ngx_http_mcig_zone;

    for (i = 0; i < NGX_HTTP_MCIG_WORKER_SLOTS; i++) {
        pid = (ngx_pid_t) zone->sh->worker_pid[i];

        if (pid == 0 || pid == ngx_pid
            || !ngx_http_upstream_mcig_pid_exited(pid))
        {
            continue;
        }

        /* take the slot first: only one worker repairs it */
        if (!ngx_atomic_cmp_set(&zone->sh->worker_pid[i],
                                (ngx_atomic_uint_t) pid,
                                (ngx_atomic_uint_t) ngx_pid))
        {
            continue;
        }

        ngx_http_upstream_mcig_release_slot(zone, i, log);

        zone->sh->worker_pid[i] = 0;
    }
}


/*
 * Frees the nodes of members, pools and objectives that the configuration
 * no longer names (a reload removed them), once no worker that may still
 * use them is alive: a node last used by generation g goes when every
 * live worker runs a later one.  Pods come and go under Kubernetes, and
 * without this their nodes would fill the zone over many reloads.
 */

static void
ngx_http_upstream_mcig_collect(ngx_log_t *log)
{
    ngx_uint_t                    i, freed;
    ngx_atomic_uint_t             oldest;
    ngx_rbtree_node_t            *node, *next, *root, *sentinel;
    ngx_http_mcig_node_t         *n;
    ngx_http_mcig_shctx_t        *sh;
    ngx_http_mcig_member_node_t  *m;

    sh = ngx_http_mcig_zone->sh;
    oldest = sh->generation;

    for (i = 0; i < NGX_HTTP_MCIG_WORKER_SLOTS; i++) {
        if (sh->worker_pid[i] && sh->worker_generation[i] < oldest) {
            oldest = sh->worker_generation[i];
        }
    }

    freed = 0;

    ngx_shmtx_lock(&ngx_http_mcig_zone->shpool->mutex);

    root = sh->rbtree.root;
    sentinel = sh->rbtree.sentinel;

    if (root != sentinel) {
        for (node = ngx_rbtree_min(root, sentinel); node; node = next) {
            next = ngx_rbtree_next(&sh->rbtree, node);
            n = (ngx_http_mcig_node_t *) node;

            if (n->generation >= oldest) {
                continue;
            }

            if (n->sn.str.len && n->sn.str.data[0] > '\x02') {
                /* a member: its requests must all have ended */
                m = (ngx_http_mcig_member_node_t *) n;

                if ((ngx_atomic_int_t) m->in_flight > 0) {
                    continue;
                }

                ngx_queue_remove(&m->queue);
            }

            ngx_rbtree_delete(&sh->rbtree, node);
            ngx_slab_free_locked(ngx_http_mcig_zone->shpool, n);
            freed++;
        }
    }

    ngx_shmtx_unlock(&ngx_http_mcig_zone->shpool->mutex);

    if (freed) {
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "mcig: freed the state of %ui members, pools or "
                      "objectives that the configuration no longer names",
                      freed);
    }
}


static void
ngx_http_upstream_mcig_repair_handler(ngx_event_t *ev)
{
    ngx_http_upstream_mcig_repair(ev->log);
    ngx_http_upstream_mcig_collect(ev->log);

    if (!ngx_exiting && !ngx_quit) {
        ngx_add_timer(ev, NGX_HTTP_MCIG_REPAIR_INTERVAL);
    }
}


static char *
ngx_http_upstream_mcig_pool(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_upstream_mcig_srv_conf_t  *pool = conf;

    ngx_http_upstream_srv_conf_t         *uscf;
    ngx_http_upstream_mcig_srv_conf_t   **p;
    ngx_http_upstream_mcig_main_conf_t   *mcf;

    if (pool->enabled) {
        return "is duplicate";
    }

    uscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_upstream_module);

    /*
     * keepalive wraps the balancer configured before it: a method set
     * earlier would be replaced here, keepalive silently with it; a
     * method set later is refused in init_main_conf
     */
    if (uscf->peer.init_upstream) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"mcig_pool\" must come before \"keepalive\" "
                           "and replaces other load balancing methods "
                           "(least_conn, hash, ip_hash, random): remove "
                           "them");
        return NGX_CONF_ERROR;
    }

    uscf->peer.init_upstream = ngx_http_upstream_init_mcig;

    uscf->flags = NGX_HTTP_UPSTREAM_CREATE
                  |NGX_HTTP_UPSTREAM_WEIGHT
                  |NGX_HTTP_UPSTREAM_MAX_CONNS
                  |NGX_HTTP_UPSTREAM_MAX_FAILS
                  |NGX_HTTP_UPSTREAM_FAIL_TIMEOUT
                  |NGX_HTTP_UPSTREAM_DOWN;

    pool->enabled = 1;
    pool->upstream = uscf;

    /*
     * nginx wants a server line in every upstream{}, but a pool may take
     * its members from EndpointSlice manifests alone: an empty entry
     * stands in until the pool starts, where it is taken out
     */
    pool->placeholder = uscf->servers->nelts;

    if (ngx_array_push(uscf->servers) == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero((ngx_http_upstream_server_t *) uscf->servers->elts
                + pool->placeholder, sizeof(ngx_http_upstream_server_t));

    mcf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_upstream_mcig_module);

    p = ngx_array_push(&mcf->pools);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    *p = pool;

    return NGX_CONF_OK;
}


/* http://address:port/path of a member's metrics or health, for libcurl */

static ngx_int_t
ngx_http_upstream_mcig_member_url(ngx_conf_t *cf,
    ngx_http_upstream_mcig_srv_conf_t *pool, ngx_http_upstream_rr_peer_t *peer,
    ngx_uint_t https, ngx_uint_t port, ngx_str_t *path, ngx_str_t *url)
{
    u_char            *p;
    size_t             len;
    ngx_sockaddr_t     sa;

    if (peer->socklen > sizeof(ngx_sockaddr_t)
        || (peer->sockaddr->sa_family != AF_INET
#if (NGX_HAVE_INET6)
            && peer->sockaddr->sa_family != AF_INET6
#endif
           ))
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "mcig_metrics and mcig_health_check need TCP "
                      "members, not %V, in pool "
                      "\"%V\"", &peer->name, &pool->upstream->host);
        return NGX_ERROR;
    }

    ngx_memcpy(&sa, peer->sockaddr, peer->socklen);

    if (port) {
        ngx_inet_set_port(&sa.sockaddr, (in_port_t) port);
    }

    len = sizeof("https://") - 1 + NGX_SOCKADDR_STRLEN + path->len + 1;

    url->data = ngx_pnalloc(cf->pool, len);
    if (url->data == NULL) {
        return NGX_ERROR;
    }

    p = https ? ngx_cpymem(url->data, "https://", sizeof("https://") - 1)
              : ngx_cpymem(url->data, "http://", sizeof("http://") - 1);
    p += ngx_sock_ntop(&sa.sockaddr, peer->socklen, p, NGX_SOCKADDR_STRLEN,
                       1);
    p = ngx_cpymem(p, path->data, path->len);
    *p = '\0';

    url->len = p - url->data;

    return NGX_OK;
}


/* the value of a "name=value" argument, if the argument is that name */

static ngx_uint_t
ngx_http_upstream_mcig_arg(ngx_str_t *arg, char *name, ngx_str_t *value)
{
    size_t  len;

    len = ngx_strlen(name);

    if (arg->len < len || ngx_strncmp(arg->data, name, len) != 0) {
        return 0;
    }

    value->data = arg->data + len;
    value->len = arg->len - len;

    return 1;
}


/* "25%" or "25": 0..100, or NGX_ERROR */

static ngx_int_t
ngx_http_upstream_mcig_percent(ngx_str_t *value)
{
    ngx_int_t  n;
    ngx_str_t  v;

    v = *value;

    if (v.len && v.data[v.len - 1] == '%') {
        v.len--;
    }

    n = ngx_atoi(v.data, v.len);

    return (n > 100) ? NGX_ERROR : n;
}


/*
 * The parameters that mcig_metrics and mcig_health_check share: port=,
 * path=, interval= and timeout=.  NGX_OK when arg was one of them,
 * NGX_DECLINED when it is another, NGX_ERROR when its value is invalid.
 */

static ngx_int_t
ngx_http_upstream_mcig_probe_param(ngx_str_t *arg, ngx_uint_t *port,
    ngx_str_t *path, ngx_msec_t *interval, ngx_msec_t *timeout)
{
    ngx_int_t    n;
    ngx_str_t    s;
    ngx_msec_t  *msec;

    if (ngx_http_upstream_mcig_arg(arg, "port=", &s)) {
        n = ngx_atoi(s.data, s.len);
        if (n < 1 || n > 65535) {
            return NGX_ERROR;
        }

        *port = n;
        return NGX_OK;
    }

    if (ngx_http_upstream_mcig_arg(arg, "path=", &s)) {
        if (s.len == 0 || s.data[0] != '/') {
            return NGX_ERROR;
        }

        *path = s;
        return NGX_OK;
    }

    if (ngx_http_upstream_mcig_arg(arg, "interval=", &s)) {
        msec = interval;

    } else if (ngx_http_upstream_mcig_arg(arg, "timeout=", &s)) {
        msec = timeout;

    } else {
        return NGX_DECLINED;
    }

    *msec = ngx_parse_time(&s, 0);

    if (*msec == (ngx_msec_t) NGX_ERROR || *msec == 0) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The bearer token is read once, at configuration time: "nginx -s reload"
 * picks up a new one.  Its content is never logged.
 */

static ngx_int_t
ngx_http_upstream_mcig_read_token(ngx_conf_t *cf,
    ngx_http_upstream_mcig_srv_conf_t *pool)
{
    u_char     *p, *start, *end;
    ssize_t     n;
    ngx_fd_t    fd;
    u_char      buf[4096];

    fd = ngx_open_file(pool->metrics_token.data, NGX_FILE_RDONLY,
                       NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "mcig_metrics cannot open token_file \"%s\"",
                           pool->metrics_token.data);
        return NGX_ERROR;
    }

    n = ngx_read_fd(fd, buf, sizeof(buf));
    ngx_close_file(fd);

    if (n < 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "mcig_metrics cannot read token_file \"%s\"",
                           pool->metrics_token.data);
        return NGX_ERROR;
    }

    start = buf;
    end = buf + n;

    while (start < end && (*start == ' ' || *start == '\t'
                           || *start == '\r' || *start == '\n'))
    {
        start++;
    }

    while (end > start && (end[-1] == ' ' || end[-1] == '\t'
                           || end[-1] == '\r' || end[-1] == '\n'))
    {
        end--;
    }

    if (n == (ssize_t) sizeof(buf) || end == start) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mcig_metrics token_file \"%s\" is empty or "
                           "longer than 4k", pool->metrics_token.data);
        return NGX_ERROR;
    }

    for (p = start; p < end; p++) {
        if (*p < 0x21 || *p > 0x7e) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "mcig_metrics token_file \"%s\" holds "
                               "characters a bearer token cannot have",
                               pool->metrics_token.data);
            return NGX_ERROR;
        }
    }

    /* the header line libcurl sends, NUL-terminated */
    pool->metrics_auth.len = sizeof("Authorization: Bearer ") - 1
                             + (end - start);
    pool->metrics_auth.data = ngx_pnalloc(cf->pool,
                                          pool->metrics_auth.len + 1);
    if (pool->metrics_auth.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(pool->metrics_auth.data, "Authorization: Bearer ",
                   sizeof("Authorization: Bearer ") - 1);
    p = ngx_cpymem(p, start, end - start);
    *p = '\0';

    ngx_explicit_memzero(buf, sizeof(buf));

    return NGX_OK;
}


/*
 * mcig_metrics [engine=vllm|sglang|trtllm] [port=number] [path=/metrics]
 *     [interval=100ms] [timeout=1s] [stale=200ms] [max_size=1m]
 *     [kv=metric] [waiting=metric] [running=metric] [name_filter=on|off]
 *     [scheme=https] [ca_file=path] [cert=path key=path] [token_file=path];
 */

static char *
ngx_http_upstream_mcig_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_upstream_mcig_srv_conf_t  *pool = conf;

    ssize_t                    size;
    ngx_int_t                  rc;
    ngx_str_t                 *value, s, role_spec[4], *file;
    ngx_uint_t                 i;
    const mcig_prom_preset_t  *preset;

    if (pool->metrics) {
        return "is duplicate";
    }

    pool->metrics = ngx_pcalloc(cf->pool, sizeof(mcig_prom_set_t));
    if (pool->metrics == NULL) {
        return NGX_CONF_ERROR;
    }

    preset = mcig_prom_preset(MCIG_PROM_VLLM);
    ngx_http_upstream_mcig_metrics_defaults(pool);
    ngx_memzero(role_spec, sizeof(role_spec));

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "engine=vllm") == 0) {
            preset = mcig_prom_preset(MCIG_PROM_VLLM);
            continue;
        }

        if (ngx_strcmp(value[i].data, "engine=sglang") == 0) {
            preset = mcig_prom_preset(MCIG_PROM_SGLANG);
            continue;
        }

        if (ngx_strcmp(value[i].data, "engine=trtllm") == 0) {
            preset = mcig_prom_preset(MCIG_PROM_TRTLLM);
            continue;
        }

        rc = ngx_http_upstream_mcig_probe_param(&value[i],
                                                &pool->metrics_port,
                                                &pool->metrics_path,
                                                &pool->metrics_interval,
                                                &pool->metrics_timeout);
        if (rc == NGX_ERROR) {
            goto invalid;
        }

        if (rc == NGX_OK) {
            continue;
        }

        /* a metric of the engine's replaced by another, label filters ok */
        if (ngx_http_upstream_mcig_arg(&value[i], "kv=",
                                       &role_spec[MCIG_PROM_ROLE_KV_USAGE])
            || ngx_http_upstream_mcig_arg(&value[i], "waiting=",
                                          &role_spec[MCIG_PROM_ROLE_WAITING])
            || ngx_http_upstream_mcig_arg(&value[i], "running=",
                                          &role_spec[MCIG_PROM_ROLE_RUNNING]))
        {
            continue;
        }

        if (ngx_strcmp(value[i].data, "scheme=https") == 0) {
            pool->metrics_https = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "name_filter=on") == 0) {
            pool->metrics_name_filter = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "name_filter=off") == 0) {
            pool->metrics_name_filter = 0;
            continue;
        }

        if (ngx_strcmp(value[i].data, "scheme=http") == 0) {
            pool->metrics_https = 0;
            continue;
        }

        file = NULL;

        if (ngx_http_upstream_mcig_arg(&value[i], "ca_file=", &s)) {
            file = &pool->metrics_ca_file;

        } else if (ngx_http_upstream_mcig_arg(&value[i], "cert=", &s)) {
            file = &pool->metrics_cert;

        } else if (ngx_http_upstream_mcig_arg(&value[i], "key=", &s)) {
            file = &pool->metrics_key;

        } else if (ngx_http_upstream_mcig_arg(&value[i], "token_file=", &s)) {
            file = &pool->metrics_token;
        }

        if (file) {
            if (s.len == 0) {
                goto invalid;
            }

            /* NUL-terminated, for libcurl */
            if (ngx_conf_full_name(cf->cycle, &s, 1) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            *file = s;

            if (file == &pool->metrics_token
                && ngx_http_upstream_mcig_read_token(cf, pool) != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_http_upstream_mcig_arg(&value[i], "max_size=", &s)) {
            size = ngx_parse_size(&s);
            if (size < 1024) {
                goto invalid;
            }

            pool->metrics_max_size = size;
            continue;
        }

        if (!ngx_http_upstream_mcig_arg(&value[i], "stale=", &s)) {
            goto invalid;
        }

        pool->metrics_stale = ngx_parse_time(&s, 0);
        if (pool->metrics_stale == (ngx_msec_t) NGX_ERROR
            || pool->metrics_stale == 0)
        {
            goto invalid;
        }
    }

    if ((pool->metrics_cert.len == 0) != (pool->metrics_key.len == 0)) {
        return "needs both cert= and key= for a client certificate";
    }

    if (ngx_http_upstream_mcig_metrics_set(cf, pool, preset, role_spec)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" of mcig_metrics: expected "
                       "engine=vllm|sglang|trtllm, port=1..65535, path=/..., "
                       "interval=, timeout=, stale= (a time over 0), "
                       "max_size= (at least 1k), kv=, waiting=, running= "
                       "(metric names), scheme=http|https, ca_file=, cert=, "
                       "key=, token_file= or name_filter=on|off", &value[i]);
    return NGX_CONF_ERROR;
}


/* what mcig_metrics starts from, for the directive and for manifests */

void
ngx_http_upstream_mcig_metrics_defaults(
    ngx_http_upstream_mcig_srv_conf_t *pool)
{
    ngx_str_set(&pool->metrics_path, "/metrics");
    pool->metrics_interval = 100;
    pool->metrics_name_filter = 1;
    pool->metrics_timeout = 1000;
    pool->metrics_stale = 200;
    pool->metrics_max_size = 1024 * 1024;
}


/*
 * The pool's metric set: the engine's metrics, those of role_spec[role]
 * (non-empty) replacing the engine's of that role.
 */

ngx_int_t
ngx_http_upstream_mcig_metrics_set(ngx_conf_t *cf,
    ngx_http_upstream_mcig_srv_conf_t *pool, const mcig_prom_preset_t *preset,
    ngx_str_t *role_spec)
{
    ngx_uint_t           k, role;
    mcig_prom_spec_rc_e  src;

    if (pool->metrics == NULL) {
        pool->metrics = ngx_pcalloc(cf->pool, sizeof(mcig_prom_set_t));
        if (pool->metrics == NULL) {
            return NGX_ERROR;
        }
    }

    mcig_prom_set_init(pool->metrics, preset->flags);

    for (k = 0; k < preset->nspecs; k++) {
        role = preset->spec[k].role;

        if (role_spec[role].len) {
            continue;
        }

        if (mcig_prom_set_add(pool->metrics, preset->spec[k].text,
                              ngx_strlen(preset->spec[k].text),
                              preset->spec[k].agg, preset->spec[k].role)
            != MCIG_PROM_SPEC_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "could not take the metrics of engine %s",
                               preset->name);
            return NGX_ERROR;
        }
    }

    for (role = MCIG_PROM_ROLE_WAITING; role <= MCIG_PROM_ROLE_KV_USAGE;
         role++)
    {
        if (role_spec[role].len == 0) {
            continue;
        }

        /* counts add up over engines, a usage is averaged */
        src = mcig_prom_set_add(pool->metrics, (char *) role_spec[role].data,
                               role_spec[role].len,
                               role == MCIG_PROM_ROLE_KV_USAGE
                               ? MCIG_PROM_AVG : MCIG_PROM_SUM,
                               (mcig_prom_role_e) role);

        if (src != MCIG_PROM_SPEC_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid metric \"%V\" in mcig_metrics: %s",
                               &role_spec[role], mcig_prom_spec_rc_text(src));
            return NGX_ERROR;
        }
    }

    if (pool->metrics_name_filter
        && ngx_http_upstream_mcig_metrics_query(cf, pool) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Asks for the pool's metrics only, in the query of the metrics path:
 * prometheus_client, which vLLM and SGLang serve their pages with, then
 * renders about 1 KB instead of 30 to 60 KB of histograms, which saves the
 * model server's CPU as much as ours.
 */

static ngx_int_t
ngx_http_upstream_mcig_metrics_query(ngx_conf_t *cf,
    ngx_http_upstream_mcig_srv_conf_t *pool)
{
    u_char     *p;
    size_t      len;
    ngx_str_t  *path;

    path = &pool->metrics_path;
    len = mcig_prom_set_query(pool->metrics, NULL, 0);

    p = ngx_pnalloc(cf->pool, path->len + 1 + len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, path->data, path->len);
    p[path->len] = ngx_strlchr(path->data, path->data + path->len, '?')
                   ? '&' : '?';
    (void) mcig_prom_set_query(pool->metrics, (char *) p + path->len + 1,
                               len + 1);

    path->data = p;
    path->len += 1 + len;

    return NGX_OK;
}


/*
 * mcig_health_check [path=/health] [port=number] [interval=5s]
 *     [timeout=5s] [healthy=2] [unhealthy=2];
 * the defaults of GCP health checks, as the GKE guide's HealthCheckPolicy
 */

static char *
ngx_http_upstream_mcig_health_check(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_upstream_mcig_srv_conf_t  *pool = conf;

    ngx_int_t    n, rc;
    ngx_str_t   *value, s;
    ngx_uint_t   i, *threshold;

    if (pool->health) {
        return "is duplicate";
    }

    pool->health = 1;
    ngx_str_set(&pool->health_path, "/health");
    pool->health_interval = 5000;
    pool->health_timeout = 5000;
    pool->healthy_threshold = 2;
    pool->unhealthy_threshold = 2;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        rc = ngx_http_upstream_mcig_probe_param(&value[i], &pool->health_port,
                                                &pool->health_path,
                                                &pool->health_interval,
                                                &pool->health_timeout);
        if (rc == NGX_ERROR) {
            goto invalid;
        }

        if (rc == NGX_OK) {
            continue;
        }

        if (ngx_http_upstream_mcig_arg(&value[i], "healthy=", &s)) {
            threshold = &pool->healthy_threshold;

        } else if (ngx_http_upstream_mcig_arg(&value[i], "unhealthy=", &s)) {
            threshold = &pool->unhealthy_threshold;

        } else {
            goto invalid;
        }

        n = ngx_atoi(s.data, s.len);
        if (n < 1 || n > 1000) {
            goto invalid;
        }

        *threshold = n;
    }

    if (pool->health_timeout > pool->health_interval) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mcig_health_check timeout must not be longer "
                           "than its interval");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" of mcig_health_check: "
                       "expected path=/..., port=1..65535, interval=, "
                       "timeout= (a time over 0), healthy= or unhealthy= "
                       "(1..1000)", &value[i]);
    return NGX_CONF_ERROR;
}


/* mcig_balancing_mode in_flight | custom_metrics [max_utilization=N]
 *     [max_queue=N] [dry_run]; */

static char *
ngx_http_upstream_mcig_balancing_mode(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_upstream_mcig_srv_conf_t  *pool = conf;

    ngx_int_t   n;
    ngx_str_t  *value, s;
    ngx_uint_t  i;

    if (pool->mode != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "in_flight") == 0) {
        pool->mode = NGX_HTTP_MCIG_IN_FLIGHT;

    } else if (ngx_strcmp(value[1].data, "custom_metrics") == 0) {
        pool->mode = NGX_HTTP_MCIG_CUSTOM_METRICS;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid balancing mode \"%V\": in_flight or "
                           "custom_metrics expected (they are exclusive)",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (pool->mode == NGX_HTTP_MCIG_CUSTOM_METRICS
            && ngx_http_upstream_mcig_arg(&value[i], "max_utilization=", &s))
        {
            n = ngx_atoi(s.data, s.len);
            if (n < 1 || n > 100) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": a percentage from 1 "
                                   "to 100 is expected", &value[i]);
                return NGX_CONF_ERROR;
            }

            pool->max_utilization = n;
            continue;
        }

        if (pool->mode == NGX_HTTP_MCIG_CUSTOM_METRICS
            && ngx_http_upstream_mcig_arg(&value[i], "max_queue=", &s))
        {
            n = ngx_atoi(s.data, s.len);
            if (n == NGX_ERROR || n > 1000000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": a number of waiting "
                                   "requests from 0 to 1000000 is expected",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            pool->max_queue = n;
            continue;
        }

        if (pool->mode == NGX_HTTP_MCIG_CUSTOM_METRICS
            && ngx_strcmp(value[i].data, "dry_run") == 0)
        {
            pool->dry_run = 1;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" of mcig_balancing_mode",
                           &value[i]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * mcig_scorers [kv_cache=2] [queue=2] [prefix=3] [lora=0] [in_flight=0]
 *     [block_size=64] [max_blocks=256] [prefix_entries=31250];
 */

static char *
ngx_http_upstream_mcig_scorers(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_upstream_mcig_srv_conf_t  *pool = conf;

    ngx_int_t              n;
    ngx_str_t             *value, s;
    ngx_uint_t             i, k, *setting;
    mcig_score_weights_t   dflt = MCIG_SCORE_WEIGHTS_DEFAULT;

    static struct {
        char        *name;
        ngx_int_t    min;
        ngx_int_t    max;
    }  params[] = {
        { "kv_cache=", 0, 1000 },
        { "queue=", 0, 1000 },
        { "prefix=", 0, 1000 },
        { "lora=", 0, 1000 },
        { "in_flight=", 0, 1000 },
        { "block_size=", MCIG_PREFIX_BLOCK_MIN, MCIG_PREFIX_BLOCK_MAX },
        { "max_blocks=", 1, 4096 },
        { "prefix_entries=", 64, 10000000 }
    };

    ngx_uint_t  v[8];

    if (pool->scoring) {
        return "is duplicate";
    }

    v[0] = dflt.kv;
    v[1] = dflt.queue;
    v[2] = dflt.prefix;
    v[3] = dflt.lora;
    v[4] = dflt.in_flight;
    v[5] = MCIG_PREFIX_BLOCK_SIZE;
    v[6] = MCIG_PREFIX_MAX_BLOCKS;
    v[7] = MCIG_PREFIX_ENTRIES;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        setting = NULL;

        for (k = 0; k < sizeof(params) / sizeof(params[0]); k++) {
            if (ngx_http_upstream_mcig_arg(&value[i], params[k].name, &s)) {
                setting = &v[k];
                break;
            }
        }

        if (setting == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" of mcig_scorers: "
                               "expected kv_cache=, queue=, prefix=, lora=, "
                               "in_flight= (weights 0..1000), block_size=, "
                               "max_blocks= or prefix_entries=", &value[i]);
            return NGX_CONF_ERROR;
        }

        n = ngx_atoi(s.data, s.len);

        if (n < params[k].min || n > params[k].max
            || (k == 5 && n % 16))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"%V\" of mcig_scorers: a number "
                               "from %i to %i%s is expected", &value[i],
                               params[k].min, params[k].max,
                               k == 5 ? ", a multiple of 16," : "");
            return NGX_CONF_ERROR;
        }

        *setting = (ngx_uint_t) n;
    }

    if (v[0] + v[1] + v[2] + v[3] + v[4] == 0) {
        return "needs a weight over 0";
    }

    pool->scoring = 1;
    pool->weights.kv = (uint32_t) v[0];
    pool->weights.queue = (uint32_t) v[1];
    pool->weights.prefix = (uint32_t) v[2];
    pool->weights.lora = (uint32_t) v[3];
    pool->weights.in_flight = (uint32_t) v[4];
    pool->block_size = v[5];
    pool->max_blocks = v[6];
    pool->prefix_entries = v[7];

    return NGX_CONF_OK;
}


/*
 * The prefix index of a pool has a zone of its own, sized for its members:
 * it is large (about 40 bytes per member per entry) and of fixed size.  A
 * reload that keeps the pool's member count keeps what the index learnt.
 */

static ngx_int_t
ngx_http_upstream_mcig_prefix_zone(ngx_conf_t *cf,
    ngx_http_upstream_mcig_srv_conf_t *pool)
{
    size_t      size;
    ngx_str_t   name;

    if (pool->nmembers > MCIG_PREFIX_MEMBERS_MAX) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "the prefix scorer of mcig_scorers takes pools of at "
                      "most %d members; pool \"%V\" has %ui: set prefix=0",
                      MCIG_PREFIX_MEMBERS_MAX, &pool->upstream->host,
                      pool->nmembers);
        return NGX_ERROR;
    }

    size = mcig_prefix_index_size((uint32_t) pool->nmembers,
                                  (uint32_t) pool->prefix_entries);
    if (size == 0) {
        return NGX_ERROR;
    }

    /* room for the slab allocator's own pages */
    size += size / 64 + 64 * ngx_pagesize;

    name.len = sizeof("mcig_prefix:") - 1 + pool->upstream->host.len;
    name.data = ngx_pnalloc(cf->pool, name.len);
    if (name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(name.data, "mcig_prefix:%V", &pool->upstream->host);

    pool->prefix_zone = ngx_shared_memory_add(cf, &name, size,
                                              &ngx_http_upstream_mcig_module);
    if (pool->prefix_zone == NULL) {
        return NGX_ERROR;
    }

    pool->prefix_zone->init = ngx_http_upstream_mcig_init_prefix_zone;
    pool->prefix_zone->data = pool;

    return NGX_OK;
}


static ngx_int_t
ngx_http_upstream_mcig_init_prefix_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    size_t                              size;
    void                               *mem;
    ngx_slab_pool_t                    *shpool;
    ngx_http_upstream_mcig_srv_conf_t  *pool;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (data) {
        /* the same zone, of the same size, as before the reload */
        shm_zone->data = data;
        return NGX_OK;
    }

    pool = shm_zone->data;

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool;
        return NGX_OK;
    }

    size = mcig_prefix_index_size((uint32_t) pool->nmembers,
                                  (uint32_t) pool->prefix_entries);

    mem = ngx_slab_alloc(shpool, size);
    if (mem == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "mcig: no room for the prefix index of pool \"%V\"",
                      &pool->upstream->host);
        return NGX_ERROR;
    }

    shpool->data = mcig_prefix_index_init(mem, size, (uint32_t) pool->nmembers,
                                          (uint32_t) pool->prefix_entries);
    if (shpool->data == NULL) {
        return NGX_ERROR;
    }

    shpool->log_nomem = 0;
    shm_zone->data = shpool;

    return NGX_OK;
}


/*
 * The pool whose prefix scorer a request's prompt is hashed for: the
 * location's pool, or, when the pool is chosen by variables, the first
 * pool that scores prefixes (a pool with other block sizes then gets no
 * prefix affinity).  NULL: no hashing.
 */

ngx_http_upstream_mcig_srv_conf_t *
ngx_http_upstream_mcig_hashing_pool(ngx_http_request_t *r,
    ngx_http_upstream_mcig_srv_conf_t *pool)
{
    ngx_uint_t                           i;
    ngx_http_upstream_mcig_srv_conf_t  **pools;
    ngx_http_upstream_mcig_main_conf_t  *mcf;

    if (pool) {
        return pool->prefix_zone ? pool : NULL;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_upstream_mcig_module);
    pools = mcf->pools.elts;

    for (i = 0; i < mcf->pools.nelts; i++) {
        if (pools[i]->prefix_zone) {
            return pools[i];
        }
    }

    return NULL;
}


/*
 * mcig_session_affinity [header=x-session-id];
 *
 * The name is kept in lowercase, as nginx keeps the request's header
 * names for comparing them.  Only the characters nginx accepts in a
 * header name by default are allowed: a request header with others would
 * be ignored, and affinity with it.
 */

static char *
ngx_http_upstream_mcig_session_affinity(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_upstream_mcig_srv_conf_t  *pool = conf;

    u_char      c;
    ngx_str_t  *value, name;
    ngx_uint_t  i;

    if (pool->session_header.len) {
        return "is duplicate";
    }

    ngx_str_set(&name, "x-session-id");

    if (cf->args->nelts > 1) {
        value = cf->args->elts;

        if (!ngx_http_upstream_mcig_arg(&value[1], "header=", &name)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" of "
                               "mcig_session_affinity: expected header=name",
                               &value[1]);
            return NGX_CONF_ERROR;
        }

        if (name.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "mcig_session_affinity needs a header name "
                               "after \"header=\"");
            return NGX_CONF_ERROR;
        }

        for (i = 0; i < name.len; i++) {
            c = name.data[i];

            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                || (c >= '0' && c <= '9') || c == '-' || c == '_')
            {
                continue;
            }

            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid header name \"%V\" of "
                               "mcig_session_affinity: letters, digits, "
                               "\"-\" and \"_\" are expected", &name);
            return NGX_CONF_ERROR;
        }
    }

    pool->session_header.data = ngx_pnalloc(cf->pool, name.len);
    if (pool->session_header.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_strlow(pool->session_header.data, name.data, name.len);
    pool->session_header.len = name.len;

    return NGX_CONF_OK;
}


/*
 * mcig_outlier_detection off | [consecutive=number] [ejection=time]
 *     [max_ejection=time] [max_ejected=percent];
 */

static char *
ngx_http_upstream_mcig_outlier_detection(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_upstream_mcig_srv_conf_t  *pool = conf;

    ngx_int_t    n;
    ngx_str_t   *value, v;
    ngx_uint_t   i;
    ngx_msec_t   t, *ms;

    if (pool->outlier_consecutive != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        pool->outlier_consecutive = 0;
        return NGX_CONF_OK;
    }

    pool->outlier_consecutive = 5;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_http_upstream_mcig_arg(&value[i], "consecutive=", &v)) {
            n = ngx_atoi(v.data, v.len);

            if (n < 1 || n > 1000) {
                goto invalid;
            }

            pool->outlier_consecutive = n;
            continue;
        }

        if (ngx_http_upstream_mcig_arg(&value[i], "max_ejected=", &v)) {
            n = ngx_http_upstream_mcig_percent(&v);

            if (n < 1) {
                goto invalid;
            }

            pool->outlier_max_ejected = n;
            continue;
        }

        ms = NULL;

        if (ngx_http_upstream_mcig_arg(&value[i], "ejection=", &v)) {
            ms = &pool->outlier_ejection;

        } else if (ngx_http_upstream_mcig_arg(&value[i], "max_ejection=",
                                              &v))
        {
            ms = &pool->outlier_max_ejection;
        }

        if (ms) {
            t = ngx_parse_time(&v, 0);

            if (t == (ngx_msec_t) NGX_ERROR || t == 0) {
                goto invalid;
            }

            *ms = t;
            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" of mcig_outlier_detection: "
                       "\"off\" or consecutive=1..1000, ejection=time, "
                       "max_ejection=time, max_ejected=1..100%% are expected",
                       &value[i]);
    return NGX_CONF_ERROR;
}


static char *
ngx_http_upstream_mcig_max_in_flight(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_upstream_mcig_srv_conf_t  *pool = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (pool->max_in_flight != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);

    if (n < 1 || n > 1000000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid mcig_max_in_flight \"%V\": a number from "
                           "1 to 1000000 is expected", &value[1]);
        return NGX_CONF_ERROR;
    }

    pool->max_in_flight = n;

    return NGX_CONF_OK;
}


static char *
ngx_http_upstream_mcig_objective(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_upstream_mcig_srv_conf_t  *pool = conf;

    ngx_int_t                   priority, sign;
    ngx_str_t                  *value, s;
    ngx_uint_t                  i;
    ngx_http_mcig_objective_t  *obj;

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "has an empty objective name";
    }

    priority = 0;

    if (cf->args->nelts == 3) {
        if (!ngx_http_upstream_mcig_arg(&value[2], "priority=", &s)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\", expected "
                               "\"priority=\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        sign = 1;

        if (s.len && s.data[0] == '-') {
            sign = -1;
            s.data++;
            s.len--;
        }

        priority = ngx_atoi(s.data, s.len);

        if (priority == NGX_ERROR || priority > 1000000) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid priority \"%V\": an integer between "
                               "-1000000 and 1000000 is expected", &value[2]);
            return NGX_CONF_ERROR;
        }

        priority *= sign;
    }

    if (pool->objectives == NULL) {
        pool->objectives = ngx_array_create(cf->pool, 4,
                                            sizeof(ngx_http_mcig_objective_t));
        if (pool->objectives == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    obj = pool->objectives->elts;

    for (i = 0; i < pool->objectives->nelts; i++) {
        if (obj[i].name.len == value[1].len
            && ngx_strncmp(obj[i].name.data, value[1].data, value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate objective \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    obj = ngx_array_push(pool->objectives);
    if (obj == NULL) {
        return NGX_CONF_ERROR;
    }

    obj->name = value[1];
    obj->priority = priority;

    return NGX_CONF_OK;
}


/* mcig_manifests file|glob ...; relative to the configuration's directory */

static char *
ngx_http_upstream_mcig_manifests(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_upstream_mcig_main_conf_t  *mcf = conf;

    char        *rv;
    ngx_str_t   *value;
    ngx_uint_t   i;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        rv = ngx_http_mcig_manifests_load(cf, &mcf->manifests, &value[i]);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    return NGX_CONF_OK;
}


/* mcig_regions local [other ...]; the others nearest first */

static char *
ngx_http_upstream_mcig_regions(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_upstream_mcig_main_conf_t  *mcf = conf;

    uint32_t    *pct;
    ngx_int_t    n;
    ngx_str_t   *value, *region, s;
    ngx_uint_t   i, j;

    if (mcf->regions) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts - 1 > MCIG_REGIONS_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mcig_regions takes at most %d regions",
                           MCIG_REGIONS_MAX);
        return NGX_CONF_ERROR;
    }

    mcf->regions = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                    sizeof(ngx_str_t));
    if (mcf->regions == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        /* the drain thresholds: drain=25% restore=35% restore_after=60s */
        pct = NULL;

        if (ngx_http_upstream_mcig_arg(&value[i], "drain=", &s)) {
            pct = &mcf->region_params.drain_pct;

        } else if (ngx_http_upstream_mcig_arg(&value[i], "restore=", &s)) {
            pct = &mcf->region_params.restore_pct;
        }

        if (pct) {
            n = ngx_http_upstream_mcig_percent(&s);
            if (n == NGX_ERROR) {
                goto invalid;
            }

            *pct = n;
            continue;
        }

        if (ngx_http_upstream_mcig_arg(&value[i], "restore_after=", &s)) {
            mcf->region_params.restore_ms = ngx_parse_time(&s, 0);
            if (mcf->region_params.restore_ms == (ngx_msec_t) NGX_ERROR) {
                goto invalid;
            }

            continue;
        }

        for (j = 1; j < i; j++) {
            if (value[j].len == value[i].len
                && ngx_strncmp(value[j].data, value[i].data, value[i].len)
                   == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "region \"%V\" is listed twice",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }
        }

        region = ngx_array_push(mcf->regions);
        if (region == NULL) {
            return NGX_CONF_ERROR;
        }

        *region = value[i];
    }

    if (mcf->regions->nelts == 0) {
        return "names no region";
    }

    if (mcf->region_params.restore_pct < mcf->region_params.drain_pct) {
        return "has restore= under drain=";
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" of mcig_regions: drain= "
                       "and restore= take a percentage, restore_after= a "
                       "time", &value[i]);
    return NGX_CONF_ERROR;
}


/* mcig_region name [cluster=name] address ...; in an upstream */

static char *
ngx_http_upstream_mcig_region(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_upstream_mcig_srv_conf_t  *pool = conf;

    ngx_str_t                    *value;
    ngx_url_t                     u;
    ngx_uint_t                    i;
    ngx_addr_t                   *addr;
    ngx_http_mcig_region_conf_t  *rc;

    value = cf->args->elts;

    if (pool->region_confs == NULL) {
        pool->region_confs = ngx_array_create(cf->pool, 4,
                                        sizeof(ngx_http_mcig_region_conf_t));
        if (pool->region_confs == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    rc = ngx_array_push(pool->region_confs);
    if (rc == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(rc, sizeof(ngx_http_mcig_region_conf_t));
    rc->region = value[1];

    if (ngx_array_init(&rc->addrs, cf->pool, 4, sizeof(ngx_addr_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_http_upstream_mcig_arg(&value[i], "cluster=", &rc->cluster)) {
            continue;
        }

        /* as a server line names it: the same addresses match */
        ngx_memzero(&u, sizeof(ngx_url_t));
        u.url = value[i];
        u.default_port = 80;

        if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%s in mcig_region address \"%V\"",
                               u.err ? u.err : "invalid address", &u.url);
            return NGX_CONF_ERROR;
        }

        addr = ngx_array_push_n(&rc->addrs, u.naddrs);
        if (addr == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(addr, u.addrs, u.naddrs * sizeof(ngx_addr_t));
    }

    if (rc->addrs.nelts == 0) {
        return "names no member address";
    }

    return NGX_CONF_OK;
}


/* a member's region and cluster, from the mcig_region line naming it */

static ngx_int_t
ngx_http_upstream_mcig_member_region(ngx_conf_t *cf,
    ngx_http_upstream_mcig_srv_conf_t *pool, ngx_http_mcig_member_t *m,
    ngx_http_upstream_rr_peer_t *peer)
{
    ngx_str_t                    *name;
    ngx_uint_t                    i, j;
    ngx_addr_t                   *addr;
    ngx_http_mcig_region_conf_t  *rc;

    m->region = 0;

    if (pool->region_confs == NULL) {
        /* no regions: every member is local */
        return NGX_OK;
    }

    rc = pool->region_confs->elts;

    for (i = 0; i < pool->region_confs->nelts; i++) {
        addr = rc[i].addrs.elts;

        for (j = 0; j < rc[i].addrs.nelts; j++) {
            if (ngx_cmp_sockaddr(addr[j].sockaddr, addr[j].socklen,
                                 peer->sockaddr, peer->socklen, 1)
                != NGX_OK)
            {
                continue;
            }

            name = pool->regions->elts;

            for (m->region = 0; m->region < pool->regions->nelts;
                 m->region++)
            {
                if (name[m->region].len == rc[i].region.len
                    && ngx_strncmp(name[m->region].data, rc[i].region.data,
                                   rc[i].region.len) == 0)
                {
                    m->cluster = rc[i].cluster;
                    return NGX_OK;
                }
            }

            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "region \"%V\" of member %V of pool \"%V\" is "
                          "not in mcig_regions", &rc[i].region, &peer->name,
                          &pool->upstream->host);
            return NGX_ERROR;
        }
    }

    ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                  "member %V of pool \"%V\" in %s:%ui has no region: "
                  "name it in an mcig_region line", &peer->name,
                  &pool->upstream->host, pool->upstream->file_name,
                  pool->upstream->line);

    return NGX_ERROR;
}


/* registers the one zone of all pools, named by mcig_zone or by default */

static ngx_int_t
ngx_http_upstream_mcig_add_zone(ngx_conf_t *cf,
    ngx_http_upstream_mcig_main_conf_t *mcf, ngx_str_t *name, size_t size)
{
    ngx_http_upstream_mcig_zone_t  *zone;

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_upstream_mcig_zone_t));
    if (zone == NULL) {
        return NGX_ERROR;
    }

    mcf->shm_zone = ngx_shared_memory_add(cf, name, size,
                                          &ngx_http_upstream_mcig_module);
    if (mcf->shm_zone == NULL) {
        return NGX_ERROR;
    }

    if (mcf->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mcig_zone \"%V\" is already used", name);
        return NGX_ERROR;
    }

    zone->mcf = mcf;
    mcf->shm_zone->init = ngx_http_upstream_mcig_init_zone;
    mcf->shm_zone->data = zone;

    return NGX_OK;
}


static char *
ngx_http_upstream_mcig_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_upstream_mcig_main_conf_t  *mcf = conf;

    ssize_t     size;
    ngx_str_t  *value;

    if (mcf->shm_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[2]);

    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid mcig_zone size \"%V\": at least %uz "
                           "bytes are needed", &value[2], 8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_upstream_mcig_add_zone(cf, mcf, &value[1], size) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_upstream_mcig_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_upstream_mcig_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_upstream_mcig_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&mcf->pools, cf->pool, 4,
                       sizeof(ngx_http_upstream_mcig_srv_conf_t *))
        != NGX_OK)
    {
        return NULL;
    }

    mcf->region_params.drain_pct = MCIG_REGION_DRAIN_PCT;
    mcf->region_params.restore_pct = MCIG_REGION_RESTORE_PCT;
    mcf->region_params.restore_ms = MCIG_REGION_RESTORE_MS;

    return mcf;
}


static char *
ngx_http_upstream_mcig_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_upstream_mcig_main_conf_t  *mcf = conf;

    ngx_str_t                            name;
    ngx_uint_t                           i;
    ngx_http_upstream_srv_conf_t       **uscfp;
    ngx_http_upstream_main_conf_t       *umcf;
    ngx_http_upstream_mcig_srv_conf_t   *pool;

    umcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_upstream_module);
    uscfp = umcf->upstreams.elts;

    for (i = 0; i < umcf->upstreams.nelts; i++) {
        if (uscfp[i]->srv_conf == NULL) {
            continue;
        }

        pool = ngx_http_conf_upstream_srv_conf(uscfp[i],
                                               ngx_http_upstream_mcig_module);

        if (!pool->enabled
            && (pool->max_in_flight != NGX_CONF_UNSET_UINT
                || pool->request_timeout != NGX_CONF_UNSET_MSEC
                || pool->mode != NGX_CONF_UNSET_UINT
                || pool->metrics
                || pool->health
                || pool->region_confs
                || pool->objectives
                || pool->scoring
                || pool->outlier_consecutive != NGX_CONF_UNSET_UINT
                || pool->session_header.len))
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "mcig directives in upstream \"%V\" in %s:%ui "
                          "need \"mcig_pool\" in that upstream",
                          &uscfp[i]->host, uscfp[i]->file_name,
                          uscfp[i]->line);
            return NGX_CONF_ERROR;
        }

        /*
         * the upstream module has started every upstream by now: a pool
         * whose members are not set was started by a balancing method
         * written after mcig_pool, which replaced it without a word
         */
        if (pool->enabled && pool->members == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "a load balancing method (least_conn, hash, "
                          "ip_hash, random) after \"mcig_pool\" in upstream "
                          "\"%V\" in %s:%ui replaces the pool: remove it",
                          &uscfp[i]->host, uscfp[i]->file_name,
                          uscfp[i]->line);
            return NGX_CONF_ERROR;
        }
    }

    if (mcf->pools.nelts == 0 || mcf->shm_zone) {
        return NGX_CONF_OK;
    }

    /* a pool and no mcig_zone: the default zone */

    ngx_str_set(&name, "mcig");

    if (ngx_http_upstream_mcig_add_zone(cf, mcf, &name,
                                        NGX_HTTP_MCIG_DEFAULT_ZONE_SIZE)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_upstream_mcig_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_upstream_mcig_srv_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_upstream_mcig_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->enabled = 0;
     *     conf->objectives = NULL;
     *     conf->members = NULL;
     */

    conf->max_in_flight = NGX_CONF_UNSET_UINT;
    conf->request_timeout = NGX_CONF_UNSET_MSEC;
    conf->mode = NGX_CONF_UNSET_UINT;
    conf->max_utilization = NGX_CONF_UNSET_UINT;
    conf->max_queue = NGX_CONF_UNSET_UINT;
    conf->outlier_consecutive = NGX_CONF_UNSET_UINT;
    conf->outlier_ejection = NGX_CONF_UNSET_MSEC;
    conf->outlier_max_ejection = NGX_CONF_UNSET_MSEC;
    conf->outlier_max_ejected = NGX_CONF_UNSET_UINT;

    return conf;
}


static ngx_int_t
ngx_http_upstream_mcig_init_process(ngx_cycle_t *cycle)
{
    ngx_pid_t                            pid;
    ngx_uint_t                           i;
    ngx_http_upstream_mcig_zone_t       *zone;
    ngx_http_upstream_mcig_main_conf_t  *mcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    if (ngx_http_cycle_get_module_main_conf(cycle, ngx_http_core_module)
        == NULL)
    {
        return NGX_OK;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_upstream_mcig_module);

    if (mcf == NULL || mcf->shm_zone == NULL) {
        return NGX_OK;
    }

    zone = mcf->shm_zone->data;
    ngx_http_mcig_zone = zone;

    mcig_rng_seed(&ngx_http_mcig_rng,
                  ((uint64_t) ngx_pid << 32) ^ (uint64_t) ngx_time()
                  ^ (uint64_t) ngx_current_msec);

    /* a free slot, or the slot of an exited process, after repair */

    for (i = 0; i < NGX_HTTP_MCIG_WORKER_SLOTS; i++) {
        pid = (ngx_pid_t) zone->sh->worker_pid[i];

        if (pid != 0 && !ngx_http_upstream_mcig_pid_exited(pid)) {
            continue;
        }

        if (!ngx_atomic_cmp_set(&zone->sh->worker_pid[i],
                                (ngx_atomic_uint_t) pid,
                                (ngx_atomic_uint_t) ngx_pid))
        {
            continue;
        }

        if (pid != 0) {
            ngx_http_upstream_mcig_release_slot(zone, i, cycle->log);
        }

        zone->sh->worker_generation[i] = zone->sh->generation;
        ngx_http_mcig_slot = i;
        break;
    }

    if (ngx_http_mcig_slot < 0) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "mcig_zone \"%V\" has no free worker slot: if this "
                      "worker dies, its in-flight counts stay high until "
                      "a restart", &mcf->shm_zone->shm.name);
    }

    /* reloads may come faster than the timer below fires */
    ngx_http_upstream_mcig_collect(cycle->log);

    ngx_http_mcig_repair_conn.fd = (ngx_socket_t) -1;

    ngx_http_mcig_repair_event.handler = ngx_http_upstream_mcig_repair_handler;
    ngx_http_mcig_repair_event.data = &ngx_http_mcig_repair_conn;
    ngx_http_mcig_repair_event.log = cycle->log;
    ngx_http_mcig_repair_event.cancelable = 1;

    ngx_add_timer(&ngx_http_mcig_repair_event, NGX_HTTP_MCIG_REPAIR_INTERVAL);

    if (ngx_http_mcig_queue_init_process(cycle, ngx_http_mcig_slot)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_mcig_scrape_init_process(cycle, &mcf->pools, zone->sh);
}


static void
ngx_http_upstream_mcig_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_upstream_mcig_zone_t  *zone;

    zone = ngx_http_mcig_zone;

    ngx_http_mcig_scrape_exit_process(cycle);

    if (zone == NULL || ngx_http_mcig_slot < 0) {
        return;
    }

    /* requests cut by the exit never reach "free" */
    ngx_http_upstream_mcig_release_slot(zone, ngx_http_mcig_slot, cycle->log);

    zone->sh->worker_pid[ngx_http_mcig_slot] = 0;
    ngx_http_mcig_slot = -1;
}
