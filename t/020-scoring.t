# mcig_scorers: prefix-cache affinity (same prompt, same member), LoRA
# affinity from vllm:lora_requests_info, and the load guard that keeps
# affinity off full members.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use Mcig;

# Sends each body n times through the gateway and writes html/result.txt:
# "ok" when every answer of a body came from one member and, if asked,
# different bodies went to different members; else what happened.
sub affinity {
    my ($n, $spread, @bodies) = @_;
    my $port = $Test::Nginx::Util::ServerPortForClient;
    my (@seen, $bad);

    for my $body (@bodies) {
        my %by;
        for (1 .. $n) {
            my $out = `curl -s -H 'Content-Type: application/json' --data-binary '$body' http://127.0.0.1:$port/v1/chat/completions`;
            chomp $out;
            $by{$out}++;
        }
        my @who = sort keys %by;
        $bad .= "one body went to @who; " if @who != 1;
        push @seen, $who[0];
    }

    $bad .= "the bodies all went to $seen[0]; "
        if $spread && !grep { $_ ne $seen[0] } @seen;

    Mcig::html_file("result.txt", $bad ? "$bad\n" : "ok\n");
}

our $prompt = "You are a helpful assistant who reviews food. " x 12;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: requests sharing a prompt go to the member that has its prefix
--- http_config eval
$::Mcig::members . <<'_EOC_';
    upstream vllm {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_scorers;
    }
