import sys, subprocess, hashlib, re, tempfile, os, collections
sys.path.insert(0, '/work/main')
from jax_fa4.build.inspect import fatbins
CUOBJ = '/work/main/.venv/lib/python3.11/site-packages/nvidia/cu13/bin/cuobjdump'
def funcs(lib):
    out = {}
    data = open(lib, 'rb').read()
    for n, fb in enumerate(fatbins(data)):
        with tempfile.NamedTemporaryFile(suffix='.fatbin', delete=False) as f:
            f.write(fb); path = f.name
        sass = subprocess.run([CUOBJ, '-sass', path], capture_output=True, text=True).stdout
        os.unlink(path)
        cur = None; body = []
        for line in sass.splitlines():
            m = re.match(r'\s+Function : (\S+)', line)
            if m:
                if cur: out.setdefault(cur, []).append(hashlib.md5('\n'.join(body).encode()).hexdigest())
                cur, body = m.group(1), []
            elif cur and re.match(r'\s+/\*[0-9a-f]{4}\*/', line):
                body.append(re.sub(r'/\* 0x[0-9a-f]+ \*/', '', line).strip())
        if cur: out.setdefault(cur, []).append(hashlib.md5('\n'.join(body).encode()).hexdigest())
    return out
a, b = funcs(sys.argv[1]), funcs(sys.argv[2])
ca = collections.Counter(h for v in a.values() for h in v)
cb = collections.Counter(h for v in b.values() for h in v)
print('kernels', sum(ca.values()), sum(cb.values()), 'identical', sum((ca & cb).values()), 'differ', sum((ca - cb).values()))
for name in sorted(set(a) | set(b)):
    if sorted(a.get(name, [])) != sorted(b.get(name, [])):
        print('  differs:', name[:110], len(a.get(name, [])), len(b.get(name, [])))
