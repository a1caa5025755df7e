# README.md's "Using it" examples work as written: the configuration files
# and the guide's curl request are taken from README.md when this runs, so
# that the documentation cannot drift from what works.
#
# Test::Nginx writes its own nginx.conf (events {}, http {}, temp paths)
# around a block's snippets, which would hide the very mistakes this file
# is for (a missing events {}, an upstream never defined): the README's
# files run here as whole files, with "nginx -t" and then nginx itself,
# against simulated vLLM servers (util/sim/vllm_sim.py).
#
# Only what the test machine needs changes: the module's path, the access
# log's path, the listen port and the members' addresses (each replacement
# must match, so that a changed example is noticed here), plus the temp
# paths, pid and error log of a private prefix (build/readme-test/).  Everything listens on
# loopback on TEST_NGINX_PORT: the gateway on 127.0.0.1, the members on
# 127.0.0.2 and up.

use strict;
use warnings;
use Test::More;
use File::Path qw(make_path remove_tree);
use Cwd qw(abs_path);
use FindBin;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(sleep time);

my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
# the repository (util/compat.sh runs the suite from a directory of its own,
# with t/ linked)
my $root = abs_path("$FindBin::Bin/..");
my $module = $ENV{TEST_NGINX_LOAD_MODULES}
             || "$root/build/ngx_http_upstream_mcig_module.so";
my $port = $ENV{TEST_NGINX_PORT} || 1984;
# not under Test::Nginx's servroot, which the next file must be able to
# remove; kept after the run for a look at the logs
my $dir = abs_path('.') . "/build/readme-test";

# --- what README.md says ----------------------------------------------

open(my $fh, '<', "$root/README.md") or die "README.md: $!";
my $readme = do { local $/; <$fh> };
close($fh);

my ($using) = $readme =~ /^## Using it\n(.*?)^## /ms;
ok(defined $using, 'README.md has a "Using it" section') or BAIL_OUT('no section');

my @nginx_blocks = $using =~ /^```nginx\n(.*?)^```$/msg;
is(scalar @nginx_blocks, 2, '"Using it" has two nginx examples')
    or BAIL_OUT('the examples changed: update t/023-readme.t');
my ($file, $routing) = @nginx_blocks;

my ($curl) = $using =~ /^```sh\n(curl [^\n]*localhost:8080[^\n]*)\n```$/m;
ok(defined $curl, '"Using it" has the guide\'s curl request')
    or BAIL_OUT('no curl request');
like($curl, qr/"model": "food-review-1"/, 'the request asks for food-review-1');

# The routing example replaces the first file's server block ("in place of
# its server block"), inside its http block.
my $file2 = $file;
ok($file2 =~ s/^    server \{\n.*?^    \}\n/$routing/ms,
   'the first example has a server block to replace');

