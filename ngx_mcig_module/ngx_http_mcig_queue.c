
/*
 * Copyright (C) ngx_mcig_module authors
 *
 * Flow control: when every available member of a pool is full, requests
 * wait in the gateway instead of piling onto the model servers, and leave
 * in order: the higher priority band first, tenants (fairness ids) in turn
 * inside a band, each tenant's requests in arrival order (mcig_queue.c).
 *
 * A request waits in the precontent phase, after its body was read and
 * before proxy_pass starts the upstream: a balancer cannot park a request
 * in open-source nginx.  So only requests whose location names the pool
 * in a static proxy_pass can wait; with proxy_pass http://$pool the pool
 * is known when the upstream starts, where admission keeps its rules.
 *
 * Each worker keeps a queue per pool.  Requests of other workers are seen
 * through per-band waiting counts in the pool's shared node, one set per
 * worker slot, so that a worker never lets a band go while a higher one
 * waits anywhere, and the counts of a worker that died are dropped by the
 * repair of worker slots.  A waiting request is woken by a posted event:
 * when a response of the pool ends in this worker, when the scraper sees
 * new figures, or at a short per-pool tick that also finds room freed by
 * other workers and expires requests past their timeout.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_mcig_module.h"


/* how often a worker with waiting requests looks for room and expiries */
#define NGX_HTTP_MCIG_QUEUE_TICK       10

#define NGX_HTTP_MCIG_QUEUE_DEFAULT_MAX      1024
#define NGX_HTTP_MCIG_QUEUE_DEFAULT_TIMEOUT  30000

#define NGX_HTTP_MCIG_DEFAULT_TENANT   "default-flow"


typedef enum {
    NGX_HTTP_MCIG_WAIT_DONE = 0,      /* refused, or gone */
    NGX_HTTP_MCIG_WAIT_WAITING,
    NGX_HTTP_MCIG_WAIT_ADMITTED,
    NGX_HTTP_MCIG_WAIT_EXPIRED
} ngx_http_mcig_wait_state_e;


typedef struct ngx_http_mcig_queue_wait_s  ngx_http_mcig_queue_wait_t;


/* a pool's queue in one worker */
typedef struct {
    mcig_queue_t                        queue;
    ngx_http_mcig_queue_conf_t         *conf;
    mcig_queue_counts_t                *counts;   /* this worker's slot */

    /* dispatched, not yet holding its member: the next one waits for it */
    ngx_http_mcig_queue_wait_t         *admitting;

    ngx_event_t                         tick;
    ngx_event_t                         dispatch;
    ngx_connection_t                    conn;     /* what events point to */
} ngx_http_mcig_queue_worker_t;


/* one waiting request, the queue's entry embedded */
struct ngx_http_mcig_queue_wait_s {
    mcig_queue_entry_t                  entry;
    ngx_http_request_t                 *request;
    ngx_http_mcig_queue_worker_t       *qw;
    ngx_http_mcig_objective_node_t     *objective;
    ngx_msec_t                          start;
    ngx_msec_t                          waited;
    ngx_int_t                           priority;
    ngx_uint_t                          state;
};


typedef struct {
    ngx_array_t                         queues;   /* queue_conf_t * */
} ngx_http_mcig_queue_main_conf_t;


static ngx_int_t ngx_http_mcig_queue_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_mcig_queue_park(ngx_http_request_t *r,
    ngx_http_mcig_ctx_t *ctx, ngx_http_mcig_queue_worker_t *qw);
static ngx_int_t ngx_http_mcig_queue_refuse(ngx_http_request_t *r,
    ngx_http_mcig_ctx_t *ctx, ngx_http_mcig_queue_conf_t *qcf,
    const char *why);
static void ngx_http_mcig_queue_resume(ngx_http_request_t *r);
static void ngx_http_mcig_queue_cleanup(void *data);
static void ngx_http_mcig_queue_dispatch(ngx_http_mcig_queue_worker_t *qw);
static void ngx_http_mcig_queue_leave(ngx_http_mcig_queue_worker_t *qw,
    ngx_http_mcig_queue_wait_t *w, ngx_http_mcig_queue_outcome_e outcome);
static void ngx_http_mcig_queue_expire(ngx_http_mcig_queue_worker_t *qw,
    ngx_http_mcig_queue_wait_t *w);
static void ngx_http_mcig_queue_tick_handler(ngx_event_t *ev);
static void ngx_http_mcig_queue_dispatch_handler(ngx_event_t *ev);
static ngx_uint_t ngx_http_mcig_queue_above(
    ngx_http_upstream_mcig_srv_conf_t *pool, ngx_int_t priority);
static ngx_uint_t ngx_http_mcig_queue_admitting(
    ngx_http_upstream_mcig_srv_conf_t *pool);
static void ngx_http_mcig_queue_set_admitting(
    ngx_http_mcig_queue_worker_t *qw, ngx_uint_t on);
