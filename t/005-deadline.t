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



=== TEST 3: an event stream cut at the deadline ends with an error event
--- http_config eval
<<'_EOC_';
    server {
        listen 127.0.0.4:$TEST_NGINX_SERVER_PORT;

        location /v1/ {
            default_type text/event-stream;
            limit_rate_after 200;
            limit_rate 1;
            return 200 "data: {\"n\":1}\n\ndata: {\"n\":2}\n\ndata: {\"n\":3}\n\ndata: {\"n\":4}\n\ndata: {\"n\":5}\n\ndata: {\"n\":6}\n\ndata: {\"n\":7}\n\ndata: {\"n\":8}\n\ndata: {\"n\":9}\n\ndata: {\"n\":10}\n\ndata: {\"n\":11}\n\ndata: {\"n\":12}\n\ndata: {\"n\":13}\n\ndata: {\"n\":14}\n\ndata: {\"n\":15}\n\ndata: {\"n\":16}\n\ndata: [DONE]\n\n";
        }
    }

    upstream llama {
        server 127.0.0.4:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_request_timeout 1s;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://llama;
        proxy_buffering off;
        proxy_read_timeout 60s;
    }

    location /buffered/ {
        proxy_pass http://llama/v1/;
        proxy_read_timeout 60s;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"m\",\"stream\":true}",
 "POST /buffered/chat/completions\n{\"model\":\"m\",\"stream\":true}"]
--- response_headers eval
["Content-Type: text/event-stream", "Content-Type: text/event-stream"]
--- response_body_like eval
my $event = "\n\n" . 'data: {"error":{"message":"the request to pool \\"llama\\" '
    . 'did not complete within 1000 ms; the response was cut",'
    . '"type":"server_error","param":null,"code":"deadline_exceeded"}}' . "\n\n";
# buffered, what nginx held is lost with the cut
[qr/^data: \{"n":1\}\n\n.*\Q$event\E$/s, qr/^(?:data: .*)?\Q$event\E$/s]
--- error_log
response cut
--- no_error_log
[alert]
--- timeout: 5



=== TEST 4: the deadline does not retry on another member
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



=== TEST 5: a fast response is not affected
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