# Replaces each pattern of the table in a configuration: every one must
# match, or the README changed in a way this file must learn about.
sub localize {
    my ($conf, $name) = @_;
    my @subst = (
        [qr{^load_module \S+;}m, "load_module $module;"],
        [qr{/var/log/nginx/access\.log}, "$dir/access.log"],
        [qr{^(\s*)listen 8080;}m, "\$1listen 127.0.0.1:$port;"],
        [qr{\b10\.0\.0\.11:8000\b}, "127.0.0.2:$port"],
        [qr{\b10\.0\.0\.12:8000\b}, "127.0.0.3:$port"],
    );
    push @subst, [qr{\b10\.0\.0\.21:8000\b}, "127.0.0.4:$port"]
        if $name eq 'routing';

    for my $s (@subst) {
        my ($re, $to) = @$s;
        my $n = ($conf =~ s/$re/"qq{$to}"/gee);
        ok($n, "$name example: replaced $re") or diag($conf);
    }

    # members named nowhere in the table would be unreachable here
    my @other = $conf =~ /^\s*server\s+((?!127\.0\.0\.)\S+);/mg;
    is("@other", '', "$name example: every member address is replaced");

    # temp paths inside the private prefix (as Test::Nginx writes them)
    my $temp = join('', map { "    ${_}_temp_path $dir/${_}_temp;\n" }
                            qw(client_body proxy fastcgi uwsgi scgi));
    $conf =~ s/^http \{\n/http {\n$temp/m;
    return $conf;
}

# --- the simulated model servers --------------------------------------

my @pids;

sub spawn {
    my ($log, @cmd) = @_;
    my $pid = fork();
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        POSIX::setpgid(0, 0);
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>', $log);
        open(STDERR, '>&', \*STDOUT);
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }

    POSIX::setpgid($pid, $pid);
    push @pids, $pid;
    return $pid;
}

sub stop {
    my ($pid, $sig) = @_;
    kill $sig, -$pid;
    my $t0 = time;
    while (waitpid($pid, POSIX::WNOHANG()) == 0) {
        if (time - $t0 > 10) {
            kill 'KILL', -$pid;
            waitpid($pid, 0);
            last;
        }
        sleep 0.05;
    }
    @pids = grep { $_ != $pid } @pids;
}

END {
    local ($?, $!);
    my @left = @pids;
    stop($_, 'TERM') for @left;
}

sub wait_for {
    my ($what, $secs, $cond) = @_;
    my $t0 = time;
    until ($cond->()) {
        return 0 if time - $t0 > $secs;
        sleep 0.1;
    }
    return 1;
}

sub slurp {
    my $f = shift;
    open(my $h, '<', $f) or return '';
    local $/;
    return scalar <$h>;
}

remove_tree($dir);
make_path("$dir/logs");

# the base model with the guide's adapter, and another model for routing
my $python = -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';
my @sim = ($python, "$root/util/sim/vllm_sim.py", '--seed', '1',
           '--time-scale', '0.01');
spawn("$dir/sim-llama.log", @sim,
      '--servers', "127.0.0.2:$port,127.0.0.3:$port",
      '--adapters', 'food-review-1');
spawn("$dir/sim-gemma.log", @sim, '--servers', "127.0.0.4:$port",
      '--model', 'google/gemma-3-27b-it');

for my $log ("$dir/sim-llama.log", "$dir/sim-gemma.log") {
    ok(wait_for($log, 20, sub { slurp($log) =~ /vllm_sim ready/ }),
       "simulated servers are ready ($log)") or diag(slurp($log));
}

# --- running an example -----------------------------------------------

# Sends the README's curl request (to the test port), its model replaced
# by $model if given; returns (status, headers and body).
sub readme_request {
    my ($model) = @_;
    my $cmd = $curl;
    $cmd =~ s/\blocalhost:8080\b/127.0.0.1:$port/ or die "curl: no localhost:8080";
    $cmd =~ s/"model": "food-review-1"/"model": "$model"/ if defined $model;
    open(my $p, '-|', 'timeout', '20', 'sh', '-c', "$cmd 2>&1")
        or die "sh: $!";
    my $out = do { local $/; <$p> } // '';
    close($p);
    my ($status) = $out =~ m{^HTTP/\S+ (\d+)}m;
    return ($status // 0, $out);
}

sub get {
    my ($path) = @_;
    my $out = `curl -s -i -m 10 http://127.0.0.1:$port$path 2>&1`;
    my ($status) = $out =~ m{^HTTP/\S+ (\d+)}m;
    return ($status // 0, $out);
}

sub run_example {
    my ($name, $conf, $checks) = @_;
    my $path = "$dir/$name.conf";
    open(my $h, '>', $path) or die "$path: $!";
    print $h $conf;
    close($h);

    my @args = ('-p', "$dir/", '-c', $path, '-e', "$dir/logs/error.log");
    unlink("$dir/logs/error.log", "$dir/access.log");

    my $out = `$nginx @args -g 'pid $dir/logs/nginx.pid;' -t 2>&1`;
    is($?, 0, "$name example: nginx -t passes") or diag("$out\n$conf");
    return if $?;

    my $pid = spawn("$dir/logs/$name.stderr", $nginx, @args,
                    '-g', "pid $dir/logs/nginx.pid; daemon off;");
    ok(wait_for('listen', 10, sub {
            IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 1) }),
       "$name example: nginx starts and listens")
        or diag(slurp("$dir/logs/error.log") . slurp("$dir/logs/$name.stderr"));

    $checks->();

    stop($pid, 'QUIT');
    my $log = slurp("$dir/logs/error.log");
    unlike($log, qr/\[(alert|crit|emerg)\]/, "$name example: no alert in the error log")
        or diag($log);
}

sub check_guide_request {
    my $name = shift;
    my ($status, $out) = readme_request();
    is($status, 200, "$name example: the guide's request is answered 200")
        or diag($out);
    like($out, qr/"object": ?"text_completion"/, "$name example: with a completion");
    like($out, qr/"model": ?"food-review-1"/, "$name example: of food-review-1");

    ($status, $out) = readme_request('no-such-model');
    is($status, 404, "$name example: an unknown model gets 404") or diag($out);
    like($out, qr/The model `no-such-model` does not exist\./,
         "$name example: from the model server, which says so");
}

run_example('pool', localize($file, 'pool'), sub {
    check_guide_request('pool');

    ok(wait_for('log', 5, sub { -s "$dir/access.log" }), 'pool example: logged');
    like(slurp("$dir/access.log"),
         qr/model=food-review-1 .*endpoint=127\.0\.0\.[23]:$port/,
         'pool example: the access log names the model and the member');
});

run_example('routing', localize($file2, 'routing'), sub {
    check_guide_request('routing');

    my ($status, $out) = readme_request('google/gemma-3-27b-it');
    is($status, 200, 'routing example: the mapped model is answered 200')
        or diag($out);
    like($out, qr/"model": ?"google\/gemma-3-27b-it"/,
         'routing example: by its own pool');

    ($status, $out) = get('/v1/models');
    is($status, 200, 'routing example: GET /v1/models is answered 200')
        or diag($out);
    like($out, qr/"id": ?"food-review-1"/,
         'routing example: by the default pool');

    wait_for('log', 5, sub { slurp("$dir/access.log") =~ /gemma/ });
    like(slurp("$dir/access.log"),
         qr{model=google/gemma-3-27b-it .*endpoint=127\.0\.0\.4:$port},
         'routing example: the mapped model went to its pool\'s member');
});

done_testing();