static ngx_uint_t ngx_http_mcig_queue_band_waiting(
    ngx_http_upstream_mcig_srv_conf_t *pool, ngx_int_t priority);
static ngx_int_t ngx_http_mcig_queue_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static char *ngx_http_mcig_queue(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_mcig_queue_add_variables(ngx_conf_t *cf);
static void *ngx_http_mcig_queue_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_mcig_queue_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_mcig_queue_create_srv_conf(ngx_conf_t *cf);
static ngx_int_t ngx_http_mcig_queue_init(ngx_conf_t *cf);


static ngx_command_t  ngx_http_mcig_queue_commands[] = {

    { ngx_string("mcig_queue"),
      NGX_HTTP_UPS_CONF|NGX_CONF_ANY,
      ngx_http_mcig_queue,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_mcig_queue_module_ctx = {
    ngx_http_mcig_queue_add_variables,     /* preconfiguration */
    ngx_http_mcig_queue_init,              /* postconfiguration */

    ngx_http_mcig_queue_create_main_conf,  /* create main configuration */
    ngx_http_mcig_queue_init_main_conf,    /* init main configuration */

    ngx_http_mcig_queue_create_srv_conf,   /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_mcig_queue_module = {
    NGX_MODULE_V1,
    &ngx_http_mcig_queue_module_ctx,       /* module context */
    ngx_http_mcig_queue_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process: see below */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* upper bounds of the wait histogram's buckets, ms; then +Inf */
const ngx_msec_t  ngx_http_mcig_queue_bucket_ms[
                      NGX_HTTP_MCIG_QUEUE_BUCKETS - 1] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000
};


static ngx_str_t  ngx_http_mcig_queue_time_name =
    ngx_string("mcig_queue_time");


#define ngx_http_mcig_queue_wait_of(e)                                       \
    ((ngx_http_mcig_queue_wait_t *) ((u_char *) (e)                          \
                              - offsetof(ngx_http_mcig_queue_wait_t, entry)))


/*
 * Runs after the precontent handler of ngx_http_mcig_module, once the body
 * is read: a request of a saturated pool waits here (NGX_AGAIN) until a
 * posted event runs the phases again.
 */

static ngx_int_t
ngx_http_mcig_queue_handler(ngx_http_request_t *r)
{
    ngx_str_t                           *repeats;
    ngx_http_mcig_ctx_t                 *ctx;
    ngx_http_mcig_queue_wait_t          *w;
    ngx_http_mcig_queue_conf_t          *qcf;
    ngx_http_mcig_queue_worker_t        *qw;
    ngx_http_upstream_mcig_srv_conf_t   *pool;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    w = ngx_http_get_module_ctx(r, ngx_http_mcig_queue_module);

    if (w) {
        switch (w->state) {

        case NGX_HTTP_MCIG_WAIT_WAITING:
            return NGX_AGAIN;

        case NGX_HTTP_MCIG_WAIT_EXPIRED:
            w->state = NGX_HTTP_MCIG_WAIT_DONE;
            return NGX_HTTP_SERVICE_UNAVAILABLE;

        default:
            return NGX_DECLINED;
        }
    }

    ctx = ngx_http_mcig_get_ctx(r);

    if (ctx == NULL || ctx->pool == NULL || ctx->error) {
        /* no pool yet (proxy_pass with variables), or not an inference one */
        return NGX_DECLINED;
    }

    pool = ctx->pool;
    qcf = ngx_http_mcig_queue_conf(pool);
    qw = qcf->worker;

    if (qw == NULL) {
        return NGX_DECLINED;
    }

    ngx_http_upstream_mcig_resolve_objective(ctx, pool);

    if (ctx->priority < 0 && !qcf->queue_sheddable) {

        /*
         * Sheddable requests do not wait; admission sheds them when the
         * pool is saturated.  Requests of a higher priority waiting mean
         * it is, even if a member has just freed room: that room is theirs.
         */
        if (ngx_http_mcig_queue_above(pool, ctx->priority)) {
            repeats = ngx_http_mcig_log_limited(
                                  &pool->log_limit[NGX_HTTP_MCIG_LOG_SHED]);

            if (repeats) {
                ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                              "mcig: pool \"%V\" is saturated, shed a "
                              "request of priority %i while requests of "
                              "higher priority wait%V",
                              &pool->upstream->host, ctx->priority, repeats);
            }

            (void) ngx_atomic_fetch_add(&pool->node->saturated, 1);
            (void) ngx_atomic_fetch_add(&ctx->objective_node->requests, 1);
            (void) ngx_atomic_fetch_add(&ctx->objective_node->shed, 1);

            ngx_http_mcig_set_error(r, ctx, NGX_HTTP_MCIG_ERR_SATURATED,
                                    "pool_saturated",
                                    "pool \"%V\" is saturated, sheddable "
                                    "request dropped", &pool->upstream->host);

            return NGX_HTTP_TOO_MANY_REQUESTS;
        }

        return NGX_DECLINED;
    }

    /*
     * A request goes on when the pool has room and nothing of its
     * priority or higher waits anywhere: it does not overtake them.  Nor
     * a request another worker let go for room it has not taken yet.
     * The order (waiting, admitting, in flight) is the reverse of the
     * order in which a dispatched request passes from one to the next.
     */
    if (!ngx_http_mcig_queue_above(pool, ctx->priority - 1)
        && !ngx_http_mcig_queue_admitting(pool)
        && !ngx_http_upstream_mcig_saturated(pool, ctx->priority))
    {
        return NGX_DECLINED;
    }

    return ngx_http_mcig_queue_park(r, ctx, qw);
}


static ngx_int_t
ngx_http_mcig_queue_park(ngx_http_request_t *r, ngx_http_mcig_ctx_t *ctx,
    ngx_http_mcig_queue_worker_t *qw)
{
    uint64_t                            tenant;
    ngx_uint_t                          waiting;
    ngx_http_cleanup_t                 *cln;
    mcig_queue_rc_e                     rc;
    ngx_http_mcig_queue_wait_t         *w;
    ngx_http_mcig_queue_conf_t         *qcf;
    ngx_http_mcig_pool_node_t          *node;

    qcf = qw->conf;
    node = qcf->pool->node;

    /* bounds of the whole gateway, read without a lock: see the README */
    waiting = node->queue_waiting;

    if ((ngx_int_t) waiting >= (ngx_int_t) qcf->max) {
        return ngx_http_mcig_queue_refuse(r, ctx, qcf, "");
    }

    if (qcf->max_per_priority < qcf->max
        && ngx_http_mcig_queue_band_waiting(qcf->pool, ctx->priority)
           >= qcf->max_per_priority)
    {
        return ngx_http_mcig_queue_refuse(r, ctx, qcf, " for its priority");
    }

    w = ngx_pcalloc(r->pool, sizeof(ngx_http_mcig_queue_wait_t));
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    tenant = ctx->fairness_id.len
             ? mcig_queue_tenant(ctx->fairness_id.data, ctx->fairness_id.len)
             : mcig_queue_tenant(NGX_HTTP_MCIG_DEFAULT_TENANT,
                                 sizeof(NGX_HTTP_MCIG_DEFAULT_TENANT) - 1);

    rc = mcig_queue_push(&qw->queue, &w->entry, (int32_t) ctx->priority,
                         tenant, ngx_current_msec, qcf->timeout);

    if (rc != MCIG_QUEUE_OK) {
        /* MCIG_QUEUE_BANDS_MAX priorities wait in this worker already */
        return ngx_http_mcig_queue_refuse(r, ctx, qcf,
                                          " for another priority");
    }

    /*
     * The total goes up before the band's count and down after it, so that
     * a worker killed in between leaves the total too high, never too low.
     */
    (void) ngx_atomic_fetch_add(&node->queue_waiting, 1);

    if (mcig_queue_counts_add(qw->counts, (int32_t) ctx->priority, 1) != 0) {
        /* cannot happen: the counts mirror the bands of qw->queue */
        mcig_queue_remove(&qw->queue, &w->entry);
        (void) ngx_atomic_fetch_add(&node->queue_waiting, -1);
        return ngx_http_mcig_queue_refuse(r, ctx, qcf,
                                          " for another priority");
    }

    w->request = r;
    w->qw = qw;
    w->objective = ctx->objective_node;
    w->start = ngx_current_msec;
    w->priority = ctx->priority;
    w->state = NGX_HTTP_MCIG_WAIT_WAITING;

    cln->handler = ngx_http_mcig_queue_cleanup;
    cln->data = w;

    ngx_http_set_ctx(r, w, ngx_http_mcig_queue_module);

    (void) ngx_atomic_fetch_add(
                        &node->queue_outcomes[NGX_HTTP_MCIG_QUEUE_QUEUED], 1);
    (void) ngx_atomic_fetch_add(&ctx->objective_node->queued, 1);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "mcig queue: waits in pool \"%V\", priority %i, "
                   "%ui waiting here, %ui in all",
                   &qcf->pool->upstream->host, ctx->priority,
                   (ngx_uint_t) mcig_queue_depth(&qw->queue), waiting + 1);

    /* as limit_req's delay: a client that goes away is noticed */
    if (r->connection->read->ready) {
        ngx_post_event(r->connection->read, &ngx_posted_events);

    } else if (ngx_handle_read_event(r->connection->read, 0) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_mcig_queue_resume;

    if (!qw->tick.timer_set) {
        ngx_add_timer(&qw->tick, NGX_HTTP_MCIG_QUEUE_TICK);
    }

    return NGX_AGAIN;
}


/* 429: no room in the queue */

static ngx_int_t
ngx_http_mcig_queue_refuse(ngx_http_request_t *r, ngx_http_mcig_ctx_t *ctx,
    ngx_http_mcig_queue_conf_t *qcf, const char *why)
{
    ngx_str_t                  *repeats;
    ngx_http_mcig_pool_node_t  *node;

    node = qcf->pool->node;

    repeats = ngx_http_mcig_log_limited(
                          &qcf->pool->log_limit[NGX_HTTP_MCIG_LOG_QUEUE_FULL]);

    if (repeats) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "mcig: the queue of pool \"%V\" is full%s, refused a "
                      "request of priority %i (%uA waiting, max=%ui, "
                      "max_per_priority=%ui)%V", &qcf->pool->upstream->host,
                      why, ctx->priority, node->queue_waiting, qcf->max,
                      qcf->max_per_priority, repeats);
    }

    (void) ngx_atomic_fetch_add(
                        &node->queue_outcomes[NGX_HTTP_MCIG_QUEUE_FULL], 1);
    (void) ngx_atomic_fetch_add(&ctx->objective_node->requests, 1);
    (void) ngx_atomic_fetch_add(&ctx->objective_node->queue_full, 1);

    ngx_http_mcig_set_error(r, ctx, NGX_HTTP_MCIG_ERR_QUEUE_FULL, "queue_full",
                            "pool \"%V\" is saturated and its queue is full",
                            &qcf->pool->upstream->host);

    return NGX_HTTP_TOO_MANY_REQUESTS;
}


/*
 * The client connection's write handler while the request waits: a posted
 * write event runs the phases again once the request is admitted or has
 * expired, as limit_req's delay does.
 */

static void
ngx_http_mcig_queue_resume(ngx_http_request_t *r)
{
    ngx_uint_t                     admitted;
    ngx_http_mcig_queue_wait_t    *w;
    ngx_http_mcig_queue_worker_t  *qw;

    w = ngx_http_get_module_ctx(r, ngx_http_mcig_queue_module);

    if (w == NULL || w->state == NGX_HTTP_MCIG_WAIT_WAITING) {
        /* the connection became writable while the request waits */
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "mcig queue: resumed after %M ms", w->waited);

    qw = w->qw;
    admitted = (qw->admitting == w);

    if (admitted) {
        qw->admitting = NULL;
    }

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_core_run_phases;

    ngx_http_core_run_phases(r);

    /*
     * The request holds its member now, or has ended (w may be freed):
     * other workers may offer the room that is left, and the next one
     * here may go.
     */
    if (admitted) {
        ngx_http_mcig_queue_set_admitting(qw, 0);
    }

    ngx_http_mcig_queue_dispatch(qw);
}


/* the request ends: a client that went away leaves the queue at once */

static void
ngx_http_mcig_queue_cleanup(void *data)
{
    ngx_http_mcig_queue_wait_t  *w = data;

    ngx_http_mcig_queue_worker_t  *qw;

    qw = w->qw;

    if (w->state == NGX_HTTP_MCIG_WAIT_WAITING) {
        mcig_queue_remove(&qw->queue, &w->entry);
        ngx_http_mcig_queue_leave(qw, w, NGX_HTTP_MCIG_QUEUE_ABANDONED);
        (void) ngx_atomic_fetch_add(&w->objective->requests, 1);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, w->request->connection->log, 0,
                       "mcig queue: left pool \"%V\" after %M ms",
                       &qw->conf->pool->upstream->host, w->waited);
    }

    w->state = NGX_HTTP_MCIG_WAIT_DONE;

    if (qw->admitting == w) {
        /* admitted, but gone before it could run: the next one's turn */
        qw->admitting = NULL;
        ngx_http_mcig_queue_set_admitting(qw, 0);

        if (mcig_queue_depth(&qw->queue)) {
            ngx_post_event(&qw->dispatch, &ngx_posted_events);
        }
    }
}