_EOC_
--- config
    location /v1/ { proxy_pass http://vllm; }
    location = /result.txt { }
--- init
my $p = $::prompt;
main::affinity(8, 0,
    qq({"model":"m","messages":[{"role":"system","content":"$p"},{"role":"user","content":"Pizza?"}]}),
    qq({"model":"m","messages":[{"role":"system","content":"$p"},{"role":"user","content":"Sushi?"}]}));
--- request
GET /result.txt
--- response_body
ok



=== TEST 2: the same prompts under different models are not one prefix
--- http_config eval
$::Mcig::members . <<'_EOC_';
    upstream vllm {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_scorers prefix=3 kv_cache=0 queue=0 in_flight=1;
    }
_EOC_
--- config
    location /v1/ { proxy_pass http://vllm; }
    location = /result.txt { }
--- init
my $port = $Test::Nginx::Util::ServerPortForClient;
my $p = $::prompt;
my %first;
# the first member of a model is random; over 12 models both must show up
for my $m (1 .. 12) {
    my $out = `curl -s --data-binary '{"model":"m$m","messages":[{"role":"user","content":"$p"}]}' http://127.0.0.1:$port/v1/chat/completions`;
    chomp $out;
    $first{$out}++;
}
Mcig::html_file("result.txt", keys(%first) == 2 ? "ok\n" : join(",", %first) . "\n");
--- request
GET /result.txt
--- response_body
ok



=== TEST 3: LoRA affinity: the member running the adapter, then one with a free slot
--- http_config eval
$::Mcig::members . <<'_EOC_';
    upstream vllm {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics;
        mcig_balancing_mode custom_metrics;
        mcig_scorers lora=1 kv_cache=0 queue=0 prefix=0;
    }
_EOC_
--- config
    location /v1/ { proxy_pass http://vllm; }
--- user_files
>>> metrics-127.0.0.2.prom
vllm:kv_cache_usage_perc 0.3
vllm:lora_requests_info{max_lora="2",running_lora_adapters="food-review-1",waiting_lora_adapters=""} 1.7e9
>>> metrics-127.0.0.3.prom
vllm:kv_cache_usage_perc 0.3
vllm:lora_requests_info{max_lora="1",running_lora_adapters="sql-lora",waiting_lora_adapters=""} 1.7e9
--- init
select(undef, undef, undef, 0.6);
--- request eval
["POST /v1/completions\n{\"model\":\"food-review-1\",\"prompt\":\"a\"}",
 "POST /v1/completions\n{\"model\":\"sql-lora\",\"prompt\":\"a\"}",
 "POST /v1/completions\n{\"model\":\"food-review-2\",\"prompt\":\"a\"}",
 "POST /v1/completions\n{\"model\":\"food-review-1\",\"prompt\":\"a\"}"]
--- response_body eval
["127.0.0.2\n", "127.0.0.3\n", "127.0.0.2\n", "127.0.0.2\n"]



=== TEST 4: the load guard: affinity does not pick a full member while another has room
--- http_config eval
$::Mcig::members . <<'_EOC_';
    upstream vllm {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics;
        mcig_balancing_mode custom_metrics max_utilization=80;
        mcig_scorers lora=1 kv_cache=0 queue=0 prefix=0;
    }
_EOC_
--- config
    location /v1/ { proxy_pass http://vllm; }
--- user_files
>>> metrics-127.0.0.2.prom
vllm:kv_cache_usage_perc 0.95
vllm:lora_requests_info{max_lora="2",running_lora_adapters="food-review-1",waiting_lora_adapters=""} 1.7e9
>>> metrics-127.0.0.3.prom
vllm:kv_cache_usage_perc 0.3
vllm:lora_requests_info{max_lora="1",running_lora_adapters="sql-lora",waiting_lora_adapters=""} 1.7e9
--- init
select(undef, undef, undef, 0.6);
--- request eval
["POST /v1/completions\n{\"model\":\"food-review-1\",\"prompt\":\"a\"}",
 "POST /v1/completions\n{\"model\":\"food-review-1\",\"prompt\":\"a\"}"]
--- response_body eval
["127.0.0.3\n", "127.0.0.3\n"]



=== TEST 5: bad parameters
--- http_config
    upstream vllm {
        server 127.0.0.2:8000;
        mcig_pool;
        mcig_scorers prefix=3 block_size=50;
    }
--- config
--- must_die
--- error_log
invalid "block_size=50" of mcig_scorers: a number from 16 to 4096, a multiple of 16, is expected



=== TEST 6: every member full, one of them stale while the other's figures are fresh: the stale one scores as a full cache with the longest queue
--- http_config eval
$::Mcig::members . <<'_EOC_';
    upstream vllm {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics interval=100ms;
        mcig_balancing_mode custom_metrics max_utilization=80;
        mcig_scorers;
        mcig_queue off;
    }
_EOC_
--- config eval
"location /v1/ { proxy_pass http://vllm; }\n"
. "location = /t { ssi on; ssi_types *; default_type text/plain; return 200 '"
. ("<!--# include virtual=\"/v1/c\" wait=\"yes\" -->" x 12) . "'; }\n"
--- user_files
>>> metrics-127.0.0.2.prom
vllm:kv_cache_usage_perc 0.95
vllm:num_requests_running 100
--- init
select(undef, undef, undef, 0.5);
--- request
GET /t
--- response_body eval
"127.0.0.2\n" x 12



=== TEST 7: every member full: requests sent since the scrape lengthen a member's queue, so that the picks between two scrapes spread
--- http_config eval
$::Mcig::members . <<'_EOC_';
    # a pool of its own: under --hup a reload keeps a pool's scrape counters
    upstream spread {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics interval=10s stale=30s;
        mcig_balancing_mode custom_metrics max_utilization=80;
        mcig_scorers;
        mcig_queue off;
    }
_EOC_
--- config
    location /v1/ { proxy_pass http://spread; }
    location = /mcig/status { mcig_status; }
--- user_files
>>> metrics-127.0.0.2.prom
vllm:kv_cache_usage_perc 1.0
vllm:num_requests_running 10
vllm:num_requests_waiting 0
>>> metrics-127.0.0.3.prom
vllm:kv_cache_usage_perc 1.0
vllm:num_requests_running 10
vllm:num_requests_waiting 1
--- init
# the members' first scrapes are 5 s apart; the next comes 10 s after the first
for (1 .. 300) {
    last if (() = Mcig::get("/mcig/status") =~ /"scrapes":[1-9]/g) == 2;
    select(undef, undef, undef, 0.1);
}
Mcig::hold("/v1/slow", 4, 5);
--- request
GET /mcig/status
--- response_body_like chomp
"address":"127\.0\.0\.2:\d+","healthy":true,"in_flight":[123],.*"address":"127\.0\.0\.3:\d+","healthy":true,"in_flight":[123],



=== TEST 8: mcig_scorers without mcig_pool is refused, not ignored
--- http_config
    upstream vllm {
        server 127.0.0.2:8000;
        mcig_scorers;
    }
--- config
--- must_die
--- error_log
mcig directives in upstream "vllm"
