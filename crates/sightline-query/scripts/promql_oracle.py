#!/usr/bin/env python3
"""Fills in a PromQL test script's expected results from a real Prometheus.

Usage: promql_oracle.py SCRIPT.test > OUT.test

SCRIPT.test is in the format of src/promql/promqltest.rs (load / clear / eval lines; the
expected lines under each eval may be left out). For each stretch of loads the script
starts `prometheus` (Debian's package, 2.42 on bookworm) on a free 127.0.0.1 port with a
temporary data directory, writes the series through remote write (so staleness markers
survive), runs every eval through the HTTP API and prints the script back with
Prometheus' answers as the expected lines: an eval that failed becomes `eval_fail` with
`expected_fail_message`, marked `# ORACLE` when that changed the command. The server is
stopped (by its own PID) before the next stretch and at the end.

Parse errors are worded differently by our parser; replace their messages with a comment.
"""
import json, os, re, shutil, signal, socket, struct, subprocess, sys, tempfile, time, urllib.parse, urllib.request

STALE = struct.unpack('<d', struct.pack('<Q', 0x7ff0000000000002))[0]

def dur_ms(s):
    try:
        return int(round(float(s) * 1000))
    except ValueError:
        pass
    neg = s.startswith('-')
    if neg: s = s[1:]
    total = 0
    for n, u in re.findall(r'(\d+)(ms|s|m|h|d|w|y)', s):
        total += int(n) * {'ms':1,'s':1000,'m':60000,'h':3600000,'d':86400000,'w':604800000,'y':31536000000}[u]
    return -total if neg else total

def pval(s):
    return {'Inf':float('inf'),'+Inf':float('inf'),'-Inf':float('-inf'),'NaN':float('nan')}.get(s) if s in ('Inf','+Inf','-Inf','NaN') else float(s)

def expand(tokens):
    out = []
    for t in tokens:
        if t == '_': out.append(None); continue
        if t == 'stale': out.append(('stale',)); continue
        m = re.match(r'^(.+)x(\d+)$', t)
        if m:
            head, n = m.group(1), int(m.group(2))
            if head == '_': out += [None]*n; continue
            sm = re.match(r'^(-?[^-+]+(?:[eE][-+]?\d+)?)([-+].+)$', head)
            if sm:
                v, inc = pval(sm.group(1)), pval(sm.group(2))
                for _ in range(n+1):
                    out.append(v); v += inc
            else:
                out += [pval(head)]*n
            continue
        out.append(pval(t))
    return out

def split_series(line):
    line = line.strip()
    if '{' in line and not re.search(r'\s', line[:line.index('{')]):
        end = line.index('}') + 1
    else:
        m = re.search(r'\s', line); end = m.start() if m else len(line)
    return line[:end], line[end:].strip()

def parse_labels(s):
    name, labels = s, {}
    if '{' in s:
        name = s[:s.index('{')]
        body = s[s.index('{')+1:-1]
        for k, v in re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"', body):
            labels[k] = re.sub(r'\\(.)', lambda m: {'n':'\n'}.get(m.group(1), m.group(1)), v)
    if name: labels['__name__'] = name
    return labels

def varint(n):
    out = b''
    while True:
        b = n & 0x7f; n >>= 7
        if n: out += bytes([b|0x80])
        else: return out + bytes([b])

def field(num, wt, payload):
    key = varint((num << 3) | wt)
    if wt == 2: return key + varint(len(payload)) + payload
    return key + payload

def write_request(series):
    body = b''
    for labels, samples in series:
        ts = b''
        for k in sorted(labels):
            ts += field(1, 2, field(1, 2, k.encode()) + field(2, 2, labels[k].encode()))
        for t, v in samples:
            s = field(1, 1, struct.pack('<d', v)) + field(2, 0, varint(t & 0xffffffffffffffff))
            ts += field(2, 2, s)
        body += field(1, 2, ts)
    return body

def snappy_literal(data):
    out = varint(len(data)); i = 0
    while i < len(data):
        chunk = data[i:i+65536]; n = len(chunk) - 1
        if n < 60: out += bytes([n << 2])
        elif n < 256: out += bytes([60 << 2, n])
        else: out += bytes([61 << 2]) + struct.pack('<H', n)
        out += chunk; i += len(chunk)
    return out