/*
 * Admits the first request of the queue if the pool has room and no
 * higher band waits in any worker.  One at a time: the next goes once this
 * one holds its member (ngx_http_mcig_queue_resume()), so that the room
 * is counted before it is offered again.  Never runs a request itself.
 */

static void
ngx_http_mcig_queue_dispatch(ngx_http_mcig_queue_worker_t *qw)
{
    mcig_queue_entry_t                 *e;
    ngx_http_mcig_ctx_t                *ctx;
    ngx_http_mcig_queue_wait_t         *w;
    ngx_http_upstream_mcig_srv_conf_t  *pool;

    if (qw->admitting) {
        return;
    }

    e = mcig_queue_peek(&qw->queue);

    if (e == NULL) {
        return;
    }

    pool = qw->conf->pool;

    if (ngx_http_mcig_queue_above(pool, e->priority)) {
        return;
    }

    /* another worker's request takes the room first; a later tick looks */
    if (ngx_http_mcig_queue_admitting(pool)) {
        return;
    }

    if (ngx_http_upstream_mcig_saturated(pool, e->priority)) {
        return;
    }

    (void) mcig_queue_pop(&qw->queue);

    w = ngx_http_mcig_queue_wait_of(e);

    /*
     * Marked as admitting before it stops counting as waiting, so that
     * other workers see it as one or the other until it holds its member.
     */
    ngx_http_mcig_queue_set_admitting(qw, 1);

    ngx_http_mcig_queue_leave(qw, w, NGX_HTTP_MCIG_QUEUE_DISPATCHED);

    w->state = NGX_HTTP_MCIG_WAIT_ADMITTED;
    qw->admitting = w;

    ctx = ngx_http_mcig_get_ctx(w->request);

    if (ctx) {
        /* it waited for room: its region must have some */
        ctx->queued = 1;
    }

    ngx_post_event(w->request->connection->write, &ngx_posted_events);
}


