#!/usr/bin/env python3
"""Prints a random PromQL test script: irregular series (stale markers, NaN, ±Inf, gaps,
counter resets, 17s/23s/30s intervals) and N random queries over them, without expected
results. Fill those in from a real Prometheus with promql_oracle.py.

Usage: promql_random.py SEED N > queries.test
"""
import random, sys
random.seed(int(sys.argv[1]))
sel = ['x', 'x{k="a"}', 'y', 'c{k!="b"}', '{__name__=~"x|y"}', 'g', 'h_bucket']
rng = ['30s', '1m', '2m', '5m', '90s']
def vsel():
    s = random.choice(sel[:5] + ['g'])
    r = random.random()
    if r < 0.15: s += ' offset %s' % random.choice(['30s','1m','-1m'])
    elif r < 0.25: s += ' @ %d' % random.choice([60, 120, 300])
    return s
def msel():
    s = random.choice(['x', 'y', 'c{k="a"}', 'y{k=~".+"}', 'x{k="b"}']) + '[%s]' % random.choice(rng)
    if random.random() < 0.15: s += ' offset 1m'
    return s
def matrix(d):
    if d > 0 and random.random() < 0.25:
        extra = random.choice(['', '', ' offset 1m', ' @ 300', ' @ end()', ' offset -30s'])
        return '(%s)[%s:%s]%s' % (vec(d-1), random.choice(['2m','3m','5m']), random.choice(['','30s','1m','20s','7s']), extra)
    return msel()
def scal(d):
    r = random.random()
    if r < 0.5: return random.choice(['0.5','2','-1','0','3','0.25','10'])
    if r < 0.7 and d > 0: return 'scalar(%s)' % vec(d-1)
    return random.choice(['time()', 'pi()', '1 + 2'])
def vec(d):
    if d <= 0: return vsel()
    r = random.random()
    if r < 0.12: return vsel()
    if r < 0.35:
        f = random.choice(['rate','irate','increase','delta','idelta','resets','changes','deriv','avg_over_time','min_over_time','max_over_time','sum_over_time','count_over_time','stddev_over_time','stdvar_over_time','last_over_time','present_over_time','absent_over_time'])
        return '%s(%s)' % (f, matrix(d))
    if r < 0.40: return 'quantile_over_time(%s, %s)' % (random.choice(['0.1','0.5','0.9']), matrix(d))
    if r < 0.43: return 'predict_linear(%s, %s)' % (matrix(d), random.choice(['60','-30','600']))
    if r < 0.45: return 'holt_winters(%s, 0.3, 0.6)' % matrix(d)
    if r < 0.62:
        a = random.choice(['sum','avg','min','max','count','group','stddev','stdvar'])
        mod = random.choice(['', ' by (k)', ' without (k)', ' by (j)', ' without (j, k)', ' by (__name__)'])
        return '%s%s (%s)' % (a, mod, vec(d-1))
    if r < 0.66:
        a = random.choice(['topk','bottomk'])
        return '%s(%s, %s)' % (a, random.choice(['1','2','3']), vec(d-1))
    if r < 0.68: return 'quantile by (j) (%s, %s)' % (random.choice(['0.3','0.75']), vec(d-1))
    if r < 0.70: return 'count_values("v", %s)' % vec(d-1)
    if r < 0.84:
        op = random.choice(['+','-','*','/','%','^','==','!=','>','<','>=','<=','and','or','unless','atan2','> bool','== bool'])
        if op in ('and','or','unless'):
            mod = random.choice(['', ' on(k)', ' ignoring(j)', ' on()'])
            return '%s %s%s %s' % (vec(d-1), op, mod, vec(d-1))
        if random.random() < 0.4:
            if random.random() < 0.5: return '%s %s %s' % (vec(d-1), op, scal(d-1))
            return '%s %s %s' % (scal(d-1), op, vec(d-1))
        mod = random.choice(['', ' on(k)', ' ignoring(j)', ' on(k) group_left', ' on(k) group_right', ' ignoring(j) group_left(j)'])
        return '(%s) %s%s (%s)' % (vec(d-1), op, mod, vec(d-1))
    if r < 0.90:
        f = random.choice(['abs','ceil','floor','sqrt','ln','log2','log10','sgn','round','sin','cos','atan','deg','rad','timestamp','sort','sort_desc','-'])
        if f == '-': return '-(%s)' % vec(d-1)
        return '%s(%s)' % (f, vec(d-1))
    if r < 0.93: return 'clamp(%s, %s, %s)' % (vec(d-1), random.choice(['-1','0','1']), random.choice(['2','5','0']))
    if r < 0.95: return 'histogram_quantile(%s, %s)' % (random.choice(['0.5','0.9','0.99']), random.choice(['h_bucket','rate(h_bucket[2m])','sum by (le) (rate(h_bucket[5m]))']))
    if r < 0.97: return 'label_replace(%s, "x", "$1", "k", "(.)")' % vec(d-1)
    if r < 0.98: return 'absent(%s)' % vsel()
    return 'vector(%s)' % scal(d-1)
print('load 30s')
print('  m{k="a", j="1"} 1 2 3 stale 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21')
print('  m{k="b", j="1"} 0.5 NaN 2.5 3 _ _ 9 12 15 Inf 20 21 22 23 24 25 26 27 28 29 30')
print('  m{k="c", j="2"} -3 -2 -1 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17')
print('  c{k="a", j="1"} 0+7x10 3+5x10')
print('  c{k="b", j="2"} 100+1.5x20')
print('  c{k="c", j="1"} 5 10 2 stale 4 9 11 11 11 12 1 2 3 4 5 6 7 8 9 10 11')
print('  g{k="a", j="3"} 0.1 -0.2 0.3 -0.4 0.5 -0.6 0.7 -0.8 0.9 -1 1.1 -1.2 1.3 -1.4 1.5 -1.6 1.7 -1.8 1.9 -2 2.1')
print('  h_bucket{le="0.1", k="a"} 0+1x20')
print('  h_bucket{le="1", k="a"} 0+3x20')
print('  h_bucket{le="+Inf", k="a"} 0+4x20')
print('  h_bucket{le="0.1", k="b"} 0+2x20')
print('  h_bucket{le="+Inf", k="b"} 0+2x20')
print('load 17s')
print('  x{k="a", j="1"} 0+3x10 2+9.5x10 stale 1 2 3 4 5')
print('  x{k="b", j="2"} 10 Inf 12 NaN 15 18 -Inf 25 30 _ _ 45 50 1 3 6 9 12 15 20 21 33 34 35 36 37')
print('load 23s')
print('  y{k="a", j="1"} 1 1 2 3 5 8 13 21 34 55 89 144 233 377 610 987 1597 2584 4181')
print('  y{k="c", j="2"} 0.3 0.1 0.4 0.1 0.5 0.9 0.2 0.6 0.5 0.3 0.5 0.8 0.9 0.7 0.9 0.3 0.2 0.3 0.8 0.4 0.6')
print()
for i in range(int(sys.argv[2])):
    e = vec(random.choice([1,2,3,3,4]))
    if random.random() < 0.7:
        print('eval instant at %s %s' % (random.choice(['1m','3m','5m','7m30s','10m']), e))
    else:
        print('eval range from 0 to 10m step %s %s' % (random.choice(['1m','45s','2m']), e))
    print()