class Prom:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='promoracle')
        s = socket.socket(); s.bind(('127.0.0.1', 0)); self.port = s.getsockname()[1]; s.close()
        cfg = os.path.join(self.dir, 'p.yml'); open(cfg, 'w').write('global:\n  evaluation_interval: 1m\n')
        self.proc = subprocess.Popen(['prometheus', '--config.file='+cfg, '--storage.tsdb.path='+os.path.join(self.dir,'data'),
            '--web.listen-address=127.0.0.1:%d' % self.port, '--web.enable-remote-write-receiver'],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir,'log'),'w'))
        for _ in range(100):
            try:
                urllib.request.urlopen('http://127.0.0.1:%d/-/ready' % self.port, timeout=1); return
            except Exception: time.sleep(0.1)
        raise SystemExit('prometheus did not start')
    def write(self, series):
        if not series: return
        req = urllib.request.Request('http://127.0.0.1:%d/api/v1/write' % self.port, data=snappy_literal(write_request(series)),
            headers={'Content-Encoding':'snappy','Content-Type':'application/x-protobuf','X-Prometheus-Remote-Write-Version':'0.1.0'})
        urllib.request.urlopen(req).read()
    def query(self, params, path):
        url = 'http://127.0.0.1:%d/api/v1/%s?%s' % (self.port, path, urllib.parse.urlencode(params))
        try:
            return json.loads(urllib.request.urlopen(url).read())
        except urllib.error.HTTPError as e:
            return json.loads(e.read())
    def stop(self):
        self.proc.send_signal(signal.SIGTERM); self.proc.wait(); shutil.rmtree(self.dir, ignore_errors=True)

def fmt_labels(m):
    name = m.pop('__name__', '')
    inner = ', '.join('%s="%s"' % (k, v.replace('\\','\\\\').replace('"','\\"')) for k, v in sorted(m.items()))
    return name + '{' + inner + '}' if inner or not name else name

def secs(ms):
    s = ms / 1000
    return str(int(s)) if s == int(s) else repr(s)

def main(path):
    lines = open(path).read().split('\n')
    out = []; series = {}; prom = None; dirty = True
    i = 0
    while i < len(lines):
        line = lines[i]; i += 1
        st = line.strip()
        body = []
        while i < len(lines) and lines[i][:1] in (' ', '\t') and lines[i].strip():
            body.append(lines[i]); i += 1
        if st.startswith('load '):
            step = dur_ms(st[5:].strip())
            for b in body:
                if b.strip().startswith('#'): continue
                sel, rest = split_series(b)
                labels = parse_labels(sel)
                key = tuple(sorted(labels.items()))
                pts = series.setdefault(key, {})
                for j, v in enumerate(expand(rest.split())):
                    if v is None: continue
                    pts[j*step] = STALE if isinstance(v, tuple) else v
            dirty = True
            out.append(line); out += body; continue
        if st == 'clear':
            series = {}; dirty = True; out.append(line); continue
        if not st.startswith('eval'):
            out.append(line); out += body; continue
        if dirty:
            if prom: prom.stop()
            prom = Prom()
            prom.write([(dict(k), sorted(v.items())) for k, v in series.items()])
            dirty = False
        cmd, rest = st.split(' ', 1)
        keep = [b for b in body if b.strip().startswith('expected_fail')]
        if rest.startswith('instant at '):
            at, expr = rest[len('instant at '):].split(' ', 1)
            r = prom.query({'query': expr, 'time': dur_ms(at)/1000}, 'query')
            rng = None
        else:
            m = re.match(r'range from (\S+) to (\S+) step (\S+) (.*)', rest)
            start, end, step, expr = dur_ms(m.group(1)), dur_ms(m.group(2)), dur_ms(m.group(3)), m.group(4)
            r = prom.query({'query': expr, 'start': start/1000, 'end': end/1000, 'step': step/1000}, 'query_range')
            rng = (start, end, step)
        if r['status'] != 'success':
            out.append('eval_fail ' + rest)
            out.append('  expected_fail_message ' + r['error'])
            if cmd != 'eval_fail': out.append('  # ORACLE: was ' + cmd)
            continue
        if cmd == 'eval_fail':
            out.append('# ORACLE: succeeded')
        out.append(('eval_ordered ' if cmd == 'eval_ordered' else 'eval ') + rest)
        d = r['data']; t = d['resultType']
        if t == 'scalar': out.append('  ' + d['result'][1])
        elif t == 'string': out.append('  ' + json.dumps(d['result'][1]))
        elif t == 'vector':
            for s in d['result']: out.append('  %s %s' % (fmt_labels(s['metric']), s['value'][1]))
        elif rng is None:
            for s in d['result']:
                out.append('  %s %s' % (fmt_labels(s['metric']), ' '.join('%s@%s' % (v, secs(int(round(ts*1000)))) for ts, v in s['values'])))
        else:
            start, end, step = rng
            for s in d['result']:
                vals = {int(round(ts*1000)): v for ts, v in s['values']}
                toks = []; tt = start
                while tt <= end:
                    toks.append(vals.get(tt, '_')); tt += step
                while toks and toks[-1] == '_': toks.pop()
                out.append('  %s %s' % (fmt_labels(s['metric']), ' '.join(toks)))
    if prom: prom.stop()
    print('\n'.join(out))

main(sys.argv[1])