/* a request leaves the queue: the shared counts follow */

static void
ngx_http_mcig_queue_leave(ngx_http_mcig_queue_worker_t *qw,
    ngx_http_mcig_queue_wait_t *w, ngx_http_mcig_queue_outcome_e outcome)
{
    ngx_uint_t                  i;
    ngx_http_mcig_pool_node_t  *node;

    node = qw->conf->pool->node;

    (void) mcig_queue_counts_add(qw->counts, (int32_t) w->priority, -1);
    (void) ngx_atomic_fetch_add(&node->queue_waiting, -1);

    w->waited = ngx_current_msec - w->start;

    (void) ngx_atomic_fetch_add(&node->queue_outcomes[outcome], 1);

    if (outcome != NGX_HTTP_MCIG_QUEUE_DISPATCHED) {
        return;
    }

    for (i = 0; i < NGX_HTTP_MCIG_QUEUE_BUCKETS - 1; i++) {
        if (w->waited <= ngx_http_mcig_queue_bucket_ms[i]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&node->queue_wait_buckets[i], 1);
    (void) ngx_atomic_fetch_add(&node->queue_wait_ms, w->waited);
}


/* 503: the request waited the queue's timeout */

static void
ngx_http_mcig_queue_expire(ngx_http_mcig_queue_worker_t *qw,
    ngx_http_mcig_queue_wait_t *w)
{
    ngx_str_t                          *repeats;
    ngx_http_request_t                 *r;
    ngx_http_mcig_ctx_t                *ctx;
    ngx_http_upstream_mcig_srv_conf_t  *pool;

    r = w->request;
    pool = qw->conf->pool;

    ngx_http_mcig_queue_leave(qw, w, NGX_HTTP_MCIG_QUEUE_TIMEOUT);

    (void) ngx_atomic_fetch_add(&w->objective->requests, 1);
    (void) ngx_atomic_fetch_add(&w->objective->queue_timeout, 1);

    repeats = ngx_http_mcig_log_limited(
                             &pool->log_limit[NGX_HTTP_MCIG_LOG_QUEUE_TIMEOUT]);

    if (repeats) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "mcig: a request of priority %i waited %M ms in the "
                      "queue of pool \"%V\" without room at a member, "
                      "refused%V", w->priority, w->waited,
                      &pool->upstream->host, repeats);
    }

    ctx = ngx_http_mcig_get_ctx(r);

    if (ctx) {
        ngx_http_mcig_set_error(r, ctx, NGX_HTTP_MCIG_ERR_QUEUE_TIMEOUT,
                                "queue_timeout",
                                "pool \"%V\" is saturated: the request "
                                "waited %M ms in its queue",
                                &pool->upstream->host, qw->conf->timeout);
    }

    w->state = NGX_HTTP_MCIG_WAIT_EXPIRED;

    ngx_post_event(r->connection->write, &ngx_posted_events);
}


