# Hostile input: model names and gateway headers with CR/LF, NUL, quotes,
# invalid UTF-8 and 1 MB values, deep nesting, numbers where strings
# belong, slow bodies.  Each gets a clear answer (an OpenAI-style JSON error
# that JSON::PP parses, or nginx's own refusal before any location is
# known), nothing of it is reflected raw into response headers, the JSON or
# the error log, and the worker keeps serving (a normal request follows in
# the same block; Mcig.pm fails any block with an [alert] or [crit]).
# Also: nothing is reported where mcig_status is not configured, and the
# metrics bearer token never reaches the log or the status pages.

use Test::Nginx::Socket 'no_plan';
use JSON::PP;
use lib 't/lib';
use Mcig;

# Members as in Mcig.pm, plus /v1/echo: the body the member received,
# passed through a header ($request_body is read by proxy_pass).
our $members = $Mcig::members . <<'_EOC_';
    server {
        listen 127.0.0.4:$TEST_NGINX_SERVER_PORT;
        client_max_body_size 16m;

        location /v1/echo {
            proxy_pass http://127.0.0.4:$TEST_NGINX_SERVER_PORT/body;
            proxy_set_header X-Body $request_body;
        }

        location = /metrics-401 {
            return 401;
        }

        location = /body {
            default_type text/plain;
            return 200 "$http_x_body\n";
        }

        location /v1/ {
            default_type text/plain;
            return 200 "$server_addr\n";
        }
    }
_EOC_

# The gateway: one pool, the module's variables in response headers and,
# through an access log written into the error log, in the log that the
# no_error_log checks read.
our $http = $members . <<'_EOC_';
    log_format hostile 'mcig-access status=$status model="$mcig_model" '
                       'target="$mcig_target_model" '
                       'objective="$mcig_objective" error=$mcig_error';

    large_client_header_buffers 4 2m;
    client_max_body_size 4m;

    upstream llama {
        server 127.0.0.4:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_objective critical priority=5;
    }
_EOC_

our $config = <<'_EOC_';
    location /v1/ {
        proxy_pass http://llama;
        add_header X-Model "$mcig_model" always;
        add_header X-Target "$mcig_target_model" always;
        add_header X-Objective "$mcig_objective" always;
        access_log logs/error.log hostile;
    }
_EOC_

# A response body as a line to compare: an OpenAI error as "type code
# param=null keys=..." when it parses as JSON (JSON::PP refuses raw control
# bytes and invalid UTF-8), anything else as it is.
sub json_error {
    my $body = shift;

    return $body unless $body =~ /^\{/;

    my $doc = eval { JSON::PP->new->utf8->decode($body) };
    return "invalid JSON ($@): $body" unless $doc;

    my $e = $doc->{error};
    return "not an OpenAI error: $body" unless ref $e eq 'HASH';

    return sprintf("%s %s param=%s keys=%s raw=%s\n", $e->{type}, $e->{code},
                   defined $e->{param} ? $e->{param} : "null",
                   join(",", sort keys %$e),
                   ($body =~ /[\x00-\x1f\x7f-\xff](?!\z)/ ? "yes" : "no"));
}

our $filter = \&json_error;

# In any line of the module (or of the access log above): no raw control
# byte, no byte of the hostile UTF-8, no header forged from a payload.
# nginx's own lines above debug escape what they quote.
our $clean_log = [
    qr/^\S+ \S+ \[\w+\] \d+#\d+: (?:\*\d+ )?(?:\w+ ){0,2}mcig\b[^\n]*[\x00-\x08\x0b-\x1f\x7f-\xff]/,
    qr/^mcig-access[^\n]*[\x00-\x08\x0b-\x1f\x7f-\xff]/,
    qr/\[(?:info|notice|warn|error)\][^\n]*[\x00-\x08\x0b-\x1f\x7f-\xff]/,
    qr/mcig[^\n]*X-Evil/i,
];

# and none in the response headers, besides the CR LF that end each line
our $clean_headers = qr/[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\xff]|\r(?!\n)|(?<!\r)\n|X-Evil/i;

our $normal = "POST /v1/completions\n{\"model\":\"m\"}";

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value('http_config', $::http) unless defined $block->http_config;
    $block->set_value('config', $::config) unless defined $block->config;

    if (!defined $block->no_error_log) {
        $block->set_value('no_error_log', $::clean_log);
    }
});

our $token_http = $http . <<'_EOC_';
    upstream with_token {
        server 127.0.0.4:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics path=/metrics-401 token_file=$TEST_NGINX_SERVER_ROOT/html/token;
        mcig_balancing_mode custom_metrics;
    }
