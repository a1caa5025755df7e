# The model is read from the JSON body: every form a body can take, and the
# OpenAI-style 400 answers for the bodies that do not name a model.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use Mcig;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: completions body, model and objective in variables
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_objective food-review priority=10;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://llama;
        add_header X-Mcig "$mcig_model|$mcig_objective|$mcig_priority|$mcig_pool";
    }
--- request
POST /v1/completions
{"model": "food-review-1", "prompt": "What is the best pizza in the world?", "max_tokens": 100, "temperature": 0}
--- more_headers
Content-Type: application/json
x-gateway-inference-objective: food-review
--- response_headers
X-Mcig: food-review-1|food-review|10|llama
--- response_body_like: ^127\.0\.0\.[23]$
--- error_code: 200



=== TEST 2: chat body: nested "model" keys do not count, escapes decoded
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://llama;
        add_header X-Model "$mcig_model";
    }
--- request
POST /v1/chat/completions
{"messages":[{"role":"user","content":"say \"model\"","model":"inner"}],"metadata":{"model":"x"},"mod\u0065l":"caf\u00e9-\ud83c\udf55"}
--- response_headers
X-Model: café-🍕
--- error_code: 200



=== TEST 3: duplicate top-level keys: the last one wins, as in the model server's decoder
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://llama;
        add_header X-Model "$mcig_model";
    }
--- request
POST /v1/completions
{"model":"first","prompt":"p","model":"second"}
--- response_headers
X-Model: second
--- error_code: 200



=== TEST 4: invalid JSON gets an OpenAI-style 400, logged at info
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://llama;
    }
--- request
POST /v1/completions
{"model":"m","prompt":"unterminated
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body
{"error":{"message":"the request body is not valid JSON","type":"invalid_request_error","param":null,"code":"invalid_json"}}
--- error_log
[info]
mcig: rejected request body: the request body is not valid JSON



=== TEST 5: no top-level model; the connection is kept
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://llama;
    }
--- request
POST /v1/completions
{"prompt":"hello","options":{"model":"nested"}}
--- error_code: 400
--- response_body
{"error":{"message":"the request body has no top-level \"model\" field","type":"invalid_request_error","param":null,"code":"model_missing"}}



=== TEST 6: model that is not a string
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://llama;
    }
--- request
POST /v1/completions
{"model":["a","b"],"prompt":"hello"}
--- error_code: 400
--- response_body
{"error":{"message":"the \"model\" field is not a string","type":"invalid_request_error","param":null,"code":"model_not_string"}}



=== TEST 7: model name over 256 bytes
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://llama;
    }
--- request eval
"POST /v1/completions\n" . '{"model":"' . ("m" x 257) . '"}'
--- error_code: 400
--- response_body_like: "code":"model_too_long"



=== TEST 8: control characters in the model name are refused, never reflected
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://llama;
        add_header X-Model "$mcig_model";
    }
--- request
POST /v1/completions
{"model":"evil\r\nSet-Cookie: x=1"}
--- error_code: 400
--- response_body_like: "code":"model_invalid"
--- raw_response_headers_unlike: Set-Cookie



=== TEST 9: a request without a body goes to a member
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://llama;
        add_header X-Model "[$mcig_model]";
        add_header X-Endpoint "$mcig_endpoint";
    }
--- request
GET /v1/models
--- response_headers_like
X-Model: \[\]
X-Endpoint: 127\.0\.0\.[23]:\d+
--- response_body_like: ^127\.0\.0\.[23]$



=== TEST 10: a 4 MB body spilled to a temporary file
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ {
        client_body_buffer_size 16k;
        client_max_body_size 8m;
        proxy_pass http://llama;
        add_header X-Model "$mcig_model";
    }
--- request eval
"POST /v1/chat/completions\n"
. '{"messages":[{"role":"user","content":"'
. ("What is the best pizza in the world? \\n" x 110_000)
. '"}],"model":"big-body"}'
--- response_headers
X-Model: big-body
--- error_code: 200
--- error_log
a client request body is buffered to a temporary file



=== TEST 11: a chunked body
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://llama;
        add_header X-Model "$mcig_model";
    }
--- raw_request eval
"POST /v1/completions HTTP/1.1\r
Host: localhost\r
Connection: close\r
Content-Type: application/json\r
Transfer-Encoding: chunked\r
\r
6\r
{\"mode\r
8\r
l\":\"chun\r
b\r
ked\",\"x\":1}\r
0\r
\r
"
--- response_headers
X-Model: chunked
--- error_code: 200



=== TEST 12: HTTP/2
--- http2
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://llama;
        add_header X-Model "$mcig_model";
    }
--- request
POST /v1/completions
{"model":"over-h2","prompt":"hi"}
--- response_headers
X-Model: over-h2
--- error_code: 200



=== TEST 13: a body over client_max_body_size gets a JSON 413
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ {
        client_max_body_size 1k;
        proxy_pass http://llama;
    }
--- request eval
"POST /v1/completions\n" . '{"model":"m","prompt":"' . ("x" x 2000) . '"}'
--- error_code: 413
--- response_headers
Content-Type: application/json
--- response_body_like: "code":"body_too_large"



=== TEST 14: multipart uploads are not read as JSON
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://llama;
        add_header X-Model "[$mcig_model]";
    }
--- request
POST /v1/audio/transcriptions
--x
Content-Disposition: form-data; name="model"

whisper
--x--
--- more_headers
Content-Type: multipart/form-data; boundary=x
--- response_headers
X-Model: []
--- error_code: 200



=== TEST 15: the gateway headers are consumed, other headers pass
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_objective food-review priority=10;
    }
_EOC_
--- config
    location /echo-headers {
        proxy_pass http://llama;
        add_header X-Objective "$mcig_objective";
    }
--- request
POST /echo-headers
{"model":"m"}
--- more_headers
X-Gateway-Inference-Objective: food-review
x-gateway-inference-fairness-id: tenant-a
X-Other: kept
--- response_headers
X-Objective: food-review
--- response_body
objective=[] fairness=[] other=[kept]



=== TEST 16: "mcig off" leaves a location alone
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ {
        mcig off;
        proxy_pass http://llama;
        add_header X-Model "[$mcig_model]";
    }
--- request
POST /v1/completions
not json at all
--- response_headers
X-Model: []
--- error_code: 200



=== TEST 17: a refused body keeps the connection alive
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://llama;
    }
--- pipelined_requests eval
["POST /v1/completions\n{\"prompt\":\"no model\"}",
 "POST /v1/completions\n{\"model\":\"m\"}"]
--- error_code eval
[400, 200]
--- response_body eval
["{\"error\":{\"message\":\"the request body has no top-level \\\"model\\\" field\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"model_missing\"}}\n", "127.0.0.2\n"]