/*
 * While requests wait: expiries, and room that responses in other workers
 * freed.  Not cancelable: a worker that shuts down gracefully serves or
 * refuses its waiting requests first, within their timeout.
 */

static void
ngx_http_mcig_queue_tick_handler(ngx_event_t *ev)
{
    ngx_connection_t               *c;
    mcig_queue_entry_t             *e;
    ngx_http_mcig_queue_worker_t   *qw;

    c = ev->data;
    qw = c->data;

    while ((e = mcig_queue_expire(&qw->queue, ngx_current_msec)) != NULL) {
        ngx_http_mcig_queue_expire(qw, ngx_http_mcig_queue_wait_of(e));
    }

    ngx_http_mcig_queue_dispatch(qw);

    if (mcig_queue_depth(&qw->queue)) {
        ngx_add_timer(ev, NGX_HTTP_MCIG_QUEUE_TICK);
    }
}


static void
ngx_http_mcig_queue_dispatch_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c;

    c = ev->data;

    ngx_http_mcig_queue_dispatch(c->data);
}


/*
 * A response of the pool ended in this worker, or its figures changed:
 * its waiting requests are offered the room from a posted event, outside
 * the stack of the request that freed it.
 */

void
ngx_http_mcig_queue_wake(ngx_http_upstream_mcig_srv_conf_t *pool)
{
    ngx_http_mcig_queue_worker_t  *qw;

    qw = ngx_http_mcig_queue_conf(pool)->worker;

    if (qw && mcig_queue_depth(&qw->queue) && qw->admitting == NULL) {
        ngx_post_event(&qw->dispatch, &ngx_posted_events);
    }
}


