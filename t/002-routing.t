# Routing by model with stock nginx: map $mcig_model to a pool and
# proxy_pass to the variable; "mcig on" reads the body before proxy_pass.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use Mcig;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: two models, two pools
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream pool_a {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }

    upstream pool_b {
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }

    map $mcig_model $pool {
        food-review-1  pool_a;
        default        pool_b;
    }
_EOC_
--- config
    location /v1/ {
        mcig on;
        proxy_pass http://$pool;
        add_header X-Pool "$mcig_pool $mcig_model";
    }
--- pipelined_requests eval
["POST /v1/completions\n{\"model\":\"food-review-1\",\"prompt\":\"pizza\"}",
 "POST /v1/completions\n{\"prompt\":\"pizza\",\"model\":\"other-model\"}",
 "POST /v1/chat/completions\n{\"model\":\"food-review-1\",\"messages\":[]}"]
--- response_body eval
["127.0.0.2\n", "127.0.0.3\n", "127.0.0.2\n"]
--- response_headers eval
["X-Pool: pool_a food-review-1", "X-Pool: pool_b other-model",
 "X-Pool: pool_a food-review-1"]



=== TEST 2: the body is still checked before routing
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream pool_a {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }

    map $mcig_model $pool {
        default  pool_a;
    }
_EOC_
--- config
    location /v1/ {
        mcig on;
        proxy_pass http://$pool;
    }
--- request
POST /v1/completions
{"model": 7}
--- error_code: 400
--- response_body_like: "code":"model_not_string"



=== TEST 3: the access log shows model, objective and priority
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_objective food-review priority=10;
    }

    log_format mcig 'mcig-log model=$mcig_model objective=$mcig_objective '
                    'priority=$mcig_priority pool=$mcig_pool '
                    'endpoint=$mcig_endpoint error=$mcig_error';
_EOC_
--- config
    location /v1/ {
        access_log logs/error.log mcig;
        proxy_pass http://llama;
    }
--- request
POST /v1/completions
{"model":"food-review-1","prompt":"What is the best pizza in the world?"}
--- more_headers
x-gateway-inference-objective: food-review
--- error_code: 200
--- error_log eval
qr/mcig-log model=food-review-1 objective=food-review priority=10 pool=llama endpoint=127\.0\.0\.2:\d+ error=-?$/



=== TEST 4: a refused body is logged with its pool
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }

    log_format mcig 'mcig-log status=$status pool=$mcig_pool error=$mcig_error';
_EOC_
--- config
    location /v1/ {
        access_log logs/error.log mcig;
        proxy_pass http://llama;
    }
--- request
POST /v1/completions
{"prompt":"no model"}
--- error_code: 400
--- error_log
mcig-log status=400 pool=llama error=model_missing
