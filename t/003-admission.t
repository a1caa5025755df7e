# Admission: sheddable requests get 429 when the pool is saturated, every
# request gets 503 when no member is available; both as OpenAI-style JSON
# with Retry-After.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use Mcig;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: saturated pool: a sheddable request is refused with 429
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream saturated_a {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_max_in_flight 1;
        mcig_objective batch priority=-1;
        mcig_objective food-review priority=10;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://saturated_a;
        add_header X-Priority "$mcig_priority" always;
    }
--- init
Mcig::hold("/v1/slow", 2, 4);
--- request
POST /v1/completions
{"model":"m","prompt":"p"}
--- more_headers
x-gateway-inference-objective: batch
--- error_code: 429
--- response_headers
Retry-After: 1
Content-Type: application/json
X-Priority: -1
--- response_body
{"error":{"message":"pool \"saturated_a\" is saturated, sheddable request dropped","type":"rate_limit_error","param":null,"code":"pool_saturated"}}
--- error_log
mcig: pool "saturated_a" is saturated, shed a request of priority -1



=== TEST 2: saturated pool without a queue: priority >= 0 still goes to a member
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream saturated_b {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_queue off;
        mcig_max_in_flight 1;
        mcig_objective batch priority=-1;
        mcig_objective food-review priority=10;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://saturated_b;
    }
--- init
Mcig::hold("/v1/slow", 2, 4);
--- pipelined_requests eval
["POST /v1/completions\n{\"model\":\"m\"}",
 "POST /v1/completions\n{\"model\":\"m\"}"]
--- more_headers eval
["x-gateway-inference-objective: food-review", "x-gateway-inference-objective: unknown-objective"]
--- error_code eval
[200, 200]
--- response_body_like eval
["^127\\.0\\.0\\.[23]\$", "^127\\.0\\.0\\.[23]\$"]



=== TEST 3: a pool with room serves sheddable requests
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream with_room {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_max_in_flight 2;
        mcig_objective batch priority=-1;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://with_room;
    }
--- init
Mcig::hold("/v1/slow", 2, 4);
--- request
POST /v1/completions
{"model":"m"}
--- more_headers
x-gateway-inference-objective: batch
--- error_code: 200



=== TEST 4: every member down: 503 whatever the priority
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT down;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT down;
        mcig_pool;
        mcig_objective food-review priority=10;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://llama;
    }
--- request
POST /v1/completions
{"model":"m"}
--- more_headers
x-gateway-inference-objective: food-review
--- error_code: 503
--- response_headers
Retry-After: 1
Content-Type: application/json
--- response_body
{"error":{"message":"no member of pool \"llama\" is available","type":"server_error","param":null,"code":"no_member_available"}}
--- error_log
[warn]
mcig: no member of pool "llama" can take requests: all are down, failed or unhealthy



=== TEST 5: members failed by max_fails: 503 while they are out
--- http_config
    upstream llama {
        # failures counted for all worker processes
        zone llama 64k;
        server 127.0.0.5:1 max_fails=1 fail_timeout=30s;
        server 127.0.0.6:1 max_fails=1 fail_timeout=30s;
        mcig_pool;
    }
--- config
    location /v1/ {
        proxy_pass http://llama;
    }
--- init
Mcig::hold("/v1/models", 1, 2);
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 503
--- response_body_like: "code":"no_member_available"
--- error_log
mcig: no member of pool "llama" can take requests



=== TEST 6: a member that refuses connections: a JSON 502
--- http_config
    upstream llama {
        server 127.0.0.5:1;
        mcig_pool;
    }
--- config
    location /v1/ {
        proxy_pass http://llama;
    }
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 502
--- response_headers
Content-Type: application/json
--- response_body
{"error":{"message":"the model server failed or could not be reached (status 502)","type":"server_error","param":null,"code":"model_server_error"}}
--- error_log
connect() failed (111: Connection refused)



=== TEST 7: a retry never picks a member already tried
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.5:1;
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://llama;
        proxy_next_upstream error timeout;
    }
--- pipelined_requests eval
["POST /v1/completions\n{\"model\":\"m\"}",
 "POST /v1/completions\n{\"model\":\"m\"}",
 "POST /v1/completions\n{\"model\":\"m\"}"]
--- error_code eval
[200, 200, 200]
--- response_body eval
["127.0.0.2\n", "127.0.0.2\n", "127.0.0.2\n"]
