
/*
 * Copyright (C) ngx_mcig_module authors
 *
 * libcurl's multi-socket interface driven by nginx's event loop, one multi
 * handle per worker: curl's sockets are wrapped in nginx connections with
 * level-triggered events (curl does not drain sockets the way nginx's
 * edge-triggered handlers expect), curl's timeout is one nginx timer, and a
 * finished transfer calls back its owner.  Nothing here blocks: name
 * resolution is asynchronous (checked at start) and signals are off.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_mcig_curl.h"

#include <openssl/err.h>


static int ngx_http_mcig_curl_socket(CURL *easy, curl_socket_t s, int what,
    void *userp, void *socketp);
static int ngx_http_mcig_curl_timer(CURLM *multi, long timeout_ms,
    void *userp);
static void ngx_http_mcig_curl_event_handler(ngx_event_t *ev);
static void ngx_http_mcig_curl_timer_handler(ngx_event_t *ev);
static void ngx_http_mcig_curl_check_done(void);
static void ngx_http_mcig_curl_action(curl_socket_t fd, int what);


static CURLM             *ngx_http_mcig_multi;
static ngx_event_t        ngx_http_mcig_curl_timer_event;
static ngx_connection_t   ngx_http_mcig_curl_timer_conn;
static ngx_log_t         *ngx_http_mcig_curl_log;
static ngx_uint_t         ngx_http_mcig_curl_exiting;


ngx_int_t
ngx_http_mcig_curl_init(ngx_cycle_t *cycle)
{
    curl_version_info_data  *info;

    if (ngx_http_mcig_multi) {
        return NGX_OK;
    }

    ngx_http_mcig_curl_exiting = 0;

    info = curl_version_info(CURLVERSION_NOW);

    if (!(info->features & CURL_VERSION_ASYNCHDNS)) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "mcig: libcurl %s resolves names synchronously, which "
                      "would block nginx workers", info->version);
        return NGX_ERROR;
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "mcig: curl_global_init() failed");
        return NGX_ERROR;
    }

    ngx_http_mcig_multi = curl_multi_init();
    if (ngx_http_mcig_multi == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "mcig: curl_multi_init() failed");
        return NGX_ERROR;
    }

    ngx_http_mcig_curl_log = cycle->log;

    curl_multi_setopt(ngx_http_mcig_multi, CURLMOPT_SOCKETFUNCTION,
                      ngx_http_mcig_curl_socket);
    curl_multi_setopt(ngx_http_mcig_multi, CURLMOPT_TIMERFUNCTION,
                      ngx_http_mcig_curl_timer);

    /* ev->data must look like a connection: debug logging reads its fd */
    ngx_http_mcig_curl_timer_conn.fd = (ngx_socket_t) -1;

    ngx_http_mcig_curl_timer_event.handler = ngx_http_mcig_curl_timer_handler;
    ngx_http_mcig_curl_timer_event.data = &ngx_http_mcig_curl_timer_conn;
    ngx_http_mcig_curl_timer_event.log = cycle->log;
    ngx_http_mcig_curl_timer_event.cancelable = 1;

    return NGX_OK;
}


/*
 * On failure *err says why; the owner logs it, as only the owner knows
 * which member and URL the transfer was for.
 */

ngx_int_t
ngx_http_mcig_curl_start(ngx_http_mcig_curl_transfer_t *t, const char **err)
{
    CURLMcode  rc;

    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
    curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);

    rc = curl_multi_add_handle(ngx_http_mcig_multi, t->easy);

    if (rc != CURLM_OK) {
        *err = curl_multi_strerror(rc);
        return NGX_ERROR;
    }

    t->active = 1;

    return NGX_OK;
}


/*
 * libcurl sizes its connection cache by the transfers added at the time;
 * probes are added only while they run, so without this the cache would
 * keep a handful of connections and most scrapes would open a new one.
 */

void
ngx_http_mcig_curl_keep_connections(ngx_uint_t n)
{
    curl_multi_setopt(ngx_http_mcig_multi, CURLMOPT_MAXCONNECTS, (long) n);
}


void
ngx_http_mcig_curl_cancel(ngx_http_mcig_curl_transfer_t *t)
{
    if (t->active) {
        curl_multi_remove_handle(ngx_http_mcig_multi, t->easy);
        t->active = 0;
    }
}


