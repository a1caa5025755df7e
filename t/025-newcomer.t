# What a newcomer meets first: a compressed request body is refused with a
# 415 that says so, before it is read; a proxy_pass with variables that
# names no pool says which name it did not find, where a member that fails
# still gets the model server's 502.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use Mcig;
use IO::Compress::Gzip qw(gzip $GzipError);

# the body of an OpenAI client that compresses its requests
our $gzipped;
gzip(\'{"model":"m","prompt":"hello"}' => \$gzipped)
    or die "gzip: $GzipError";

our $pool = $Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_

# routing by model as in the README, with a default that names no pool
our $map = <<'_EOC_';
    upstream vllm-m {
        server 127.0.0.5:1;
        mcig_pool;
    }

    map $mcig_model $pool {
        m           vllm-m;
        default     vllm-other;
    }
_EOC_

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a gzip-encoded body: 415, named, before the body is read
--- http_config eval
$::pool
--- config
    location /v1/ {
        proxy_pass http://llama;
    }
--- request eval
"POST /v1/completions\n$::gzipped"
--- more_headers
Content-Type: application/json
Content-Encoding: gzip
--- error_code: 415
--- response_headers
Content-Type: application/json
--- response_body
{"error":{"message":"the request body is gzip-encoded; send it uncompressed (Content-Encoding: identity)","type":"invalid_request_error","param":null,"code":"unsupported_content_encoding"}}
--- error_log eval
qr/\[info\] .*mcig: rejected request body: Content-Encoding "gzip", not read/
--- no_error_log
[warn]
[error]
mcig read body



=== TEST 2: the coding is compared without case, and named as sent
--- http_config eval
$::pool
--- config
    location /v1/ {
        proxy_pass http://llama;
    }
--- request eval
"POST /v1/completions\n$::gzipped"
--- more_headers
Content-Encoding: GZIP
--- error_code: 415
--- response_body_like: "message":"the request body is GZIP-encoded; send it uncompressed \(Content-Encoding: identity\)",.*"code":"unsupported_content_encoding"
--- error_log
Content-Encoding "GZIP", not read



=== TEST 3: Content-Encoding: identity, in any case, is an uncompressed body
--- http_config eval
$::pool
--- config
    location /v1/ {
        proxy_pass http://llama;
        add_header X-Model "$mcig_model";
    }
--- request
POST /v1/completions
{"model":"m"}
--- more_headers
Content-Encoding: identity
Content-Encoding: IDENTITY
--- error_code: 200
--- response_headers
X-Model: m
--- response_body
127.0.0.2
--- no_error_log
rejected request body



=== TEST 4: a second Content-Encoding header adds a coding
--- http_config eval
$::pool
--- config
    location /v1/ {
        proxy_pass http://llama;
    }
--- request eval
"POST /v1/completions\n$::gzipped"
--- more_headers
Content-Encoding: identity
Content-Encoding: gzip
--- error_code: 415
--- response_body_like: "message":"the request body is gzip-encoded;



=== TEST 5: the refused body is discarded and the connection kept
--- http_config eval
$::pool
--- config
    location /v1/ {
        proxy_pass http://llama;
    }
--- pipelined_requests eval
["POST /v1/completions\n$::gzipped", "POST /v1/chat/completions\n$::gzipped"]
--- more_headers
Content-Encoding: gzip
--- error_code eval
[415, 415]
--- response_body_like eval
['"code":"unsupported_content_encoding"', '"code":"unsupported_content_encoding"']



=== TEST 6: a model mapped to no pool, without a resolver: the name, in JSON
--- http_config eval
$::map
--- config
    location /v1/ {
        mcig on;
        proxy_pass http://$pool;
    }
--- request
POST /v1/completions
{"model":"other"}
--- error_code: 502
--- response_headers
Content-Type: application/json
--- response_body
{"error":{"message":"no pool named \"vllm-other\" is defined for this request","type":"server_error","param":null,"code":"pool_not_found"}}
--- error_log
no resolver defined to resolve vllm-other



=== TEST 7: a model mapped to a pool whose member refuses: the model server's 502
--- http_config eval
$::map
--- config
    location /v1/ {
        mcig on;
        proxy_pass http://$pool;
    }
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 502
--- response_body
{"error":{"message":"the model server failed or could not be reached (status 502)","type":"server_error","param":null,"code":"model_server_error"}}
--- error_log
connect() failed (111: Connection refused)
--- no_error_log
no resolver defined



=== TEST 8: with a resolver, a name it cannot resolve keeps the 502 of today
--- http_config eval
$::map
--- config
    location /v1/ {
        mcig on;
        resolver 127.0.0.1:1;
        resolver_timeout 500ms;
        proxy_pass http://$pool;
    }
--- request
POST /v1/completions
{"model":"other"}
--- error_code: 502
--- response_body
{"error":{"message":"the model server failed or could not be reached (status 502)","type":"server_error","param":null,"code":"model_server_error"}}
--- error_log
vllm-other could not be resolved