_EOC_

our $token_config = <<'_EOC_';
    location /v1/ {
        proxy_pass http://with_token;
    }

    location = /s {
        mcig_status;
    }

    location = /p {
        mcig_status prometheus;
    }
_EOC_

our $token_file = ">>> token\n Zq9-t0ken-s3cret-Zq9\n";

no_shuffle();
run_tests();

__DATA__

=== TEST 1: escaped CR/LF in the model: 400 model_invalid, no header forged, nothing raw in the log
--- request
POST /v1/completions
{"model":"evil\r\nX-Evil: 1\r\n"}
--- error_code: 400
--- response_body_filters eval
$::filter
--- response_body
invalid_request_error model_invalid param=null keys=code,message,param,type raw=no
--- raw_response_headers_unlike eval
$::clean_headers
--- error_log
mcig: rejected request body: the "model" name is empty, is not UTF-8 or contains control characters
mcig-access status=400 model="" target="" objective="" error=model_invalid



=== TEST 2: escaped NUL, a lone surrogate, a C1 control (NEL), a raw DEL and raw NEL in the model
--- request eval
["POST /v1/completions\n{\"model\":\"a\\u0000b\"}",
 "POST /v1/completions\n{\"model\":\"a\\ud800b\"}",
 "POST /v1/completions\n{\"model\":\"a\\u0085X-Evil: 1\"}",
 "POST /v1/completions\n{\"model\":\"a\x7fb\"}",
 "POST /v1/completions\n{\"model\":\"a\xc2\x85X-Evil: 1\"}",
 $::normal]
--- error_code eval
[400, 400, 400, 400, 400, 200]
--- response_body_filters eval
$::filter
--- response_body eval
[("invalid_request_error model_invalid param=null keys=code,message,param,type raw=no\n") x 5,
 "127.0.0.4\n"]
--- raw_response_headers_unlike eval
[($::clean_headers) x 6]



=== TEST 3: raw CR, LF and NUL bytes inside the model string are not JSON
--- request eval
["POST /v1/completions\n{\"model\":\"a\rX-Evil: 1\"}",
 "POST /v1/completions\n{\"model\":\"a\nX-Evil: 1\"}",
 "POST /v1/completions\n{\"model\":\"a\0b\"}",
 $::normal]
--- error_code eval
[400, 400, 400, 200]
--- response_body_filters eval
$::filter
--- response_body eval
["invalid_request_error invalid_json param=null keys=code,message,param,type raw=no\n",
 "invalid_request_error invalid_json param=null keys=code,message,param,type raw=no\n",
 "invalid_request_error invalid_json param=null keys=code,message,param,type raw=no\n",
 "127.0.0.4\n"]
--- raw_response_headers_unlike eval
[$::clean_headers, $::clean_headers, $::clean_headers, $::clean_headers]



=== TEST 4: invalid UTF-8 in the model (raw bytes): 400 model_invalid, the bytes nowhere
--- request eval
["POST /v1/completions\n{\"model\":\"\xff\xfe\"}",
 "POST /v1/completions\n{\"model\":\"caf\xc3\"}",
 "POST /v1/completions\n{\"model\":\"\xed\xa0\x80\"}",
 "POST /v1/completions\n{\"model\":\"\xc0\xaf\"}",
 $::normal]
--- error_code eval
[400, 400, 400, 400, 200]
--- response_body_filters eval
$::filter
--- response_body eval
["invalid_request_error model_invalid param=null keys=code,message,param,type raw=no\n",
 "invalid_request_error model_invalid param=null keys=code,message,param,type raw=no\n",
 "invalid_request_error model_invalid param=null keys=code,message,param,type raw=no\n",
 "invalid_request_error model_invalid param=null keys=code,message,param,type raw=no\n",
 "127.0.0.4\n"]
--- raw_response_headers_unlike eval
[$::clean_headers, $::clean_headers, $::clean_headers, $::clean_headers, $::clean_headers]



=== TEST 5: quotes and backslashes are a valid model name: escaped in the log, not in the way of the JSON sent on
--- request
POST /v1/echo
{"model":"a\"b\\c","prompt":"hi"}
--- error_code: 200
--- response_headers
X-Model: a"b\c
--- response_body
{"model":"a\"b\\c","prompt":"hi"}
--- error_log
mcig-access status=200 model="a\x22b\x5Cc"



