# The pool's request deadline bounds the whole exchange with the pool.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use Mcig;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: no response header by the deadline: a JSON 504
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_request_timeout 1s;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://llama;
        proxy_read_timeout 60s;
    }
--- request
POST /v1/slow
{"model":"m"}
--- error_code: 504
--- response_headers
Content-Type: application/json
--- response_body
{"error":{"message":"the request to pool \"llama\" did not complete within 1000 ms","type":"server_error","param":null,"code":"deadline_exceeded"}}
--- error_log
mcig: request to pool "llama" passed its deadline of 1000 ms at member 127.0.0.2
--- timeout: 5



=== TEST 2: a response already streaming is cut at the deadline
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_request_timeout 1500ms;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://llama;
        proxy_buffering off;
        proxy_read_timeout 60s;
    }
--- request
POST /v1/stream
{"model":"m","stream":true}
--- ignore_response
--- error_log
response cut
upstream timed out
--- timeout: 5



=== TEST 3: the deadline does not retry on another member
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_request_timeout 1s;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://llama;
        proxy_next_upstream error timeout;
    }
--- request
POST /v1/slow
{"model":"m"}
--- error_code: 504
--- response_body_like: "code":"deadline_exceeded"
--- grep_error_log eval: qr/passed its deadline/
--- grep_error_log_out
passed its deadline
--- timeout: 5



=== TEST 4: a fast response is not affected
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_request_timeout 1s;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://llama;
    }
--- request
POST /v1/completions
{"model":"m"}
--- response_body
127.0.0.2
--- no_error_log
passed its deadline
