
/*
 * Copyright (C) ngx_mcig_module authors
 */


#ifndef _NGX_HTTP_MCIG_CURL_H_INCLUDED_
#define _NGX_HTTP_MCIG_CURL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <curl/curl.h>


typedef struct ngx_http_mcig_curl_transfer_s  ngx_http_mcig_curl_transfer_t;

typedef void (*ngx_http_mcig_curl_done_pt)(ngx_http_mcig_curl_transfer_t *t,
    CURLcode result);


/* one easy handle, reused for its keep-alive connection */
struct ngx_http_mcig_curl_transfer_s {
    CURL                          *easy;
    ngx_http_mcig_curl_done_pt     done;
    void                          *data;
    unsigned                       active:1;
};


ngx_int_t ngx_http_mcig_curl_init(ngx_cycle_t *cycle);
ngx_int_t ngx_http_mcig_curl_start(ngx_http_mcig_curl_transfer_t *t,
    const char **err);
void ngx_http_mcig_curl_keep_connections(ngx_uint_t n);
void ngx_http_mcig_curl_cancel(ngx_http_mcig_curl_transfer_t *t);
void ngx_http_mcig_curl_exit(void);


#endif /* _NGX_HTTP_MCIG_CURL_H_INCLUDED_ */