/* some request of a priority higher than this one waits in some worker */

static ngx_uint_t
ngx_http_mcig_queue_above(ngx_http_upstream_mcig_srv_conf_t *pool,
    ngx_int_t priority)
{
    ngx_uint_t                  s;
    ngx_http_mcig_pool_node_t  *node;

    node = pool->node;

    if ((ngx_atomic_int_t) node->queue_waiting <= 0) {
        return 0;
    }

    for (s = 0; s < NGX_HTTP_MCIG_WORKER_SLOTS; s++) {
        if (mcig_queue_higher_waiting(&node->queue_by_worker[s],
                                      (int32_t) priority))
        {
            return 1;
        }
    }

    return 0;
}


/* some worker let a request go that does not hold its member yet */

static ngx_uint_t
ngx_http_mcig_queue_admitting(ngx_http_upstream_mcig_srv_conf_t *pool)
{
    return (ngx_atomic_int_t) pool->node->queue_admitting > 0;
}


/*
 * The worker's slot says it, for the counts of an exited worker to be
 * dropped, and the pool's count, for the other workers to read at once;
 * both before the request stops counting as waiting, after it holds its
 * member.
 */

static void
ngx_http_mcig_queue_set_admitting(ngx_http_mcig_queue_worker_t *qw,
    ngx_uint_t on)
{
    ngx_atomic_t  *count;

    count = &qw->conf->pool->node->queue_admitting;

    if (on) {
        qw->counts->admitting = 1;
        (void) ngx_atomic_fetch_add(count, 1);

    } else {
        qw->counts->admitting = 0;
        (void) ngx_atomic_fetch_add(count, -1);
    }

    ngx_memory_barrier();
}


/* requests of this priority waiting in all workers */

static ngx_uint_t
ngx_http_mcig_queue_band_waiting(ngx_http_upstream_mcig_srv_conf_t *pool,
    ngx_int_t priority)
{
    ngx_uint_t            s, i, n;
    mcig_queue_counts_t  *c;

    n = 0;

    for (s = 0; s < NGX_HTTP_MCIG_WORKER_SLOTS; s++) {
        c = &pool->node->queue_by_worker[s];

        for (i = 0; i < c->nbands && i < MCIG_QUEUE_BANDS_MAX; i++) {
            if (c->band[i].priority == priority) {
                n += c->band[i].waiting;
            }
        }
    }

    return n;
}


/*
 * The priorities waiting in all workers, highest first, with their
 * counts; at most max of them.  For the status handler.
 */

ngx_uint_t
ngx_http_mcig_queue_bands(ngx_http_upstream_mcig_srv_conf_t *pool,
    ngx_http_mcig_queue_band_t *bands, ngx_uint_t max)
{
    int32_t               p;
    uint32_t              waiting;
    ngx_uint_t            s, i, j, n;
    mcig_queue_counts_t  *c;

    n = 0;

    for (s = 0; s < NGX_HTTP_MCIG_WORKER_SLOTS; s++) {
        c = &pool->node->queue_by_worker[s];

        for (i = 0; i < c->nbands && i < MCIG_QUEUE_BANDS_MAX; i++) {
            p = c->band[i].priority;
            waiting = c->band[i].waiting;

            if (waiting == 0) {
                continue;
            }

            for (j = 0; j < n && bands[j].priority > p; j++) {
                /* void */
            }

            if (j < n && bands[j].priority == p) {
                bands[j].waiting += waiting;
                continue;
            }

            if (n == max) {
                continue;
            }

            ngx_memmove(&bands[j + 1], &bands[j],
                        (n - j) * sizeof(ngx_http_mcig_queue_band_t));
            bands[j].priority = p;
            bands[j].waiting = waiting;
            n++;
        }
    }

    return n;
}


ngx_http_mcig_queue_conf_t *
ngx_http_mcig_queue_conf(ngx_http_upstream_mcig_srv_conf_t *pool)
{
    return ngx_http_conf_upstream_srv_conf(pool->upstream,
                                           ngx_http_mcig_queue_module);
}


/*
 * Drops the waiting counts of a worker slot whose process has exited (its
 * requests went with it), in every pool's node, old configurations'
 * included.  The caller owns the slot.
 */