=== TEST 6: a 1 MB model value: 400 model_too_long, short answer, the value nowhere
--- request eval
["POST /v1/completions\n{\"model\":\"" . ("A" x (1 << 20)) . "\"}", $::normal]
--- error_code eval
[400, 200]
--- response_body_filters eval
$::filter
--- response_body eval
["invalid_request_error model_too_long param=null keys=code,message,param,type raw=no\n", "127.0.0.4\n"]
--- no_error_log eval
[@$::clean_log, qr/AAAAAAAAAAAAAAAA/]
--- timeout: 10



=== TEST 7: 1 MB gateway header values: unknown objective, refused rewrite, ignored fairness id; never reflected
--- request eval
["POST /v1/completions\n{\"model\":\"m\"}",
 "POST /v1/completions\n{\"model\":\"m\"}",
 "POST /v1/completions\n{\"model\":\"m\"}",
 $::normal]
--- more_headers eval
["x-gateway-inference-objective: " . ("O" x (1 << 20)),
 "x-gateway-model-name-rewrite: " . ("R" x (1 << 20)),
 "x-gateway-inference-fairness-id: " . ("F" x (1 << 20)),
 ""]
--- error_code eval
[200, 400, 200, 200]
--- response_body_filters eval
$::filter
--- response_body eval
["127.0.0.4\n",
 "invalid_request_error invalid_model_rewrite param=null keys=code,message,param,type raw=no\n",
 "127.0.0.4\n", "127.0.0.4\n"]
--- raw_response_headers_unlike eval
[qr/OOOOOOOO/, qr/RRRRRRRR/, qr/FFFFFFFF/, qr/OOOOOOOO/]
--- no_error_log eval
[@$::clean_log, qr/mcig[^\n]*(OOOOOOOO|RRRRRRRR|FFFFFFFF)/]
--- timeout: 10



=== TEST 8: a 1 MB header over nginx's header buffers: nginx's own 400, before any location
--- http_config eval
my $h = $::http;
$h =~ s/large_client_header_buffers 4 2m;//;
$h;
--- request eval
["POST /v1/completions\n{\"model\":\"m\"}", $::normal]
--- more_headers eval
["x-gateway-inference-objective: " . ("O" x (1 << 20)), ""]
--- error_code eval
[400, 200]
--- raw_response_headers_unlike eval
[qr/OOOOOOOO/, qr/OOOOOOOO/]
--- response_body_unlike eval
[qr/OOOOOOOO/, qr/OOOOOOOO/]



=== TEST 9: gateway headers with control bytes, quotes and invalid UTF-8
--- request eval
["POST /v1/completions\n{\"model\":\"m\"}",
 "POST /v1/completions\n{\"model\":\"m\"}",
 "POST /v1/completions\n{\"model\":\"m\"}",
 "POST /v1/completions\n{\"model\":\"m\"}",
 "POST /v1/completions\n{\"model\":\"m\"}"]
--- more_headers eval
["x-gateway-inference-objective: crit\"ical\xff\x01\tX-Evil: 1",
 "x-gateway-model-name-rewrite: a\x01b",
 "x-gateway-model-name-rewrite: \xff\xfe",
 "x-gateway-model-name-rewrite: m\tX-Evil: 1",
 ""]
--- error_code eval
[200, 400, 400, 400, 200]
--- response_body_filters eval
$::filter
--- response_body eval
["127.0.0.4\n",
 "invalid_request_error invalid_model_rewrite param=null keys=code,message,param,type raw=no\n",
 "invalid_request_error invalid_model_rewrite param=null keys=code,message,param,type raw=no\n",
 "invalid_request_error invalid_model_rewrite param=null keys=code,message,param,type raw=no\n",
 "127.0.0.4\n"]
--- raw_response_headers_unlike eval
[$::clean_headers, $::clean_headers, $::clean_headers, $::clean_headers, $::clean_headers]



