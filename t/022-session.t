# mcig_session_affinity: requests of a session (a header's value) go to
# one member, chosen by rendezvous hashing among the members the pick
# considers; a full member moves them (the load guard); no header, no
# change.  Counters in the status, $mcig_session_affinity, config errors.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use Mcig;

# A POST through the gateway with the header (no header if $value is
# undef, an empty one if it is ""); the member that answered.
sub ask {
    my ($name, $value, $path) = @_;
    my $port = $Test::Nginx::Util::ServerPortForClient;
    my @h = !defined $value ? ()
            : $value eq "" ? ("-H", "$name;")
            : ("-H", "$name: $value");
    $path //= "/v1/chat/completions";

    open(my $fh, "-|", "curl", "-s", "-m", "10", @h,
         "--data-binary", '{"model":"m"}', "http://127.0.0.1:$port$path")
        or die "curl: $!";
    my $out = CORE::join("", <$fh>);
    close $fh;
    $out =~ s/\n\z//;
    return $out;
}

# Sends each value n times (the header's name in turn from @names, to
# show that case does not matter) and writes html/result.txt: "ok" when
# every value got one member and the values went to both members; else
# what happened.
sub sticky {
    my ($n, $names, @values) = @_;
    my (%by, $bad);

    for my $v (@values) {
        my %seen;
        $seen{ ask($names->[$_ % @$names], $v) }++ for 1 .. $n;
        my @who = sort keys %seen;
        $bad .= "$v went to @who; " if @who != 1;
        $by{ $who[0] }++;
    }

    $bad .= "every value went to " . CORE::join(",", keys %by) . "; "
        if keys %by != 2;

    Mcig::html_file("result.txt", $bad ? "$bad\n" : "ok\n");
}

# Sends each value n times and writes html/result.txt: the members that
# answered, with their counts.
sub answers {
    my ($n, @values) = @_;
    my %seen;

    for my $v (@values) {
        $seen{ ask("X-Session-Id", $v) }++ for 1 .. $n;
    }

    Mcig::html_file("result.txt", CORE::join(" ", map { "$_ $seen{$_}" }
                                                  sort keys %seen) . "\n");
}

# A request of the session to the slow page, in the background for secs.
sub hold_session {
    my ($value, $secs) = @_;
    my $port = $Test::Nginx::Util::ServerPortForClient;

    Mcig::background("curl", "-s", "-o", "/dev/null", "-m", $secs,
                     "-H", "X-Session-Id: $value",
                     "http://127.0.0.1:$port/v1/slow");
}

our @values = map { "user-$_" } 1 .. 16;

# the two members' pool with these directives
sub pool {
    my $directives = shift // "mcig_session_affinity;";

    return $Mcig::members . <<"_EOC_";
    upstream vllm {
        server 127.0.0.2:\$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:\$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        $directives
    }
_EOC_
}

# 127.0.0.2's cache past the target of 80 %, 127.0.0.3's not
our $one_full = <<'_EOC_';
>>> metrics-127.0.0.2.prom
vllm:kv_cache_usage_perc 0.95
>>> metrics-127.0.0.3.prom
vllm:kv_cache_usage_perc 0.3
_EOC_

our $config = <<'_EOC_';
    location /v1/ {
        proxy_pass http://vllm;
        add_header X-Session-Affinity $mcig_session_affinity;
    }
    location = /result.txt { }
    location = /mcig/status { mcig_status; }
    location = /mcig/metrics { mcig_status prometheus; }
_EOC_