void
ngx_http_mcig_queue_release_slot(ngx_http_mcig_shctx_t *sh,
    ngx_slab_pool_t *shpool, ngx_uint_t slot, ngx_log_t *log)
{
    uint32_t                    n;
    ngx_uint_t                  i;
    ngx_atomic_uint_t           old, left;
    ngx_rbtree_node_t          *node, *root, *sentinel;
    mcig_queue_counts_t        *c;
    ngx_http_mcig_pool_node_t  *pn;

    ngx_shmtx_lock(&shpool->mutex);

    root = sh->rbtree.root;
    sentinel = sh->rbtree.sentinel;

    if (root == sentinel) {
        ngx_shmtx_unlock(&shpool->mutex);
        return;
    }

    for (node = ngx_rbtree_min(root, sentinel);
         node;
         node = ngx_rbtree_next(&sh->rbtree, node))
    {
        pn = (ngx_http_mcig_pool_node_t *) node;

        if (pn->sn.str.len == 0 || pn->sn.str.data[0] != '\x01') {
            continue;
        }

        c = &pn->queue_by_worker[slot];
        n = 0;

        if (c->admitting) {
            /* never below zero either */
            do {
                old = pn->queue_admitting;
                left = ((ngx_atomic_int_t) old > 0) ? old - 1 : 0;
            } while (!ngx_atomic_cmp_set(&pn->queue_admitting, old, left));
        }

        for (i = 0; i < c->nbands && i < MCIG_QUEUE_BANDS_MAX; i++) {
            n += c->band[i].waiting;
        }

        mcig_queue_counts_init(c);

        if (n == 0) {
            continue;
        }

        /* never below zero, whatever a killed worker left half done */
        do {
            old = pn->queue_waiting;
            left = ((ngx_atomic_int_t) old > (ngx_atomic_int_t) n)
                   ? old - n : 0;
        } while (!ngx_atomic_cmp_set(&pn->queue_waiting, old, left));

        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "mcig: dropped %uD requests that an exited worker "
                      "process counted as waiting in the queue of pool "
                      "\"%*s\"", n, pn->sn.str.len - 1, pn->sn.str.data + 1);
    }

    ngx_shmtx_unlock(&shpool->mutex);
}


/* this worker's queue of each pool that has one */

ngx_int_t
ngx_http_mcig_queue_init_process(ngx_cycle_t *cycle, ngx_int_t slot)
{
    ngx_uint_t                        i;
    ngx_http_mcig_queue_conf_t      **qcf;
    ngx_http_mcig_queue_worker_t     *qw;
    ngx_http_mcig_queue_main_conf_t  *qmcf;

    qmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_mcig_queue_module);

    if (qmcf == NULL || qmcf->queues.nelts == 0) {
        return NGX_OK;
    }

    if (slot < 0) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "mcig: requests of this worker process do not wait in "
                      "the pools' queues: it has no slot in the zone");
        return NGX_OK;
    }

    qcf = qmcf->queues.elts;

    for (i = 0; i < qmcf->queues.nelts; i++) {
        qw = ngx_pcalloc(cycle->pool, sizeof(ngx_http_mcig_queue_worker_t));
        if (qw == NULL) {
            return NGX_ERROR;
        }

        /* the bounds are the gateway's, checked against the shared counts */
        mcig_queue_init(&qw->queue, 0, 0);

        qw->conf = qcf[i];
        qw->counts = &qcf[i]->pool->node->queue_by_worker[slot];

        mcig_queue_counts_init(qw->counts);

        qw->conn.fd = (ngx_socket_t) -1;
        qw->conn.data = qw;

        qw->tick.handler = ngx_http_mcig_queue_tick_handler;
        qw->tick.data = &qw->conn;
        qw->tick.log = cycle->log;

        qw->dispatch.handler = ngx_http_mcig_queue_dispatch_handler;
        qw->dispatch.data = &qw->conn;
        qw->dispatch.log = cycle->log;

        /* the configuration is this process's own copy from here on */
        qcf[i]->worker = qw;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_mcig_queue_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                      *p;
    ngx_msec_t                   ms;
    ngx_http_mcig_queue_wait_t  *w;

    w = ngx_http_get_module_ctx(r->main, ngx_http_mcig_queue_module);

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    if (w == NULL) {
        /* never waited */
        v->len = 0;
        v->data = (u_char *) "";
        return NGX_OK;
    }

    ms = (w->state == NGX_HTTP_MCIG_WAIT_WAITING)
         ? ngx_current_msec - w->start : w->waited;

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;
    v->len = ngx_sprintf(p, "%M", ms) - p;

    return NGX_OK;
}


/*
 * mcig_queue off;
 * mcig_queue [on] [max=N] [max_per_priority=N] [timeout=time]
 *     [sheddable=shed|queue];
 */