=== TEST 10: a raw CR in a gateway header: nginx refuses the header line itself
--- raw_request eval
"POST /v1/completions HTTP/1.1\r
Host: localhost\r
x-gateway-inference-objective: critical\rX-Evil: 1\r
Content-Length: 13\r
Connection: close\r
\r
{\"model\":\"m\"}"
--- error_code: 400
--- raw_response_headers_unlike eval
$::clean_headers
--- error_log eval
qr/client sent invalid header line: "x-gateway-inference-objective: critical\\x0[dD]\.\.\."/



=== TEST 10b: a NUL in a gateway header: refused the same way
--- raw_request eval
"POST /v1/completions HTTP/1.1\r
Host: localhost\r
x-gateway-model-name-rewrite: a\0X-Evil: 1\r
Content-Length: 13\r
Connection: close\r
\r
{\"model\":\"m\"}"
--- error_code: 400
--- raw_response_headers_unlike eval
$::clean_headers
--- error_log eval
qr/client sent invalid header line: "x-gateway-model-name-rewrite: a\\x00\.\.\."/



=== TEST 11: a quoted, backslashed rewrite target reaches the member as valid JSON
--- request
POST /v1/echo
{"model":"m","prompt":"hi"}
--- more_headers
x-gateway-model-name-rewrite: x"y\z
--- error_code: 200
--- response_body_filters eval
[sub { my $b = shift;
       my $d = eval { JSON::PP->new->utf8->decode($b) };
       $d ? "model=[$d->{model}] prompt=[$d->{prompt}]\n" : "invalid JSON: $b" }]
--- response_body
model=[x"y\z] prompt=[hi]
--- error_log
mcig-access status=200 model="m" target="x\x22y\x5Cz"



=== TEST 12: nesting over 512 levels, and 100,000 levels: 400 json_too_deep; 511 levels pass
--- request eval
["POST /v1/completions\n{\"model\":\"m\",\"x\":" . ("[" x 512) . ("]" x 512) . "}",
 "POST /v1/completions\n{\"model\":\"m\",\"x\":" . ("{\"a\":" x 100000) . "1" . ("}" x 100000) . "}",
 "POST /v1/completions\n{\"model\":\"m\",\"x\":" . ("[" x 100000),
 "POST /v1/completions\n{\"model\":\"m\",\"x\":" . ("[" x 511) . ("]" x 511) . "}"]
--- error_code eval
[400, 400, 400, 200]
--- response_body_filters eval
$::filter
--- response_body eval
["invalid_request_error json_too_deep param=null keys=code,message,param,type raw=no\n",
 "invalid_request_error json_too_deep param=null keys=code,message,param,type raw=no\n",
 "invalid_request_error json_too_deep param=null keys=code,message,param,type raw=no\n",
 "127.0.0.4\n"]



=== TEST 13: numbers, arrays, objects, booleans and null in place of the model string
--- request eval
["POST /v1/completions\n{\"model\":42}",
 "POST /v1/completions\n{\"model\":-1.5e999}",
 "POST /v1/completions\n{\"model\":[\"m\"]}",
 "POST /v1/completions\n{\"model\":{\"name\":\"m\"}}",
 "POST /v1/completions\n{\"model\":true}",
 "POST /v1/completions\n{\"model\":null}",
 $::normal]
--- error_code eval
[400, 400, 400, 400, 400, 400, 200]
--- response_body_filters eval
$::filter
--- response_body eval
[("invalid_request_error model_not_string param=null keys=code,message,param,type raw=no\n") x 6, "127.0.0.4\n"]



=== TEST 14: numbers where the server wants strings elsewhere are the model server's business
--- request eval
["POST /v1/completions\n{\"model\":\"m\",\"prompt\":7,\"messages\":5,\"cache_salt\":9,\"max_tokens\":1e999999,\"stream\":\"yes\"}",
 "POST /v1/chat/completions\n{\"model\":\"m\",\"messages\":[{\"role\":1,\"content\":[2,{\"type\":3,\"text\":4}]},7]}",
 "POST /v1/completions\n{\"model\":\"m\",\"prompt\":[1,2,[3]],\"x\":-0.0e-0}"]
--- error_code eval
[200, 200, 200]
--- response_body eval
["127.0.0.4\n", "127.0.0.4\n", "127.0.0.4\n"]



=== TEST 15: numbers that are not JSON numbers
--- request eval
["POST /v1/completions\n{\"model\":\"m\",\"n\":01}",
 "POST /v1/completions\n{\"model\":\"m\",\"n\":1.}",
 "POST /v1/completions\n{\"model\":\"m\",\"n\":NaN}",
 "POST /v1/completions\n{\"model\":\"m\",\"n\":0x10}",
 $::normal]
--- error_code eval
[400, 400, 400, 400, 200]
--- response_body_filters eval
$::filter
--- response_body eval
[("invalid_request_error invalid_json param=null keys=code,message,param,type raw=no\n") x 4, "127.0.0.4\n"]



=== TEST 16: a slowloris body: closed at client_body_timeout, logged 408, nothing half-sent
nginx ends a request whose body stops coming without answering it (the
client is gone or hostile): no HTML page, no JSON, the connection closes.
--- config eval
"client_body_timeout 1s;\n" . $::config
--- raw_request eval
["POST /v1/completions HTTP/1.1\r
Host: localhost\r
Content-Length: 40\r
\r
{\"model\":"]
--- ignore_response
--- timeout: 5
--- wait: 1.5
--- error_log
mcig-access status=408



=== TEST 17: a slow body that keeps coming is read and routed
--- config eval
"client_body_timeout 1s;\n" . $::config
--- raw_request eval
my @parts = ('{"model":', '"slow-', 'model",', '"x":1}');
my $len = length(CORE::join("", @parts));
$parts[0] = "POST /v1/completions HTTP/1.1\r\nHost: localhost\r\n"
            . "Content-Length: $len\r\nConnection: close\r\n\r\n" . $parts[0];
\@parts
--- raw_request_middle_delay: 0.4
--- error_code: 200
--- response_headers
X-Model: slow-model
--- response_body
127.0.0.4
--- timeout: 5



=== TEST 18: after the hostile blocks the worker that served them still answers
--- request
GET /v1/models
--- error_code: 200
--- response_body
127.0.0.4



=== TEST 19: no status where mcig_status is not configured: the paths go where the configuration sends them
--- config
    location /v1/ {
        proxy_pass http://llama;
    }

    location /mcig/ {
        return 404;

        location /mcig/open/ {
            mcig_status;
        }
    }
--- request eval
["GET /mcig/status", "GET /mcig/metrics", "GET /v1/mcig/status", "GET /status", "GET /mcig/open/x"]
--- error_code eval
[404, 404, 200, 404, 200]
--- response_body_like eval
[qr/^(?!.*(pools|llama|mcig_member)).*404 Not Found/s,
 qr/^(?!.*(pools|llama|mcig_member)).*404 Not Found/s,
 qr/^127\.0\.0\.4\n\z/,
 qr/^(?!.*(pools|llama|mcig_member)).*404 Not Found/s,
 qr/"pools":\{"llama":/]



=== TEST 20: the metrics token over plain HTTP, refused by the member: not in the log, even at debug
--- http_config eval: $::token_http
--- config eval: $::token_config
--- user_files eval: $::token_file
--- init
select(undef, undef, undef, 0.6);
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 200
--- error_log eval
qr/scraping the metrics of member 127\.0\.0\.4:\d+ of pool "with_token" from http:\/\/127\.0\.0\.4:\d+\/metrics\S* failed: it answered with status \d+;/
--- no_error_log eval
# the member (the same nginx) logs the headers it receives at debug
[qr/^(?!.*(http header:|http script (var|value))).*t0ken-s3cret/]



=== TEST 21: nor in the status JSON and metrics
--- http_config eval: $::token_http
--- config eval: $::token_config
--- user_files eval: $::token_file
--- init
select(undef, undef, undef, 0.6);
--- request eval
["GET /s", "GET /p"]
--- error_code eval
[200, 200]
--- response_body_like eval
[qr/^(?!.*t0ken-s3cret).*"with_token"/s, qr/^(?!.*t0ken-s3cret).*pool="with_token"/s]
--- no_error_log eval
[qr/^(?!.*(http header:|http script (var|value))).*t0ken-s3cret/]



=== TEST 22: hostile fairness ids of requests that wait in the queue: 503 queue_timeout, JSON, nothing reflected
--- http_config eval
$::http . <<'_EOC_';
    upstream q {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_max_in_flight 1;
        mcig_queue timeout=300ms;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://q;
        access_log logs/error.log hostile;
    }
--- init
Mcig::hold("/v1/slow", 1, 3);
--- request eval
["POST /v1/completions\n{\"model\":\"m\"}",
 "POST /v1/completions\n{\"model\":\"m\"}",
 "POST /v1/completions\n{\"model\":\"m\"}"]
--- more_headers eval
["x-gateway-inference-fairness-id: t\x01\x7f\"\\\xff\xfe\tX-Evil: 1",
 "x-gateway-inference-fairness-id: " . ("T" x (1 << 20)),
 "x-gateway-inference-fairness-id: "]
--- error_code eval
[503, 503, 503]
--- response_body_filters eval
$::filter
--- response_body eval
[("server_error queue_timeout param=null keys=code,message,param,type raw=no\n") x 3]
--- raw_response_headers_unlike eval
[($::clean_headers) x 3]
--- no_error_log eval
[@$::clean_log, qr/mcig[^\n]*TTTTTTTT/]
--- timeout: 10
