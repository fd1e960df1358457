"""Check relative links in README.md and docs/*.md: the file exists; #anchor matches a GitHub-style heading anchor."""
import re, sys, glob, os
from collections import Counter
def anchors(path):
    out=set(); seen=Counter(); fence=False
    for line in open(path, encoding='utf-8'):
        if line.lstrip().startswith('```'): fence=not fence; continue
        if fence: continue
        m=re.match(r'^(#{1,6})\s+(.*?)\s*#*\s*$', line)
        if not m: continue
        t=m.group(2).strip().lower()
        t=re.sub(r'[^\w\- ]', '', t)   # drop punctuation (keeps letters, digits, _, -, space)
        t=t.replace(' ', '-')
        a=t if seen[t]==0 else f"{t}-{seen[t]}"; seen[t]+=1; out.add(a)
    return out
bad=0; n=0
for f in ['README.md']+sorted(glob.glob('docs/*.md')):
    text=open(f,encoding='utf-8').read()
    text=re.sub(r'```.*?```','',text,flags=re.S)
    for target in re.findall(r'\]\(([^)\s]+)\)', text):
        if re.match(r'^[a-z]+://|^mailto:', target): continue
        n+=1
        path, _, anc = target.partition('#')
        dest = os.path.normpath(os.path.join(os.path.dirname(f), path)) if path else f
        if not os.path.exists(dest): print(f"{f}: {target}: no file {dest}"); bad+=1; continue
        if anc and (not dest.endswith('.md') or anc not in anchors(dest)):
            print(f"{f}: {target}: no anchor #{anc} in {dest}"); bad+=1
print(f"{n} relative links, {bad} broken"); sys.exit(bad>0)
