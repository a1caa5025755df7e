#!/usr/bin/perl
# Reads the reports that valgrind (--log-file) or ASan/UBSan/LSan (log_path)
# wrote while util/test.sh ran the suite in --valgrind or --asan mode, one
# file per nginx process named <test file>-t<block>.<pid> (util/perl/
# McigMode.pm), and sorts them: a report with a frame of ngx_mcig_module in
# any of its stacks is the module's and is printed in full; the others
# (nginx's, its libraries') are listed in one line each.  Exits with the
# number of the module's reports (at most 100).
#
#   perl util/memcheck-report.pl DIR

use strict;
use warnings;
use File::Basename qw(basename);

my $dir = shift or die "usage: $0 DIR\n";
my $module_re = qr/mcig/;   # function names, source paths and the .so's

my (@module, %other, $nfiles);

for my $path (sort glob("$dir/*")) {
    next unless -f $path && -s $path;
    $nfiles++;

    my $block = basename($path);
    $block =~ s/\.(\d+)$//;
    my $pid = $1 // "?";

    open(my $fh, "<", $path) or die "cannot read $path: $!\n";
    my @lines = <$fh>;
    close $fh;

    my @reports = split_reports(@lines);

    # A process that leaked a pool nginx creates for its cycle exited
    # without freeing the cycle: "nginx -t", or a start that failed.  What
    # only such pools reach (indirect leaks) is left with them, the module's
    # memory that a pool cleanup frees included.
    my $cycle_left = grep {
        $_->[0] =~ /leak of/ && $_->[1] !~ /$module_re/
        && $_->[1] =~ /\bin ngx_create_pool\b/
        && $_->[1] =~ /\bin (?:ngx_init_cycle|main)\b/
    } @reports;

    for my $report (@reports) {
        my ($title, $text) = @$report;
        my @frames = grep { /^(?:==\d+==)?\s+(?:at|by|#\d+) / }
                     split /\n/, $text;
        next unless @frames || $title =~ /runtime error/;

        if ($cycle_left && $title =~ /^Indirect leak/) {
            my $key = "left with nginx's cycle (nginx -t, a failed start) | -";
            $other{$key}{count}++;
            $other{$key}{blocks}{$block} = 1;
            next;
        }

        if ($title =~ /leak of|definitely lost/
            && grep { /(?:\bin|:) (?:ngx_p[nc]?alloc|ngx_palloc_\w+|ngx_pmemalign) /
                    } @frames)
        {
            # memory of a pool, that goes with its pool: nginx destroys no
            # pool when it exits after "nginx -t" or a configuration error;
            # a pool the module never destroys has a report of its own
            # (ngx_create_pool called by the module)
            $other{"pool memory, left with its pool | -"}{count}++;
            $other{"pool memory, left with its pool | -"}{blocks}{$block} = 1;
            next;
        }

        if (grep { /$module_re/ } @frames, $title) {
            push @module, "--- $block (pid $pid): $title\n$text";

        } else {
            # the innermost frame of nginx or a library names the report
            my ($where) = grep { !/malloc|calloc|realloc|operator new|
                                    interceptor|asan_|ubsan|ngx_alloc\b|
                                    ngx_calloc|memcpy|memmove|memset|
                                    strlen|vgpreload|ngx_memalign|ngx_p\w*alloc|
                                    ngx_create_pool/x } @frames;
            $where //= $frames[0] // "";
            $where =~ s/^(?:==\d+==)?\s+(?:at|by|\#\d+)\s+//;
            $where =~ s/^0x[0-9A-Fa-f]+:?\s+(?:in\s+)?//;
            $where =~ s/\s+$//;
            (my $kind = $title) =~ s/ in loss record .*//;
            $kind =~ s/[0-9][0-9,]*/N/g;
            my $key = "$kind | $where";
            $other{$key}{count}++;
            $other{$key}{blocks}{$block} = 1;
        }
    }
}

$nfiles //= 0;

if (%other) {
    print "memcheck: not the module's (nginx or its libraries; add to the "
          . "suppressions if they are noise):\n";

    for my $key (sort keys %other) {
        my @blocks = sort keys %{ $other{$key}{blocks} };
        my $more = @blocks > 3 ? " and " . (@blocks - 3) . " more" : "";
        printf "  %4d x %s  [%s%s]\n", $other{$key}{count}, $key,
               join(", ", @blocks[0 .. ($#blocks < 2 ? $#blocks : 2)]), $more;
    }
}

if (@module) {
    print "memcheck: the module's:\n";
    print "$_\n" for @module;
}

printf "memcheck: %d report file(s) in %s, %d of the module's, "
       . "%d other kind(s)\n", $nfiles, $dir, scalar(@module),
       scalar(keys %other);

exit(@module > 100 ? 100 : scalar(@module));


# Splits a report file into (title, text) pairs: valgrind errors (blocks of
# "==pid==" lines separated by an empty one), ASan errors (up to their
# SUMMARY), each leak of a LeakSanitizer report, UBSan runtime errors with
# their stack.  Suppressions printed by --gen-suppressions are skipped.
sub split_reports {
    my @lines = @_;
    my (@reports, $cur, $in_supp, $in_asan);

    my $flush = sub {
        push @reports, $cur if $cur;
        undef $cur;
        $in_asan = 0;
    };

    for my $line (@lines) {
        if ($in_supp) { $in_supp = 0 if $line =~ /^\}\s*$/; next; }
        if ($line =~ /^\{\s*$/) { $flush->(); $in_supp = 1; next; }

        if ($line =~ /^==\d+==ERROR: LeakSanitizer/) { $flush->(); next; }

        if ($line =~ /^==\d+==ERROR: (AddressSanitizer: .*)/) {
            $flush->();
            $cur = [$1, $line];
            $in_asan = 1;
            next;
        }

        if ($in_asan) {
            $cur->[1] .= $line;
            $flush->() if $line =~ /^SUMMARY: /;
            next;
        }

        if ($line =~ /^((?:Direct|Indirect) leak of .*)/) {
            $flush->();
            $cur = [$1, $line];
            next;
        }

        if ($line =~ /runtime error: (.*)/) {
            $flush->();
            $cur = ["runtime error: $1", $line];
            next;
        }

        if ($line =~ /^==\d+== (\S.*)/) {     # valgrind: an error begins
            $flush->();
            $cur = [$1, $line];
            next;
        }

        if ($line =~ /^(?:==\d+==)?\s*$/ || $line =~ /^(?:SUMMARY: |={20,})/) {
            $flush->();
            next;
        }

        $cur->[1] .= $line if $cur;
    }

    $flush->();
    return @reports;
}