# the counters' increase in the status JSON, the rest of a body as it is
sub counters {
    my $body = shift;
    return $body =~ /^\s*[{#]/ ? Mcig::counters_since($body) : $body;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a session's requests go to one member; sessions spread over the members; the header's case does not matter
--- http_config eval: main::pool()
--- config eval: $::config
--- init
main::sticky(4, ["X-Session-Id", "x-session-id", "X-SESSION-ID"], @::values);
--- request
GET /result.txt
--- response_body
ok



=== TEST 2: another header: the default one no longer counts
--- http_config eval
main::pool("mcig_session_affinity header=X-User;")
--- config eval: $::config
--- init
main::sticky(4, ["x-user", "X-User"], @::values);
my %seen;
$seen{ main::ask("X-Session-Id", "user-1") }++ for 1 .. 20;
Mcig::html_file("result.txt", "x-session-id: " . scalar(keys %seen)
                              . " members\n")
    if Mcig::get("/result.txt") eq "ok\n";
--- request
GET /result.txt
--- response_body
x-session-id: 2 members



=== TEST 3: no header, or an empty one: the pick as without affinity, nothing counted
--- http_config eval: main::pool()
--- config eval: $::config
--- init
Mcig::snapshot();
my %seen;
$seen{ main::ask("X-Session-Id", undef) }++ for 1 .. 10;
$seen{ main::ask("X-Session-Id", "") }++ for 1 .. 10;
Mcig::html_file("result.txt", CORE::join(" ", sort keys %seen) . "\n");
--- request eval
["GET /result.txt", "GET /mcig/status", "POST /v1/completions\n{\"model\":\"m\"}"]
--- response_body_filters eval
\&main::counters
--- response_body_like eval
["^127\\.0\\.0\\.2 127\\.0\\.0\\.3\$",
 qr/"session_affinity":\{"header":"x-session-id","kept":0,"moved":0\}/,
 "^127\\.0\\.0\\.[23]\$"]
--- response_headers eval
["", "", "!X-Session-Affinity"]



=== TEST 4: $mcig_session_affinity and the counters
--- http_config eval: main::pool()
--- config eval: $::config
--- init
Mcig::snapshot();
--- request eval
["POST /v1/completions\n{\"model\":\"m\"}",
 "POST /v1/completions\n{\"model\":\"m\"}",
 "GET /mcig/status"]
--- more_headers eval
["X-Session-Id: abc", "X-Session-Id: def", ""]
--- response_body_filters eval
\&main::counters
--- response_headers eval
["X-Session-Affinity: kept", "X-Session-Affinity: kept", ""]
--- response_body_like eval
["^127\\.0\\.0\\.[23]\$", "^127\\.0\\.0\\.[23]\$",
 qr/"session_affinity":\{"header":"x-session-id","kept":2,"moved":0\}/]



=== TEST 5: the session's member at its in-flight capacity: moved to the other member, counted in JSON and Prometheus
--- http_config eval
main::pool("mcig_max_in_flight 1; mcig_session_affinity;")
--- config eval: $::config
--- init
Mcig::snapshot();
my $home = main::ask("X-Session-Id", "alice");
main::hold_session("alice", 6);
select(undef, undef, undef, 0.5);
my $now = main::ask("X-Session-Id", "alice");
Mcig::html_file("result.txt", ($now =~ /^127\.0\.0\.[23]$/ && $now ne $home)
                              ? "moved\n" : "home $home, then $now\n");
--- request eval
["GET /result.txt", "GET /mcig/status", "GET /mcig/metrics"]
--- response_body_filters eval
\&main::counters
--- response_body_like eval
["^moved\$",
 qr/"session_affinity":\{"header":"x-session-id","kept":2,"moved":1\}/,
 qr/^mcig_pool_session_affinity_total\{pool="vllm",outcome="kept"\} \d+\nmcig_pool_session_affinity_total\{pool="vllm",outcome="moved"\} [1-9]\d*$/m]
--- timeout: 10



=== TEST 6: every member full: the request waits in the queue, then goes to its session's member when that has room
--- http_config eval
main::pool("mcig_max_in_flight 1; mcig_session_affinity;")
--- config eval: $::config
--- init
Mcig::snapshot();
$::home = main::ask("X-Session-Id", "alice");
# the session's member until 2 s from now, the other one for longer
main::hold_session("alice", 2);
select(undef, undef, undef, 0.3);
Mcig::hold("/v1/slow", 1, 8);
--- request eval
["POST /v1/completions\n{\"model\":\"m\"}", "GET /mcig/status"]
--- more_headers eval
["X-Session-Id: alice", ""]
--- response_body_filters eval
sub {
    my $body = main::counters(shift);
    $body =~ s/^\Q$::home\E\n\z/home/;
    return $body;
}
--- response_body_like eval
["^home\$",
 qr/"queued":1,"dispatched":1,.*"session_affinity":\{"header":"x-session-id","kept":3,"moved":0\}/]
--- timeout: 10



=== TEST 7: custom_metrics: a session whose member's cache is past the target moves; the others stay
--- http_config eval
main::pool("mcig_metrics; mcig_balancing_mode custom_metrics max_utilization=80;\n"
           . "mcig_session_affinity;")
--- config eval: $::config
--- user_files eval: $::one_full
--- init
Mcig::wait_scrapes(2);
Mcig::snapshot();
main::answers(2, @::values);
--- request eval
["GET /result.txt", "GET /mcig/status"]
--- response_body_filters eval
sub {
    my $body = main::counters(shift);
    return $body =~ /"kept":(\d+),"moved":(\d+)/
           ? ($1 + $2 == 32 && $1 > 0 && $2 > 0 ? "32, some of each" : "$1 kept, $2 moved")
           : $body;
}
--- response_body eval
["127.0.0.3 32\n", "32, some of each"]



=== TEST 8: mcig_scorers: the same load guard
--- http_config eval
main::pool("mcig_metrics; mcig_balancing_mode custom_metrics max_utilization=80;\n"
           . "mcig_scorers; mcig_session_affinity;")
--- config eval: $::config
--- user_files eval: $::one_full
--- init
Mcig::wait_scrapes(2);
main::answers(1, @::values);
--- request
GET /result.txt
--- response_body
127.0.0.3 16



=== TEST 9: mcig_scorers: the session's member wins over prefix affinity while it has room
--- http_config eval
main::pool("mcig_scorers prefix=3 kv_cache=0 queue=0 in_flight=1;\n"
           . "mcig_session_affinity;")
--- config eval: $::config
--- init
my $port = $Test::Nginx::Util::ServerPortForClient;
my $p = "You are a helpful assistant who reviews food. " x 12;
my (%by, $bad);
# one prompt for all: prefix affinity alone would send it to one member
for my $v (@::values) {
    my %seen;
    for (1 .. 3) {
        my $out = `curl -s -m 10 -H 'X-Session-Id: $v' --data-binary '{"model":"m","messages":[{"role":"system","content":"$p"}]}' http://127.0.0.1:$port/v1/chat/completions`;
        chomp $out;
        $seen{$out}++;
    }
    my @who = sort keys %seen;
    $bad .= "$v went to @who; " if @who != 1;
    $by{ $who[0] }++;
}
$bad .= "every session went to " . CORE::join(",", keys %by) if keys %by != 2;
Mcig::html_file("result.txt", $bad ? "$bad\n" : "ok\n");
--- request
GET /result.txt
--- response_body
ok



=== TEST 10: a member marked down: its sessions move to the others' next choices, the other sessions stay
--- http_config eval
$Mcig::members . <<'_EOC_';
    server {
        listen 127.0.0.4:$TEST_NGINX_SERVER_PORT;
        location /v1/ { return 200 "$server_addr\n"; }
    }

    upstream all {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.4:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_session_affinity;
    }

    # the same members, listed in another order, one of them down
    upstream one_down {
        server 127.0.0.4:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT down;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_session_affinity;
    }
_EOC_
--- config
    location /all/ { proxy_pass http://all/v1/; }
    location /one_down/ { proxy_pass http://one_down/v1/; }
    location = /result.txt { }
--- init
my (%to, $bad, $moved);
for my $v (map { "user-$_" } 1 .. 30) {
    my $before = main::ask("X-Session-Id", $v, "/all/c");
    my $after = main::ask("X-Session-Id", $v, "/one_down/c");

    if ($before ne "127.0.0.2") {
        $bad .= "$v moved from $before to $after; " if $after ne $before;
    } else {
        $moved++;
        $to{$after}++;
    }
}
$bad .= "the down member's sessions went to " . CORE::join(",", sort keys %to) . "; "
    if !$moved || keys %to != 2 || $to{"127.0.0.2"};
Mcig::html_file("result.txt", $bad ? "$bad\n" : "ok\n");
--- request
GET /result.txt
--- response_body
ok



=== TEST 11: the gateway's own header (taken out of the request) can be the session's
--- http_config eval
main::pool("mcig_session_affinity header=x-gateway-inference-fairness-id;")
--- config eval: $::config
--- init
main::sticky(3, ["x-gateway-inference-fairness-id"], @::values);
--- request
GET /result.txt
--- response_body
ok



=== TEST 12: off: null in the JSON, no Prometheus series
--- http_config eval: main::pool("")
--- config eval: $::config
--- request eval
["GET /mcig/status", "GET /mcig/metrics"]
--- response_body_like eval
[qr/"session_affinity":null/, qr/^# TYPE mcig_pool_session_affinity_total counter\n\z/m]



=== TEST 13: the Prometheus text with the counters passes promtool
--- http_config eval: main::pool()
--- config eval: $::config
--- init
main::ask("X-Session-Id", "abc");
--- request
GET /mcig/metrics
--- response_body_filters eval
sub {
    my $body = shift;
    my $n = () = $body =~ /^mcig_pool_session_affinity_total\{pool="vllm",outcome="(?:kept|moved)"\} \d+$/mg;
    return Mcig::promtool($body) . "$n series\n";
}
--- response_body
promtool: ok
2 series



=== TEST 14: an unknown parameter
--- http_config
    upstream vllm {
        server 127.0.0.2:8000;
        mcig_pool;
        mcig_session_affinity cookie=sid;
    }
--- config
--- must_die
--- error_log
invalid parameter "cookie=sid" of mcig_session_affinity: expected header=name



=== TEST 15: an empty header name
--- http_config
    upstream vllm {
        server 127.0.0.2:8000;
        mcig_pool;
        mcig_session_affinity header=;
    }
--- config
--- must_die
--- error_log
mcig_session_affinity needs a header name after "header="



=== TEST 16: a header name nginx would not take
--- http_config
    upstream vllm {
        server 127.0.0.2:8000;
        mcig_pool;
        mcig_session_affinity header=x.session;
    }
--- config
--- must_die
--- error_log
invalid header name "x.session" of mcig_session_affinity: letters, digits, "-" and "_" are expected



=== TEST 17: the directive twice
--- http_config
    upstream vllm {
        server 127.0.0.2:8000;
        mcig_pool;
        mcig_session_affinity;
        mcig_session_affinity header=x-user;
    }
--- config
--- must_die
--- error_log
"mcig_session_affinity" directive is duplicate



=== TEST 18: without mcig_pool
--- http_config
    upstream vllm {
        server 127.0.0.2:8000;
        mcig_session_affinity;
    }
--- config
--- must_die
--- error_log
mcig directives in upstream "vllm"