void
ngx_http_mcig_curl_exit(void)
{
    if (ngx_http_mcig_multi == NULL) {
        return;
    }

    if (ngx_http_mcig_curl_timer_event.timer_set) {
        ngx_del_timer(&ngx_http_mcig_curl_timer_event);
    }

    /* the owners remove and clean up their easy handles first */
    ngx_http_mcig_curl_exiting = 1;
    curl_multi_cleanup(ngx_http_mcig_multi);
    ngx_http_mcig_multi = NULL;

    curl_global_cleanup();
}


static int
ngx_http_mcig_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp,
    void *socketp)
{
    ngx_connection_t  *c = socketp;

    ngx_uint_t  flags;

    if (what == CURL_POLL_REMOVE) {
        if (c == NULL) {
            return 0;
        }

        /*
         * curl closes the socket itself after this call, or keeps it idle
         * in its cache.  But libcurl 7.88 reports a connect that timed out
         * after closing its socket, and at exit may do so for a member that
         * went away: the events are then dropped without asking epoll, for
         * which the descriptor no longer exists
         */

        flags = (ngx_http_mcig_curl_exiting
                 || (fcntl(s, F_GETFD) == -1 && ngx_errno == EBADF))
                ? NGX_CLOSE_EVENT : 0;

        if (c->read->active) {
            ngx_del_event(c->read, NGX_READ_EVENT, flags);
        }

        if (c->write->active) {
            ngx_del_event(c->write, NGX_WRITE_EVENT, flags);
        }

        curl_multi_assign(ngx_http_mcig_multi, s, NULL);

        c->fd = (ngx_socket_t) -1;
        ngx_free_connection(c);

        return 0;
    }

    if (c == NULL) {
        c = ngx_get_connection(s, ngx_http_mcig_curl_log);
        if (c == NULL) {
            return -1;
        }

        c->read->handler = ngx_http_mcig_curl_event_handler;
        c->write->handler = ngx_http_mcig_curl_event_handler;
        c->read->log = ngx_http_mcig_curl_log;
        c->write->log = ngx_http_mcig_curl_log;

        curl_multi_assign(ngx_http_mcig_multi, s, c);
    }

    if (what & CURL_POLL_IN) {
        if (!c->read->active
            && ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
               != NGX_OK)
        {
            return -1;
        }

    } else if (c->read->active) {
        ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }

    if (what & CURL_POLL_OUT) {
        if (!c->write->active
            && ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
               != NGX_OK)
        {
            return -1;
        }

    } else if (c->write->active) {
        ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }

    return 0;
}


static int
ngx_http_mcig_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    ngx_event_t  *ev = &ngx_http_mcig_curl_timer_event;

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }

    if (timeout_ms < 0) {
        return 0;
    }

    /* 0 means "as soon as possible": curl must not be called from here */
    ngx_add_timer(ev, (ngx_msec_t) (timeout_ms ? timeout_ms : 1));

    return 0;
}


static void
ngx_http_mcig_curl_event_handler(ngx_event_t *ev)
{
    curl_socket_t      fd;
    ngx_connection_t  *c;

    c = ev->data;

    /* the connection may be freed by curl's socket callback below */
    fd = c->fd;

    ngx_http_mcig_curl_action(fd, ev->write ? CURL_CSELECT_OUT
                                            : CURL_CSELECT_IN);
}


static void
ngx_http_mcig_curl_timer_handler(ngx_event_t *ev)
{
    ngx_http_mcig_curl_action(CURL_SOCKET_TIMEOUT, 0);
}


static void
ngx_http_mcig_curl_action(curl_socket_t fd, int what)
{
    int  running;

    curl_multi_socket_action(ngx_http_mcig_multi, fd, what, &running);

    ngx_http_mcig_curl_check_done();

    /*
     * libcurl shares OpenSSL with nginx in this process and may leave
     * errors of a failed handshake on its error queue; nginx's own TLS
     * code would find them later and log "ignoring stale global SSL
     * error" at [alert]
     */
    ERR_clear_error();
}


static void
ngx_http_mcig_curl_check_done(void)
{
    int                             left;
    CURL                           *easy;
    CURLMsg                        *msg;
    CURLcode                        result;
    ngx_http_mcig_curl_transfer_t  *t;

    while ((msg = curl_multi_info_read(ngx_http_mcig_multi, &left))) {

        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        easy = msg->easy_handle;
        result = msg->data.result;

        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &t);
        curl_multi_remove_handle(ngx_http_mcig_multi, easy);

        t->active = 0;
        t->done(t, result);
    }
}