static char *
ngx_http_mcig_queue(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mcig_queue_conf_t  *qcf = conf;

    ngx_int_t    n;
    ngx_str_t   *value, s;
    ngx_uint_t   i;
    ngx_msec_t   ms;

    if (qcf->enable != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;
    qcf->enable = 1;

    for (i = 1; i < cf->args->nelts; i++) {

        if (i == 1 && ngx_strcmp(value[i].data, "off") == 0) {
            if (cf->args->nelts > 2) {
                return "takes no parameters after \"off\"";
            }

            qcf->enable = 0;
            return NGX_CONF_OK;
        }

        if (i == 1 && ngx_strcmp(value[i].data, "on") == 0) {
            continue;
        }

        if (ngx_strncmp(value[i].data, "max=", 4) == 0) {
            n = ngx_atoi(value[i].data + 4, value[i].len - 4);

            if (n < 1 || n > 1000000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": a number of waiting "
                                   "requests from 1 to 1000000 is expected",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            qcf->max = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_per_priority=", 17) == 0) {
            n = ngx_atoi(value[i].data + 17, value[i].len - 17);

            if (n < 1 || n > 1000000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": a number of waiting "
                                   "requests from 1 to 1000000 is expected",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            qcf->max_per_priority = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            ms = ngx_parse_time(&s, 0);

            if (ms == (ngx_msec_t) NGX_ERROR || ms == 0 || ms > 3600000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": a time from 1ms to 1h "
                                   "is expected", &value[i]);
                return NGX_CONF_ERROR;
            }

            qcf->timeout = ms;
            continue;
        }

        if (ngx_strcmp(value[i].data, "sheddable=shed") == 0) {
            qcf->queue_sheddable = 0;
            continue;
        }

        if (ngx_strcmp(value[i].data, "sheddable=queue") == 0) {
            qcf->queue_sheddable = 1;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" of mcig_queue: off, or "
                           "max=, max_per_priority=, timeout=, "
                           "sheddable=shed|queue expected", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (qcf->max != NGX_CONF_UNSET_UINT
        && qcf->max_per_priority != NGX_CONF_UNSET_UINT
        && qcf->max_per_priority > qcf->max)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mcig_queue: max_per_priority=%ui is larger than "
                           "max=%ui", qcf->max_per_priority, qcf->max);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_mcig_queue_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var;

    var = ngx_http_add_variable(cf, &ngx_http_mcig_queue_time_name,
                                NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_mcig_queue_variable;

    return NGX_OK;
}


static void *
ngx_http_mcig_queue_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_mcig_queue_main_conf_t  *qmcf;

    qmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_mcig_queue_main_conf_t));
    if (qmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&qmcf->queues, cf->pool, 4,
                       sizeof(ngx_http_mcig_queue_conf_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return qmcf;
}


/*
 * Every upstream block is parsed by now: pools get the queue by default,
 * other upstreams may not have mcig_queue.  Upstream blocks are not
 * merged, so the defaults are set here.
 */

static char *
ngx_http_mcig_queue_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_mcig_queue_main_conf_t  *qmcf = conf;

    ngx_uint_t                           i;
    ngx_http_mcig_queue_conf_t          *qcf, **p;
    ngx_http_upstream_srv_conf_t       **uscfp;
    ngx_http_upstream_main_conf_t       *umcf;
    ngx_http_upstream_mcig_srv_conf_t   *pool;

    umcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_upstream_module);
    uscfp = umcf->upstreams.elts;

    for (i = 0; i < umcf->upstreams.nelts; i++) {
        if (uscfp[i]->srv_conf == NULL) {
            continue;
        }

        qcf = ngx_http_conf_upstream_srv_conf(uscfp[i],
                                              ngx_http_mcig_queue_module);
        pool = ngx_http_conf_upstream_srv_conf(uscfp[i],
                                               ngx_http_upstream_mcig_module);

        if (!pool->enabled) {
            if (qcf->enable != NGX_CONF_UNSET) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "\"mcig_queue\" in upstream \"%V\" in %s:%ui "
                              "needs \"mcig_pool\" in that upstream",
                              &uscfp[i]->host, uscfp[i]->file_name,
                              uscfp[i]->line);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_init_value(qcf->enable, 1);

        if (qcf->max == NGX_CONF_UNSET_UINT) {
            qcf->max = (qcf->max_per_priority == NGX_CONF_UNSET_UINT)
                       ? NGX_HTTP_MCIG_QUEUE_DEFAULT_MAX
                       : ngx_max(qcf->max_per_priority,
                                 NGX_HTTP_MCIG_QUEUE_DEFAULT_MAX);
        }

        ngx_conf_init_uint_value(qcf->max_per_priority, qcf->max);
        ngx_conf_init_msec_value(qcf->timeout,
                                 NGX_HTTP_MCIG_QUEUE_DEFAULT_TIMEOUT);
        ngx_conf_init_value(qcf->queue_sheddable, 0);

        qcf->pool = pool;

        if (!qcf->enable) {
            continue;
        }

        p = ngx_array_push(&qmcf->queues);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        *p = qcf;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_mcig_queue_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_mcig_queue_conf_t  *qcf;

    qcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_mcig_queue_conf_t));
    if (qcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     qcf->pool = NULL;
     *     qcf->worker = NULL;
     */

    qcf->enable = NGX_CONF_UNSET;
    qcf->max = NGX_CONF_UNSET_UINT;
    qcf->max_per_priority = NGX_CONF_UNSET_UINT;
    qcf->timeout = NGX_CONF_UNSET_MSEC;
    qcf->queue_sheddable = NGX_CONF_UNSET;

    return qcf;
}


static ngx_int_t
ngx_http_mcig_queue_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /*
     * Registered before ngx_http_mcig_module's (see config): handlers of a
     * phase run in the reverse order, so this one runs after the body is
     * read and the model known.
     */
    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_mcig_queue_handler;

    return NGX_OK;
}
