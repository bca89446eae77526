# SPDX-License-Identifier: MIT
# Shared by the bench scripts (source it): the median of numbers given on stdin (words or
# lines; the mean of the two middle ones for an even count; 0 for none), and a ratio a/b
# printed as "1.23x" ("-" when b is 0).
median() {
    tr ' ' '\n' | grep . | sort -g |
        awk '{ v[NR] = $1 } END { print NR == 0 ? 0 : (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else printf "-" }'; }
